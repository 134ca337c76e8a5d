# CTest cases of the CLI as a whole (issue 12's polish): tables padded by display width,
# one JSON style (insertion-ordered keys, won_value nested as won_count), the shared progress
# line (silent when stderr is not a terminal, forced by PIPECAST_PROGRESS=1), --as-of on
# simulate and backtest, the nearest command suggested for a misspelt one, log spans as dates.
#
# Included from examples/CMakeLists.txt it declares the tests; run with `cmake -P` (script
# mode) it is their checker: -DCLI=<pipecast> -DMODE=<mode> [-DARGS=<;-list>] [...].

if(CMAKE_SCRIPT_MODE_FILE)
  include("${CMAKE_CURRENT_LIST_DIR}/cli_checks.cmake")

  # display_width(<out-var> <line>): the columns a terminal shows the line in, computed apart
  # from the CLI's own display_width(): the test data's CJK characters count 2, "é" and "±"
  # 1, the combining acute accent (U+0301, after the "e" of "Démo") 0, ASCII 1. A character
  # the checker does not know fails the test instead of being guessed.
  function(display_width out_var line)
    string(REGEX REPLACE "(资|格|确|认|商|务|谈|判|演|示)" "WW" s "${line}")
    string(REPLACE "é" "e" s "${s}")
    string(REPLACE "±" "+" s "${s}")
    string(REPLACE "́" "" s "${s}")
    if(s MATCHES "[^ -~]")
      message(FATAL_ERROR "the checker does not know a character of the line '${line}'")
    endif()
    string(LENGTH "${s}" n)
    set(${out_var} ${n} PARENT_SCOPE)
  endfunction()

  # expect_first_keys(<json> <key>...): the object's first members are these, in this order,
  # read from the text (indent 2: a top-level key starts a line with two blanks); CMake's
  # string(JSON MEMBER) cannot tell, it sorts the members.
  function(expect_first_keys json_text)
    string(REGEX MATCHALL "\n  \"[^\"]+\":" found "${json_text}")
    set(i 0)
    foreach(k IN LISTS ARGN)
      list(GET found ${i} got)
      string(REGEX REPLACE "^\n  \"([^\"]+)\":$" "\\1" got "${got}")
      if(NOT got STREQUAL k)
        message(FATAL_ERROR "top-level key ${i} is '${got}', expected '${k}' (keys in insertion order)")
      endif()
      math(EXPR i "${i} + 1")
    endforeach()
  endfunction()

  # Runs the same command on forecast_entered_ages.csv, the book of forecast_entered.csv with
  # the ages counted by hand to 2026-11-20 (50, 18 and 5 days), without --as-of; its output
  # goes to `result` (simulate_as_of, sweep_as_of).
  function(run_with_ages_by_hand result)
    list(TRANSFORM ARGS REPLACE "forecast_entered\\.csv$" "forecast_entered_ages.csv")
    list(FILTER ARGS EXCLUDE REGEX "^(--as-of|2026-11-20)$")
    run_cli(o ${ARGS})
    set(${result} "${o}" PARENT_SCOPE)
  endfunction()

  if(MODE STREQUAL "width")
    # Every line of every table (a header line, then a rule of dashes) has the rule's display
    # width: the first column is padded on the right and the others on the left, so a column
    # after a Chinese, accented or mixed name starts at the same display column in every row.
    run_and_check()
    string(REPLACE ";" "\\;" out "${out}")
    string(REPLACE "\n" ";" lines "${out}")
    set(width "")
    set(tables 0)
    set(checked 0)
    set(names_seen "")
    foreach(line IN LISTS lines)
      if(line MATCHES "^-+$")
        if(width STREQUAL "")
          string(LENGTH "${line}" width)
          math(EXPR tables "${tables} + 1")
          display_width(hw "${header}")
          if(NOT hw EQUAL width)
            message(FATAL_ERROR "header '${header}' is ${hw} columns wide, its rule ${width}")
          endif()
        endif()
        continue()
      endif()
      if(line STREQUAL "" OR NOT line MATCHES "  ")
        set(width "") # a blank line or a note under the table (no column gap) ends it
      elseif(NOT width STREQUAL "")
        display_width(w "${line}")
        if(NOT w EQUAL width)
          message(FATAL_ERROR "the row\n  ${line}\nis ${w} columns wide, the table ${width}:\n${out}")
        endif()
        math(EXPR checked "${checked} + 1")
        foreach(name 资格确认 Négociation 演示 商务谈判)
          if(line MATCHES "${name}")
            list(APPEND names_seen "${name}")
          endif()
        endforeach()
      endif()
      set(header "${line}")
    endforeach()
    list(REMOVE_DUPLICATES names_seen)
    list(LENGTH names_seen n_names)
    if(tables LESS 2 OR checked LESS 8 OR n_names LESS 4)
      message(FATAL_ERROR "${tables} tables, ${checked} rows, names seen: ${names_seen}; expected the stage tables:\n${out}")
    endif()
  elseif(MODE STREQUAL "order")
    # One JSON style: the keys in insertion (reading) order, not sorted.
    run_and_check()
    expect_first_keys("${out}" ${KEYS})
  elseif(MODE STREQUAL "nested")
    # simulate: the won value's statistics nested as won_value, as won_count is, the top-level
    # keys kept with the same values.
    run_and_check()
    foreach(k mean stderr sd min max)
      string(JSON top GET "${out}" ${k})
      string(JSON nested GET "${out}" won_value ${k})
      if(NOT top STREQUAL nested)
        message(FATAL_ERROR "won_value.${k} is ${nested}, the top-level ${k} ${top}")
      endif()
      expect_type("${out}" NUMBER won_count ${k})
    endforeach()
    string(JSON top GET "${out}" quantiles p50)
    string(JSON nested GET "${out}" won_value quantiles p50)
    if(NOT top STREQUAL nested)
      message(FATAL_ERROR "won_value.quantiles.p50 is ${nested}, the top-level one ${top}")
    endif()
  elseif(MODE STREQUAL "progress")
    # The progress line: forced on by PIPECAST_PROGRESS=1 it is on stderr with the step, a
    # percentage and an ETA; stdout (the JSON) stays clean. Without it, stderr is a pipe here:
    # no progress line at all.
    if(FORCE)
      set(ENV{PIPECAST_PROGRESS} 1)
    else()
      unset(ENV{PIPECAST_PROGRESS})
    endif()
    run_and_check()
    if(FORCE)
      if(NOT err MATCHES "${EXPECT}")
        message(FATAL_ERROR "no progress line matching '${EXPECT}' on stderr:\n${err}")
      endif()
    else()
      if(err MATCHES "\r" OR err MATCHES "ETA" OR err MATCHES "${EXPECT}")
        message(FATAL_ERROR "a progress line on stderr that is not a terminal:\n${err}")
      endif()
    endif()
    if(out MATCHES "\r" OR out MATCHES "ETA")
      message(FATAL_ERROR "progress on stdout:\n${out}")
    endif()
  elseif(MODE STREQUAL "simulate_as_of")
    run_and_check()
    string(JSON as_of GET "${out}" as_of)
    if(NOT as_of STREQUAL "2026-11-20")
      message(FATAL_ERROR "as_of is '${as_of}', expected 2026-11-20")
    endif()
    # The same run on the book with the ages counted by hand (forecast_entered_ages.csv:
    # 2026-10-01, -11-02, -11-15 to 2026-11-20 are 50, 18 and 5 days) gives the same result.
    run_with_ages_by_hand(aged)
    foreach(k mean sd)
      string(JSON x GET "${out}" ${k})
      string(JSON y GET "${aged}" ${k})
      if(NOT x STREQUAL y)
        message(FATAL_ERROR "${k}: ${x} with --as-of, ${y} with the ages counted by hand")
      endif()
    endforeach()
    string(JSON x GET "${out}" mean)
    if(x EQUAL 0)
      message(FATAL_ERROR "a zero mean shows nothing")
    endif()
  elseif(MODE STREQUAL "sweep_as_of")
    # sweep --as-of: the scenarios' results on the book with an 'entered' column equal those
    # on the same book with the ages counted by hand (as simulate_as_of).
    run_and_check()
    string(JSON with_dates GET "${out}" scenarios)
    run_with_ages_by_hand(aged)
    string(JSON with_ages GET "${aged}" scenarios)
    if(NOT with_dates STREQUAL with_ages)
      message(FATAL_ERROR "sweep with --as-of:\n${with_dates}\nwith the ages counted by hand:\n${with_ages}")
    endif()
    string(JSON m GET "${out}" scenarios 0 mean)
    if(m EQUAL 0)
      message(FATAL_ERROR "a zero mean shows nothing")
    endif()
  elseif(MODE STREQUAL "backtest_as_of")
    # --as-of: the history as known then; the default (quarterly) cuts end one horizon before
    # it (2025-09-30 - 30 days: at most 2025-08-31), while the whole log has a later one.
    run_and_check()
    string(JSON n LENGTH "${out}" cuts)
    math(EXPR last "${n} - 1")
    string(JSON cut GET "${out}" cuts ${last} cut)
    if(cut STRGREATER "2025-08-31")
      message(FATAL_ERROR "the last cut ${cut} is after --as-of 2025-09-30 less the 30-day horizon")
    endif()
    list(FILTER ARGS EXCLUDE REGEX "^(--as-of|2025-09-30)$")
    execute_process(COMMAND "${CLI}" ${ARGS} RESULT_VARIABLE rc2 OUTPUT_VARIABLE all ERROR_VARIABLE e2)
    if(NOT rc2 EQUAL 0)
      message(FATAL_ERROR "backtest without --as-of failed: ${e2}")
    endif()
    string(JSON n LENGTH "${all}" cuts)
    math(EXPR last "${n} - 1")
    string(JSON cut_all GET "${all}" cuts ${last} cut)
    if(NOT cut_all STRGREATER "2025-08-31")
      message(FATAL_ERROR "without --as-of the last cut is ${cut_all}: the test shows nothing")
    endif()
  elseif(MODE STREQUAL "error")
    run_and_check() # exit 1 and stderr matching EXPECT
  else()
    message(FATAL_ERROR "unknown MODE ${MODE}")
  endif()
  return()
endif()

# --- declaration mode ----------------------------------------------------------------------
set(_cc_check "${CMAKE_CURRENT_LIST_FILE}")
set(_cc_cli "-DCLI=$<TARGET_FILE:pipecast_cli>")
set(_cc_wide "${PROJECT_SOURCE_DIR}/tests/data/history_wide_names.csv")
set(_cc_saas "${PROJECT_SOURCE_DIR}/examples/data/saas.json")
set(_cc_saas_deals "${PROJECT_SOURCE_DIR}/examples/data/saas_deals.csv")
set(_cc_entered "${PROJECT_SOURCE_DIR}/tests/data/forecast_entered.csv")

# Display width: stage names 资格确认 and 商务谈判 (2 columns a character), Négociation
# (precomposed é), "Démo 演示" (e + combining accent, and mixed scripts), the "± se" header.
add_test(NAME cli_width_fit_tables COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=width
  "-DARGS=fit;--history;${_cc_wide}" -P ${_cc_check})
add_test(NAME cli_width_fit_classic_tables COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=width
  "-DARGS=fit;--history;${_cc_wide};--model-kind;classic" -P ${_cc_check})
add_test(NAME cli_width_kpi_tables COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=width
  "-DARGS=kpi;--history;${_cc_wide}" -P ${_cc_check})

# One JSON style: insertion-ordered keys in every command.
add_test(NAME cli_json_order_fit COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=order "-DKEYS=visits;deals;start_time;end_time"
  "-DARGS=fit;--history;${_cc_wide};--json" -P ${_cc_check})
add_test(NAME cli_json_order_kpi COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=order "-DKEYS=deals;won;lost;open;win_rate"
  "-DARGS=kpi;--history;${_cc_wide};--json" -P ${_cc_check})
add_test(NAME cli_json_order_backtest COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=order "-DKEYS=method;horizon;cuts;summary"
  "-DARGS=backtest;--history;${_cc_wide};--cuts;2025-03-31;--horizon;60;--paths;200;--json" -P ${_cc_check})
add_test(NAME cli_json_order_funnel COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=order "-DKEYS=model;time_unit;currency;quota"
  "-DARGS=funnel;--model;${_cc_saas};--quota;1500000;--period;90;--json" -P ${_cc_check})
add_test(NAME cli_json_order_simulate COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=order "-DKEYS=model;currency;time_unit;status"
  "-DARGS=simulate;--model;${_cc_saas};--deals;${_cc_saas_deals};--horizon;90;--paths;500;--json" -P ${_cc_check})
add_test(NAME cli_json_simulate_won_value_nested COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=nested
  "-DARGS=simulate;--model;${_cc_saas};--deals;${_cc_saas_deals};--horizon;90;--paths;500;--json" -P ${_cc_check})
add_test(NAME cli_json_simulate_exact_won_value_nested COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=nested
  "-DARGS=simulate;--model;${_cc_saas};--deals;${_cc_saas_deals};--horizon;90;--method;exact;--json" -P ${_cc_check})

# Progress: forced on (PIPECAST_PROGRESS=1) and silent when stderr is not a terminal.
add_test(NAME cli_progress_backtest_forced COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=progress -DFORCE=ON
  "-DEXPECT=backtest: cut [12] of 2 \\[#* *\\] +50%.*ETA.*100%"
  "-DARGS=backtest;--history;${_cc_wide};--cuts;2025-03-31,2025-06-30;--horizon;60;--paths;200;--json" -P ${_cc_check})
add_test(NAME cli_progress_backtest_silent COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=progress -DFORCE=OFF
  "-DEXPECT=backtest: cut"
  "-DARGS=backtest;--history;${_cc_wide};--cuts;2025-03-31,2025-06-30;--horizon;60;--paths;200;--json" -P ${_cc_check})
add_test(NAME cli_progress_fit_forced COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=progress -DFORCE=ON
  "-DEXPECT=fit: fitting the stages"
  "-DARGS=fit;--history;${_cc_wide};--json" -P ${_cc_check})
add_test(NAME cli_progress_fit_silent COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=progress -DFORCE=OFF
  "-DEXPECT=fit: fitting"
  "-DARGS=fit;--history;${_cc_wide};--json" -P ${_cc_check})
add_test(NAME cli_progress_simulate_forced COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=progress -DFORCE=ON
  "-DEXPECT=simulate \\[#+\\] +100%"
  "-DARGS=simulate;--model;${_cc_saas};--deals;${_cc_saas_deals};--horizon;90;--paths;2000;--json" -P ${_cc_check})
add_test(NAME cli_progress_report_forced COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=progress -DFORCE=ON
  "-DEXPECT=report: fitting.*report: forecasting and simulating"
  "-DARGS=report;--history;${_cc_wide};--quota;100000;--period;quarter;--as-of;2025-06-30;--backtest;off;--paths;500;--out;${CMAKE_CURRENT_BINARY_DIR}/cli_progress_report" -P ${_cc_check})

# --as-of on every command that reads dates.
add_test(NAME cli_simulate_as_of COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=simulate_as_of
  "-DARGS=simulate;--model;${_cc_saas};--deals;${_cc_entered};--as-of;2026-11-20;--horizon;30;--paths;2000;--seed;7;--json" -P ${_cc_check})
add_test(NAME cli_sweep_as_of COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=sweep_as_of
  "-DARGS=sweep;--model;${_cc_saas};--deals;${_cc_entered};--as-of;2026-11-20;--scenarios;${PROJECT_SOURCE_DIR}/examples/data/saas_scenarios.json;--horizon;30;--paths;500;--seed;7;--json" -P ${_cc_check})
add_test(NAME cli_simulate_entered_needs_as_of COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=error
  "-DARGS=simulate;--model;${_cc_saas};--deals;${_cc_entered};--horizon;30" "-DEXPECT=needs an as-of date" -P ${_cc_check})
add_test(NAME cli_backtest_as_of COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=backtest_as_of
  "-DARGS=backtest;--history;${_cc_wide};--horizon;30;--paths;200;--json;--as-of;2025-09-30" -P ${_cc_check})

# A misspelt command: the nearest one suggested, exit 1.
add_test(NAME cli_suggest_forecast COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=error
  "-DARGS=forcast;--model;x.json" "-DEXPECT=unknown command 'forcast'; did you mean forecast\\?" -P ${_cc_check})
add_test(NAME cli_suggest_simulate COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=error
  "-DARGS=simualte" "-DEXPECT=did you mean simulate\\?" -P ${_cc_check})
add_test(NAME cli_suggest_none COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=error
  "-DARGS=xyzzyplugh" "-DEXPECT=unknown command 'xyzzyplugh'; the commands are forecast funnel simulate fit kpi backtest report" -P ${_cc_check})

# Log spans as dates: the first entry of the test history is 2024-01-04 (its first row).
add_test(NAME cli_fit_log_span_dates COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_cc_wide})
set_tests_properties(cli_fit_log_span_dates PROPERTIES
  PASS_REGULAR_EXPRESSION "deals, log 2024-01-04 \\.\\. 202[56]-[01][0-9]-[0-3][0-9]; entry 资格确认")

# --as-of before the history: the log's span in the message as dates (its first row enters
# 2024-01-04), not as epoch days.
add_test(NAME cli_fit_as_of_before_log COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=error
  "-DARGS=fit;--history;${_cc_wide};--as-of;2020-01-01"
  "-DEXPECT=--as-of 2020-01-01 is before the history .*history_wide_names\\.csv starts \\(it spans 2024-01-04 \\.\\. 2025-"
  -P ${_cc_check})
add_test(NAME cli_backtest_as_of_before_log COMMAND ${CMAKE_COMMAND} ${_cc_cli} -DMODE=error
  "-DARGS=backtest;--history;${_cc_wide};--as-of;2020-01-01"
  "-DEXPECT=--as-of 2020-01-01 is before the history .*history_wide_names\\.csv starts \\(it spans 2024-01-04 \\.\\. 2025-"
  -P ${_cc_check})
