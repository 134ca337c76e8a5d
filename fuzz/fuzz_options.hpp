// pipecast fuzz targets: the options byte shared by the CSV targets.
//
// The first byte of an input picks the reader's options, the rest is the file's bytes, so one
// target covers the option combinations of the CLI (--format, --encoding, --decimal-comma,
// --date-format, --as-of, --fx) and libFuzzer mutates them like the text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pipecast_fuzz {

/// The options byte and the file's bytes of an input.
struct input {
    std::uint8_t options = 0;
    std::string bytes;
};

inline input split(const std::uint8_t* data, std::size_t size) {
    input in;
    if (size == 0) return in;
    in.options = data[0];
    in.bytes.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
    return in;
}

/// Bits 6-7 of the options byte: the file's encoding.
inline std::string_view encoding_of(std::uint8_t options) {
    static constexpr std::string_view names[] = {"utf-8", "gb18030", "windows-1252", "utf-16"};
    return names[(options >> 6) & 3u];
}

} // namespace pipecast_fuzz
