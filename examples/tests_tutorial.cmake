# The tutorial examples (examples/<name>.cpp), each run with its output checked. Expected
# values come from independent computations: products of conversion rates and Little's law
# by hand, day counts of the calendar, counts of the bundled history (won, lost, open deals
# by their last visit), and, where the answer is random, a second method (period forecast,
# exact distribution, a sequential run) within 4 standard errors.
# (CTest ignores the exit status when a PASS_REGULAR_EXPRESSION is set: each regex spans the
# whole table, so an early stop fails it.)

# P(win) = product of the conversions from the stage on; E[days to close] = m_i + c_i E_{i+1}.
add_test(NAME example_linear_funnel COMMAND $<TARGET_FILE:example_linear_funnel>)
set_tests_properties(example_linear_funnel PROPERTIES PASS_REGULAR_EXPRESSION
  "Lead +0\\.1800 +32\\.60\nDemo +0\\.3600 +45\\.20\nProposal +0\\.6000 +42\\.00\nNegotiation +0\\.7500 +15\\.00\n")

# Quarter ends from 2026-02-15: 44, 135, 227, 319 days; the Monte Carlo within 4 SE of the
# period forecast at each.
add_test(NAME example_forecast_by_quarter COMMAND $<TARGET_FILE:example_forecast_by_quarter>)
set_tests_properties(example_forecast_by_quarter PROPERTIES PASS_REGULAR_EXPRESSION
  "240 open deals, EUR\n[^\n]*\n2026-Q1 +44 +[0-9]+ +[0-9]+ +[0-9]+ \\+/- +[0-9]+\n2026-Q2 +135 [^\n]*\n2026-Q3 +227 [^\n]*\n2026-Q4 +319 [^\n]*\nafter 2026 +[0-9]+ +[0-9]+\nMonte Carlo check: largest deviation [0-3]\\.[0-9] standard errors")

# 900,000 / 20,000 = 45 wins; / 0.18 = 250 leads; entering x mean days / 90 in each stage.
add_test(NAME example_ideal_funnel_quota COMMAND $<TARGET_FILE:example_ideal_funnel_quota>)
set_tests_properties(example_ideal_funnel_quota PROPERTIES PASS_REGULAR_EXPRESSION
  "deals to win per period: 45\\.00\nP\\(win \\| entry\\): +0\\.1800\nnew deals per period: +250\\.00\n[^\n]*\nLead +250\\.00 +27\\.78 +555556\nDemo +125\\.00 +27\\.78 +555556\nProposal +75\\.00 +25\\.00 +500000\nNegotiation +60\\.00 +10\\.00 +200000\npipeline: 90\\.56 deals worth 1811111\n")

# Simulated P(quota) within 4 of its standard errors of the exact distribution's.
add_test(NAME example_p_quota COMMAND $<TARGET_FILE:example_p_quota>)
set_tests_properties(example_p_quota PROPERTIES PASS_REGULAR_EXPRESSION
  "\\(40000 paths\\): mean [0-9]+, P10 [0-9]+, P50 [0-9]+, P90 [0-9]+ EUR\nP\\(won >= 2100000 within 90 days\\): 0\\.[0-9]+ \\+/- 0\\.[0-9]+ \\(simulated\\)\nP\\(won >= 2100000 within 90 days\\): 0\\.[0-9]+ \\(exact distribution\\)\ndifference: [0-3]\\.[0-9] standard errors")

# The sample history has 1761 deals: 194 won, 1443 lost, 124 open (by their last visit);
# the listed stale deals are the likeliest stalled, so the first has P(stalled) >= 0.5.
add_test(NAME example_stale_deals COMMAND $<TARGET_FILE:example_stale_deals>)
set_tests_properties(example_stale_deals PROPERTIES PASS_REGULAR_EXPRESSION
  "1761 deals: 194 won, 1443 lost, 124 open; win rate 0\\.[0-9]+\n[1-9][0-9]* stale deals, likeliest stalled first:\n[^\n]*\nO[0-9]+ +[A-Za-z]+ +[0-9]+\\.[0-9] +(0\\.[5-9][0-9][0-9]|1\\.000) +0\\.[0-9]+\n")

# The CRN difference within 4 SE of the exact expected difference, its SE at least halved.
add_test(NAME example_what_if_crn COMMAND $<TARGET_FILE:example_what_if_crn>)
set_tests_properties(example_what_if_crn PROPERTIES PASS_REGULAR_EXPRESSION
  "cut the standard error ([2-9]|[1-9][0-9]+)\\.[0-9]x[^\n]*\nexact expected difference: [0-9]+; deviation [0-3]\\.[0-9] standard errors")

# Four concurrent answers from one engine equal the sequential simulate() runs.
add_test(NAME example_shared_model_threads COMMAND $<TARGET_FILE:example_shared_model_threads>)
set_tests_properties(example_shared_model_threads PROPERTIES
  PASS_REGULAR_EXPRESSION "horizon +30 days, seed 100: [^\n]*\\(identical\\)\n[^\n]*\n[^\n]*\nhorizon 120 days, seed 103: [^\n]*\\(identical\\)\n4 of 4 answers identical to the sequential runs"
  FAIL_REGULAR_EXPRESSION "DIFFERENT")

# docs/getting-started.md's commands on the bundled data: fit a model from the sample history
# and write the pipeline report from it (at least six SVG charts).
set(PIPECAST_GS_DIR "${CMAKE_CURRENT_BINARY_DIR}/getting_started")
file(MAKE_DIRECTORY "${PIPECAST_GS_DIR}")
add_test(NAME getting_started_fit
  COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${CMAKE_CURRENT_SOURCE_DIR}/data/crm4_sample_history.csv
          --out ${PIPECAST_GS_DIR}/my_model.json)
set_tests_properties(getting_started_fit PROPERTIES PASS_REGULAR_EXPRESSION "model written to [^\n]*my_model\\.json")
add_test(NAME getting_started_report
  COMMAND $<TARGET_FILE:pipecast_cli> report --history ${CMAKE_CURRENT_SOURCE_DIR}/data/crm4_sample_history.csv
          --quota 100000 --period quarter --as-of 2025-06-30 --out ${PIPECAST_GS_DIR}/R)
set_tests_properties(getting_started_report PROPERTIES PASS_REGULAR_EXPRESSION
  "wrote [^\n]*report\\.html and [^\n]*report\\.md \\(([6-9]|[1-9][0-9]) charts\\)")

# The other history commands of docs/getting-started.md on the same bundled data: the KPIs
# with their stale deals, and the backtest of the model at the quarter ends.
add_test(NAME getting_started_kpi
  COMMAND $<TARGET_FILE:pipecast_cli> kpi --history ${CMAKE_CURRENT_SOURCE_DIR}/data/crm4_sample_history.csv)
set_tests_properties(getting_started_kpi PROPERTIES PASS_REGULAR_EXPRESSION
  "deals \\(won / lost / open\\) +1761 \\(194 / 1443 / 124\\).*stale deals +[1-9][0-9]* ")
add_test(NAME getting_started_backtest
  COMMAND $<TARGET_FILE:pipecast_cli> backtest --history ${CMAKE_CURRENT_SOURCE_DIR}/data/crm4_sample_history.csv
          --every quarter --horizon 90 --paths 500)
set_tests_properties(getting_started_backtest PROPERTIES PASS_REGULAR_EXPRESSION
  "7 cut\\(s\\).*2024-03-31.*2025-09-30.*Value MAPE [0-9.]+% \\(CRM weighted [0-9.]+%, roll rate [0-9.]+%\\).*Calibration")
