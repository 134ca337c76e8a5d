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

template <class = void>
[[nodiscard]] std::string_view trim(std::string_view s) noexcept;

/// The text of a value for an error message: at most 80 bytes (cut at a UTF-8 character
/// boundary, "..." and the full length appended), control bytes shown as \xNN.
template <class = void>
[[nodiscard]] std::string clip(std::string_view s) {
    constexpr std::size_t max_bytes = 80;
    std::size_t n = std::min(s.size(), max_bytes);
    if (n < s.size())
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n; // not inside a character
    std::string out;
    static constexpr char hex[] = "0123456789ABCDEF";
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (n < s.size()) out += message("... (", s.size(), " bytes)");
    return out;
}

/// Length of the valid UTF-8 prefix of s (s.size() if all of s is valid UTF-8: no overlong
/// forms, no surrogates, nothing above U+10FFFF).
template <class = void>
[[nodiscard]] std::size_t utf8_valid_prefix(std::string_view s) noexcept {
    std::size_t i = 0;
    const std::size_t n = s.size();
    auto cont = [&](std::size_t k) { return k < n && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80; };
    while (i < n) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (i + 1 >= n) return i;
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        if (c1 < lo || c1 > hi) return i;
        for (std::size_t k = 2; k < len; ++k)
            if (!cont(i + k)) return i;
        i += len;
    }
    return n;
}

/// Appends one CSV field to `out` (RFC 4180): quoted, with quotes doubled, when it holds the
/// separator, a quote, a line break or blanks at either end; as it is otherwise.
/// Example: `append_csv_field(line, "Smith, J."); // "\"Smith, J.\""`
template <class = void>
void append_csv_field(std::string& out, std::string_view field, char delimiter = ',') {
    const bool quote = field.find_first_of(std::string{delimiter, '"', '\n', '\r'}) != std::string_view::npos ||
                       (!field.empty() && (field.front() == ' ' || field.back() == ' ' || field.front() == '\t' ||
                                           field.back() == '\t'));
    if (!quote) {
        out += field;
        return;
    }
    out += '"';
    for (char c : field) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

/// How a CSV file is written: the field separator and the checks on its bytes.
struct csv_dialect {
    char delimiter = ',';            ///< ',', ';', '\t' or '|'; 0: detected from the first record
    bool validate_utf8 = true;       ///< invalid UTF-8 is an error (give an encoding to transcode)
    std::size_t max_field_bytes = std::size_t{1} << 20; ///< a longer field is an error
};

/// The separator a header line uses: the most frequent of ',', ';', tab and '|' outside
/// quotes ('','' when none occurs).
template <class = void>
[[nodiscard]] char detect_delimiter(std::string_view header_line) noexcept {
    std::size_t count[4] = {0, 0, 0, 0};
    static constexpr char cands[4] = {',', ';', '\t', '|'};
    bool quoted = false;
    for (char c : header_line) {
        if (c == '"') quoted = !quoted;
        if (quoted) continue;
        if (c == '\n' || c == '\r') break;
        for (int k = 0; k < 4; ++k)
            if (c == cands[k]) ++count[k];
    }
    int best = 0;
    for (int k = 1; k < 4; ++k)
        if (count[k] > count[best]) best = k;
    return count[best] ? cands[best] : ',';
}

/// Reads records one at a time: quoted fields ("a,b", "say ""hi"""), CRLF, LF or CR-only
/// line ends, a UTF-8 byte-order mark, blank (or all-whitespace) lines skipped. Quoted fields
/// may span lines; blanks around a quoted field are ignored. Every field is checked: no NUL
/// byte, valid UTF-8 (unless the dialect says otherwise), at most max_field_bytes.
class csv_reader {
public:
    csv_reader(std::istream& in, std::string source, csv_dialect dialect = {})
        : in_(in), source_(std::move(source)), dialect_(dialect) {}

    /// Reads the next record into `fields`. Returns false at end of input.
    /// @throws parse_error on an unterminated quote, text after a closing quote, a NUL byte,
    ///   invalid UTF-8 or an over-long field, naming the line and the field number.
    bool next(std::vector<std::string>& fields) {
        fields.clear();
        std::string line;
        while (true) {
            if (!read_line(line)) return false;
            ++line_no_;
            if (line_no_ == 1) {
                if (line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
                else if (line.starts_with("\xFF\xFE") || line.starts_with("\xFE\xFF"))
                    throw parse_error(source_, 1, 1, "the file is UTF-16 (byte-order mark): give the encoding "
                                                     "(--encoding utf-16) or save it as UTF-8");
            }
            if (!trim(line).empty()) break; // lines of blanks only are blank lines too
        }
        record_line_ = line_no_;
        if (dialect_.delimiter == 0) dialect_.delimiter = detect_delimiter(line);
        std::string field;
        bool quoted = false, was_quoted = false;
        const char delim = dialect_.delimiter;
        for (std::size_t i = 0;; ++i) {
            if (i == line.size()) {
                if (!quoted) break;
                std::string more; // a quoted field spanning lines
                if (!read_line(more))
                    throw parse_error(source_, record_line_, fields.size() + 1,
                                      message("unterminated quoted field (starting '", clip(field), "')"));
                ++line_no_;
                field += '\n';
                if (field.size() > dialect_.max_field_bytes) too_long(fields.size(), field);
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
            } else if (c == delim) {
                push(fields, field);
                field.clear();
                was_quoted = false;
            } else if (c == '"' && !was_quoted && trim(field).empty()) {
                field.clear(); // blanks before an opening quote are padding
                quoted = was_quoted = true;
            } else if (was_quoted) {
                if (c != ' ' && c != '\t') // blanks after a closing quote are padding too
                    throw parse_error(source_, record_line_, fields.size() + 1,
                                      message("text after a closing quote: '", clip(line.substr(i)), "'"));
            } else {
                field += c;
            }
        }
        push(fields, field);
        return true;
    }

    /// Line on which the last record started (1-based).
    [[nodiscard]] std::size_t line() const noexcept { return record_line_; }
    [[nodiscard]] const std::string& source() const noexcept { return source_; }
    /// The field separator (the detected one once the first record is read).
    [[nodiscard]] char delimiter() const noexcept { return dialect_.delimiter; }

private:
    /// One physical line without its end (\n, \r\n or \r). False at the end of input.
    bool read_line(std::string& line) {
        line.clear();
        auto* buf = in_.rdbuf();
        if (!buf) return false;
        using traits = std::char_traits<char>;
        bool any = false;
        while (true) {
            const auto ch = buf->sbumpc();
            if (traits::eq_int_type(ch, traits::eof())) {
                in_.setstate(std::ios::eofbit);
                return any;
            }
            any = true;
            const char c = traits::to_char_type(ch);
            if (c == '\n') return true;
            if (c == '\r') {
                if (traits::eq_int_type(buf->sgetc(), traits::to_int_type('\n'))) buf->sbumpc();
                return true;
            }
            line += c;
            if (line.size() > 4 * dialect_.max_field_bytes)
                throw parse_error(source_, line_no_ + 1, 0,
                                  message("line longer than ", 4 * dialect_.max_field_bytes, " bytes: '", clip(line), "'"));
        }
    }

    [[noreturn]] void too_long(std::size_t index, std::string_view field) const {
        throw parse_error(source_, record_line_ ? record_line_ : line_no_ + 1, index + 1,
                          message("field longer than ", dialect_.max_field_bytes, " bytes (an unterminated quote?): '",
                                  clip(field), "'"));
    }

    void push(std::vector<std::string>& fields, std::string& field) {
        const std::size_t col = fields.size() + 1;
        if (field.size() > dialect_.max_field_bytes) too_long(fields.size(), field);
        if (const auto nul = field.find('\0'); nul != std::string::npos)
            throw parse_error(source_, record_line_, col,
                              message("NUL byte at byte ", nul + 1, " of the field (a binary file, or UTF-16 "
                                      "without a byte-order mark?)"));
        if (dialect_.validate_utf8) {
            const std::size_t ok = utf8_valid_prefix(field);
            if (ok != field.size())
                throw parse_error(source_, record_line_, col,
                                  message("invalid UTF-8 (byte 0x", hex_byte(field[ok]), " at byte ", ok + 1,
                                          " of the field '", clip(field.substr(0, ok)),
                                          "...'): give the file's encoding, e.g. --encoding gb18030 or windows-1252"));
        }
        fields.push_back(std::move(field));
    }

    static std::string hex_byte(char c) {
        static constexpr char hex[] = "0123456789ABCDEF";
        const auto u = static_cast<unsigned char>(c);
        return {hex[u >> 4], hex[u & 15]};
    }

    std::istream& in_;
    std::string source_;
    csv_dialect dialect_;
    std::size_t line_no_ = 0;
    std::size_t record_line_ = 0;
};

template <class>
[[nodiscard]] std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

template <class = void>
[[nodiscard]] std::string lower(std::string_view s) {
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
template <class = void>
[[nodiscard]] std::optional<double> parse_number(std::string_view text, const std::string& source,
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
                          message("column '", column_name, "': expected a number, got '", clip(s), "'"));
    return v;
}

/// Parses an ISO-8601 date or date-time ("2026-11-22", "2026-11-22T09:30", "...:15Z",
/// "...+02:00", "...+0200", "...:44.000+0000") into days since 1970-01-01 (UTC). Returns nullopt if the text is not a date.
template <class = void>
[[nodiscard]] std::optional<double> parse_iso8601(std::string_view s) {
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
        } else if ((s[pos] == '+' || s[pos] == '-') &&
                   ((s.size() == pos + 6 && s[pos + 3] == ':') || s.size() == pos + 5 || s.size() == pos + 3)) {
            // +HH:MM, +HHMM (Salesforce: 2023-01-01T06:07:44.000+0000) or +HH
            const auto oh = digits(pos + 1, 2);
            const auto om = s.size() == pos + 3 ? std::optional<int>(0) : digits(s.size() - 2, 2);
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
template <class = void>
[[nodiscard]] std::optional<double> parse_time(std::string_view text, const std::string& source,
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
                          message("column '", column_name, "': not a valid ISO-8601 date: '", clip(s), "'"));
    }
    if (is_date) *is_date = false;
    return parse_number(s, source, line, column, column_name);
}

} // namespace pipecast::detail
