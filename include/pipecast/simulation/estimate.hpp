// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/estimate.hpp
/// @brief The cost of a simulation before it runs: its memory and stage visits
/// (estimate_simulation), and the checks of the options against a graph.

#include <pipecast/data/book.hpp>
#include <pipecast/error.hpp>
#include <pipecast/model/stage_graph.hpp>
#include <pipecast/simulation/options.hpp>

#include <Eigen/SparseCore>
#include <Eigen/SparseLU>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

namespace pipecast {

namespace detail {

/// Fixed-point quantum of summed close times (deterministic integer reductions).
inline constexpr double sim_time_quantum = 0x1p-16;

/// Philox domain of the win/lose draws of overridden deals (item = deal index).
inline constexpr std::uint32_t sim_override_domain = 3;

/// Philox counter word 3 for a domain and item.
[[nodiscard]] constexpr std::uint32_t sim_domain_word(std::uint32_t domain, std::uint64_t item) noexcept {
    return (domain << 24) | static_cast<std::uint32_t>((item >> 32) & 0xFFFFFFu);
}

template <class = void>
void validate_options(const simulation_options& o, const stage_graph& g, bool have_deal_size) {
    if (o.paths == 0) throw argument_error("simulate: paths must be >= 1, got 0");
    if (o.paths > 0xFFFFFFFFull)
        throw argument_error(detail::message("simulate: paths must be < 2^32, got ", o.paths));
    if (!(o.horizon > 0.0))
        throw argument_error(detail::message("simulate: horizon must be positive (or +inf for none), got ", o.horizon));
    if (o.threads > 4096) throw argument_error(detail::message("simulate: threads must be <= 4096, got ", o.threads));
    for (double q : o.quantiles)
        if (!(q >= 0.0 && q <= 1.0))
            throw argument_error(detail::message("simulate: quantile level must be in [0, 1], got ", q));
    for (double q : o.quotas)
        if (!(std::isfinite(q) && q >= 0.0))
            throw argument_error(detail::message("simulate: quota must be finite and >= 0, got ", q));
    if (o.histogram_bins == 0) throw argument_error("simulate: histogram_bins must be >= 1, got 0");
    if (o.max_path_visits == 0 || o.max_path_visits > 0xFFFFFFFFull)
        throw argument_error(detail::message("simulate: max_path_visits must be in [1, 2^32 - 1], got ", o.max_path_visits));
    if (!(o.correlation >= 0.0 && o.correlation <= max_correlation))
        throw argument_error(detail::message("simulate: correlation (sd of the shock) must be in [0, ",
                                             max_correlation, "], got ", o.correlation));
    if (!o.stage_correlation.empty() && o.stage_correlation.size() != g.open_count())
        throw argument_error(detail::message("simulate: stage_correlation has ", o.stage_correlation.size(),
                                             " entries, the model ", g.open_count(), " open stages"));
    for (std::size_t i = 0; i < o.stage_correlation.size(); ++i)
        if (!(o.stage_correlation[i] >= 0.0 && o.stage_correlation[i] <= max_correlation))
            throw argument_error(detail::message("simulate: stage_correlation of stage '", g.name(i), "' must be in [0, ",
                                                 max_correlation, "], got ", o.stage_correlation[i]));
    double prev = 0.0;
    for (double e : o.sub_period_ends) {
        if (!(e > prev && e <= o.horizon && std::isfinite(e)))
            throw argument_error(detail::message("simulate: sub-period end ", e,
                                                 " must be finite, increasing and in (0, horizon = ", o.horizon, "]"));
        prev = e;
    }
    if (o.arrivals) {
        if (!std::isfinite(o.horizon))
            throw argument_error("simulate: arrivals need a finite horizon");
        if (!have_deal_size)
            throw argument_error("simulate: arrivals need a deal-size distribution (arrival_deal_size or the model's)");
        try {
            o.arrivals->validate(g);
        } catch (const model_error& e) {
            throw argument_error(detail::message("simulate: ", e.what()));
        }
    }
}

/// Expected stage visits until absorption from each open state of `g` (no horizon): the row
/// sums of N = (I − Q)⁻¹, i.e. the solution of (I − Q) v = 1, by sparse LU on the edges
/// (+inf for every state when the system is singular: a closed loop without an exit).
template <class = void>
[[nodiscard]] std::vector<double> expected_visits_to_absorption(const stage_graph& g) {
    const std::size_t m = g.open_count();
    std::vector<Eigen::Triplet<double>> t;
    for (std::size_t i = 0; i < m; ++i) {
        const auto ii = static_cast<Eigen::Index>(i);
        t.emplace_back(ii, ii, 1.0);
        for (std::size_t j = 0; j < m; ++j) {
            const double q = g.transition(i, j);
            if (q > 0.0) t.emplace_back(ii, static_cast<Eigen::Index>(j), -q);
        }
    }
    Eigen::SparseMatrix<double> a(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
    a.setFromTriplets(t.begin(), t.end());
    a.makeCompressed();
    Eigen::SparseLU<Eigen::SparseMatrix<double>> lu;
    lu.compute(a);
    std::vector<double> v(m, std::numeric_limits<double>::infinity());
    if (lu.info() != Eigen::Success) return v;
    const Eigen::VectorXd x = lu.solve(Eigen::VectorXd::Ones(static_cast<Eigen::Index>(m)));
    if (lu.info() != Eigen::Success) return v;
    for (std::size_t i = 0; i < m; ++i) {
        const double y = x(static_cast<Eigen::Index>(i));
        v[i] = std::isfinite(y) && y >= 1.0 - 1e-9 ? y : std::numeric_limits<double>::infinity();
    }
    return v;
}

} // namespace detail

/// Bytes of memory a run of these sizes needs: the per-path outputs (won value and count,
/// one value per sub-period, three more with arrivals), the copies made to summarise them,
/// the histograms, the per-deal data and counters and the per-thread counters and lanes.
/// An estimate (within some 20% of the peak on b2b6); simulate() refuses runs above
/// simulation_options::max_memory_bytes with it.
template <class = void>
[[nodiscard]] std::uint64_t simulation_memory_bytes(std::size_t paths, std::size_t deals,
                                                    std::size_t sub_periods, std::size_t histogram_bins,
                                                    bool arrivals, unsigned threads, std::size_t branch_width = 1) {
    const double p = static_cast<double>(paths), n = static_cast<double>(deals), k = static_cast<double>(sub_periods);
    const double per_path = 8.0 * (2.0 + k + (arrivals ? 3.0 : 0.0)) + 8.0 * 3.0 + 1.0;
    const double histograms = 8.0 * static_cast<double>(histogram_bins) * (2.0 + k);
    const double per_deal = 40.0 + 16.0 + 16.0 + 64.0 * static_cast<double>(branch_width > 1 ? branch_width : 0);
    const double per_thread = 16.0 * n + 64.0 * 1024.0;
    const double bytes = p * per_path + histograms + n * per_deal + static_cast<double>(threads) * per_thread;
    return bytes >= 0x1p63 ? std::uint64_t{1} << 63 : static_cast<std::uint64_t>(bytes);
}

/// Estimates the memory and the work of simulate(g, b, o) without running it: the memory
/// by simulation_memory_bytes(), the stage visits of a path as Σ over deals (and expected
/// arrivals) of min(expected visits until absorption, 1 + h / the shortest mean dwell,
/// max_path_visits). Cost: one sparse LU of the graph's open part.
/// @throws argument_error on a book made for another graph.
template <class = void>
[[nodiscard]] simulation_estimate estimate_simulation(const stage_graph& g, const book& b,
                                                      const simulation_options& o) {
    if (!b.compatible_with(g))
        throw argument_error("simulate: the book was made for a model with other open stages");
    simulation_estimate e;
    const stage_graph& lg = g.latent();
    const unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    std::size_t width = 1;
    for (std::size_t s = 0; s < g.open_count(); ++s) width = std::max(width, g.latent_count(s));
    e.memory_bytes = simulation_memory_bytes(o.paths, b.size(), o.sub_period_ends.size(), o.histogram_bins,
                                             o.arrivals.has_value(), threads, g.has_branches() ? width : 1);
    const std::vector<double> v = detail::expected_visits_to_absorption(lg);
    double shortest = std::numeric_limits<double>::infinity();
    for (std::size_t l = 0; l < lg.open_count(); ++l) shortest = std::min(shortest, lg.dwell(l).mean());
    const double by_horizon = std::isfinite(o.horizon) ? 1.0 + o.horizon / shortest : std::numeric_limits<double>::infinity();
    const double cap = static_cast<double>(o.max_path_visits);
    // A deal of stage s: the most visits of any of its latent states (branches).
    std::vector<double> per_stage(g.open_count());
    for (std::size_t s = 0; s < g.open_count(); ++s) {
        double x = 0.0;
        for (std::size_t k = 0; k < g.latent_count(s); ++k) x = std::max(x, v[g.latent_first(s) + k]);
        per_stage[s] = std::min({x, by_horizon, cap});
    }
    double visits = 0.0;
    for (std::size_t st : b.stages()) visits += per_stage[st];
    if (o.arrivals && std::isfinite(o.horizon)) {
        e.arrivals_per_path = o.arrivals->expected_count(o.horizon);
        if (o.arrivals->stage < g.open_count()) visits += e.arrivals_per_path * per_stage[o.arrivals->stage];
    }
    e.visits_per_path = visits;
    e.stage_visits = visits * static_cast<double>(o.paths);
    return e;
}

} // namespace pipecast
