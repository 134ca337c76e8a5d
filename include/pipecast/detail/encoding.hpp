// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/encoding.hpp
/// @brief Reading a whole input file safely (not a directory, not missing), writing one all
/// or nothing (a temporary file renamed over the target), and turning input bytes into UTF-8
/// from the encodings spreadsheets save (GB18030/GBK, Windows-1252, Latin-1, UTF-16) with
/// the C library's iconv: no new dependency.

#include <pipecast/detail/csv.hpp>
#include <pipecast/error.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iconv.h>
#include <unistd.h>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>

namespace pipecast::detail {

/// Reads a file's bytes. @throws error naming the path if it is missing, a directory or
/// unreadable; `what` names the kind of file in the message ("history file").
template <class = void>
[[nodiscard]] std::string read_file_bytes(const std::string& path, std::string_view what) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw error(message(path, ": is a directory, expected a ", what));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(message(path, ": cannot open ", what));
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw error(message(path, ": cannot read ", what));
    return bytes;
}

/// Writes `bytes` to the file `path` all or nothing: into a new temporary file in the same
/// directory (`<path>.tmp-<pid>-<n>`, created exclusively, mode 0666 less the umask), flushed
/// to disk, then renamed over `path` (atomic on POSIX file systems). On any failure the
/// temporary file is removed and `path` keeps its old content, or stays absent. A symbolic
/// link at `path` is replaced by the file. `what` names the kind of file in messages.
/// @throws error naming the path and the system's reason (missing directory, permission,
///   disk full, `path` a directory).
template <class = void>
void write_file_atomic(const std::string& path, std::string_view bytes, std::string_view what) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw error(message(path, ": is a directory, cannot write the ", what, " there"));
    static std::atomic<unsigned> counter{0};
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
        tmp = message(path, ".tmp-", ::getpid(), "-", counter.fetch_add(1));
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) throw error(message(path, ": cannot write the ", what, ": ", std::strerror(errno)));
    auto fail = [&](const char* step, int err) {
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        return error(message(path, ": cannot write the ", what, " (", step, "): ", std::strerror(err)));
    };
    for (std::size_t done = 0; done < bytes.size();) {
        const ::ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw fail("write", errno);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) throw fail("fsync", errno);
    const int fd_closed = fd;
    fd = -1;
    if (::close(fd_closed) != 0) throw fail("close", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw fail("rename", errno);
}

/// The canonical name of an encoding for iconv, or empty if it is not supported:
/// utf-8, gb18030, gbk (read as GB18030, a superset), windows-1252 (cp1252), latin1
/// (iso-8859-1), utf-16 (needs a byte-order mark), utf-16le, utf-16be.
template <class = void>
[[nodiscard]] std::string iconv_name(std::string_view encoding) {
    std::string e;
    for (char c : lower(trim(encoding)))
        if (c != '-' && c != '_') e += c;
    if (e == "utf8") return "UTF-8";
    if (e == "gb18030" || e == "gbk" || e == "gb2312" || e == "cp936") return "GB18030";
    if (e == "windows1252" || e == "cp1252") return "WINDOWS-1252";
    if (e == "latin1" || e == "iso88591") return "ISO-8859-1";
    if (e == "utf16") return "UTF-16";
    if (e == "utf16le") return "UTF-16LE";
    if (e == "utf16be") return "UTF-16BE";
    return {};
}

/// Line (1-based) and byte column (1-based) of byte `at` of `text`; CR, LF and CRLF end lines.
template <class = void>
void line_and_column(std::string_view text, std::size_t at, std::size_t& line, std::size_t& column) {
    line = 1;
    std::size_t start = 0;
    for (std::size_t i = 0; i < at && i < text.size(); ++i) {
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n'))) {
            ++line;
            start = i + 1;
        }
    }
    column = at - start + 1;
}

/// Converts `bytes` in `encoding` to UTF-8 (UTF-8 input is only checked).
/// @throws argument_error for an unsupported encoding; parse_error naming source, line and
///   byte column for bytes that are invalid in the encoding.
template <class = void>
[[nodiscard]] std::string to_utf8(std::string bytes, std::string_view encoding, const std::string& source) {
    const std::string name = iconv_name(encoding);
    if (name.empty())
        throw argument_error(message("encoding '", clip(encoding),
                                     "' is not supported (utf-8, gb18030, gbk, windows-1252, latin1, utf-16)"));
    auto bad_at = [&](std::size_t at, std::string_view what) {
        std::size_t line = 0, column = 0;
        line_and_column(bytes, at, line, column);
        return parse_error(source, line, column, message("invalid ", what, " (byte 0x", std::string(1, "0123456789ABCDEF"[(static_cast<unsigned char>(bytes[at]) >> 4)]),
                                                         std::string(1, "0123456789ABCDEF"[static_cast<unsigned char>(bytes[at]) & 15]),
                                                         " at byte ", column, " of the line)"));
    };
    if (name == "UTF-8") {
        const std::size_t ok = utf8_valid_prefix(bytes);
        if (ok != bytes.size()) throw bad_at(ok, "UTF-8: give the file's encoding, e.g. --encoding gb18030");
        return bytes;
    }
    iconv_t cd = iconv_open("UTF-8", name.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) // NOLINT(performance-no-int-to-ptr): iconv_open's error value
        throw argument_error(message("encoding '", encoding, "': iconv cannot convert it on this system"));
    std::string out;
    out.resize(bytes.size() * 2 + 16);
    char* in_ptr = bytes.data();
    std::size_t in_left = bytes.size();
    char* out_ptr = out.data();
    std::size_t out_left = out.size();
    while (in_left > 0) {
        const std::size_t r = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left);
        if (r != static_cast<std::size_t>(-1)) break;
        if (errno == E2BIG) {
            const std::size_t used = static_cast<std::size_t>(out_ptr - out.data());
            out.resize(out.size() * 2);
            out_ptr = out.data() + used;
            out_left = out.size() - used;
            continue;
        }
        const std::size_t at = static_cast<std::size_t>(in_ptr - bytes.data());
        iconv_close(cd);
        throw bad_at(at, message(encoding, errno == EINVAL ? " (truncated character at the end of the file)" : ""));
    }
    iconv_close(cd);
    out.resize(static_cast<std::size_t>(out_ptr - out.data()));
    return out;
}

} // namespace pipecast::detail
