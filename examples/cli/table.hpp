// pipecast command-line tool — text tables padded by display width (issue 12).
//
// A terminal shows a CJK character (资, 谈) in two columns, a combining mark (the U+0301 of
// "e\u0301") in none and an accented Latin letter (é, ±) in one; padding by bytes (what
// std::setw does) misaligns every column after such a name. display_width() counts columns
// as a terminal does (East Asian Wide/Fullwidth: 2, combining and zero-width: 0, the rest:
// 1; a byte that is not valid UTF-8 counts 1, as the '?' it is shown as), and `table` pads
// every cell by it. Only the standard library: the unit test includes this header alone.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast_cli {

namespace table_detail {

struct range {
    char32_t lo, hi;
};

/// Zero-width code points: combining marks, zero-width space/joiners, variation selectors.
inline constexpr range zero_width[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
    {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
    {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064}, {0x20D0, 0x20FF}, {0x302A, 0x302D},
    {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF}};

/// East Asian Wide and Fullwidth code points (Unicode 15, EastAsianWidth.txt W and F,
/// merged into blocks): Hangul Jamo, CJK radicals and punctuation, kana, CJK ideographs,
/// Yi, Hangul syllables, compatibility ideographs, fullwidth forms, emoji.
inline constexpr range wide[] = {
    {0x1100, 0x115F},  {0x231A, 0x231B},  {0x2329, 0x232A},  {0x23E9, 0x23EC},  {0x23F0, 0x23F0},
    {0x23F3, 0x23F3},  {0x25FD, 0x25FE},  {0x2614, 0x2615},  {0x2648, 0x2653},  {0x267F, 0x267F},
    {0x2693, 0x2693},  {0x26A1, 0x26A1},  {0x26AA, 0x26AB},  {0x26BD, 0x26BE},  {0x26C4, 0x26C5},
    {0x26CE, 0x26CE},  {0x26D4, 0x26D4},  {0x26EA, 0x26EA},  {0x26F2, 0x26F3},  {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},  {0x26FD, 0x26FD},  {0x2705, 0x2705},  {0x270A, 0x270B},  {0x2728, 0x2728},
    {0x274C, 0x274C},  {0x274E, 0x274E},  {0x2753, 0x2755},  {0x2757, 0x2757},  {0x2795, 0x2797},
    {0x27B0, 0x27B0},  {0x27BF, 0x27BF},  {0x2B1B, 0x2B1C},  {0x2B50, 0x2B50},  {0x2B55, 0x2B55},
    {0x2E80, 0x3029},  {0x302E, 0x303E},  {0x3041, 0x3096},  {0x309B, 0x33FF},  {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF},  {0xA000, 0xA4CF},  {0xA960, 0xA97F},  {0xAC00, 0xD7A3},  {0xF900, 0xFAFF},
    {0xFE10, 0xFE19},  {0xFE30, 0xFE6F},  {0xFF00, 0xFF60},  {0xFFE0, 0xFFE6},  {0x16FE0, 0x18CFF},
    {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A},
    {0x1F200, 0x1F251}, {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF},
    {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};

template <std::size_t N>
constexpr bool in(const range (&rs)[N], char32_t c) {
    return std::any_of(rs, rs + N, [c](const range& r) { return c >= r.lo && c <= r.hi; });
}

/// The next code point of `s` at `at` (advancing `at`); an invalid or truncated sequence is
/// one byte, returned as U+FFFD (width 1).
inline char32_t next_code_point(std::string_view s, std::size_t& at) {
    const auto b0 = static_cast<unsigned char>(s[at]);
    const std::size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || at + n > s.size()) {
        ++at;
        return 0xFFFD;
    }
    char32_t c = n == 1 ? b0 : n == 2 ? (b0 & 0x1Fu) : n == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[at + k]);
        if ((b & 0xC0u) != 0x80u) {
            ++at;
            return 0xFFFD;
        }
        c = (c << 6) | (b & 0x3Fu);
    }
    at += n;
    return c;
}

} // namespace table_detail

/// Columns a terminal shows `c` in: 0 (combining, zero-width, control), 2 (East Asian Wide
/// or Fullwidth) or 1.
constexpr int code_point_width(char32_t c) {
    if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return 0;
    if (table_detail::in(table_detail::zero_width, c)) return 0;
    if (table_detail::in(table_detail::wide, c)) return 2;
    return 1;
}

/// Columns a terminal shows the UTF-8 text `s` in ("资格确认" 8, "Négociation" 11,
/// "De\u0301mo" 4).
inline std::size_t display_width(std::string_view s) {
    std::size_t w = 0;
    for (std::size_t at = 0; at < s.size();) w += static_cast<std::size_t>(code_point_width(table_detail::next_code_point(s, at)));
    return w;
}

/// `s` padded with blanks to `width` display columns, on the right (left-aligned) or on the
/// left (right-aligned); wider text is left whole.
inline std::string pad(std::string_view s, std::size_t width, bool left_aligned) {
    const std::size_t w = display_width(s);
    const std::string fill(w < width ? width - w : 0, ' ');
    std::string out;
    out.reserve(s.size() + fill.size());
    if (!left_aligned) out += fill;
    out += s;
    if (left_aligned) out += fill;
    return out;
}

/// A text table: the first column left-aligned, the others right-aligned (numbers), column
/// widths fitted to the content by display width, a rule under the header; add_rule() adds
/// a rule between rows. Every command prints its tables with it.
class table {
public:
    explicit table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void add_rule() { rows_.emplace_back(); }
    void print(std::ostream& os) const {
        std::vector<std::size_t> w(header_.size(), 0);
        for (std::size_t c = 0; c < header_.size(); ++c) w[c] = display_width(header_[c]);
        for (const auto& r : rows_)
            for (std::size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], display_width(r[c]));
        auto line = [&](const std::vector<std::string>& r) {
            std::string out;
            for (std::size_t c = 0; c < w.size(); ++c) {
                if (c) out += "  ";
                out += pad(c < r.size() ? std::string_view(r[c]) : std::string_view(), w[c], c == 0);
            }
            os << out << '\n';
        };
        std::size_t total = 0;
        for (auto x : w) total += x + 2;
        const std::string rule(total >= 2 ? total - 2 : 0, '-');
        line(header_);
        os << rule << '\n';
        for (const auto& r : rows_) {
            if (r.empty()) os << rule << '\n';
            else line(r);
        }
    }

private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

} // namespace pipecast_cli
