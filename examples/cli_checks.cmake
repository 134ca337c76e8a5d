# Helpers of the CLI checkers (the tests_<command>.cmake files in `cmake -P` script mode).

# run_cli(<out var> <arg>...): runs ${CLI} with the arguments; fails, with its stderr, unless
# it exits 0; its stdout goes to the variable.
function(run_cli out_var)
  execute_process(COMMAND "${CLI}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pipecast ${ARGN} failed (${rc}): ${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# expect_type(<json text> <ARRAY|OBJECT|NUMBER|STRING|BOOLEAN|NULL> <key or index>...):
# fails unless the JSON value at that path exists and has that type.
function(expect_type json_text type)
  string(JSON t ERROR_VARIABLE e TYPE "${json_text}" ${ARGN})
  if(e)
    message(FATAL_ERROR "missing key ${ARGN}: ${e}")
  endif()
  if(NOT t STREQUAL type)
    message(FATAL_ERROR "key ${ARGN} is ${t}, expected ${type}")
  endif()
endfunction()

# run_and_check(): runs "${CLI}" ${ARGS} into rc, out and err. With MODE error it fails unless the
# exit status is 1 and stderr matches EXPECT, and then ends the calling script (a macro: its
# return() is the caller's); otherwise it fails unless the run succeeded.
macro(run_and_check)
  execute_process(COMMAND "${CLI}" ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(MODE STREQUAL "error")
    if(NOT rc EQUAL 1)
      message(FATAL_ERROR "pipecast ${ARGS}: exit status ${rc}, expected 1 (stderr: ${err})")
    endif()
    if(NOT err MATCHES "${EXPECT}")
      message(FATAL_ERROR "pipecast ${ARGS}: the message\n  ${err}\ndoes not match\n  ${EXPECT}")
    endif()
    return()
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pipecast ${ARGS} failed (${rc}): ${err}")
  endif()
endmacro()
