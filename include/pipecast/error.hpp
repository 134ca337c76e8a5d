// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file error.hpp
/// @brief The exception hierarchy and the internal assertion macro.
///
/// Three tiers, as in the house style:
///  1. bad user data or parameters throw an exception derived from pipecast::error whose
///     message names the function or source, the item and the value;
///  2. numerical trouble in an iterative method is a status in the result;
///  3. programmer bugs are PIPECAST_ASSERT, compiled out with NDEBUG.

#include <cassert>
#include <charconv>
#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#ifndef PIPECAST_ASSERT
#define PIPECAST_ASSERT(cond) assert(cond)
#endif

namespace pipecast {

/// Base of every exception the library throws on bad input.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A model (stage graph, dwell distribution, deal-size or arrival description) is invalid.
class model_error : public error {
public:
    using error::error;
};

/// A function argument is out of its domain (negative horizon, zero quota, ...).
class argument_error : public error {
public:
    using error::error;
};

/// Input text (CSV, JSON) could not be read. Carries the location.
class parse_error : public error {
public:
    /// @param source file name (or "<stream>"), @param line 1-based line (0 = unknown),
    /// @param column 1-based column or field name context (0 = unknown).
    parse_error(std::string source, std::size_t line, std::size_t column, const std::string& what)
        : error(format(source, line, column, what)), source_(std::move(source)), line_(line),
          column_(column) {}

    [[nodiscard]] const std::string& source() const noexcept { return source_; }
    [[nodiscard]] std::size_t line() const noexcept { return line_; }
    [[nodiscard]] std::size_t column() const noexcept { return column_; }

private:
    static std::string format(const std::string& source, std::size_t line, std::size_t column,
                              const std::string& what) {
        std::ostringstream os;
        os << source;
        if (line > 0) os << ':' << line;
        if (column > 0) os << ':' << column;
        os << ": " << what;
        return os.str();
    }

    std::string source_;
    std::size_t line_ = 0;
    std::size_t column_ = 0;
};

namespace detail {

/// Writes one part of a message; floating-point values in their shortest round-trip form
/// (0.3, not 0.29999999999999999).
template <class T>
void message_part(std::ostringstream& os, const T& part) {
    if constexpr (std::is_floating_point_v<T>) {
        char buf[64];
        const auto res = std::to_chars(buf, buf + sizeof buf, part);
        os << std::string_view(buf, static_cast<std::size_t>(res.ptr - buf));
    } else {
        os << part;
    }
}

/// Builds a message from streamable parts: `message("stage '", name, "': bad")`.
template <class... Parts>
[[nodiscard]] std::string message(const Parts&... parts) {
    std::ostringstream os;
    (message_part(os, parts), ...);
    return os.str();
}

} // namespace detail
} // namespace pipecast
