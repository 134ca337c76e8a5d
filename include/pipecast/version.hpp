// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file version.hpp
/// @brief The library's version, for consumers that check it at compile time.
///
/// Kept equal to the `project(pipecast VERSION ...)` line of the top-level CMakeLists.txt
/// (and so to `pipecastConfigVersion.cmake` and `pipecast --version`): the CTest case
/// `version_header_matches_cmake` fails when they differ.
///
/// @code
/// #include <pipecast/version.hpp>
/// static_assert(PIPECAST_VERSION_NUMBER >= 100, "pipecast 0.1.0 or later");
/// @endcode

/// Major version: incremented on incompatible API changes.
#define PIPECAST_VERSION_MAJOR 0
/// Minor version: incremented when functionality is added compatibly.
#define PIPECAST_VERSION_MINOR 1
/// Patch version: incremented for compatible fixes.
#define PIPECAST_VERSION_PATCH 0
/// The version as "MAJOR.MINOR.PATCH".
#define PIPECAST_VERSION_STRING "0.1.0"
/// The version as one comparable integer: MAJOR * 10000 + MINOR * 100 + PATCH.
#define PIPECAST_VERSION_NUMBER (PIPECAST_VERSION_MAJOR * 10000 + PIPECAST_VERSION_MINOR * 100 + PIPECAST_VERSION_PATCH)

namespace pipecast {

/// The library's version as values (the same as the macros).
struct version_info {
    int major;   ///< PIPECAST_VERSION_MAJOR
    int minor;   ///< PIPECAST_VERSION_MINOR
    int patch;   ///< PIPECAST_VERSION_PATCH
    const char* string; ///< PIPECAST_VERSION_STRING
};

/// The version of the headers this translation unit was compiled with.
inline constexpr version_info library_version{PIPECAST_VERSION_MAJOR, PIPECAST_VERSION_MINOR, PIPECAST_VERSION_PATCH,
                                              PIPECAST_VERSION_STRING};

} // namespace pipecast
