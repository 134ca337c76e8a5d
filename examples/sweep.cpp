// Scenario sweep: what-ifs of the bundled SaaS model simulated with common random numbers,
// then the same sweep split into pieces as three processes (e.g. MPI ranks) would run it and
// combined: bit-identical. Exits 1 if the split result differs. docs/sweep.md, docs/scaling.md.
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/simulation/sweep.hpp>

#include <cstdio>
#include <vector>

int main() {
    const auto model = pipecast::load_model(PIPECAST_EXAMPLES_DIR "/data/saas.json");
    const auto deals = pipecast::load_book_csv(PIPECAST_EXAMPLES_DIR "/data/saas_deals.csv", model.graph);
    pipecast::sweep_options o;
    o.horizon = 90;
    o.paths = 2000;
    o.quotas = {1.5e6};
    const pipecast::sweep sweep(model, deals, pipecast::load_scenarios(PIPECAST_EXAMPLES_DIR "/data/saas_scenarios.json"), o);
    const pipecast::sweep_result r = sweep.run(); // every scenario here, on all cores

    std::printf("%-8s %12s %12s %10s %14s\n", "scenario", "mean won", "P50", "P(quota)", "vs base (se)");
    for (const auto& s : r.scenarios)
        std::printf("%-8s %12.0f %12.0f %9.1f%% %+9.0f (%.0f)\n", s.name.c_str(), s.won_value.mean,
                    s.won_value.quantiles[1], 100.0 * s.won_value.p_quota[0], s.difference.mean,
                    s.difference.standard_error);

    // The same work as 3 processes would share it: each computes its pieces, one combines.
    std::vector<pipecast::sweep_piece> pieces;
    for (std::size_t rank = 0; rank < 3; ++rank)
        for (const pipecast::sweep_work& w : pipecast::sweep_share(sweep.size(), o.paths, 3, rank))
            pieces.push_back(sweep.run_piece(w));
    const pipecast::sweep_result split = sweep.combine(pieces);
    bool same = true;
    for (std::size_t i = 0; i < r.scenarios.size(); ++i)
        same = same && split.scenarios[i].won_value.mean == r.scenarios[i].won_value.mean &&
               split.scenarios[i].won_value.quantiles == r.scenarios[i].won_value.quantiles &&
               split.scenarios[i].difference.standard_error == r.scenarios[i].difference.standard_error;
    std::printf("split into 3 processes: %s\n", same ? "bit-identical" : "DIFFERENT");
    return same ? 0 : 1;
}
