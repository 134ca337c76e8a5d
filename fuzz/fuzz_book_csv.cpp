// pipecast fuzz target: the CSV book reader (book_io.hpp).
//
// Input: one options byte (bit 0: an as-of date, bit 1: decimal comma, bits 2-3: format
// automatic / salesforce / hubspot / automatic, bit 4: a date pattern, bit 5: exchange rates,
// bits 6-7: the encoding), then the file's bytes, converted to UTF-8 and read against the
// bundled example model's stages, as `pipecast forecast --deals FILE` reads them. Refusing
// the input with a pipecast::error is the expected outcome for bad text; a crash, a sanitizer
// report, a hang or any other exception is a finding. A book that loads must hold finite,
// non-negative amounts and ages.
#include <pipecast/detail/encoding.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>

#include "fuzz_options.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace {

/// The stages of examples/data/saas.json (six open stages, Won, Lost, Disqualified).
const pipecast::stage_graph& graph() {
    static const pipecast::model m = [] {
        std::istringstream in(R"({
  "name": "saas-midmarket", "time_unit": "day", "currency": "EUR",
  "stages": [
    {"name": "Prospecting",   "dwell": {"dist": "exponential", "mean": 9}},
    {"name": "Qualification", "dwell": {"dist": "gamma",       "shape": 2.0, "mean": 12}},
    {"name": "Discovery",     "dwell": {"dist": "lognormal",   "mean": 15, "sd": 8}},
    {"name": "Demo",          "dwell": {"dist": "gamma",       "shape": 3.0, "mean": 10}},
    {"name": "Proposal",      "dwell": {"dist": "weibull",     "shape": 1.8, "mean": 20}},
    {"name": "Negotiation",   "dwell": {"dist": "weibull",     "shape": 1.5, "mean": 16}}
  ],
  "outcomes": {"won": "Won", "lost": "Lost", "other": [{"name": "Disqualified", "win": false}]},
  "transitions": {
    "Prospecting":   {"Qualification": 0.45, "Lost": 0.25, "Disqualified": 0.30},
    "Qualification": {"Discovery": 0.60, "Demo": 0.05, "Lost": 0.15, "Disqualified": 0.20},
    "Discovery":     {"Demo": 0.70, "Qualification": 0.05, "Lost": 0.25},
    "Demo":          {"Proposal": 0.65, "Discovery": 0.05, "Lost": 0.30},
    "Proposal":      {"Negotiation": 0.70, "Demo": 0.05, "Lost": 0.25},
    "Negotiation":   {"Won": 0.78, "Proposal": 0.04, "Lost": 0.18}
  }
})");
        return pipecast::read_model(in, "saas.json");
    }();
    return m.graph;
}

const std::vector<pipecast::fx_rate>& rates() {
    static const std::vector<pipecast::fx_rate> r = [] {
        std::istringstream in("currency,rate,date\nUSD,0.92,2024-01-01\nUSD,0.95,2024-06-01\n$,0.93,\nGBP,1.17,2024-03-31\n");
        return pipecast::read_fx_rates(in, "fx.csv");
    }();
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const pipecast_fuzz::input input = pipecast_fuzz::split(data, size);
    pipecast::book_csv_options opt;
    opt.source = "<fuzz>";
    if (input.options & 1u) opt.as_of = "2024-06-30";
    opt.decimal_comma = (input.options & 2u) != 0;
    static constexpr pipecast::history_format formats[] = {pipecast::history_format::automatic, pipecast::history_format::salesforce,
                                                           pipecast::history_format::hubspot, pipecast::history_format::automatic};
    opt.format = formats[(input.options >> 2) & 3u];
    if (input.options & 16u) opt.date_format = "%d/%m/%Y";
    if (input.options & 32u) opt.fx = rates();
    try {
        std::istringstream in(pipecast::detail::to_utf8(input.bytes, pipecast_fuzz::encoding_of(input.options), opt.source));
        const pipecast::book b = pipecast::read_book_csv(in, graph(), opt);
        for (std::size_t i = 0; i < b.size(); ++i) {
            const double amount = b.amounts()[i], age = b.ages()[i];
            if (!(std::isfinite(amount) && amount >= 0.0 && std::isfinite(age) && age >= 0.0)) {
                std::fprintf(stderr, "deal '%s' accepted with amount %g and age %g\n", b.ids()[i].c_str(), amount, age);
                std::abort();
            }
        }
    } catch (const pipecast::error&) {
        // refused with a message: the expected outcome for bad input
    }
    return 0;
}
