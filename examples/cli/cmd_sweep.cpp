// pipecast sweep — what-if scenarios of one model over one book, each simulated with the same
// seed (common random numbers), compared with a base scenario:
//
//   pipecast sweep --model M.json --deals D.csv --scenarios S.json --horizon H [--paths N]
//                  [--seed S] [--quota Q]... [--threads T] [--no-arrivals] [--json]
//
// S.json: {"scenarios": [{"name": "base"}, {"name": "faster", "dwell_scale": 0.8},
// {"name": "better", "win_odds_scale": 1.2}, {"name": "hiring", "arrival_scale": 1.5},
// {"name": "bigger", "deal_size_scale": 1.1},
// {"name": "closing", "stages": {"Negotiation": {"win_odds_scale": 1.5, "dwell_scale": 0.9}}}]}
// (docs/sweep.md: the levers' maths). The model's arrival process is simulated when it has
// one (--no-arrivals leaves it out); its overdispersion, when it has one, is the per-path
// shock, as in `pipecast simulate`.
//
// Runs on threads here; the same sweep split across MPI ranks is examples/mpi/sweep_mpi.cpp
// (`pipecast-sweep-mpi`, built with -DPIPECAST_WITH_MPI=ON), whose report is bit-identical.
// The JSON keys of each scenario (name, changes, mean, stderr, sd, quantiles.{p10,p50,p90},
// p_quota [{quota, p}], won_count, difference.{mean, stderr, sd, quantiles}, correlation,
// capped_deal_paths) are an interface for downstream tools.
#include "cli_common.hpp"
#include "sweep_command.hpp"

#include <chrono>
#include <iostream>
#include <memory>

namespace pipecast_cli {
namespace {

void run_sweep(const pipecast_sweep_cli::sweep_args& a) {
    const auto start = std::chrono::steady_clock::now();
    const pipecast::model m = load_model_file(a.model_path);
    const pipecast::book b = load_book_input(a.deals_path, m.graph, pipecast_sweep_cli::book_options_of(a, m), book_input());
    const pipecast::sweep sw(m, b, pipecast::load_scenarios(a.scenarios_path), pipecast_sweep_cli::options_of(a));
    const pipecast::sweep_result r = sw.run();
    pipecast_sweep_cli::run_info info;
    info.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    info.threads = a.threads;
    pipecast_sweep_cli::report(std::cout, sw, r, m, a, info);
}

} // namespace

void add_sweep_command(CLI::App& app) {
    auto args = std::make_shared<pipecast_sweep_cli::sweep_args>();
    CLI::App* cmd = app.add_subcommand(
        "sweep", "What-if scenarios (dwell, win odds, arrivals, deal size, per stage) simulated with common random "
                 "numbers: won value, quantiles, P(quota) and the difference to the base per scenario");
    pipecast_sweep_cli::add_sweep_options(cmd, *args);
    add_input_options(cmd, book_input());
    cmd->callback([args] { run_sweep(*args); });
}

} // namespace pipecast_cli
