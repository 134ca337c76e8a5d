# CTest cases of hostile input to the CLI (issue 11): bad files and options give a message
# naming what and where and exit status 1; never a crash, an "internal error", a wrapped
# number or a half-written file.
#
# This file has two roles: included from examples/CMakeLists.txt it declares one test per
# case; run with `cmake -P` (script mode) it writes the case's input files into WORK (from
# the shared b2b6 scenario), runs the CLI and checks the exit status and the output.

if(CMAKE_SCRIPT_MODE_FILE)
  # --- script mode: -DCLI=<pipecast> -DCASE=<name> -DWORK=<dir> -DSHARED=<../shared>
  file(REMOVE_RECURSE "${WORK}")
  file(MAKE_DIRECTORY "${WORK}")
  set(_sc "${SHARED}/scenarios")
  file(READ "${_sc}/b2b6.json" b2b6)
  set(deals "${_sc}/b2b6_open_deals.csv")

  # expect(<exit status> <regex> <CLI args>...): runs the CLI; fails on another status, on
  # output (stdout and stderr) that does not match, or on an "internal error".
  function(expect want regex)
    execute_process(COMMAND "${CLI}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
    set(all "${out}${err}")
    string(SUBSTRING "${all}" 0 2000 shown)
    if(all MATCHES "internal error")
      message(FATAL_ERROR "pipecast ${ARGN}: internal error (${rc}): ${shown}")
    endif()
    if(NOT rc STREQUAL "${want}")
      message(FATAL_ERROR "pipecast ${ARGN}: exit status ${rc}, expected ${want}: ${shown}")
    endif()
    if(NOT all MATCHES "${regex}")
      message(FATAL_ERROR "pipecast ${ARGN}: output does not match '${regex}': ${shown}")
    endif()
    set(last_out "${out}" PARENT_SCOPE)
  endfunction()
  # model(<file> <from> <to>): b2b6.json with the first <from> replaced by <to>, in WORK.
  function(model file from to)
    string(FIND "${b2b6}" "${from}" at)
    if(at LESS 0)
      message(FATAL_ERROR "'${from}' is not in b2b6.json")
    endif()
    string(LENGTH "${from}" n)
    string(SUBSTRING "${b2b6}" 0 ${at} head)
    math(EXPR rest "${at} + ${n}")
    string(SUBSTRING "${b2b6}" ${rest} -1 tail)
    file(WRITE "${WORK}/${file}" "${head}${to}${tail}")
  endfunction()
  set(m "${WORK}/m.json")
  set(fc forecast --model ${m} --deals ${deals} --horizon 30)

  if(CASE STREQUAL "deep_name") # 1: a stage name 100,000 arrays deep
    string(REPEAT "[" 100000 open)
    string(REPEAT "]" 100000 close)
    model(m.json "\"Prospecting\"," "${open}${close},")
    expect(1 "m\\.json:7:75: nesting deeper than 64 levels" ${fc})
  elseif(CASE STREQUAL "number_1e400") # 2
    model(m.json "\"mean\": 7" "\"mean\": 1e400")
    expect(1 "m\\.json:7:[0-9]+: number 1e400 is out of the range of a double" ${fc})
  elseif(CASE STREQUAL "model_is_directory") # 2
    expect(1 "is a directory, expected a model file" forecast --model ${WORK} --deals ${deals})
  elseif(CASE STREQUAL "lognormal_sd_1e300") # 2: an error at load naming the stage and field
    model(m.json "\"sd\": 6" "\"sd\": 1e300")
    expect(1 "m\\.json: /stages/2/dwell: stage 'Demo': lognormal dwell: mean 10 with sd 1e\\+300 is too spread" ${fc})
    model(m.json "\"sd\": 6" "\"sd\": 1e150") # large but with a finite variance: the forecast runs
    expect(0 "Won within 30 days" ${fc})
    expect(0 "Monte Carlo" simulate --model ${m} --deals ${deals} --horizon 30 --paths 20)
  elseif(CASE STREQUAL "every_mean_1e-300") # 2
    string(REGEX REPLACE "\"mean\": [0-9.]+" "\"mean\": 1e-300" text "${b2b6}")
    file(WRITE "${m}" "${text}")
    expect(0 "Won within 30 days" ${fc})
    expect(0 "Monte Carlo" simulate --model ${m} --deals ${deals} --horizon 30 --paths 20)
  elseif(CASE STREQUAL "duplicate_key") # 3: a second Prospecting row
    model(m.json "\"Prospecting\":   {\"Qualification\": 0.40, \"Lost\": 0.60},"
          "\"Prospecting\":   {\"Qualification\": 0.40, \"Lost\": 0.60},\n    \"Prospecting\": {\"Qualification\": 1.0},")
    expect(1 "m\\.json:16:5: /transitions/Prospecting: duplicate key 'Prospecting'" ${fc})
  elseif(CASE STREQUAL "fit_out_keeps_file") # 4: a failing fit leaves --out as it was
    file(WRITE "${WORK}/existing.json" "keep")
    file(WRITE "${WORK}/h.csv" "deal_id,stage,entered,exited,next_stage,amount\nA,Lead,5,2,Won,1\n")
    expect(1 "h\\.csv:2:4" fit --history ${WORK}/h.csv --out ${WORK}/existing.json)
    file(READ "${WORK}/existing.json" kept)
    if(NOT kept STREQUAL "keep")
      message(FATAL_ERROR "existing.json was changed: '${kept}'")
    endif()
  elseif(CASE STREQUAL "fit_out_not_utf8_name") # 4: a history file name that is not UTF-8
    string(ASCII 255 ff)
    set(h "${WORK}/h${ff}.csv")
    file(COPY_FILE "${_sc}/b2b6_history.csv" "${h}")
    file(WRITE "${WORK}/existing.json" "keep")
    expect(0 "" fit --history ${h} --as-of 730 --out ${WORK}/existing.json)
    expect(0 "Pipeline forecast" forecast --model ${WORK}/existing.json --deals ${deals})
    file(GLOB left "${WORK}/existing.json.tmp*")
    if(left)
      message(FATAL_ERROR "temporary files left: ${left}")
    endif()
    expect(1 "--stage-map: .* is not valid UTF-8" fit --history ${h} --stage-map "Lead=L${ff}" --out ${WORK}/existing.json)
  elseif(CASE STREQUAL "amount_1e19") # 6: printed, not 0
    file(WRITE "${WORK}/d.csv" "id,stage,amount,age\nA,Proposal,1e19,1\n")
    expect(0 "Total +1 +1\\.000e\\+19" forecast --model ${_sc}/b2b6.json --deals ${WORK}/d.csv)
  elseif(CASE STREQUAL "amount_sum_inf") # 6
    file(WRITE "${WORK}/d.csv" "id,stage,amount,age\nA,Proposal,1e308,1\nB,Proposal,1e308,2\n")
    expect(1 "d\\.csv:3:3: column 'amount': the amounts' sum overflows" simulate --model ${_sc}/b2b6.json
           --deals ${WORK}/d.csv --paths 10)
  elseif(CASE STREQUAL "json_null") # 6
    model(m.json "\"mean\": 7" "\"mean\": null")
    expect(1 "m\\.json: /stages/0/dwell/mean: expected a number, got null" ${fc})
  elseif(CASE STREQUAL "funnel_quota_1e308") # 6
    expect(0 "quota 1\\.000e\\+308 USD" funnel -m ${_sc}/b2b6.json -q 1e308 -p 90)
  elseif(CASE STREQUAL "paths_minus_1") # 11
    expect(1 "--paths: expected a whole number >= 1, got '-1'" simulate --model ${_sc}/b2b6.json --deals ${deals}
           --paths -1)
  elseif(CASE STREQUAL "seed_minus_1") # 11
    expect(1 "--seed: expected a whole number >= 0, got '-1'" simulate --model ${_sc}/b2b6.json --deals ${deals}
           --seed -1)
    expect(1 "--seed: expected a whole number >= 0, got 18446744073709551616" backtest
           --history ${_sc}/b2b6_history.csv --seed 18446744073709551616)
  elseif(CASE STREQUAL "stage_named_like_outcome") # 11
    model(m.json "\"name\": \"Demo\"" "\"name\": \"Won\"")
    expect(1 "m\\.json: /stages/2/name: stage 'Won' has the name of an outcome" ${fc})
  elseif(CASE STREQUAL "gamma_negative_scale") # 11
    model(m.json "\"shape\": 2.0, \"mean\": 14" "\"shape\": 2.0, \"scale\": -7")
    expect(1 "/stages/1/dwell/scale: stage 'Qualification': gamma dwell: scale must be positive and finite, got -7" ${fc})
  elseif(CASE STREQUAL "history_time_1e308") # 11
    file(STRINGS "${_sc}/b2b6_history.csv" lines LIMIT_COUNT 400)
    list(JOIN lines "\n" hist)
    string(APPEND hist "\n")
    file(WRITE "${WORK}/h.csv" "${hist}X1,Prospecting,0,1e308,Lost,10\n")
    expect(1 "h\\.csv:[0-9]+:4: column 'exited': time '1e308' is out of range" fit --history ${WORK}/h.csv)
    file(WRITE "${WORK}/h.csv" "${hist}X1,Prospecting,-1e308,1,Lost,10\n")
    expect(1 "h\\.csv:[0-9]+:3: column 'entered': time '-1e308' is out of range" kpi --history ${WORK}/h.csv)
  elseif(CASE STREQUAL "empty_and_binary_files")
    file(WRITE "${m}" "")
    expect(1 "m\\.json:1:1: empty file" ${fc})
    string(ASCII 1 2 3 255 254 128 ff)
    file(WRITE "${m}" "${ff}")
    expect(1 "m\\.json:1:1: malformed JSON" ${fc})
    file(WRITE "${WORK}/d.csv" "")
    expect(1 "d\\.csv: empty file" forecast --model ${_sc}/b2b6.json --deals ${WORK}/d.csv)
    file(WRITE "${WORK}/d.csv" "id,stage,amount\nA,Proposal,${ff}\n")
    expect(1 "d\\.csv:2:[0-9]+: invalid UTF-8" forecast --model ${_sc}/b2b6.json --deals ${WORK}/d.csv)
    file(WRITE "${WORK}/h.csv" "")
    expect(1 "h\\.csv: empty file" fit --history ${WORK}/h.csv)
  elseif(CASE STREQUAL "bom_model_and_deals") # a UTF-8 byte-order mark is fine
    string(ASCII 239 187 191 bom)
    file(WRITE "${m}" "${bom}${b2b6}")
    file(WRITE "${WORK}/d.csv" "${bom}id,stage,amount,age\nA,Proposal,1000,1\n")
    expect(0 "Total +1 +1,000" forecast --model ${m} --deals ${WORK}/d.csv)
  elseif(CASE STREQUAL "huge_and_nan_numbers")
    file(WRITE "${WORK}/d.csv" "id,stage,amount,age\nA,Proposal,1000,1e308\n")
    expect(1 "d\\.csv:2:4: column 'age': age 1e\\+308 is out of range" forecast --model ${_sc}/b2b6.json --deals ${WORK}/d.csv)
    foreach(v NaN inf -inf -5 "(5)")
      file(WRITE "${WORK}/d.csv" "id,stage,amount,age\nA,Proposal,${v},1\n")
      expect(1 "d\\.csv:2:3: column 'amount'" forecast --model ${_sc}/b2b6.json --deals ${WORK}/d.csv)
    endforeach()
    expect(1 "quota" funnel -m ${_sc}/b2b6.json -q nan -p 90)
    expect(1 "--threads: expected a whole number in \\[0, 4096\\], got 99999" simulate --model ${_sc}/b2b6.json
           --deals ${deals} --threads 99999)
  elseif(CASE STREQUAL "very_long_line")
    string(REPEAT "x" 5000000 long)
    file(WRITE "${WORK}/d.csv" "id,stage,amount\nA,${long}\n")
    expect(1 "d\\.csv:2: line longer than" forecast --model ${_sc}/b2b6.json --deals ${WORK}/d.csv)
  elseif(CASE STREQUAL "gamma_extreme_shapes") # shape 1e-300 hung simulate, 1e300 funnel --deals
    set(sim simulate --model ${m} --deals ${deals} --horizon 90 --paths 10)
    set(fun funnel -m ${m} -q 1e6 -p 90 -d ${deals})
    foreach(k 1e-300 1e-7 1e12 1e300)
      model(m.json "\"shape\": 2.0, \"mean\": 14" "\"shape\": ${k}, \"mean\": 14")
      expect(1 "m\\.json: /stages/1/dwell[a-z/]*: stage 'Qualification': gamma dwell: shape .* is outside \\[1e-06, 1e\\+06\\]" ${sim})
      expect(1 "gamma dwell: shape .* is outside" ${fun})
    endforeach()
    foreach(k 1e-6 1e6) # the bounds themselves work
      model(m.json "\"shape\": 2.0, \"mean\": 14" "\"shape\": ${k}, \"mean\": 14")
      expect(0 "Monte Carlo" ${sim})
      expect(0 "Ideal funnel" ${fun})
      expect(0 "Won within 30 days" ${fc})
    endforeach()
  elseif(CASE STREQUAL "weibull_extreme_shapes") # once listed as hanging funnel; they finish
    foreach(k 0.01 1e300)
      model(m.json "\"shape\": 1.5, \"mean\": 18" "\"shape\": ${k}, \"mean\": 18")
      expect(0 "Ideal funnel" funnel -m ${m} -q 1e6 -p 90 -d ${deals})
      expect(0 "Monte Carlo" simulate --model ${m} --deals ${deals} --horizon 90 --paths 10)
    endforeach()
  elseif(CASE STREQUAL "funnel_period_1e308") # named win_time_distribution's horizon, inf
    expect(1 "ideal_funnel: period 1e\\+308 is too long" funnel -m ${_sc}/b2b6.json -q 1e6 -p 1e308)
    expect(0 "Ideal funnel" funnel -m ${_sc}/b2b6.json -q 1e6 -p 1e307)
  elseif(CASE STREQUAL "funnel_quota_1e19") # whole deals were 606,530,659,106,103
    # 1e19 / (10000 e^0.5) = 606530659712633.4: its next integer
    expect(0 "deals to win per period: 606530659712633\\.[34][0-9] \\(606,530,659,712,634 whole deals\\)"
           funnel -m ${_sc}/b2b6.json -q 1e19 -p 90)
  elseif(CASE STREQUAL "deal_size_median_1e300") # accepted: simulate's sd of the won value was inf
    model(m.json "\"median\": 10000" "\"median\": 1e300")
    expect(1 "m\\.json: /deal_size: .*median 1e\\+300 with sigma 1 gives amounts .*above 1e\\+100" ${fc})
    model(m.json "\"median\": 10000" "\"median\": 1e90") # e^6.5 = 665: 6.65e92, accepted
    expect(0 "Monte Carlo" simulate --model ${m} --deals ${deals} --horizon 90 --paths 10 --model-arrivals)
  elseif(CASE STREQUAL "empirical_dwell_atom_1e30") # clang UBSan: the atom's grid cell overflowed a long
    model(m.json "{\"dist\": \"lognormal\",   \"mean\": 10, \"sd\": 6}"
          "{\"dist\": \"empirical\", \"values\": [2, 1e30], \"weights\": [0.999, 0.001]}")
    expect(0 "Won within 30 days" ${fc})
    expect(0 "Monte Carlo" simulate --model ${m} --deals ${deals} --horizon 30 --paths 20)
  else()
    message(FATAL_ERROR "unknown case ${CASE}")
  endif()
  return()
endif()

# --- declaring the tests ------------------------------------------------------------------
foreach(_case deep_name number_1e400 model_is_directory lognormal_sd_1e300 every_mean_1e-300 duplicate_key
              fit_out_keeps_file fit_out_not_utf8_name amount_1e19 amount_sum_inf json_null funnel_quota_1e308
              paths_minus_1 seed_minus_1 stage_named_like_outcome gamma_negative_scale history_time_1e308
              empty_and_binary_files bom_model_and_deals huge_and_nan_numbers very_long_line
              gamma_extreme_shapes weibull_extreme_shapes funnel_period_1e308 funnel_quota_1e19
              deal_size_median_1e300 empirical_dwell_atom_1e30)
  add_test(NAME cli_hostile_${_case} COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:pipecast_cli> -DCASE=${_case}
    -DWORK=${CMAKE_CURRENT_BINARY_DIR}/hostile/${_case} -DSHARED=${PIPECAST_SHARED_DIR} -P ${CMAKE_CURRENT_LIST_FILE})
endforeach()
