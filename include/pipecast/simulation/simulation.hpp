// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/simulation.hpp
/// @brief Monte Carlo simulation of the open book (and optional new arrivals) forward to
/// a horizon: the distribution of won value and won count, by sub-period, per deal and
/// per stage; what-if differences with common random numbers. See docs/simulation.md.
///
/// **Semantics (semi-Markov).** Each open deal starts in its stage with its age a: its
/// first dwell is drawn from the residual distribution T − a | T > a, later stages draw
/// fresh dwells, and at each exit the next stage is drawn from the transition row. A deal
/// is won within the horizon h if it reaches a winning outcome at a time t <= h. Optional
/// Poisson arrivals enter the entry stage at times τ (constant or seasonal rate) with
/// amounts from the deal-size distribution (lognormal or empirical) and are won if
/// τ + (their time to win) <= h. Optional correlation: a per-path shock Z ~ N(0, 1) shifts
/// the log-odds of every stage's forward conversion by σZ (a logit-normal random effect;
/// "forward" = the edges to a winning outcome or to a later open stage), so good and bad
/// quarters hit every deal of the path together.
///
/// **Branched stages** (stage_graph::has_branches()): the engine runs on g.latent(), one
/// state per branch. A book deal of branched stage s and age a starts in branch k with
/// probability g.branch_weights(s, a)[k] = π_k S_k(a) / Σ π_l S_l(a), with that branch's
/// residual dwell; entering a branched stage takes branch k with probability π_k. The
/// shock shifts the log-odds of a branched stage's forward branches (to a win or a later
/// open stage) in π the same way, and a book deal's first-branch weights by the same
/// factor (the posterior of the shocked shares). Results are per observable stage.
///
/// **Probability overrides** (book::probability_overrides(), as in forecast.hpp): a deal
/// with override o is won with probability o (one Philox word, domain 3) and a winner
/// follows the model conditioned on a win (the h-transform of the jump chain by
/// w = P(win | stage): P̃(i→j) = P(i→j) w_j / w_i, losing outcomes 0; dwells unchanged; on
/// a branched graph the h-transform of g.latent(), a winner's first branch drawn with
/// P(k | age) w_k), so P(won within h) = o · P(win within h | stage, age) / P(win | stage,
/// age), the period forecast's rule. A
/// deal in a stage that cannot win (w_s = 0) is never won, as in period_forecast. The
/// correlation shock does not apply to overridden deals. Other deals' streams are unchanged.
///
/// **Random numbers.** Philox4x32-10 keyed by the seed; the counter of every block is
/// (draw block, path, item low word, domain << 24 | item high bits) with domain 0 for book
/// deals (item = deal index), 1 for arrivals (item = arrival number in the path), 2 for
/// per-path numbers (item 0: the shock, item 1: arrival gaps), 3 for the win/lose word of
/// an overridden deal (item = deal index). Each block serves two
/// stage visits (a dwell word and a transition word each). A lane starting in a branched
/// stage chooses its branch by inversion of word 1 of block 0 (its visit-0 transition word)
/// and uses the uniform remainder, rescaled to 32 bits, as that transition word; classic
/// stages use their words exactly as in a model without branches. Results are therefore a
/// function of the seed alone: bit-identical at any thread count, and two models run with
/// the same seed share their random numbers (common random numbers).
///
/// **Determinism of the reductions.** Per-path totals are summed within one task in deal
/// order; per-deal counters are integers (close times in fixed point, 2⁻¹⁶ time units);
/// means are summed over the per-path vector in path order.
///
/// Memory: O(deals · threads + paths · (1 + sub-periods) + bins), never O(deals · paths);
/// on a branched graph also 48 bytes per deal and branch slot (W slots a deal, W = the
/// largest branch count of a stage; choice records padded to 64-byte lines).
///
/// **Limits (hostile input).** Before anything is allocated, simulate() estimates the run
/// (estimate_simulation(): memory, and stage visits from the expected visits to absorption,
/// the horizon and the expected arrivals) and refuses with argument_error a run above
/// options.max_memory_bytes (8 GiB) or options.max_stage_visits (2e11). Every deal-path
/// stops after options.max_path_visits stage visits (10,000; counted as not won and
/// reported in simulation_result::capped_deal_paths), so no path runs unbounded. The shock's
/// σ is at most max_correlation (10). A run is cancelled by options.progress returning
/// false or by options.stop (checked between work units); an exception from the progress
/// callback or a worker stops the others and is rethrown.

#include <pipecast/simulation/detail/engine.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace pipecast {

/// A prepared simulation of one book on one model: the dwell tables, transition rows,
/// per-deal start data (a Boost.Math cdf and survival per aged deal) and branch-choice
/// records are built once here (the 2–5 ms that each simulate() call otherwise spends on
/// b2b6's 10,000 deals) and reused by every run, for what-if sweeps over the run options
/// (horizon, seed, shock σ, per-stage σ, arrivals, quotas, sub-periods, paths).
///
/// **Threads.** The engine is immutable after construction: run() and run_paths() are const
/// and may be called from several threads at once (each call builds its own per-run state
/// and worker scratch); each call also runs options.threads workers of its own.
///
/// **Split runs.** run_paths(o, first, last) runs only the paths [first, last): path p
/// always draws from path p's counter-based Philox streams (whatever the split, thread count
/// or kernel), so pieces computed in other processes (e.g. MPI ranks, each with its own
/// engine) and combined with combine() give the bit-identical result of run(o). The pieces
/// are plain data (simulation_paths) to send back: per-path values and integer per-deal sums.
///
/// **Extending the sweep.** Options that change neither the graph nor the book (a scale of
/// arrival rates or of arrival amounts, a shift of every stage's forward log-odds as the
/// shock applies it) belong in the per-run state (detail::sim_engine::run_state) and keep the
/// prepared tables; a change of the dwells or of the book (a dwell scale changes every
/// deal's residual start data) needs a new engine.
///
/// The graph, the book (and the model) must outlive the engine: it keeps references.
/// Example: `simulation_engine e(mdl, bk); for (double h : {30.0, 60.0, 90.0}) {
///           simulation_options o; o.horizon = h; auto r = e.run(o); }`
class simulation_engine {
public:
    /// Prepares the simulation of `b` on `g` (arrivals need options.arrival_deal_size);
    /// `threads` (0 = all cores) share the per-deal start data. Results do not depend on it.
    /// @throws argument_error on a book made for another graph.
    template <class = void>
    simulation_engine(const stage_graph& g, const book& b, unsigned threads = 0)
        : engine_(std::make_unique<detail::sim_engine>(g, b, threads)) {}
    /// Prepares the simulation of `b` on the model: runs take arrival amounts from the
    /// model's deal size and, with options.model_arrivals, the model's arrival process (as
    /// simulate(model, ...)).
    template <class = void>
    simulation_engine(const model& mdl, const book& b, unsigned threads = 0)
        : model_(&mdl), engine_(std::make_unique<detail::sim_engine>(mdl.graph, b, threads)) {}

    /// Runs every path of `o` (options.threads workers): the result of simulate(g, b, o)
    /// (simulate(model, b, o) for a model engine), bit for bit, except elapsed_seconds,
    /// which here excludes the preparation.
    /// @throws argument_error as simulate().
    template <class = void>
    [[nodiscard]] simulation_result run(const simulation_options& o = {}) const {
        const simulation_options oo = resolved(o);
        const simulation_paths out = run_range(oo, 0, oo.paths);
        return detail::assemble(graph(), deals(), oo, std::span<const simulation_paths>(&out, 1));
    }

    /// Runs only the paths [first, last) of `o` (0 <= first < last <= o.paths), for a run
    /// split across processes; combine() the pieces.
    /// @throws argument_error as simulate(), or on a bad range.
    template <class = void>
    [[nodiscard]] simulation_paths run_paths(const simulation_options& o, std::size_t first, std::size_t last) const {
        const simulation_options oo = resolved(o);
        detail::check_path_range(oo, first, last);
        return run_range(oo, first, last);
    }

    /// The result of a run of `o` from its pieces, in path order and covering [0, o.paths)
    /// without gaps: bit-identical to run(o) (elapsed_seconds: the pieces' sum). A cancelled
    /// piece contributes its completed paths, and the result is then cancelled.
    /// @throws argument_error if the pieces do not tile [0, o.paths) or are of another book.
    template <class = void>
    [[nodiscard]] simulation_result combine(const simulation_options& o, std::span<const simulation_paths> parts) const {
        return detail::assemble(graph(), deals(), resolved(o), parts);
    }

    [[nodiscard]] const stage_graph& graph() const noexcept { return engine_->graph(); }
    [[nodiscard]] const book& deals() const noexcept { return engine_->deals(); }

private:
    template <class = void>
    [[nodiscard]] simulation_options resolved(const simulation_options& o) const {
        return model_ ? detail::with_model_arrivals(*model_, o) : o;
    }
    template <class = void>
    [[nodiscard]] simulation_paths run_range(const simulation_options& o, std::size_t first, std::size_t last) const {
        detail::validate_options(o, graph(), o.arrival_deal_size.has_value());
        detail::check_estimate(estimate_simulation(graph(), deals(), o), o, deals().size());
        return detail::run_paths(*engine_, o, o.arrival_deal_size, first, last);
    }

    const model* model_ = nullptr;
    std::unique_ptr<const detail::sim_engine> engine_;
};

/// Simulates the book on a stage graph (no deal-size distribution: arrivals need
/// options.arrival_deal_size).
/// @throws argument_error on bad options (paths 0, horizon <= 0 or NaN, threads > 4096,
///   quantile levels outside [0,1], negative quotas, bad sub-periods, arrivals without a
///   finite horizon or a deal size, correlation outside [0, max_correlation]), a book made
///   for another graph, or a run whose estimate (estimate_simulation()) exceeds
///   options.max_memory_bytes or options.max_stage_visits (checked before allocating).
///   An exception thrown by options.progress stops the workers at their next work unit and
///   is rethrown from here.
/// Complexity: O(paths · (deals + arrivals) · stage visits / threads); memory
/// O(deals · threads + paths).
/// Example: `simulation_options o; o.horizon = 90; o.paths = 20000;
///           auto r = simulate(m, bk, o); r.won_value.mean; r.won_value.quantiles[1];`
template <class = void>
[[nodiscard]] simulation_result simulate(const stage_graph& g, const book& b, const simulation_options& o = {}) {
    return detail::run_simulation(g, b, o, o.arrival_deal_size);
}

/// Simulates the book on a model: as above, with arrival amounts from the model's deal
/// size and, when options.model_arrivals is set, the model's own arrival process.
template <class = void>
[[nodiscard]] simulation_result simulate(const model& mdl, const book& b, const simulation_options& o = {}) {
    const simulation_options oo = detail::with_model_arrivals(mdl, o);
    return detail::run_simulation(mdl.graph, b, oo, oo.arrival_deal_size);
}

/// What-if with common random numbers: runs `base` and `variant` with the same seed (so
/// the same Philox words drive the same deal, path and stage visit in both) and
/// summarises the per-path difference of won value, variant − base. The difference's
/// standard error is typically far smaller than either run's.
/// @throws argument_error as simulate(). When either run is cancelled, each result keeps
///   its own status and completed paths, and `difference` is empty (no paths): a cancelled
///   run's completed paths are whichever work units finished, so they cannot be paired.
template <class = void>
[[nodiscard]] simulation_difference simulate_difference(const model& base, const model& variant, const book& b,
                                                        const simulation_options& o = {}) {
    simulation_difference r;
    std::vector<double> vb, vv;
    const simulation_options ob = detail::with_model_arrivals(base, o);
    const simulation_options ov = detail::with_model_arrivals(variant, o);
    r.base = detail::run_simulation(base.graph, b, ob, ob.arrival_deal_size, &vb);
    r.variant = detail::run_simulation(variant.graph, b, ov, ov.arrival_deal_size, &vv);
    // Paired paths only when both runs completed (a cancelled run keeps other paths).
    const bool paired = r.base.status == simulation_status::completed && r.variant.status == simulation_status::completed;
    const std::size_t n = paired ? vb.size() : 0;
    std::vector<double> diff(n);
    for (std::size_t p = 0; p < n; ++p) diff[p] = vv[p] - vb[p];
    r.difference = detail::summarise(diff, o);
    if (n > 1 && r.base.won_value.sd > 0.0 && r.variant.won_value.sd > 0.0) {
        double c = 0.0;
        for (std::size_t p = 0; p < n; ++p)
            c += (vb[p] - r.base.won_value.mean) * (vv[p] - r.variant.won_value.mean);
        r.correlation = c / static_cast<double>(n - 1) / (r.base.won_value.sd * r.variant.won_value.sd);
    }
    return r;
}

/// Same with two stage graphs (no arrivals from a model).
template <class = void>
[[nodiscard]] simulation_difference simulate_difference(const stage_graph& base, const stage_graph& variant,
                                                        const book& b, const simulation_options& o = {}) {
    return simulate_difference(model{base, {}, {}, {}, {}, "day", {}}, model{variant, {}, {}, {}, {}, "day", {}}, b, o);
}

} // namespace pipecast
