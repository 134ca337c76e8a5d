#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (small valid files cut from examples/data
and ../shared/scenarios, plus deep nesting, huge numbers, long lines and odd bytes).

Run from the repository root: python3 fuzz/make_corpus.py. The corpora are checked in; this
script documents how they were made. The CSV targets take one options byte first (see
fuzz/fuzz_options.hpp)."""
import os
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
shared = root.parent / "shared" / "scenarios"
out = root / "fuzz" / "corpus"


def write(target, name, data, options=None):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if options is not None:
        data = bytes([options]) + data
    (d / name).write_bytes(data)


def head(path, lines):
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(lines))


# --- model JSON -------------------------------------------------------------------------
m = "model_json"
write(m, "saas.json", (root / "examples/data/saas.json").read_bytes())
write(m, "b2b6.json", (shared / "b2b6.json").read_bytes())
for f in ["forecast_bad_model.json", "forecast_invalid_model.json"]:
    write(m, f, (root / "tests/data" / f).read_bytes())
write(m, "branched.json", """{"format_version": 2,
 "stages": [
   {"name": "Qualification", "dwell": {"dist": "gamma", "shape": 2, "mean": 10}},
   {"name": "Negotiation", "branches": [
     {"to": "Won",      "probability": 0.665, "dwell": {"dist": "gamma", "shape": 3, "mean": 15}},
     {"to": "Proposal", "probability": 0.0475, "dwell": {"dist": "weibull", "shape": 2, "scale": 10}},
     {"to": "Lost",     "probability": 0.2375, "dwell": {"dist": "lognormal", "mu": 3.5, "sigma": 0.7}},
     {"to": "Lost",     "probability": 0.05, "dwell": {"dist": "exponential", "rate": 0.003}, "stalled": true}]},
   {"name": "Proposal", "dwell": {"dist": "empirical", "values": [3, 1], "weights": [1, 3]}}],
 "outcomes": {"won": "Won", "lost": "Lost"},
 "transitions": {"Qualification": {"Negotiation": 0.55, "Lost": 0.45}, "Proposal": {"Negotiation": 0.5, "Lost": 0.5}},
 "overdispersion": {"sigma": 0.35},
 "deal_size": {"dist": "empirical", "values": [1200, 3500, 8000], "weights": [0.5, 0.3, 0.2]},
 "arrivals": {"stage": "Qualification", "period": 13, "rates": [30, 40, 55, 35]}}
""")
write(m, "funnel.json", """{"time_unit": "week",
  "stages": [
    {"name": "Lead",     "win_rate": 0.2, "dwell": {"dist": "exponential", "mean": 5}},
    {"name": "Demo",     "win_rate": 0.4, "dwell": {"dist": "fixed", "value": 10}},
    {"name": "Signing",  "win_rate": 1.0, "dwell": {"dist": "empirical", "samples": [1, 2, 2, 7]}}],
  "outcomes": {"won": "Signed", "lost": "Dropped"},
  "deal_size": {"dist": "lognormal", "mean": 16487.2, "sigma": 1.0}}
""")
write(m, "conversion.json", """{"stages": [
    {"name": "A", "conversion": 0.5, "dwell": {"dist": "gamma", "shape": 0.7, "scale": 3.0}},
    {"name": "B", "conversion": 0.25, "dwell": {"dist": "weibull", "shape": 2.5, "mean": 7.0}}],
  "outcomes": {"won": "W", "lost": "L"}}
""")
# deep nesting: the stage name a 2,000-deep array (issue 11 #1 used 100,000)
write(m, "deep_name.json", '{"stages": [{"name": ' + "[" * 2000 + "]" * 2000 +
      ', "dwell": {"dist": "exponential", "mean": 1}}], "outcomes": {"won": "W", "lost": "L"}, '
      '"transitions": {"A": {"W": 1}}}')
write(m, "deep_object.json", '{"stages": ' + '{"a":' * 1500 + "1" + "}" * 1500 + "}")
# huge and tiny numbers
write(m, "huge_numbers.json", """{"stages": [
    {"name": "A", "dwell": {"dist": "lognormal", "mean": 1e-300, "sd": 1e300}},
    {"name": "B", "dwell": {"dist": "gamma", "shape": 1e400, "mean": -0.0}},
    {"name": "C", "dwell": {"dist": "weibull", "shape": 5e-324, "scale": 1.7976931348623157e308}}],
  "outcomes": {"won": "W", "lost": "L"},
  "transitions": {"A": {"B": 0.5, "W": 0.5}, "B": {"C": 1e-17, "L": 1}, "C": {"W": 18446744073709551616, "L": -1}},
  "deal_size": {"dist": "lognormal", "median": 1e19, "sigma": 1e-9},
  "arrivals": {"stage": "A", "rate": 1e12},
  "overdispersion": {"sigma": 1000}}
""")
# duplicate keys, a name like an outcome, unicode escapes, a BOM, a long line
write(m, "duplicate_keys.json", """{"stages": [{"name": "Prospecting", "dwell": {"dist": "exponential", "mean": 7, "mean": 8}}],
  "outcomes": {"won": "Won", "lost": "Lost"},
  "transitions": {"Prospecting": {"Won": 0.08, "Lost": 0.92}, "Prospecting": {"Won": 1}}}
""")
write(m, "unicode.json", "\ufeff" + """{"name": "\\u8d62\\u5355 \\ud83d\\ude00 \\u0000", "currency": "\u00a5",
  "stages": [{"name": "\u8d44\u683c\u786e\u8ba4", "dwell": {"dist": "exponential", "mean": 2}},
             {"name": "Won", "dwell": {"dist": "exponential", "mean": 2}}],
  "outcomes": {"won": "\u8d62\u5355", "lost": "\u4e22\u5355"},
  "transitions": {"\u8d44\u683c\u786e\u8ba4": {"\u8d62\u5355": 0.3, "\u4e22\u5355": 0.7}}}
""")
write(m, "long_line.json", '{"name": "' + "x" * 3000 + '", "stages": [{"name": "' + "S" * 1000 +
      '", "dwell": {"dist": "exponential", "mean": 1}}], "outcomes": {"won": "W", "lost": "L"}}')
write(m, "wrong_types.json", """{"stages": [{"name": 7, "dwell": "fast"}, {"name": null, "dwell": {"dist": ["gamma"]}}],
  "outcomes": [1, 2], "transitions": {"7": {"W": "0.5"}}, "deal_size": null, "arrivals": {"stage": 3, "rates": [true]}}
""")
write(m, "truncated.json", (shared / "b2b6.json").read_bytes()[:700])

# --- CSV book (options byte first) -----------------------------------------------------
b = "book_csv"
AS_OF, COMMA, SF, HS, PATTERN, FX = 1, 2, 4, 8, 16, 32
GB18030, W1252, UTF16 = 64, 128, 192
write(b, "saas_deals.csv", head(root / "examples/data/saas_deals.csv", 30), 0)
write(b, "entered.csv", (root / "tests/data/forecast_entered.csv").read_bytes(), AS_OF)
for f in ["forecast_bad_amount.csv", "forecast_bad_stage.csv", "forecast_mixed_currency.csv"]:
    write(b, f, (root / "tests/data" / f).read_bytes(), 0)
write(b, "fx.csv", "id;stage;amount;currency;entered\nA;Demo;$1.200,50;USD;2024-05-01\nB;Proposal;\u00a3900;GBP;2024-06-01\n"
      "C;Negotiation;\"1.000.000,00 EUR\";;2024-06-30\n", AS_OF | COMMA | FX)
write(b, "pattern.csv", "deal_id\tstage\tvalue\tstage_entered\towner\tprobability\nX1\tDemo\t10\t01/06/2024\tAnn\t50%\n"
      "X2\tDiscovery\t0\t30/06/2024\t\t0.1\n", AS_OF | PATTERN)
write(b, "salesforce.csv", '"Opportunity ID","Stage","Amount","Age","Close Date","Probability (%)","Opportunity Owner",'
      '"Forecast Category"\n"0061","Demo","1,500","12","2024-09-30","40","Ann","Pipeline"\n'
      '"0062","Closed Won","9000","40","2024-05-01","100","Bob","Closed"\n', SF)
write(b, "hubspot.csv", 'Record ID,Deal Name,Deal Stage,Amount,Is Closed,"Date entered ""Demo (Sales Pipeline)""",'
      '"Date entered ""Proposal (Sales Pipeline)"""\n1,Acme,Demo,100,false,2024-06-01 10:00,\n'
      '2,Beta,Proposal,2500.5,false,2024-05-01 09:00,2024-06-02 11:30\n3,Gamma,Closed Lost,5,true,,\n', AS_OF | HS)
write(b, "huge_numbers.csv", "id,stage,amount,age,probability\nA,Demo,1e19,1e308,1\nB,Demo,1e308,0,0\n"
      "C,Proposal,1.7976931348623157e308,-0,1e-320\nD,Demo,nan,inf,-1\nE,Demo,0x10,1e400,2\n", 0)
write(b, "long_line.csv", "id,stage,amount\n" + "L" * 3000 + ",Demo,5\nB,Demo," + "9" * 400 + "\n", 0)
write(b, "quotes.csv", 'id,stage,amount,owner\n"A ""1""",Demo,"1,200",\n"B\nmultiline",Demo,3,"unterminated\n', 0)
write(b, "gb18030.csv", "id,stage,amount,owner\nA,Demo,\u00a51200,\u5f20\u4e09\n".encode("gb18030"), GB18030)
write(b, "windows1252.csv", "id;stage;amount;owner\nA;Demo;1.234,50 \u20ac;M\u00fcller\n".encode("cp1252"), W1252 | COMMA)
write(b, "utf16.csv", "\ufeffid,stage,amount\nA,Demo,12\n".encode("utf-16-le"), UTF16)
write(b, "bom_crlf.csv", "\ufeffid,stage,amount,age\r\nA,Prospecting,1,2\r\nB,Won,3,4\r\n", 0)

# --- history + fit (options byte first) -------------------------------------------------
h = "history_fit"
BRANCHED, KM, LOGN, WEIB, HAS_AS_OF, SKIP, HALF = 1, 2, 4, 6, 8, 16, 32
write(h, "b2b6_history.csv", head(shared / "b2b6_history.csv", 40), 0)
write(h, "b2b6_history_branched.csv", head(shared / "b2b6_history.csv", 40), BRANCHED)
write(h, "crm4_history.csv", head(shared / "crm4_history.csv", 30), HAS_AS_OF | KM)
write(h, "crm4_changes.csv", head(shared / "crm4_changes.csv", 40), BRANCHED | HALF)
write(h, "crm4_messy_changes.csv", head(shared / "crm4_messy_changes.csv", 30), SKIP | WEIB)
write(h, "crm4_salesforce.csv", head(shared / "crm4_salesforce.csv", 20), LOGN)
write(h, "crm4_hubspot.csv", head(shared / "crm4_hubspot.csv", 15), BRANCHED)
write(h, "crm4_zh_gb18030.csv", head(shared / "crm4_zh_gb18030.csv", 25), GB18030)
write(h, "history_changes.csv", (root / "tests/data/history_changes.csv").read_bytes(), BRANCHED)
write(h, "history_bad.csv", (root / "tests/data/history_bad.csv").read_bytes(), SKIP)
write(h, "history_segments.csv", (root / "tests/data/history_segments.csv").read_bytes()[:1500], 0)
write(h, "opportunities.csv", "Opportunity ID,Stage,Created Date,Close Date,Amount\nO1,Won,2023-01-01,2023-02-01,100\n"
      "O2,Lost,2023-01-05,2023-03-01,50\nO3,Proposal,2023-02-01,,70\n", 0)
write(h, "huge_times.csv", "deal_id,stage,changed_at,amount\nA,Lead,-1e308,1e308\nA,Won,1e308,1e308\nB,Lead,0,1e19\n"
      "B,Lost,5e-324,nan\nC,Lead,1e400,1\n", 0)
write(h, "long_line.csv", "deal_id,stage,changed_at\n" + "D" * 3000 + ",Lead,1\n" + "D" * 3000 + ",Won,2\n", 0)
write(h, "same_time.csv", "deal_id,stage,changed_at\nA,Lead,1\nA,Demo,1\nA,Won,1\nB,Lead,1\nB,Lead,1\nB,Lost,0\n", BRANCHED)
