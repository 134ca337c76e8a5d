# CTest cases of `pipecast forecast` and of the quickstart example.
#
# This file has two roles: included from examples/CMakeLists.txt it declares the tests; run
# with `cmake -P` (script mode) it is the checker: it runs the CLI, checks the exit code and,
# for JSON output, parses it with string(JSON) and checks the downstream interface (keys,
# types, and that the lines add up to the totals).

if(CMAKE_SCRIPT_MODE_FILE)
  # --- script mode: -DCLI=<pipecast> -DARGS=<;-list> [-DEXPECT_FAIL=<regex>] [-DDEALS=<n>] ---
  execute_process(COMMAND "${CLI}" ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(DEFINED EXPECT_FAIL)
    # A bad input: a non-zero exit code and a message matching EXPECT_FAIL on stderr.
    if(rc EQUAL 0)
      message(FATAL_ERROR "expected a failure, got exit code 0 and:\n${out}")
    endif()
    if(NOT err MATCHES "${EXPECT_FAIL}")
      message(FATAL_ERROR "exit code ${rc}, but the message does not match '${EXPECT_FAIL}':\n${err}")
    endif()
    message(STATUS "failed as expected (${rc}): ${err}")
    return()
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pipecast forecast failed (${rc}): ${err}")
  endif()

  include("${CMAKE_CURRENT_LIST_DIR}/cli_checks.cmake")
  # A non-negative JSON number -> integer cents (CMake arithmetic is integer only).
  function(cents var)
    string(JSON v GET "${out}" ${ARGN})
    if(v MATCHES "[eE]-")
      set(v 0) # tiny
    endif()
    if(NOT v MATCHES "^([0-9]+)(\\.([0-9]*))?$")
      message(FATAL_ERROR "key ${ARGN}: '${v}' is not a plain non-negative number")
    endif()
    set(units "${CMAKE_MATCH_1}")
    string(SUBSTRING "${CMAKE_MATCH_3}00" 0 2 frac)
    math(EXPR c "${units} * 100 + 1${frac} - 100")
    set(${var} ${c} PARENT_SCOPE)
  endfunction()
  # |a - b| <= tolerance (in cents).
  function(expect_near what a b tolerance)
    math(EXPR d "${a} - ${b}")
    if(d LESS 0)
      math(EXPR d "-${d}")
    endif()
    if(d GREATER tolerance)
      message(FATAL_ERROR "${what}: ${a} vs ${b} cents")
    endif()
  endfunction()

  expect_type("${out}" NUMBER weighted_total)
  expect_type("${out}" NUMBER total_amount)
  expect_type("${out}" NUMBER deals)
  expect_type("${out}" ARRAY by_stage)
  expect_type("${out}" ARRAY by_owner)
  expect_type("${out}" ARRAY by_category)
  string(JSON deals GET "${out}" deals)
  if(DEFINED DEALS AND NOT deals EQUAL DEALS)
    message(FATAL_ERROR "deals = ${deals}, expected ${DEALS}")
  endif()
  cents(weighted weighted_total)
  cents(amount total_amount)
  # The age-aware forecast next to the CRM-style one, and the stalled deals.
  foreach(key age_aware_total expected_stalled stalled_amount likely_stalled likely_stalled_amount stalled_threshold)
    expect_type("${out}" NUMBER ${key})
  endforeach()
  expect_type("${out}" STRING weighted_basis)
  cents(age_aware age_aware_total)

  # by_stage: the documented keys, and the lines add up to the totals (one cent of
  # truncation a line at most).
  string(JSON n LENGTH "${out}" by_stage)
  math(EXPR last "${n} - 1")
  set(sum_w 0)
  set(sum_a 0)
  set(sum_n 0)
  set(sum_aw 0)
  foreach(i RANGE ${last})
    expect_type("${out}" STRING by_stage ${i} stage)
    foreach(key count amount win_probability weighted)
      expect_type("${out}" NUMBER by_stage ${i} ${key})
    endforeach()
    foreach(key age_aware_weighted age_aware_win_probability expected_stalled likely_stalled)
      expect_type("${out}" NUMBER by_stage ${i} ${key})
    endforeach()
    cents(w by_stage ${i} weighted)
    cents(a by_stage ${i} amount)
    cents(aw by_stage ${i} age_aware_weighted)
    math(EXPR sum_aw "${sum_aw} + ${aw}")
    string(JSON c GET "${out}" by_stage ${i} count)
    math(EXPR sum_w "${sum_w} + ${w}")
    math(EXPR sum_a "${sum_a} + ${a}")
    math(EXPR sum_n "${sum_n} + ${c}")
  endforeach()
  expect_near("sum of by_stage weighted vs weighted_total" ${sum_w} ${weighted} ${n})
  expect_near("sum of by_stage amount vs total_amount" ${sum_a} ${amount} ${n})
  expect_near("sum of by_stage age_aware_weighted vs age_aware_total" ${sum_aw} ${age_aware} ${n})
  if(BRANCHED)
    # Old deals count less: the age-aware forecast is below the CRM-style one, and some deals stall.
    if(NOT age_aware LESS weighted)
      message(FATAL_ERROR "age_aware_total (${age_aware} cents) should be below weighted_total (${weighted} cents)")
    endif()
    string(JSON likely GET "${out}" likely_stalled)
    if(likely LESS 1)
      message(FATAL_ERROR "no likely stalled deals on a branched model with old deals")
    endif()
  else()
    # No branched stage: the age-aware forecast is the CRM-style one.
    expect_near("age_aware_total vs weighted_total (classic model)" ${age_aware} ${weighted} 1)
  endif()
  if(NOT sum_n EQUAL deals)
    message(FATAL_ERROR "by_stage counts sum to ${sum_n}, deals = ${deals}")
  endif()

  if(DEFINED HORIZON)
    expect_type("${out}" OBJECT within_horizon)
    expect_type("${out}" NUMBER within_horizon horizon)
    expect_type("${out}" NUMBER within_horizon expected)
    string(JSON h GET "${out}" within_horizon horizon)
    if(NOT h EQUAL HORIZON)
      message(FATAL_ERROR "within_horizon.horizon = ${h}, expected ${HORIZON}")
    endif()
    cents(expected within_horizon expected)
    if(expected GREATER weighted OR expected LESS_EQUAL 0)
      message(FATAL_ERROR "within_horizon.expected (${expected} cents) must be in (0, weighted_total]")
    endif()
  else()
    string(JSON t ERROR_VARIABLE e TYPE "${out}" within_horizon)
    if(NOT e)
      message(FATAL_ERROR "within_horizon present without --horizon")
    endif()
  endif()
  message(STATUS "pipecast forecast JSON: ${deals} deals, ${n} stages, weighted ${weighted} cents, keys ok")
  return()
endif()

# --- declaration mode ----------------------------------------------------------------------
set(_fc_saas "${PROJECT_SOURCE_DIR}/examples/data/saas.json")
set(_fc_saas_deals "${PROJECT_SOURCE_DIR}/examples/data/saas_deals.csv")
set(_fc_b2b6 "${PIPECAST_SHARED_DIR}/scenarios/b2b6.json")
set(_fc_b2b6_deals "${PIPECAST_SHARED_DIR}/scenarios/b2b6_open_deals.csv")
set(_fc_data "${PROJECT_SOURCE_DIR}/tests/data")

# The demo (scripts/demo): the readable tables.
add_test(NAME cli_forecast_demo_text
  COMMAND $<TARGET_FILE:pipecast_cli> forecast --model ${_fc_saas} --deals ${_fc_saas_deals} --horizon 90)
set_tests_properties(cli_forecast_demo_text PROPERTIES PASS_REGULAR_EXPRESSION
  "Pipeline forecast: saas-midmarket\n240 open deals, amounts in EUR\n\nStage +Deals +Amount +P\\(win\\) +Weighted +Won within 90 days\n-+\nProspecting +70 .*\nTotal +240 +7,528,500 .*By owner\nOwner +Deals +Amount +Weighted +Share +Won within 90 days\n.*By forecast category\n.*\\* 2 deals use their own probability override.*renewal equation")
add_test(NAME cli_forecast_b2b6_text
  COMMAND $<TARGET_FILE:pipecast_cli> forecast --model ${_fc_b2b6} --deals ${_fc_b2b6_deals})
set_tests_properties(cli_forecast_b2b6_text PROPERTIES
  PASS_REGULAR_EXPRESSION "Stage +Deals +Amount +P\\(win\\) +Weighted\n-+\nProspecting +3181 .*Total +10000 +167,611,298 ")
set_tests_properties(cli_forecast_b2b6_text PROPERTIES FAIL_REGULAR_EXPRESSION "Won within|By owner")

# JSON: the downstream interface, and the lines adding up to the totals.
add_test(NAME cli_forecast_demo_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DDEALS=240 -DHORIZON=90
          "-DARGS=forecast;--model;${_fc_saas};--deals;${_fc_saas_deals};--horizon;90;--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
add_test(NAME cli_forecast_b2b6_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DDEALS=10000
          "-DARGS=forecast;--model;${_fc_b2b6};--deals;${_fc_b2b6_deals};--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
add_test(NAME cli_forecast_b2b6_horizon_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DDEALS=10000 -DHORIZON=30
          "-DARGS=forecast;--model;${_fc_b2b6};--deals;${_fc_b2b6_deals};--horizon;30;--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
# A branched model (the crm4 truth spec) and its open deals at the log's end.
set(_fc_crm4 "${_fc_data}/crm4_truth_model.json")
set(_fc_crm4_deals "${_fc_data}/crm4_open_deals.csv")
add_test(NAME cli_forecast_crm4_branched_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DDEALS=622 -DHORIZON=90 -DBRANCHED=ON
          "-DARGS=forecast;--model;${_fc_crm4};--deals;${_fc_crm4_deals};--horizon;90;--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")
add_test(NAME cli_forecast_crm4_branched_text
  COMMAND $<TARGET_FILE:pipecast_cli> forecast --model ${_fc_crm4} --deals ${_fc_crm4_deals} --horizon 90)
set_tests_properties(cli_forecast_crm4_branched_text PROPERTIES PASS_REGULAR_EXPRESSION
  "Stage +Deals +Amount +P\\(win\\) +Weighted +P\\(win\\|age\\) +Age-aware +Won within 90 days +Likely stalled\n.*Total +622 .*By owner\nOwner +Deals +Amount +Weighted +Share +Age-aware +Won within 90 days +Likely stalled.*CRM-style figure.*Likely stalled = deals with P\\(stalled")
add_test(NAME cli_forecast_bad_stalled_threshold
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli>
          "-DARGS=forecast;--model;${_fc_crm4};--deals;${_fc_crm4_deals};--stalled-threshold;0"
          "-DEXPECT_FAIL=pipecast: error: .*--stalled-threshold must be in \\(0, 1\\], got 0" -P "${CMAKE_CURRENT_LIST_FILE}")

# Entry dates and --as-of.
add_test(NAME cli_forecast_as_of_json
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DDEALS=3 -DHORIZON=30
          "-DARGS=forecast;--model;${_fc_saas};--deals;${_fc_data}/forecast_entered.csv;--as-of;2026-11-20;--horizon;30;--json"
          -P "${CMAKE_CURRENT_LIST_FILE}")

# Bad inputs: non-zero exit and a message naming the file:line:column, item or value.
foreach(_case
    "bad_amount|${_fc_saas}|${_fc_data}/forecast_bad_amount.csv||forecast_bad_amount.csv:3:3: column 'amount': expected a number"
    "bad_stage|${_fc_saas}|${_fc_data}/forecast_bad_stage.csv||forecast_bad_stage.csv:2:2: .*unknown stage 'Closing'"
    "malformed_model|${_fc_data}/forecast_bad_model.json|${_fc_saas_deals}||forecast_bad_model.json:5:.*malformed JSON"
    "invalid_model|${_fc_data}/forecast_invalid_model.json|${_fc_saas_deals}||forecast_invalid_model.json: /transitions: stage 'Demo': transition probabilities sum to 0.[89]"
    "missing_deals|${_fc_saas}|${_fc_data}/no_such_file.csv||no_such_file.csv: cannot open deals file"
    "missing_model|${_fc_data}/no_such_model.json|${_fc_saas_deals}||no_such_model.json: cannot open model file"
    "entered_without_as_of|${_fc_saas}|${_fc_data}/forecast_entered.csv||forecast_entered.csv:1:4: .*needs an as-of date"
    "bad_as_of|${_fc_saas}|${_fc_data}/forecast_entered.csv|--as-of,2026-13-45|as-of date '2026-13-45' is not ISO-8601"
    "mixed_currency|${_fc_saas}|${_fc_data}/forecast_mixed_currency.csv||mixes currencies 'EUR' and 'USD'"
    "negative_horizon|${_fc_saas}|${_fc_saas_deals}|--horizon=-30|--horizon must be a finite number >= 0.*got -30"
    "saas_deals_on_b2b6|${_fc_b2b6}|${_fc_saas_deals}||saas_deals.csv:[0-9]+:2: column 'stage': unknown stage 'Discovery'")
  string(REPLACE "|" ";" _parts "${_case}")
  list(GET _parts 0 _name)
  list(GET _parts 1 _model)
  list(GET _parts 2 _deals)
  list(GET _parts 3 _extra)
  list(GET _parts 4 _expect)
  string(REPLACE "," ";" _extra "${_extra}")
  set(_args forecast --model ${_model} --deals ${_deals} ${_extra})
  add_test(NAME cli_forecast_bad_${_name}
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> "-DARGS=${_args}"
            "-DEXPECT_FAIL=pipecast: error: .*${_expect}" -P "${CMAKE_CURRENT_LIST_FILE}")
endforeach()

# The README quickstart.
add_test(NAME example_quickstart COMMAND $<TARGET_FILE:example_quickstart>)
set_tests_properties(example_quickstart PROPERTIES
  PASS_REGULAR_EXPRESSION "^Weighted forecast:  [0-9]+ EUR\nWon within 90 days: [0-9]+ \\(simulated [0-9]+ \\+/- [0-9]+\\)\nP10 / P50 / P90:    [0-9]+ / [0-9]+ / [0-9]+\n$")
