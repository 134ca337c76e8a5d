# CTest cases of `pipecast simulate --method exact|mc|auto` (exact_distribution.hpp).
set(_ex_model "${PIPECAST_SHARED_DIR}/scenarios/b2b6.json")
set(_ex_deals "${PIPECAST_SHARED_DIR}/scenarios/b2b6_open_deals.csv")
set(_ex_cli $<TARGET_FILE:pipecast_cli>)

add_test(NAME cli_simulate_exact_json COMMAND ${_ex_cli} simulate --model ${_ex_model} --deals ${_ex_deals}
  --horizon 90 --method exact --quota 46000000 --sub-periods 3 --json)
set_tests_properties(cli_simulate_exact_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"quantiles\": {[ \n]*\"p10\".*\"p_quota\": [0-9.e-]+,.*\"sub_periods\": \\[.*\"method\": \"exact\",[ \n]*\"error_bound\": [0-9.e+]+,")
# (the keys in simulate's insertion order, docs/cli.md: before issue 12 they came sorted)
add_test(NAME cli_simulate_exact_report COMMAND ${_ex_cli} simulate --model ${_ex_model} --deals ${_ex_deals}
  --horizon 90 --method auto --correlation 0.3)
set_tests_properties(cli_simulate_exact_report PROPERTIES
  PASS_REGULAR_EXPRESSION "Exact distribution \\(no Monte Carlo\\).*Gauss-Hermite 24 nodes.*P50")
add_test(NAME cli_simulate_mc_method_key COMMAND ${_ex_cli} simulate --model ${_ex_model} --deals ${_ex_deals}
  --horizon 90 --paths 50 --method mc --json)
set_tests_properties(cli_simulate_mc_method_key PROPERTIES PASS_REGULAR_EXPRESSION "\"method\": \"mc\"")
add_test(NAME cli_simulate_auto_without_horizon COMMAND ${_ex_cli} simulate --model ${_ex_model} --deals ${_ex_deals}
  --paths 20 --method auto)
set_tests_properties(cli_simulate_auto_without_horizon PROPERTIES PASS_REGULAR_EXPRESSION "Monte Carlo simulation")
add_test(NAME cli_simulate_exact_needs_horizon COMMAND ${_ex_cli} simulate --model ${_ex_model} --deals ${_ex_deals}
  --method exact)
set_tests_properties(cli_simulate_exact_needs_horizon PROPERTIES PASS_REGULAR_EXPRESSION "error: simulate: --method exact needs --horizon")
add_test(NAME cli_simulate_bad_method COMMAND ${_ex_cli} simulate --model ${_ex_model} --deals ${_ex_deals}
  --horizon 90 --method fast)
set_tests_properties(cli_simulate_bad_method PROPERTIES PASS_REGULAR_EXPRESSION "--method.*fast|fast.*--method|method")
