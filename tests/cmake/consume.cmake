# Builds tests/cmake/consumer against pipecast, either installed (MODE=find_package) or
# through add_subdirectory (MODE=add_subdirectory). Run by CTest: cmake -P consume.cmake.
set(consumer "${SOURCE_DIR}/tests/cmake/consumer")
set(root "${WORK_DIR}/${MODE}")
file(REMOVE_RECURSE "${root}")
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${root}/pipecast-build" -DPIPECAST_BUILD_TESTS=OFF
      -DPIPECAST_BUILD_EXAMPLES=OFF -DPIPECAST_INSTALL=ON)
  run(${CMAKE_COMMAND} --install "${root}/pipecast-build" --prefix "${root}/prefix")
  # The installed target carries Threads::Threads (simulate() uses std::jthread): a consumer
  # does not add it itself.
  file(GLOB_RECURSE targets "${root}/prefix/*/pipecastTargets.cmake")
  file(READ "${targets}" text)
  string(FIND "${text}" "Threads::Threads" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${targets}: pipecast::pipecast does not link Threads::Threads")
  endif()
  run(${CMAKE_COMMAND} -S "${consumer}" -B "${root}/consumer-build" "-DCMAKE_PREFIX_PATH=${root}/prefix")
else()
  run(${CMAKE_COMMAND} -S "${consumer}" -B "${root}/consumer-build" -DCONSUME_MODE=add_subdirectory
      "-DPIPECAST_SOURCE=${SOURCE_DIR}")
endif()
run(${CMAKE_COMMAND} --build "${root}/consumer-build")
run("${root}/consumer-build/consumer")
