# CTest cases of `pipecast funnel`.
#
# This file has two roles: included from examples/CMakeLists.txt it declares the tests; run
# with `cmake -P` (script mode) it is the checker of the JSON tests: it runs the CLI, parses
# its output with string(JSON) and checks the keys and types of the downstream interface.

if(CMAKE_SCRIPT_MODE_FILE)
  # --- script mode: -DCLI=<pipecast> -DARGS=<;-list> -DWITH_BOOK=ON|OFF ---------------------
  execute_process(COMMAND "${CLI}" ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pipecast funnel failed (${rc}): ${err}")
  endif()
  include("${CMAKE_CURRENT_LIST_DIR}/cli_checks.cmake")
  expect_type("${out}" NUMBER deals_to_win)
  expect_type("${out}" OBJECT coverage)
  expect_type("${out}" NUMBER coverage steady_state)
  expect_type("${out}" OBJECT velocity)
  expect_type("${out}" NUMBER velocity required)
  expect_type("${out}" STRING velocity definition)
  expect_type("${out}" NUMBER velocity ideal cycle_length)
  expect_type("${out}" ARRAY levers)
  expect_type("${out}" ARRAY stages)
  string(JSON n LENGTH "${out}" stages)
  if(n LESS 1)
    message(FATAL_ERROR "no stages")
  endif()
  math(EXPR last "${n} - 1")
  foreach(i RANGE ${last})
    expect_type("${out}" STRING stages ${i} stage)
    foreach(key win_probability entering_per_period in_stage in_stage_value stalled_share)
      expect_type("${out}" NUMBER stages ${i} ${key})
    endforeach()
    if(BRANCHED)
      expect_type("${out}" BOOLEAN stages ${i} branched)
    endif()
    if(WITH_BOOK)
      expect_type("${out}" NUMBER stages ${i} actual_in_stage)
      expect_type("${out}" NUMBER stages ${i} gap)
    endif()
  endforeach()
  if(WITH_BOOK)
    expect_type("${out}" OBJECT book)
    expect_type("${out}" NUMBER book weighted_forecast)
    expect_type("${out}" NUMBER coverage actual)
  endif()
  # Deals to win must equal quota / deal size when both are given.
  if(EXPECT_DEALS)
    string(JSON d GET "${out}" deals_to_win)
    if(NOT d EQUAL EXPECT_DEALS)
      message(FATAL_ERROR "deals_to_win = ${d}, expected ${EXPECT_DEALS}")
    endif()
  endif()
  message(STATUS "pipecast funnel JSON: ${n} stages, keys ok")
  return()
endif()

# --- declaration mode ----------------------------------------------------------------------
set(_funnel_saas "${PROJECT_SOURCE_DIR}/examples/data/saas.json")
set(_funnel_saas_deals "${PROJECT_SOURCE_DIR}/examples/data/saas_deals.csv")
set(_funnel_b2b6 "${PIPECAST_SHARED_DIR}/scenarios/b2b6.json")

# JSON interface: deals_to_win, stages[{stage, win_probability, entering_per_period, in_stage,
# in_stage_value}], coverage, velocity; with --deals also actual_in_stage and gap.
add_test(NAME cli_funnel_saas_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DWITH_BOOK=OFF
          "-DARGS=funnel;--model;${_funnel_saas};--quota;1500000;--period;90;--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
add_test(NAME cli_funnel_saas_book_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DWITH_BOOK=ON
          "-DARGS=funnel;--model;${_funnel_saas};--quota;1500000;--period;90;--elapsed;30;--won;200000;--deals;${_funnel_saas_deals};--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
add_test(NAME cli_funnel_b2b6_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DWITH_BOOK=OFF -DEXPECT_DEALS=30
          "-DARGS=funnel;--model;${_funnel_b2b6};--quota;300000;--period;30;--deal-size;10000;--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")

# A branched model (the crm4 truth spec, stalled shares) with its open deals at the log's end.
set(_funnel_crm4 "${PROJECT_SOURCE_DIR}/tests/data/crm4_truth_model.json")
set(_funnel_crm4_deals "${PROJECT_SOURCE_DIR}/tests/data/crm4_open_deals.csv")
add_test(NAME cli_funnel_crm4_branched_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DWITH_BOOK=ON -DBRANCHED=ON
          "-DARGS=funnel;--model;${_funnel_crm4};--quota;600000;--period;90;--deal-size;6771;--deals;${_funnel_crm4_deals};--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
add_test(NAME cli_funnel_crm4_branched_text
  COMMAND $<TARGET_FILE:pipecast_cli> funnel --model ${_funnel_crm4} --quota 600000 --period 90 --deal-size 6771
          --deals ${_funnel_crm4_deals})
set_tests_properties(cli_funnel_crm4_branched_text PROPERTIES
  PASS_REGULAR_EXPRESSION "Negotiation.*weighted forecast +[0-9,]+ \\(age-aware: P\\(win \\| stage, time in stage\\)\\).*Sales velocity = open deals x P\\(win \\| entry\\) x deal size / time to close")

# Text tables.
add_test(NAME cli_funnel_saas_text
  COMMAND $<TARGET_FILE:pipecast_cli> funnel --model ${_funnel_saas} --quota 1500000 --period 90
          --deals ${_funnel_saas_deals})
set_tests_properties(cli_funnel_saas_text PROPERTIES
  PASS_REGULAR_EXPRESSION "Steady state \\(by sales cycle\\)[^\n]*\n.*Prospecting.*This period \\(by quota\\).*Coverage: ideal pipeline.*Actual book: 240 deals.*Cheapest lever")
add_test(NAME cli_funnel_b2b6_text
  COMMAND $<TARGET_FILE:pipecast_cli> funnel --model ${_funnel_b2b6} --quota 1000000 --period 30 --entry Qualification)
set_tests_properties(cli_funnel_b2b6_text PROPERTIES
  PASS_REGULAR_EXPRESSION "new deals into Qualification per period")

# Bad inputs fail with a message naming the parameter.
foreach(_case
    "quota_zero|--quota,0,--period,90|quota must be positive"
    "quota_negative|--quota=-5,--period,90|quota must be positive"
    "period_zero|--quota,1000,--period,0|period must be positive"
    "period_negative|--quota,1000,--period=-30|period must be positive"
    "deal_size_zero|--quota,1000,--period,90,--deal-size,0|deal_size must be positive"
    "deal_size_negative|--quota,1000,--period,90,--deal-size=-1|deal_size must be positive"
    "elapsed_past_period|--quota,1000,--period,90,--elapsed,90|elapsed must be in"
    "quantile_one|--quota,1000,--period,90,--quantile,1|quantile must be in"
    "unknown_entry|--quota,1000,--period,90,--entry,Nowhere|unknown stage 'Nowhere'"
    "outcome_entry|--quota,1000,--period,90,--entry,Won|is an outcome")
  string(REPLACE "|" ";" _parts "${_case}")
  list(GET _parts 0 _name)
  list(GET _parts 1 _args)
  list(GET _parts 2 _expect)
  string(REPLACE "," ";" _args "${_args}")
  add_test(NAME cli_funnel_bad_${_name}
    COMMAND $<TARGET_FILE:pipecast_cli> funnel --model ${_funnel_saas} ${_args})
  set_tests_properties(cli_funnel_bad_${_name} PROPERTIES PASS_REGULAR_EXPRESSION "pipecast: error: .*${_expect}")
endforeach()
add_test(NAME cli_funnel_bad_model_file
  COMMAND $<TARGET_FILE:pipecast_cli> funnel --model ${PROJECT_SOURCE_DIR}/no_such_model.json --quota 1 --period 1)
set_tests_properties(cli_funnel_bad_model_file PROPERTIES PASS_REGULAR_EXPRESSION "cannot open model file")
# An error must also exit non-zero.
add_test(NAME cli_funnel_bad_quota_exit_code
  COMMAND $<TARGET_FILE:pipecast_cli> funnel --model ${_funnel_saas} --quota 0 --period 90)
set_tests_properties(cli_funnel_bad_quota_exit_code PROPERTIES WILL_FAIL TRUE)
