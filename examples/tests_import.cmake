# CLI tests of reading CRM exports (issue 10; docs/import.md): the format read is named on
# stderr, the bundled crm4 exports load directly, and a misspelt outcome is an error.
set(_imp_sc "${PIPECAST_SHARED_DIR}/scenarios")
set(_imp_data "${CMAKE_CURRENT_SOURCE_DIR}/../tests/data")

add_test(NAME cli_import_salesforce COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_imp_sc}/crm4_salesforce.csv)
set_tests_properties(cli_import_salesforce PROPERTIES
  PASS_REGULAR_EXPRESSION "crm4_salesforce\\.csv as salesforce \\(25324 rows, 8801 deals, [0-9]+ visits\\)")

add_test(NAME cli_import_zh_gb18030 COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_imp_sc}/crm4_zh_gb18030.csv
  --encoding gb18030 --map "deal_id=商机编号,stage=阶段,changed_at=变更时间,amount=金额,owner=负责人")
set_tests_properties(cli_import_zh_gb18030 PROPERTIES
  PASS_REGULAR_EXPRESSION "crm4_zh_gb18030\\.csv as changes \\(25324 rows, 8801 deals, [0-9]+ visits, gb18030\\)")

add_test(NAME cli_import_hubspot COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_imp_sc}/crm4_hubspot.csv --format hubspot)
set_tests_properties(cli_import_hubspot PROPERTIES
  PASS_REGULAR_EXPRESSION "as hubspot \\(8801 rows, 8801 deals, [0-9]+ visits, 162 deals with back-moves HubSpot did not keep\\)")

add_test(NAME cli_import_gb18030_as_utf8 COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_imp_sc}/crm4_zh_gb18030.csv)
set_tests_properties(cli_import_gb18030_as_utf8 PROPERTIES
  PASS_REGULAR_EXPRESSION "crm4_zh_gb18030\\.csv:1:[0-9]+: invalid UTF-8")

add_test(NAME cli_import_misspelt_outcome COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_imp_data}/import_misspelt_outcome.csv)
set_tests_properties(cli_import_misspelt_outcome PROPERTIES
  PASS_REGULAR_EXPRESSION "import_misspelt_outcome\\.csv:5:2: stage 'Wonn' ends deals")

add_test(NAME cli_import_stage_map COMMAND $<TARGET_FILE:pipecast_cli> fit --history ${_imp_data}/import_misspelt_outcome.csv
  --stage-map Wonn=Won)
set_tests_properties(cli_import_stage_map PROPERTIES PASS_REGULAR_EXPRESSION "as changes \\(6 rows, 3 deals, 3 visits\\)")
