# CTest cases of `pipecast fit` and `pipecast kpi`.
#
# This file has two roles: included from examples/CMakeLists.txt it declares the tests; run
# with `cmake -P` (script mode) it is the checker of the JSON tests: it runs the CLI, parses
# its output with string(JSON) and checks the keys of the downstream interface.

if(CMAKE_SCRIPT_MODE_FILE)
  # --- script mode: -DCLI=<pipecast> -DMODE=fit|kpi|out|segment -DARGS=<;-list> [-DMODEL=<path> -DDEALS=<csv>]
  execute_process(COMMAND "${CLI}" ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pipecast ${ARGS} failed (${rc}): ${err}")
  endif()
  include("${CMAKE_CURRENT_LIST_DIR}/cli_checks.cmake")
  function(expect_stages json_text)
    expect_type("${json_text}" ARRAY stages)
    string(JSON n LENGTH "${json_text}" stages)
    if(n LESS 1)
      message(FATAL_ERROR "no stages")
    endif()
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      expect_type("${json_text}" STRING stages ${i} stage)
      expect_type("${json_text}" OBJECT stages ${i} transitions)
      expect_type("${json_text}" OBJECT stages ${i} dwell)
      expect_type("${json_text}" STRING stages ${i} dwell dist)
      expect_type("${json_text}" NUMBER stages ${i} dwell mean)
      expect_type("${json_text}" NUMBER stages ${i} exits)
      expect_type("${json_text}" NUMBER stages ${i} censored)
    endforeach()
  endfunction()
  # the branched fit (the default of `fit`): per stage its branches (with STALLED: a stalled one last)
  function(expect_branches json_text)
    set(stall_required OFF)
    if(ARGN STREQUAL "STALLED")
      set(stall_required ON)
    endif()
    string(JSON kind GET "${json_text}" model_kind)
    if(NOT kind STREQUAL "branched")
      message(FATAL_ERROR "model_kind is ${kind}, expected branched")
    endif()
    string(JSON n LENGTH "${json_text}" stages)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      expect_type("${json_text}" ARRAY stages ${i} branches)
      string(JSON nb LENGTH "${json_text}" stages ${i} branches)
      math(EXPR lb "${nb} - 1")
      foreach(k RANGE ${lb})
        expect_type("${json_text}" STRING stages ${i} branches ${k} to)
        expect_type("${json_text}" NUMBER stages ${i} branches ${k} probability)
        expect_type("${json_text}" NUMBER stages ${i} branches ${k} se)
        expect_type("${json_text}" BOOLEAN stages ${i} branches ${k} stalled)
        expect_type("${json_text}" STRING stages ${i} branches ${k} dwell dist)
        expect_type("${json_text}" NUMBER stages ${i} branches ${k} dwell mean)
        expect_type("${json_text}" STRING stages ${i} branches ${k} family)
        expect_type("${json_text}" NUMBER stages ${i} branches ${k} aic)
      endforeach()
      string(JSON stalled GET "${json_text}" stages ${i} branches ${lb} stalled)
      if(stall_required AND NOT stalled)
        message(FATAL_ERROR "stage ${i}: the last branch is not the stalled one")
      endif()
      expect_type("${json_text}" STRING stages ${i} branch_fit status)
    endforeach()
    expect_type("${json_text}" OBJECT deal_size)
    expect_type("${json_text}" NUMBER deal_size mean)
    expect_type("${json_text}" ARRAY arrivals)
    string(JSON od TYPE "${json_text}" overdispersion)
    if(NOT od STREQUAL "OBJECT" AND NOT od STREQUAL "NULL")
      message(FATAL_ERROR "overdispersion is ${od}")
    endif()
  endfunction()

  if(MODE STREQUAL "fit")
    expect_stages("${out}")
    # b2b6: Prospecting is first, goes to Qualification about 40% of the time
    string(JSON first GET "${out}" stages 0 stage)
    if(NOT first STREQUAL "Prospecting")
      message(FATAL_ERROR "first stage is ${first}, expected Prospecting")
    endif()
    expect_type("${out}" NUMBER stages 0 transitions Qualification)
    expect_type("${out}" NUMBER stages 4 transitions Won)
    string(JSON fam GET "${out}" stages 4 dwell dist)
    if(NOT fam STREQUAL "weibull")
      message(FATAL_ERROR "Negotiation dwell is ${fam}, expected weibull")
    endif()
    expect_type("${out}" NUMBER stages 4 dwell shape)
    expect_type("${out}" ARRAY stages 0 fits)
    expect_type("${out}" STRING stages 0 fits 0 status)
    expect_type("${out}" NUMBER stages 0 fits 0 aic)
    expect_branches("${out}")
  elseif(MODE STREQUAL "crm4")
    # crm4: Negotiation wins about 70% after entering, a stalled share near 5%, sizes empirical,
    # overdispersion estimated (truth 0.35)
    expect_stages("${out}")
    expect_branches("${out}" STALLED)
    string(JSON dist GET "${out}" deal_size dist)
    if(NOT dist STREQUAL "empirical")
      message(FATAL_ERROR "deal_size is ${dist}, expected empirical")
    endif()
    expect_type("${out}" NUMBER overdispersion sigma)
    string(JSON won GET "${out}" stages 3 transitions Won)
    if(won LESS 0.6 OR won GREATER 0.75)
      message(FATAL_ERROR "Negotiation -> Won ${won}, expected about 0.67")
    endif()
  elseif(MODE STREQUAL "classic")
    expect_stages("${out}")
    string(JSON kind GET "${out}" model_kind)
    if(NOT kind STREQUAL "classic")
      message(FATAL_ERROR "model_kind is ${kind}, expected classic")
    endif()
    string(JSON has ERROR_VARIABLE e GET "${out}" stages 0 branches)
    if(NOT e)
      message(FATAL_ERROR "a classic fit has no branches")
    endif()
  elseif(MODE STREQUAL "segment")
    expect_stages("${out}")
    expect_type("${out}" ARRAY segments)
    string(JSON n LENGTH "${out}" segments)
    if(NOT n EQUAL 2)
      message(FATAL_ERROR "expected 2 segments (ann, bob), got ${n}")
    endif()
    expect_type("${out}" STRING segments 0 segment)
    string(JSON seg GET "${out}" segments 1)
    expect_stages("${seg}")
  elseif(MODE STREQUAL "out")
    # the written model loads back: another command reads it
    execute_process(COMMAND "${CLI}" forecast --model "${MODEL}" --deals "${DEALS}"
                    RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE err2)
    if(NOT rc2 EQUAL 0)
      message(FATAL_ERROR "the fitted model ${MODEL} does not load back (${rc2}): ${err2}")
    endif()
    file(READ "${MODEL}" model_text)
    expect_type("${model_text}" ARRAY stages)
    expect_type("${model_text}" ARRAY outcomes)
    # a branched model (format 2): stages list their branches instead of a transitions row
    expect_type("${model_text}" NUMBER format_version)
    expect_type("${model_text}" ARRAY stages 0 branches)
    expect_type("${model_text}" NUMBER stages 0 branches 0 probability)
    expect_type("${model_text}" OBJECT stages 0 branches 0 dwell)
  elseif(MODE STREQUAL "kpi")
    expect_type("${out}" NUMBER win_rate)
    expect_type("${out}" OBJECT cycle_length)
    expect_type("${out}" NUMBER cycle_length mean)
    expect_type("${out}" NUMBER cycle_length median)
    expect_type("${out}" NUMBER velocity)
    expect_type("${out}" ARRAY stale)
    # b2b6 has no stalled deals: stale deals (from P(stalled | stage, age)) may be none
    string(JSON n LENGTH "${out}" stale)
    if(n GREATER 0)
      expect_type("${out}" STRING stale 0 id)
      expect_type("${out}" STRING stale 0 stage)
      expect_type("${out}" NUMBER stale 0 age)
    endif()
    expect_type("${out}" OBJECT bottleneck)
    expect_type("${out}" STRING bottleneck loss_stage)
    expect_type("${out}" STRING bottleneck stall_stage)
    expect_type("${out}" ARRAY stages)
  endif()
  return()
endif()

# --- declaring the tests ------------------------------------------------------------------
set(_hist "${PIPECAST_SHARED_DIR}/scenarios/b2b6_history.csv")
set(_open "${PIPECAST_SHARED_DIR}/scenarios/b2b6_open_deals.csv")
set(_data "${PROJECT_SOURCE_DIR}/tests/data")
set(_check "${CMAKE_CURRENT_LIST_FILE}")

add_test(NAME cli_fit_table COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_hist} --as-of 730)
set_tests_properties(cli_fit_table PROPERTIES
  PASS_REGULAR_EXPRESSION "Negotiation +2883 +2780 +103 +weibull.*Prospecting +Qualification +11527")

add_test(NAME cli_fit_json COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DMODE=fit
  "-DARGS=fit;--history;${_hist};--as-of;730;--json" -P ${_check})

add_test(NAME cli_fit_out_loads_back COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DMODE=out
  "-DARGS=fit;--history;${_hist};--as-of;730;--out;${CMAKE_CURRENT_BINARY_DIR}/cli_fit_b2b6.json"
  -DMODEL=${CMAKE_CURRENT_BINARY_DIR}/cli_fit_b2b6.json -DDEALS=${_open} -P ${_check})

set(_crm4 "${PIPECAST_SHARED_DIR}/scenarios/crm4_history.csv")
add_test(NAME cli_fit_crm4_branched_json COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DMODE=crm4
  "-DARGS=fit;--history;${_crm4};--as-of;2025-12-31T00:00:00Z;--json" -P ${_check})
add_test(NAME cli_fit_crm4_table COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_crm4} --as-of 2025-12-31T00:00:00Z)
set_tests_properties(cli_fit_crm4_table PROPERTIES
  PASS_REGULAR_EXPRESSION "branch to.*Negotiation +Proposal.*Won.*Lost \\(stalled\\).*deal size: empirical.*overdispersion: sigma")
# Artefact cleaning turns itself on when the log shows the artefacts (crm4_messy: sub-minute
# visits and same-day wins), stays off on a clean log (crm4) and when asked (off).
set(_messy "${PIPECAST_SHARED_DIR}/scenarios/crm4_messy_history.csv")
add_test(NAME cli_fit_messy_auto_cleaning COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_messy} --stall off)
set_tests_properties(cli_fit_messy_auto_cleaning PROPERTIES PASS_REGULAR_EXPRESSION
  "--min-dwell 60s \\(auto: [0-9]+ of [0-9]+ finished visits shorter\\): [1-9][0-9]* click-through visit\\(s\\) merged.*--drop-after-the-fact 1d \\(auto: [0-9]+ of [0-9]+ wins within it\\): [1-9][0-9]* deal\\(s\\) booked won")
add_test(NAME cli_fit_messy_cleaning_off COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_messy} --stall off
  --min-dwell off --drop-after-the-fact off)
set_tests_properties(cli_fit_messy_cleaning_off PROPERTIES PASS_REGULAR_EXPRESSION "branch to" FAIL_REGULAR_EXPRESSION "merged|after the fact")
add_test(NAME cli_fit_crm4_no_cleaning COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_crm4} --stall off)
set_tests_properties(cli_fit_crm4_no_cleaning PROPERTIES PASS_REGULAR_EXPRESSION "branch to" FAIL_REGULAR_EXPRESSION "merged|after the fact")
add_test(NAME cli_fit_classic_window_json COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DMODE=classic
  "-DARGS=fit;--history;${_hist};--as-of;730;--model-kind;classic;--window;52w;--half-life;90d;--json" -P ${_check})
add_test(NAME cli_fit_bad_window COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_hist} --window 3x)
set_tests_properties(cli_fit_bad_window PROPERTIES PASS_REGULAR_EXPRESSION "--window: bad duration '3x'")

add_test(NAME cli_fit_segment_json COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DMODE=segment
  "-DARGS=fit;--history;${_data}/history_segments.csv;--as-of;100;--segment;owner;--json" -P ${_check})

add_test(NAME cli_fit_stage_changes COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_data}/history_changes.csv --as-of 100)
set_tests_properties(cli_fit_stage_changes PROPERTIES PASS_REGULAR_EXPRESSION "89 visits of 60 deals")

add_test(NAME cli_fit_bad_history_fails COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_data}/history_bad.csv)
set_tests_properties(cli_fit_bad_history_fails PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli_fit_bad_history_line COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_data}/history_bad.csv)
set_tests_properties(cli_fit_bad_history_line PROPERTIES
  PASS_REGULAR_EXPRESSION "history_bad\\.csv:4:4: column 'exited': the visit ends \\(2\\) before it starts \\(5\\)")

add_test(NAME cli_fit_skip_bad_rows COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_data}/history_bad.csv --skip-bad-rows)
set_tests_properties(cli_fit_skip_bad_rows PROPERTIES
  PASS_REGULAR_EXPRESSION "skipped 1 bad row.*history_bad\\.csv:4:4.*3 visits of 2 deals")

add_test(NAME cli_kpi_json COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DMODE=kpi
  "-DARGS=kpi;--history;${_hist};--as-of;730;--deals;${_open};--json" -P ${_check})

add_test(NAME cli_kpi_table COMMAND $<TARGET_FILE:pipecast_cli> kpi --history ${_hist} --as-of 730)
set_tests_properties(cli_kpi_table PROPERTIES
  PASS_REGULAR_EXPRESSION "win rate by count +8\\.1%.*sales velocity.*bottleneck: most losses +Prospecting")

add_test(NAME cli_kpi_bad_history COMMAND $<TARGET_FILE:pipecast_cli> kpi --history ${_data}/history_bad.csv)
set_tests_properties(cli_kpi_bad_history PROPERTIES PASS_REGULAR_EXPRESSION "history_bad\\.csv:4:4")

add_test(NAME cli_fit_size_bands COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_data}/history_segments.csv --as-of 100
  --size-bands 2000,10000)
set_tests_properties(cli_fit_size_bands PROPERTIES PASS_REGULAR_EXPRESSION "=== size_band = <2000 ===.*=== size_band = 2000-10000 ===")
