# Helpers of the CLI checkers (the tests_<command>.cmake files in `cmake -P` script mode).

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
