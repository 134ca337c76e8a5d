# CTest script (version_header_matches_cmake): the macros of include/pipecast/version.hpp
# must equal the project() version of the top-level CMakeLists.txt.
#   cmake -DHEADER=<version.hpp> -DEXPECTED=<major.minor.patch> -P check_version.cmake
file(READ "${HEADER}" text)
set(found "")
foreach(part MAJOR MINOR PATCH)
  if(NOT text MATCHES "#define PIPECAST_VERSION_${part} ([0-9]+)")
    message(FATAL_ERROR "${HEADER}: no '#define PIPECAST_VERSION_${part} <number>'")
  endif()
  list(APPEND found "${CMAKE_MATCH_1}")
endforeach()
list(JOIN found "." found)
if(NOT text MATCHES "#define PIPECAST_VERSION_STRING \"([^\"]*)\"")
  message(FATAL_ERROR "${HEADER}: no '#define PIPECAST_VERSION_STRING \"...\"'")
endif()
set(string "${CMAKE_MATCH_1}")
if(NOT found STREQUAL EXPECTED OR NOT string STREQUAL EXPECTED)
  message(FATAL_ERROR "version.hpp says ${found} (string \"${string}\"), CMakeLists.txt's project() says ${EXPECTED}: "
                      "update include/pipecast/version.hpp and CHANGELOG.md together with project(VERSION)")
endif()
message(STATUS "version.hpp ${found} = project() ${EXPECTED}")
