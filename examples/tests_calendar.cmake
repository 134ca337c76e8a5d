# CTest cases of the calendar forecast and the per-deal output of `pipecast forecast` and
# `pipecast simulate` (--period, --fiscal-year-start, --buckets, --quotas, --history,
# --per-deal; calendar.hpp), and of `pipecast report --quotas`.
#
# Included from examples/CMakeLists.txt it declares the tests; run with `cmake -P` (script
# mode) it is the checker. MODE=calendar runs the CLI with --json and checks the `calendar`
# object: the number of periods, their labels against dates worked by hand, the roll-up's
# order (Closed <= Commit <= Best case <= Pipeline <= Closed + expected), Closed and an
# owner's Closed against sums of the history read with awk, the owner's quota; the per-deal
# CSV's header and rows; SAME_AS runs a second command and checks that the first period's
# expected value equals its within_horizon.expected (forecast --horizon to the period's end).
# MODE=report checks a report's page for the calendar section; MODE=error checks that bad
# input fails with exit status 1 and a message.

if(CMAKE_SCRIPT_MODE_FILE)
  cmake_policy(VERSION 3.20)
  include("${CMAKE_CURRENT_LIST_DIR}/cli_checks.cmake")
  # expect_near(<what> <value> <whole number>): fails unless |value - number| < 2 (money).
  function(expect_near what value target)
    math(EXPR lo "${target} - 1")
    math(EXPR hi "${target} + 1")
    math(EXPR lo "${lo} - 1")
    math(EXPR hi "${hi} + 1")
    if(NOT (value GREATER lo AND value LESS hi))
      message(FATAL_ERROR "${what} ${value}, expected ${target} (within 1)")
    endif()
  endfunction()
  run_and_check() # MODE error: checked and returned
  if(MODE STREQUAL "report")
    file(READ "${OUT}/report.html" html)
    foreach(needle ${NEEDLES})
      if(NOT html MATCHES "${needle}")
        message(FATAL_ERROR "report.html lacks '${needle}'")
      endif()
    endforeach()
    return()
  endif()
  if(MODE STREQUAL "close")
    # The reps' close dates: the extra per-deal columns, a past date flagged with P = 0, and a
    # future one's P(won by the close date) equal to forecast --horizon's P(won within) for
    # the same number of days (SAME_AS).
    file(STRINGS "${PER_DEAL}" lines)
    list(GET lines 0 header)
    if(NOT header STREQUAL "id,stage,age,amount,p_win,p_win_within,expected_close,stale,expected_value,owner,close_date,p_won_by_close_date,close_date_past")
      message(FATAL_ERROR "per-deal CSV header: ${header}")
    endif()
    list(GET lines 1 a1)
    list(GET lines 2 a2)
    list(GET lines 3 a3)
    if(NOT a2 MATCHES "^A2,.*,2025-04-30,0,true$")
      message(FATAL_ERROR "A2 (closing 2025-04-30, before the as-of date) is not flagged past with P 0: ${a2}")
    endif()
    if(NOT a3 MATCHES "^A3,.*,,,$")
      message(FATAL_ERROR "A3 has no close date, its close columns must be empty: ${a3}")
    endif()
    if(NOT a1 MATCHES "^A1,.*,2025-06-30,([0-9.e-]+),false$")
      message(FATAL_ERROR "A1 (closing 2025-06-30): ${a1}")
    endif()
    set(p_close "${CMAKE_MATCH_1}")
    execute_process(COMMAND "${CLI}" ${SAME_AS} RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE err2)
    if(NOT rc2 EQUAL 0)
      message(FATAL_ERROR "pipecast ${SAME_AS} failed (${rc2}): ${err2}")
    endif()
    string(JSON p_within GET "${out2}" per_deal 0 p_win_within)
    # Two renewal tables (to the latest close date, and to 46 days): the first 4 decimals.
    string(SUBSTRING "${p_close}" 0 6 p_close4)
    string(SUBSTRING "${p_within}" 0 6 p_within4)
    if(NOT p_close4 STREQUAL p_within4 OR NOT p_close GREATER 0)
      message(FATAL_ERROR "A1: P(won by 2025-06-30) ${p_close}, forecast --horizon 46 gives ${p_within}")
    endif()
    string(JSON past GET "${out2}" per_deal 1 close_date_past)
    if(NOT past STREQUAL "ON" AND NOT past STREQUAL "true")
      message(FATAL_ERROR "per_deal[1].close_date_past in JSON: ${past}")
    endif()
    if(NOT out MATCHES "1 deal\\(s\\) with a close date already past" OR NOT out MATCHES "A2")
      message(FATAL_ERROR "the text output does not flag A2's past close date:\n${out}")
    endif()
    return()
  endif()
  string(JSON n LENGTH "${out}" calendar buckets)
  if(NOT n EQUAL BUCKETS)
    message(FATAL_ERROR "calendar.buckets has ${n} periods, expected ${BUCKETS}")
  endif()
  set(k 0)
  foreach(label IN LISTS LABELS)
    string(JSON got GET "${out}" calendar buckets ${k} label)
    if(NOT got STREQUAL label)
      message(FATAL_ERROR "period ${k}: label '${got}', expected '${label}'")
    endif()
    math(EXPR k "${k} + 1")
  endforeach()
  math(EXPR last "${n} - 1")
  foreach(k RANGE ${last})
    string(JSON closed GET "${out}" calendar buckets ${k} closed)
    string(JSON expected GET "${out}" calendar buckets ${k} expected)
    set(previous ${closed})
    foreach(level closed commit best_case pipeline)
      string(JSON v GET "${out}" calendar buckets ${k} rollup ${level})
      if(v LESS previous)
        message(FATAL_ERROR "period ${k}: roll-up ${level} ${v} is below the level before it (${previous})")
      endif()
      set(previous ${v})
    endforeach()
    string(JSON pipeline GET "${out}" calendar buckets ${k} rollup pipeline)
    string(JSON rc0 GET "${out}" calendar buckets ${k} rollup closed)
    if(NOT rc0 EQUAL closed)
      message(FATAL_ERROR "period ${k}: roll-up closed ${rc0} is not closed ${closed}")
    endif()
    if(SIMULATED)
      expect_type("${out}" NUMBER calendar buckets ${k} simulated mean)
      string(JSON p10 GET "${out}" calendar buckets ${k} simulated quantiles p10)
      string(JSON p90 GET "${out}" calendar buckets ${k} simulated quantiles p90)
      if(p90 LESS p10)
        message(FATAL_ERROR "period ${k}: P90 ${p90} below P10 ${p10}")
      endif()
    endif()
  endforeach()
  if(DEFINED CLOSED)
    string(JSON closed GET "${out}" calendar buckets 0 closed)
    expect_near("Closed (the history's wins in the period, by awk)" "${closed}" ${CLOSED})
  endif()
  if(DEFINED OWNER)
    string(JSON owner GET "${out}" calendar buckets 0 owners 0 owner)
    string(JSON quota GET "${out}" calendar buckets 0 owners 0 quota)
    if(NOT owner STREQUAL OWNER OR NOT quota EQUAL OWNER_QUOTA)
      message(FATAL_ERROR "first owner '${owner}' with quota ${quota}, expected '${OWNER}' with ${OWNER_QUOTA}")
    endif()
    if(DEFINED OWNER_CLOSED)
      string(JSON oc GET "${out}" calendar buckets 0 owners 0 closed)
      string(JSON att GET "${out}" calendar buckets 0 owners 0 attainment)
      expect_near("owner ${owner}: Closed" "${oc}" ${OWNER_CLOSED})
      if(NOT att MATCHES "^${OWNER_ATTAINMENT}")
        message(FATAL_ERROR "owner ${owner}: attainment ${att}, expected ${OWNER_ATTAINMENT}...")
      endif()
    endif()
  endif()
  if(PER_DEAL)
    file(STRINGS "${PER_DEAL}" lines)
    list(GET lines 0 header)
    if(NOT header STREQUAL "id,stage,age,amount,p_win,p_win_within,expected_close,stale,expected_value,owner")
      message(FATAL_ERROR "per-deal CSV header: ${header}")
    endif()
    list(LENGTH lines rows)
    math(EXPR rows "${rows} - 1")
    string(JSON listed LENGTH "${out}" per_deal)
    if(NOT rows EQUAL DEALS OR NOT listed EQUAL DEALS)
      message(FATAL_ERROR "per-deal: ${rows} CSV rows and ${listed} JSON rows, expected ${DEALS}")
    endif()
    string(JSON close GET "${out}" per_deal 0 expected_close)
    if(NOT close MATCHES "^20[0-9][0-9]-[01][0-9]-[0-3][0-9]")
      message(FATAL_ERROR "per-deal: expected_close '${close}' is not a date")
    endif()
  endif()
  if(SAME_AS)
    execute_process(COMMAND "${CLI}" ${SAME_AS} RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE err2)
    if(NOT rc2 EQUAL 0)
      message(FATAL_ERROR "pipecast ${SAME_AS} failed (${rc2}): ${err2}")
    endif()
    # Two renewal tables (to the last period's end, and to the horizon): within 2 of 500,000.
    string(JSON a GET "${out}" calendar buckets 0 expected)
    string(JSON b GET "${out2}" within_horizon expected)
    string(REGEX REPLACE "\\..*" "" b "${b}")
    expect_near("the first period's expected value (forecast --horizon: ${b})" "${a}" ${b})
  endif()
  return()
endif()

set(_check "${CMAKE_CURRENT_LIST_FILE}")
set(_cli "-DCLI=$<TARGET_FILE:pipecast_cli>")
set(_saas "--model;${CMAKE_CURRENT_SOURCE_DIR}/data/saas.json;--deals;${CMAKE_CURRENT_SOURCE_DIR}/data/saas_deals.csv")
set(_crm4 "${PIPECAST_SHARED_DIR}/scenarios/crm4_history.csv")
set(_crm4_book "--model;${PROJECT_SOURCE_DIR}/tests/data/crm4_truth_model.json;--deals;${PROJECT_SOURCE_DIR}/tests/data/crm4_open_deals.csv")
set(_out "${CMAKE_CURRENT_BINARY_DIR}/calendar")
file(MAKE_DIRECTORY "${_out}")

# Months from 2025-05-15: May 15 -> May 31 is 16 days (forecast --horizon 16 gives the same value).
add_test(NAME cli_forecast_period_month COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=calendar -DBUCKETS=3 -DSIMULATED=1
  "-DLABELS=2025-05-01 to 2025-05-31;2025-06-01 to 2025-06-30;2025-07-01 to 2025-07-31"
  "-DOWNER=Alice Chen" -DOWNER_QUOTA=120000 -DDEALS=240 "-DPER_DEAL=${_out}/forecast_deals.csv"
  "-DARGS=forecast;${_saas};--as-of;2025-05-15;--period;month;--buckets;3;--quotas;${CMAKE_CURRENT_SOURCE_DIR}/data/saas_quotas.csv;--per-deal;${_out}/forecast_deals.csv;--json"
  "-DSAME_AS=forecast;${_saas};--horizon;16;--json"
  -P ${_check})
# Fiscal quarters from February: May-Jul, Aug-Oct.
add_test(NAME cli_simulate_period_fiscal COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=calendar -DBUCKETS=2 -DSIMULATED=1
  "-DLABELS=2025-05-01 to 2025-07-31;2025-08-01 to 2025-10-31" -DDEALS=240 "-DPER_DEAL=${_out}/simulate_deals.csv"
  "-DARGS=simulate;${_saas};--as-of;2025-05-15;--horizon;60;--paths;2000;--period;quarter;--fiscal-year-start;2;--buckets;2;--per-deal;${_out}/simulate_deals.csv;--json"
  -P ${_check})
# Closed from the history: the wins between 2025-03-31 and 2025-05-15 in crm4_history.csv,
# summed with awk -F, '$5=="Won" && $4>"2025-03-31" && $4<="2025-05-15"' (294220; rep01: 28310).
add_test(NAME cli_forecast_period_closed COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=calendar -DBUCKETS=2
  "-DLABELS=2025-04-01 to 2025-06-30;2025-07-01 to 2025-09-30" -DCLOSED=294220 -DOWNER=rep01 -DOWNER_QUOTA=50000
  -DOWNER_CLOSED=28310 -DOWNER_ATTAINMENT=0.5662
  "-DARGS=forecast;${_crm4_book};--as-of;2025-05-15;--period;quarter;--buckets;2;--history;${_crm4};--quotas;${PROJECT_SOURCE_DIR}/tests/data/crm4_quotas.csv;--json"
  -P ${_check})
set_tests_properties(cli_forecast_period_month cli_simulate_period_fiscal cli_forecast_period_closed PROPERTIES TIMEOUT 300)

add_test(NAME cli_report_quotas COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=report "-DOUT=${_out}/report"
  "-DNEEDLES=Calendar forecast by quarter;attainment;Best case;2025-10-01 to 2025-12-31"
  "-DARGS=report;--history;${_crm4};--quota;500000;--as-of;2025-06-30;--backtest;off;--paths;500;--buckets;2;--quotas;${PROJECT_SOURCE_DIR}/tests/data/crm4_quotas.csv;--out;${_out}/report"
  -P ${_check})
set_tests_properties(cli_report_quotas PROPERTIES TIMEOUT 600)

# The reps' close dates (as-of 2025-05-15: A2's 2025-04-30 is past; 2025-06-30 is 46 days ahead).
set(_close "--model;${CMAKE_CURRENT_SOURCE_DIR}/data/saas.json;--deals;${PROJECT_SOURCE_DIR}/tests/data/saas_close_dates.csv")
add_test(NAME cli_forecast_close_dates COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=close "-DPER_DEAL=${_out}/close_deals.csv"
  "-DARGS=forecast;${_close};--as-of;2025-05-15;--per-deal;${_out}/close_deals.csv"
  "-DSAME_AS=forecast;${_close};--as-of;2025-05-15;--horizon;46;--per-deal;${_out}/close_deals_46.csv;--json"
  -P ${_check})

# Bad input: exit status 1 and a message naming the option, file and line.
add_test(NAME cli_forecast_period_needs_as_of COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=forecast;${_saas};--period;month" "-DEXPECT=--period needs --as-of" -P ${_check})
add_test(NAME cli_forecast_quotas_bad_line COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=forecast;${_saas};--as-of;2025-05-15;--period;month;--quotas;${PROJECT_SOURCE_DIR}/tests/data/quotas_bad.csv"
  "-DEXPECT=quotas_bad.csv:3.*quota.*lots" -P ${_check})
add_test(NAME cli_forecast_quotas_need_period COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=forecast;${_saas};--quotas;${CMAKE_CURRENT_SOURCE_DIR}/data/saas_quotas.csv" "-DEXPECT=--quotas needs --period"
  -P ${_check})
add_test(NAME cli_forecast_bad_as_of COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=forecast;${_saas};--as-of;May 15;--period;month" "-DEXPECT=as-of.*'May 15'" -P ${_check})
add_test(NAME cli_simulate_period_exact COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=simulate;${_saas};--horizon;30;--method;exact;--as-of;2025-05-15;--period;month"
  "-DEXPECT=--period and --per-deal need --method mc" -P ${_check})
