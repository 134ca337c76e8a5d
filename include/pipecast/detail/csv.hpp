// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/csv.hpp
/// @brief A small RFC 4180 CSV reader that keeps line numbers for error messages, and
/// field parsers (numbers, ISO-8601 dates) that report file:line:column.

#include <pipecast/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast::detail {

[[nodiscard]] inline std::string_view trim(std::string_view s) noexcept;

/// Reads records one at a time: quoted fields ("a,b", "say ""hi"""), CRLF or LF line ends,
/// a UTF-8 byte-order mark, blank (or all-whitespace) lines skipped. Quoted fields may span
/// lines; blanks around a quoted field are ignored.
class csv_reader {
public:
    csv_reader(std::istream& in, std::string source) : in_(in), source_(std::move(source)) {}

    /// Reads the next record into `fields`. Returns false at end of input.
    /// @throws parse_error on an unterminated quote or text after a closing quote.
    bool next(std::vector<std::string>& fields) {
        fields.clear();
        std::string line;
        while (true) {
            if (!std::getline(in_, line)) return false;
            ++line_no_;
            if (line_no_ == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!trim(line).empty()) break; // lines of blanks only are blank lines too
        }
        record_line_ = line_no_;
        std::string field;
        bool quoted = false, was_quoted = false;
        for (std::size_t i = 0;; ++i) {
            if (i == line.size()) {
                if (!quoted) break;
                std::string more; // a quoted field spanning lines
                if (!std::getline(in_, more))
                    throw parse_error(source_, record_line_, fields.size() + 1, "unterminated quoted field");
                ++line_no_;
                if (!more.empty() && more.back() == '\r') more.pop_back();
                field += '\n';
                line = std::move(more);
                i = static_cast<std::size_t>(-1);
                continue;
            }
            const char c = line[i];
            if (quoted) {
                if (c == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        field += '"';
                        ++i;
                    } else {
                        quoted = false;
                    }
                } else {
                    field += c;
                }
            } else if (c == ',') {
                fields.push_back(std::move(field));
                field.clear();
                was_quoted = false;
            } else if (c == '"' && !was_quoted && trim(field).empty()) {
                field.clear(); // blanks before an opening quote are padding
                quoted = was_quoted = true;
            } else if (was_quoted) {
                if (c != ' ' && c != '\t') // blanks after a closing quote are padding too
                    throw parse_error(source_, record_line_, fields.size() + 1, "text after a closing quote");
            } else {
                field += c;
            }
        }
        fields.push_back(std::move(field));
        return true;
    }

    /// Line on which the last record started (1-based).
    [[nodiscard]] std::size_t line() const noexcept { return record_line_; }
    [[nodiscard]] const std::string& source() const noexcept { return source_; }

private:
    std::istream& in_;
    std::string source_;
    std::size_t line_no_ = 0;
    std::size_t record_line_ = 0;
};

[[nodiscard]] inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

[[nodiscard]] inline std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

/// The header of a CSV file: column lookup by (case-insensitive, trimmed) name.
class csv_header {
public:
    csv_header() = default;
    explicit csv_header(const std::vector<std::string>& names) {
        for (const auto& n : names) names_.push_back(lower(trim(n)));
    }
    /// Index of the first column named any of `aliases`, if present.
    [[nodiscard]] std::optional<std::size_t> find(std::initializer_list<std::string_view> aliases) const {
        for (auto a : aliases) {
            const auto it = std::find(names_.begin(), names_.end(), a);
            if (it != names_.end()) return static_cast<std::size_t>(it - names_.begin());
        }
        return std::nullopt;
    }
    [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }
    [[nodiscard]] const std::string& name(std::size_t i) const { return names_[i]; }

private:
    std::vector<std::string> names_;
};

/// Parses a finite decimal number (leading/trailing blanks allowed). Empty -> nullopt.
/// @throws parse_error naming source:line:column and the column name.
[[nodiscard]] inline std::optional<double> parse_number(std::string_view text, const std::string& source,
                                                        std::size_t line, std::size_t column,
                                                        std::string_view column_name) {
    const std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    double v = 0.0;
    const char* first = s.data();
    if (*first == '+') ++first;
    const auto [ptr, ec] = std::from_chars(first, s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || !std::isfinite(v))
        throw parse_error(source, line, column,
                          message("column '", column_name, "': expected a number, got '", s, "'"));
    return v;
}

/// Parses an ISO-8601 date or date-time ("2026-11-22", "2026-11-22T09:30", "...:15Z",
/// "...+02:00") into days since 1970-01-01 (UTC). Returns nullopt if the text is not a date.
[[nodiscard]] inline std::optional<double> parse_iso8601(std::string_view s) {
    s = trim(s);
    auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
        if (pos + n > s.size()) return std::nullopt;
        int v = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
            v = v * 10 + (s[i] - '0');
        }
        return v;
    };
    const auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2);
    if (!y || !mo || !d || s[4] != '-' || s[7] != '-') return std::nullopt;
    const std::chrono::year_month_day ymd{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*mo)},
                                          std::chrono::day{static_cast<unsigned>(*d)}};
    if (!ymd.ok()) return std::nullopt;
    double days = static_cast<double>(std::chrono::sys_days{ymd}.time_since_epoch().count());
    if (s.size() == 10) return days;
    if (s[10] != 'T' && s[10] != ' ') return std::nullopt;
    const auto hh = digits(11, 2), mm = digits(14, 2);
    if (!hh || !mm || s.size() < 16 || s[13] != ':' || *hh > 23 || *mm > 59) return std::nullopt;
    double secs = *hh * 3600.0 + *mm * 60.0;
    std::size_t pos = 16;
    if (pos < s.size() && s[pos] == ':') {
        const auto ss = digits(pos + 1, 2);
        if (!ss || *ss > 60) return std::nullopt;
        secs += *ss;
        pos += 3;
        if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
            double scale = 0.1;
            for (++pos; pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])); ++pos, scale /= 10)
                secs += (s[pos] - '0') * scale;
        }
    }
    if (pos < s.size()) {
        if (s[pos] == 'Z' && pos + 1 == s.size()) {
            // UTC
        } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
            const auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
            if (!oh || !om) return std::nullopt;
            const double off = *oh * 3600.0 + *om * 60.0;
            secs -= s[pos] == '+' ? off : -off;
        } else {
            return std::nullopt;
        }
    }
    return days + secs / 86400.0;
}

/// Parses a time field: a plain number (in the caller's unit) or an ISO-8601 date (days
/// since 1970-01-01). Empty -> nullopt. `is_date` tells which form was found.
/// @throws parse_error naming source:line:column for anything else.
[[nodiscard]] inline std::optional<double> parse_time(std::string_view text, const std::string& source,
                                                      std::size_t line, std::size_t column,
                                                      std::string_view column_name, bool* is_date = nullptr) {
    const std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    if (s.size() >= 10 && s[4] == '-') {
        if (auto d = parse_iso8601(s)) {
            if (is_date) *is_date = true;
            return d;
        }
        throw parse_error(source, line, column,
                          message("column '", column_name, "': not a valid ISO-8601 date: '", s, "'"));
    }
    if (is_date) *is_date = false;
    return parse_number(s, source, line, column, column_name);
}

} // namespace pipecast::detail
