# Checks that including the umbrella header compiles none of the library's heavy code
# (docs/design.md, "Compiled where called"). Run by CTest: cmake -DNM=... -DUMBRELLA=<object>
# -DCONTROL=<object> -P lazy_headers.cmake. Both objects are compiled with GCC at -O0 with
# -fkeep-inline-functions, so every function the unit instantiated is in its symbol table,
# called or not. The umbrella unit (lazy/umbrella.cpp) calls nothing; the control unit
# (lazy/control.cpp) calls analyse, cdf, weighted_forecast and simulate, so each pattern
# must match there: a pattern that matched nowhere would check nothing.
set(patterns
  "Eigen::SparseLU<[^\n]*>::factorize"
  "Eigen::PartialPivLU<[^\n]*>::compute"
  "boost::math::cdf<"
  "pipecast::analyse<void>"
  "pipecast::weighted_forecast<void>"
  "pipecast::detail::basic_sim_engine<void>::basic_sim_engine")
function(symbols object out)
  execute_process(COMMAND "${NM}" -C "${object}" RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} -C ${object} failed (${rc}): ${err}")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()
symbols("${UMBRELLA}" umbrella)
symbols("${CONTROL}" control)
set(failed "")
foreach(p IN LISTS patterns)
  if(NOT control MATCHES "${p}")
    string(APPEND failed "\n  the control unit has no symbol matching '${p}': the check would not see it")
  endif()
  if(umbrella MATCHES "${p}")
    string(APPEND failed "\n  the umbrella unit compiles '${CMAKE_MATCH_0}': a non-template function calls it")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "lazy headers:${failed}")
endif()
list(LENGTH patterns n)
message(STATUS "lazy headers: none of ${n} patterns in the umbrella unit, all in the control unit")
