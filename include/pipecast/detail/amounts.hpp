// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/amounts.hpp
/// @brief Money amounts as CRM exports write them: `25000`, `"25,000"`, `$1000`,
/// `¥12,000.00`, `EUR 1.234,50` (with a decimal comma), `1 200`; the currency symbol or code
/// is returned beside the value. Negative, NaN and infinite amounts are errors.

#include <pipecast/detail/csv.hpp>
#include <pipecast/error.hpp>

#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

namespace pipecast::detail {

/// A parsed amount and its currency (ISO code when the symbol maps to one: $ USD, € EUR,
/// £ GBP, ¥/￥/元/RMB CNY, ₹ INR, ₩ KRW, ₽ RUB; the code as written otherwise; empty when none).
struct amount_value {
    double value = 0.0;
    std::string currency;
};

namespace amounts_impl {

template <class = void>
[[nodiscard]] std::string currency_code(std::string_view t) {
    struct sym {
        std::string_view text, code;
    };
    static constexpr sym symbols[] = {{"US$", "USD"}, {"$", "USD"},       {"€", "EUR"},       {"£", "GBP"},
                                      {"CN¥", "CNY"}, {"¥", "CNY"},       {"￥", "CNY"},      {"元", "CNY"},
                                      {"RMB", "CNY"}, {"₹", "INR"},       {"₩", "KRW"},       {"₽", "RUB"},
                                      {"R$", "BRL"},  {"A$", "AUD"},      {"C$", "CAD"},      {"CHF", "CHF"}};
    for (const auto& s : symbols)
        if (t == s.text) return std::string(s.code);
    if (t.size() == 3 && std::isupper(static_cast<unsigned char>(t[0])) && std::isupper(static_cast<unsigned char>(t[1])) &&
        std::isupper(static_cast<unsigned char>(t[2])))
        return std::string(t);
    return {};
}

/// Is the byte sequence at s[i] a grouping blank (space, NBSP U+00A0, thin space U+2009,
/// narrow NBSP U+202F)? Returns its length or 0.
template <class = void>
[[nodiscard]] std::size_t group_blank(std::string_view s, std::size_t i) noexcept {
    if (s[i] == ' ' || s[i] == '\'') return 1;
    if (s.substr(i, 2) == "\xC2\xA0") return 2;
    if (s.substr(i, 3) == "\xE2\x80\x89" || s.substr(i, 3) == "\xE2\x80\xAF") return 3;
    return 0;
}

} // namespace amounts_impl

/// The ISO code of a currency symbol or code ("$" -> "USD", "EUR" -> "EUR"); the trimmed text
/// itself when it is neither.
template <class = void>
[[nodiscard]] std::string currency_code_of(std::string_view text) {
    const std::string_view t = trim(text);
    std::string code = amounts_impl::currency_code(t);
    if (code.empty()) {
        const std::string up = [&] {
            std::string u(t);
            for (auto& ch : u) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            return u;
        }();
        code = amounts_impl::currency_code(up);
    }
    return code.empty() ? std::string(t) : code;
}

/// Parses an amount: an optional currency symbol or code before or after the number
/// (blanks allowed between), digits with optional thousands separators (`,` or blanks and
/// `'`; with `decimal_comma`, `.` or blanks) in groups of three, and an optional decimal
/// part. Empty -> nullopt.
/// @throws parse_error naming source:line:column, the column and the value (at most 80
///   characters) for a negative amount (`-5`, `(5)`), NaN or infinity, a misplaced
///   separator (`1,2`: hint --decimal-comma), or anything else that is not an amount.
template <class = void>
[[nodiscard]] std::optional<amount_value> parse_amount(std::string_view text, bool decimal_comma,
                                                       const std::string& source, std::size_t line,
                                                       std::size_t column, std::string_view column_name) {
    using namespace amounts_impl;
    const std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    auto fail = [&](std::string_view what, std::string_view why = {}) {
        return parse_error(source, line, column, message("column '", column_name, "': ", what, ", got '", clip(s), "'",
                                                         why.empty() ? "" : " (", why, why.empty() ? "" : ")"));
    };
    const std::string l = lower(s);
    if (l.find("nan") != std::string::npos || l.find("inf") != std::string::npos)
        throw fail("expected a number", "not NaN or infinity");
    { // a plain number (12, 1.5, 2e3)
        double v = 0.0;
        const char* b = s.data() + (s.front() == '+' ? 1 : 0);
        const auto [ptr, ec] = std::from_chars(b, s.data() + s.size(), v);
        if (ptr == s.data() + s.size()) {
            if (ec != std::errc{} || !std::isfinite(v)) throw fail("expected a number", "not NaN or infinity");
            if (v < 0.0) throw fail("negative amount");
            return amount_value{v, {}};
        }
    }
    // split: prefix (no digits), number, suffix
    std::size_t first = 0;
    while (first < s.size() && !std::isdigit(static_cast<unsigned char>(s[first]))) ++first;
    if (first == s.size()) throw fail("expected a number");
    std::size_t last = s.size();
    while (!std::isdigit(static_cast<unsigned char>(s[last - 1]))) --last;
    std::string_view prefix = trim(s.substr(0, first)), suffix = trim(s.substr(last));
    const std::string_view body = s.substr(first, last - first);
    if (prefix.find('-') != std::string_view::npos || (prefix.find('(') != std::string_view::npos && suffix.find(')') != std::string_view::npos) ||
        suffix == "-")
        throw fail("negative amount");
    if (prefix.starts_with('+')) prefix = trim(prefix.substr(1));
    std::string currency;
    for (auto part : {prefix, suffix}) {
        if (part.empty()) continue;
        const std::string code = currency_code(part);
        if (code.empty()) throw fail("expected a number", message("unknown text '", clip(part), "'"));
        if (!currency.empty() && code != currency) throw fail("expected a number", "two currencies");
        currency = code;
    }
    // the number: digits, grouping separators, one decimal separator
    const char dec = decimal_comma ? ',' : '.';
    std::string digits;
    std::size_t group_len = 0, groups = 0;
    bool seen_decimal = false, grouped = false;
    for (std::size_t i = 0; i < body.size();) {
        const char c = body[i];
        if (std::isdigit(static_cast<unsigned char>(c))) {
            digits += c;
            ++group_len;
            ++i;
            continue;
        }
        if (c == dec && !seen_decimal) {
            if (grouped && group_len != 3) throw fail("expected a number", "misplaced thousands separator");
            seen_decimal = true;
            digits += '.';
            ++i;
            continue;
        }
        std::size_t n = 0;
        if (!seen_decimal) n = (c == (decimal_comma ? '.' : ',')) ? 1 : group_blank(body, i);
        if (n == 0)
            throw fail("expected a number");
        if (groups == 0 ? group_len > 3 : group_len != 3)
            throw fail("expected a number", decimal_comma ? "misplaced thousands separator"
                                                          : "misplaced thousands separator; a decimal comma? give --decimal-comma");
        grouped = true;
        ++groups;
        group_len = 0;
        i += n;
    }
    if (grouped && !seen_decimal && group_len != 3)
        throw fail("expected a number", decimal_comma ? "misplaced thousands separator"
                                                      : "misplaced thousands separator; a decimal comma? give --decimal-comma");
    double v = 0.0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || !std::isfinite(v)) throw fail("expected a number");
    return amount_value{v, currency};
}

} // namespace pipecast::detail
