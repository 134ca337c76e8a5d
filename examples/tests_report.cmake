# CTest cases of `pipecast report`.
#
# Included from examples/CMakeLists.txt it declares the tests; run with `cmake -P` (script
# mode) it is the checker: MODE=report runs the CLI and checks the files it writes (a
# self-contained report.html with at least MIN_CHARTS SVG charts, report.md with its charts as
# SVG files beside it, the per-deal CSV's columns); MODE=chromium renders report.html in
# headless Chromium and fails on any console message or a chart without a drawn mark;
# MODE=error checks that bad input fails with exit status 1 and a message.

if(CMAKE_SCRIPT_MODE_FILE)
  cmake_policy(VERSION 3.20) # script mode starts with old policies (while(TRUE) needs CMP0012)
  include("${CMAKE_CURRENT_LIST_DIR}/cli_checks.cmake")
  # --- script mode: -DCLI=<pipecast> -DMODE=report|chromium|error -DARGS=<;-list> [-DOUT=dir] [-DEXPECT=regex]
  if(MODE STREQUAL "chromium")
    find_program(CHROMIUM NAMES chromium chromium-browser google-chrome)
    if(NOT CHROMIUM)
      message("SKIPPED: chromium not found (scripts/install-deps installs the Debian package chromium)")
      return()
    endif()
    if(NOT EXISTS "${OUT}/report.html")
      message(FATAL_ERROR "${OUT}/report.html is missing (the test cli_report_crm4 writes it)")
    endif()
    file(REMOVE_RECURSE "${OUT}/chromium-profile")
    execute_process(COMMAND "${CHROMIUM}" --headless --disable-gpu --no-sandbox --enable-logging=stderr --v=0
                            "--user-data-dir=${OUT}/chromium-profile" --dump-dom "file://${OUT}/report.html"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE dom ERROR_VARIABLE err TIMEOUT 240)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "chromium failed (${rc}): ${err}")
    endif()
    # Console messages (errors, failed loads, CSP reports) are logged as ...:CONSOLE...; the
    # page has no script, so there must be none.
    string(REGEX MATCHALL "[^\n]*:CONSOLE[^\n]*" console "${err}")
    if(console)
      message(FATAL_ERROR "console messages while rendering report.html:\n${console}")
    endif()
    set(rest "${dom}")
    set(charts 0)
    while(TRUE)
      string(FIND "${rest}" "<svg class=\"chart\"" at)
      if(at EQUAL -1)
        break()
      endif()
      string(SUBSTRING "${rest}" ${at} -1 rest)
      string(FIND "${rest}" "</svg>" end)
      if(end EQUAL -1)
        message(FATAL_ERROR "chart ${charts}: no </svg> in the rendered DOM")
      endif()
      string(SUBSTRING "${rest}" 0 ${end} svg)
      string(SUBSTRING "${rest}" ${end} -1 rest)
      math(EXPR charts "${charts} + 1")
      string(REGEX MATCH "<title>[^<]*</title>" title "${svg}")
      # A drawn mark: a path of two points or more, a dot of positive radius, a bar of
      # positive width, or a reference line.
      if(NOT (svg MATCHES "<path class=\"mark\" d=\"M[-0-9.]+,[-0-9.]+L"
              OR svg MATCHES "<circle class=\"mark\"[^>]* r=\"0*[1-9]"
              OR svg MATCHES "<rect class=\"mark\"[^>]* width=\"(0*[1-9]|0\\.[0-9]*[1-9])"))
        message(FATAL_ERROR "chart ${charts} ${title} has no drawn mark")
      endif()
    endwhile()
    if(charts LESS MIN_CHARTS)
      message(FATAL_ERROR "the rendered report has ${charts} charts, expected at least ${MIN_CHARTS}")
    endif()
    message(STATUS "chromium rendered ${charts} charts, every one with marks, no console message")
    return()
  endif()

  run_and_check()
  file(READ "${OUT}/report.html" html)
  string(REGEX MATCHALL "<svg class=\"chart\"" svgs "${html}")
  list(LENGTH svgs n)
  if(n LESS MIN_CHARTS)
    message(FATAL_ERROR "report.html has ${n} charts, expected at least ${MIN_CHARTS}")
  endif()
  # Self-contained: nothing fetched, no script.
  foreach(bad "<script" "<link" " src=" " href=" "url\\(" "@import" "<img")
    if(html MATCHES "${bad}")
      message(FATAL_ERROR "report.html is not self-contained: it has '${bad}'")
    endif()
  endforeach()
  foreach(needle "Funnel against the ideal funnel" "P10-P90" "P\\(quota\\)" "Win probability by age"
                 "Stage survival" "销售进展" "Backtest calibration" "bottleneck" "Top [0-9]+ deals by expected value"
                 "stale deals")
    if(NOT html MATCHES "${needle}")
      message(FATAL_ERROR "report.html lacks '${needle}'")
    endif()
  endforeach()
  file(READ "${OUT}/report.md" md)
  string(REGEX MATCHALL "!\\[[^]]*\\]\\([^)]+\\.svg\\)" links "${md}")
  list(LENGTH links m)
  if(NOT m EQUAL n)
    message(FATAL_ERROR "report.md links ${m} charts, report.html has ${n}")
  endif()
  foreach(link IN LISTS links)
    string(REGEX REPLACE ".*\\(([^)]+)\\)" "\\1" f "${link}")
    if(NOT EXISTS "${OUT}/${f}")
      message(FATAL_ERROR "report.md links ${f}, which is not in ${OUT}")
    endif()
    file(READ "${OUT}/${f}" s)
    if(NOT s MATCHES "<svg class=\"chart\"" OR NOT s MATCHES "class=\"mark\"")
      message(FATAL_ERROR "${f} is not a chart with marks")
    endif()
  endforeach()
  if(PER_DEAL)
    file(STRINGS "${PER_DEAL}" lines)
    list(GET lines 0 header)
    if(NOT header MATCHES "^id,stage,age,amount,p_win,p_win_within,expected_close,stale,expected_value")
      message(FATAL_ERROR "per-deal CSV header: ${header}")
    endif()
    list(LENGTH lines rows)
    if(rows LESS 2)
      message(FATAL_ERROR "per-deal CSV has no deals")
    endif()
  endif()
  return()
endif()

set(_check "${CMAKE_CURRENT_LIST_FILE}")
set(_cli "-DCLI=$<TARGET_FILE:pipecast_cli>")
set(_crm4 "${PIPECAST_SHARED_DIR}/scenarios/crm4_history.csv")
set(_rep "${CMAKE_CURRENT_BINARY_DIR}/report_crm4")

# Issue 12's acceptance command (history only: the open book is rebuilt from the log).
add_test(NAME cli_report_crm4 COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=report -DMIN_CHARTS=6 "-DOUT=${_rep}"
  "-DPER_DEAL=${_rep}/deals.csv"
  "-DARGS=report;--history;${_crm4};--quota;500000;--period;quarter;--as-of;2025-06-30;--out;${_rep};--per-deal;${_rep}/deals.csv"
  -P ${_check})
set_tests_properties(cli_report_crm4 PROPERTIES TIMEOUT 600 FIXTURES_SETUP report_crm4)
add_test(NAME cli_report_chromium COMMAND ${CMAKE_COMMAND} -DMODE=chromium -DMIN_CHARTS=6 "-DOUT=${_rep}" -P ${_check})
set_tests_properties(cli_report_chromium PROPERTIES TIMEOUT 300 FIXTURES_REQUIRED report_crm4
  SKIP_REGULAR_EXPRESSION "SKIPPED: chromium not found")

add_test(NAME cli_report_bad_quota COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=report;--history;${_crm4};--quota;-5;--out;${CMAKE_CURRENT_BINARY_DIR}/report_bad" "-DEXPECT=--quota: must be a positive amount, got -5" -P ${_check})
add_test(NAME cli_report_bad_period COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=report;--history;${_crm4};--quota;1000;--period;week;--out;${CMAKE_CURRENT_BINARY_DIR}/report_bad" "-DEXPECT=--period: expected month, quarter or year, got 'week'" -P ${_check})
add_test(NAME cli_report_out_is_a_file COMMAND ${CMAKE_COMMAND} ${_cli} -DMODE=error
  "-DARGS=report;--history;${_crm4};--quota;1000;--as-of;2024-06-30;--backtest;off;--paths;200;--out;${_crm4}" "-DEXPECT=--out: cannot create the directory" -P ${_check})
