// pipecast fuzz target: the history readers (history.hpp, crm_import.hpp) and the fit
// (estimation.hpp).
//
// Input: one options byte (bit 0: the branched model, bits 1-2: the dwell choice aic / km /
// lognormal / weibull, bit 3: an as-of date, bit 4: skip bad rows, bit 5: a 90-day half-life,
// bits 6-7: the encoding), then the file's bytes, read in the detected format (visit log,
// stage changes, Salesforce, HubSpot, opportunity table) and fitted as `pipecast fit` does,
// with small iteration limits so that one execution stays fast. Refusing the input with a
// pipecast::error is the expected outcome; a crash, a sanitizer report, a hang or any other
// exception is a finding. A fitted model that the fit accepts must write out and load back.
#include <pipecast/data/history.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/io/crm_import.hpp>
#include <pipecast/io/model_json.hpp>

#include "fuzz_options.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const pipecast_fuzz::input input = pipecast_fuzz::split(data, size);
    pipecast::import_options io;
    io.history.source = "<fuzz>";
    io.history.skip_bad_rows = (input.options & 16u) != 0;
    if (input.options & 8u) io.history.as_of = "2023-06-30";
    io.encoding = pipecast_fuzz::encoding_of(input.options);

    pipecast::fit_options fo;
    fo.kind = (input.options & 1u) ? pipecast::model_kind::branched : pipecast::model_kind::classic;
    static constexpr pipecast::dwell_choice choices[] = {pipecast::dwell_choice::aic, pipecast::dwell_choice::kaplan_meier,
                                                         pipecast::dwell_choice::lognormal, pipecast::dwell_choice::weibull};
    fo.dwell = choices[(input.options >> 1) & 3u];
    if (input.options & 32u) fo.half_life = 90.0;
    fo.max_iterations = 20;
    fo.em_max_iterations = 20;

    std::optional<pipecast::model> m;
    try {
        const pipecast::import_result r =
            pipecast::import_history_text(pipecast::detail::to_utf8(input.bytes, io.encoding, io.history.source), io);
        fo.won = pipecast::won_outcomes(r.log, io.history);
        m = pipecast::to_model(pipecast::fit_history(r.log, fo));
    } catch (const pipecast::error&) {
        return 0; // refused with a message: the expected outcome for bad input
    }
    std::ostringstream out;
    pipecast::write_model(out, *m);
    std::istringstream back(out.str());
    try {
        (void)pipecast::read_model(back, "<fuzz: fitted model>");
    } catch (const pipecast::error& e) {
        std::fprintf(stderr, "a fitted model does not load back once written: %s\n%s\n", e.what(), out.str().c_str());
        std::abort();
    }
    return 0;
}
