// Tutorial 5: fit a model from a CRM history and list the stale deals.
// fit_history() with model_kind::branched estimates each stage's exits as branches (their
// probabilities and dwell times) and a stalled share from the visit log
// (examples/data/crm4_sample_history.csv: a fifth of the deals of the bundled crm4
// scenario); compute_kpis() then scores the deals still open at the log's end. A deal
// is stale when the model says it has likely stalled (P(stalled | stage, age) >= 0.5) or it
// has sat in its stage longer than any deal that went on to win.
#include <pipecast/data/history.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/kpi.hpp>

#include <algorithm>
#include <cstdio>

int main() {
    using namespace pipecast;
    const visit_log log = load_history(PIPECAST_EXAMPLES_DIR "/data/crm4_sample_history.csv");
    fit_options fo;
    fo.kind = model_kind::branched; // per-exit branches and a stalled share (the CLI's default)
    const history_fit fit = fit_history(log, fo);
    const kpi_report k = compute_kpis(log, fit);
    std::printf("%zu deals: %zu won, %zu lost, %zu open; win rate %.3f\n", k.deals, k.won, k.lost, k.open, k.win_rate);
    std::printf("%zu stale deals, likeliest stalled first:\n", k.stale.size());
    std::printf("%-10s %-14s %8s %12s %8s\n", "deal", "stage", "age", "P(stalled)", "P(win)");
    for (std::size_t i = 0; i < std::min<std::size_t>(10, k.stale.size()); ++i) {
        const stale_deal& d = k.stale[i];
        std::printf("%-10s %-14s %8.1f %12.3f %8.3f\n", d.id.c_str(), d.stage.c_str(), d.age, d.stalled_probability,
                    d.win_probability);
    }
}
