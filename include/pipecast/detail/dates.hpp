// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/dates.hpp
/// @brief Dates as CRM exports write them: ISO-8601 (with `Z`, `+02:00` or Salesforce's
/// `+0000`), `YYYY/MM/DD HH:MM`, US `M/D/YYYY`, European `D.M.YYYY`, and any order given
/// by a strftime-style pattern (`%d/%m/%Y %H:%M`). All become days since 1970-01-01 (UTC).

#include <pipecast/detail/csv.hpp>
#include <pipecast/error.hpp>

#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pipecast::detail {

/// A date parse: the days since 1970-01-01 (UTC), or why the text is not a date.
struct date_result {
    std::optional<double> days;
    std::string problem; ///< set when days is empty
};

namespace dates_impl {

struct cursor {
    std::string_view s;
    std::size_t pos = 0;
    [[nodiscard]] bool done() const noexcept { return pos >= s.size(); }
    [[nodiscard]] char peek() const noexcept { return done() ? '\0' : s[pos]; }
    /// 1..max_digits digits (at least min_digits).
    std::optional<int> number(std::size_t min_digits, std::size_t max_digits) {
        std::size_t n = 0;
        int v = 0;
        while (n < max_digits && pos + n < s.size() && std::isdigit(static_cast<unsigned char>(s[pos + n]))) {
            v = v * 10 + (s[pos + n] - '0');
            ++n;
        }
        if (n < min_digits) return std::nullopt;
        pos += n;
        return v;
    }
    bool blanks() {
        const std::size_t p = pos;
        while (!done() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
        return pos > p;
    }
    bool literal(char c) {
        if (peek() != c) return false;
        ++pos;
        return true;
    }
};

/// Days since the epoch of a civil date, or nullopt if it does not exist.
template <class = void>
[[nodiscard]] std::optional<double> civil(int y, int m, int d) {
    if (m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
    const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                          std::chrono::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    return static_cast<double>(std::chrono::sys_days{ymd}.time_since_epoch().count());
}

/// Optional time of day after a date: [blanks|T] HH:MM[:SS[.fff]] [AM|PM] [Z|±HH[:]MM].
/// Returns seconds (east-of-UTC offsets subtracted), or nullopt if malformed.
template <class = void>
[[nodiscard]] std::optional<double> time_of_day(cursor& c) {
    if (c.done()) return 0.0;
    if (!c.literal('T')) c.blanks();
    if (c.done()) return 0.0;
    const auto h = c.number(1, 2);
    if (!h || !c.literal(':')) return std::nullopt;
    const auto m = c.number(2, 2);
    if (!m || *m > 59) return std::nullopt;
    double secs = *m * 60.0;
    int hour = *h;
    if (c.literal(':')) {
        const auto sec = c.number(2, 2);
        if (!sec || *sec > 60) return std::nullopt;
        secs += *sec;
        if (c.peek() == '.' || c.peek() == ',') {
            ++c.pos;
            double scale = 0.1;
            bool any = false;
            while (!c.done() && std::isdigit(static_cast<unsigned char>(c.peek()))) {
                secs += (c.peek() - '0') * scale;
                scale /= 10;
                ++c.pos;
                any = true;
            }
            if (!any) return std::nullopt;
        }
    }
    c.blanks();
    if (c.s.size() - c.pos >= 2) {
        const char a = static_cast<char>(std::toupper(static_cast<unsigned char>(c.s[c.pos])));
        const char b = static_cast<char>(std::toupper(static_cast<unsigned char>(c.s[c.pos + 1])));
        if ((a == 'A' || a == 'P') && b == 'M') {
            if (hour < 1 || hour > 12) return std::nullopt;
            hour = hour % 12 + (a == 'P' ? 12 : 0);
            c.pos += 2;
            c.blanks();
        }
    }
    if (hour > 23) return std::nullopt;
    secs += hour * 3600.0;
    if (c.literal('Z')) return c.done() ? std::optional<double>(secs) : std::nullopt;
    if (c.peek() == '+' || c.peek() == '-') {
        const bool east = c.peek() == '+';
        ++c.pos;
        const auto oh = c.number(2, 2);
        if (!oh) return std::nullopt;
        c.literal(':');
        const auto om = c.done() ? std::optional<int>(0) : c.number(2, 2);
        if (!om || *oh > 23 || *om > 59) return std::nullopt;
        const double off = *oh * 3600.0 + *om * 60.0;
        secs -= east ? off : -off;
    }
    if (!c.done()) return std::nullopt;
    return secs;
}

template <class = void>
[[nodiscard]] int month_of_name(std::string_view name) {
    static constexpr std::string_view names[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};
    if (name.size() < 3) return 0;
    const std::string l = lower(name.substr(0, 3));
    for (int k = 0; k < 12; ++k)
        if (l == names[k]) return k + 1;
    return 0;
}

} // namespace dates_impl

/// Parses a date with a strftime-style pattern: %Y (4-digit year), %y (2 digits, 20yy),
/// %m, %d, %H, %I, %M, %S (1–2 digits), %p (AM/PM), %b/%B (English month name),
/// %z (Z, +HHMM, +HH:MM), %F (%Y-%m-%d), %T (%H:%M:%S), %% and literal characters; a blank
/// in the pattern matches any run of blanks. A pattern without a time accepts a time of day
/// after the date, as parse_date does.
template <class = void>
[[nodiscard]] date_result parse_date_pattern(std::string_view text, std::string_view pattern) {
    using namespace dates_impl;
    std::string pat;
    for (std::size_t i = 0; i < pattern.size(); ++i) { // expand %F and %T
        if (pattern[i] == '%' && i + 1 < pattern.size() && (pattern[i + 1] == 'F' || pattern[i + 1] == 'T')) {
            pat += pattern[i + 1] == 'F' ? "%Y-%m-%d" : "%H:%M:%S";
            ++i;
        } else {
            pat += pattern[i];
        }
    }
    cursor c{trim(text)};
    int y = -1, mo = -1, d = -1, h = 0, mi = 0, pm = -1;
    double sec = 0.0, offset = 0.0;
    bool has_time = false;
    auto fail = [&](std::string_view what) {
        return date_result{std::nullopt, message("'", clip(text), "' does not match the date format '", pattern, "' (",
                                                 what, ")")};
    };
    for (std::size_t i = 0; i < pat.size(); ++i) {
        const char p = pat[i];
        if (p == ' ') {
            c.blanks();
            continue;
        }
        if (p != '%' || i + 1 == pat.size()) {
            if (!c.literal(p)) return fail(message("expected '", std::string(1, p), "'"));
            continue;
        }
        const char k = pat[++i];
        std::optional<int> v;
        switch (k) {
        case 'Y': v = c.number(4, 4); if (v) y = *v; break;
        case 'y': v = c.number(2, 2); if (v) y = 2000 + *v; break;
        case 'm': v = c.number(1, 2); if (v) mo = *v; break;
        case 'd': v = c.number(1, 2); if (v) d = *v; break;
        case 'H': case 'I': v = c.number(1, 2); if (v) { h = *v; has_time = true; } break;
        case 'M': v = c.number(1, 2); if (v) mi = *v; break;
        case 'S':
            v = c.number(1, 2);
            if (v) {
                sec = *v;
                if (c.peek() == '.' || c.peek() == ',') { // fractional seconds
                    ++c.pos;
                    double scale = 0.1;
                    while (!c.done() && std::isdigit(static_cast<unsigned char>(c.peek()))) {
                        sec += (c.peek() - '0') * scale;
                        scale /= 10;
                        ++c.pos;
                    }
                }
            }
            break;
        case 'p': {
            const std::string rest = lower(c.s.substr(c.pos, 2));
            if (rest == "am" || rest == "pm") {
                pm = rest == "pm";
                c.pos += 2;
                v = 0;
            }
            break;
        }
        case 'b': case 'B': {
            std::size_t n = 0;
            while (c.pos + n < c.s.size() && std::isalpha(static_cast<unsigned char>(c.s[c.pos + n]))) ++n;
            const int m = month_of_name(c.s.substr(c.pos, n));
            if (m) {
                mo = m;
                c.pos += n;
                v = m;
            }
            break;
        }
        case 'z': {
            if (c.literal('Z')) {
                v = 0;
                break;
            }
            if (c.peek() != '+' && c.peek() != '-') break;
            const bool east = c.peek() == '+';
            ++c.pos;
            const auto oh = c.number(2, 2);
            c.literal(':');
            const auto om = c.number(2, 2);
            if (oh && om) {
                offset = (east ? 1 : -1) * (*oh * 3600.0 + *om * 60.0);
                v = 0;
            }
            break;
        }
        case '%': if (c.literal('%')) v = 0; break;
        default: return fail(message("unknown directive %", std::string(1, k)));
        }
        if (!v) return fail(message("at %", std::string(1, k)));
    }
    if (y < 0 || mo < 0 || d < 0) return fail("the format needs %Y or %y, %m or %b, and %d");
    const auto day = civil(y, mo, d);
    if (!day) return fail("no such date");
    if (pm >= 0) {
        if (h < 1 || h > 12) return fail("hour out of range for AM/PM");
        h = h % 12 + (pm ? 12 : 0);
    }
    if (h > 23 || mi > 59 || sec >= 61) return fail("time out of range");
    double secs = h * 3600.0 + mi * 60.0 + sec - offset;
    if (!c.done()) {
        if (has_time) return fail(message("unexpected '", clip(c.s.substr(c.pos)), "' at the end"));
        const auto t = time_of_day(c);
        if (!t) return fail(message("unexpected '", clip(c.s.substr(c.pos)), "' at the end"));
        secs += *t;
    }
    return {*day + secs / 86400.0, {}};
}

/// Parses a date in one of the unambiguous forms CRM exports use: ISO-8601
/// (`2023-01-01`, `2023-01-01T06:07:44Z`, `...44.000+0000`, `2023-01-01 06:07`),
/// `YYYY/MM/DD[ HH:MM[:SS]]`, US `M/D/YYYY[ h:MM[:SS][ AM|PM]]` and European
/// `D.M.YYYY[ HH:MM[:SS]]`. A time without a zone is UTC. Other orders (`D/M/YYYY`,
/// `DD-MM-YYYY`, two-digit years) need a pattern (parse_date_pattern).
/// @returns nullopt days with a problem naming the pattern to give, when the text is a date
///   in an unsupported or impossible form; `problem` empty and no days when it is no date.
template <class = void>
[[nodiscard]] date_result parse_date(std::string_view text) {
    using namespace dates_impl;
    const std::string_view s = trim(text);
    cursor c{s};
    const auto a = c.number(1, 4);
    if (!a) return {};
    const std::size_t a_len = c.pos;
    const char sep = c.peek();
    if (sep != '-' && sep != '/' && sep != '.') return {};
    ++c.pos;
    const auto b = c.number(1, 2);
    if (!b || !c.literal(sep)) return {};
    const std::size_t b_end = c.pos;
    const auto z = c.number(1, 4);
    if (!z) return {};
    const std::size_t z_len = c.pos - b_end;
    int y = 0, m = 0, d = 0;
    const char* form = "";
    if (a_len == 4) { // year first: Y-M-D, Y/M/D, Y.M.D
        y = *a, m = *b, d = *z;
        form = sep == '-' ? "YYYY-MM-DD" : sep == '/' ? "YYYY/MM/DD" : "YYYY.MM.DD";
    } else if (z_len == 4 && sep == '/') { // US
        m = *a, d = *b, y = *z;
        form = "M/D/YYYY";
        if (m > 12 && d <= 12)
            return {std::nullopt, message("'", clip(text), "' is not M/D/YYYY (month ", m,
                                          "): day-first dates need --date-format %d/%m/%Y")};
    } else if (z_len == 4 && sep == '.') { // European
        d = *a, m = *b, y = *z;
        form = "D.M.YYYY";
    } else {
        return {std::nullopt, message("'", clip(text), "': ambiguous date order: give --date-format (e.g. %d-%m-%Y or %m-%d-%Y)")};
    }
    const auto day = civil(y, m, d);
    if (!day) return {std::nullopt, message("'", clip(text), "' is not a valid date (", form, ")")};
    const auto secs = time_of_day(c);
    if (!secs) return {std::nullopt, message("'", clip(text), "': bad time of day after a ", form, " date")};
    return {*day + *secs / 86400.0, {}};
}

/// The largest magnitude of a time read from a file (in the model's time unit): beyond it
/// (1e15 days is 2.7e12 years; 2^53 ≈ 9e15 ends whole-number precision) durations, sums and
/// squares of times overflow or lose every digit, so readers reject such times with their
/// file, line and column.
inline constexpr double max_abs_time = 1e15;

/// Parses a time field: a plain number (in the caller's unit) or a date (days since
/// 1970-01-01), with `pattern` if given. Empty -> nullopt. `is_date` tells which was found.
/// @throws parse_error naming source:line:column, the column and the value (at most 80
///   characters) for anything else.
template <class = void>
[[nodiscard]] std::optional<double> parse_time_field(std::string_view text, std::string_view pattern,
                                                     const std::string& source, std::size_t line,
                                                     std::size_t column, std::string_view column_name,
                                                     bool* is_date = nullptr) {
    const std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    if (!pattern.empty()) {
        auto r = parse_date_pattern(s, pattern);
        if (!r.days) throw parse_error(source, line, column, message("column '", column_name, "': ", r.problem));
        if (is_date) *is_date = true;
        return r.days;
    }
    auto r = parse_date(s);
    if (r.days) {
        if (is_date) *is_date = true;
        return r.days;
    }
    if (!r.problem.empty()) throw parse_error(source, line, column, message("column '", column_name, "': ", r.problem));
    if (s.size() >= 10 && s[4] == '-')
        throw parse_error(source, line, column,
                          message("column '", column_name, "': not a valid ISO-8601 date: '", clip(s), "'"));
    if (is_date) *is_date = false;
    return parse_number(s, source, line, column, column_name);
}

} // namespace pipecast::detail
