// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file analytics.hpp
/// @brief Exact analytics of the embedded jump chain (Eigen): win and outcome
/// probabilities, expected visits, time to close (mean, variance, mean given a win), and,
/// for all-exponential models (a continuous-time Markov chain), P(won by t) exactly.
///
/// With Q the open-to-open block and R the open-to-outcome block of the transition matrix,
/// the fundamental matrix N = (I - Q)^-1 holds the expected number of visits to each open
/// stage (the current visit included), B = N R the absorption probabilities. With dwell
/// means μ and second moments m2, the time to close T solves t = N μ and
/// E[T²] = N (m2 + 2 μ ∘ (Q t)). Conditioning on a win is the Doob h-transform
/// Q̃_ij = Q_ij w_j / w_i (dwell times are independent of the next stage).

#include <pipecast/error.hpp>
#include <pipecast/stage_graph.hpp>

#include <Eigen/Dense>
#include <unsupported/Eigen/MatrixFunctions>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

namespace pipecast {

/// Everything the jump chain says about a graph, per open stage i (row/entry i).
struct absorption_analysis {
    Eigen::MatrixXd expected_visits;      ///< N: open x open, N(i,j) = E[visits to j | start in i]
    Eigen::MatrixXd outcome_probability;  ///< B: open x outcomes, P(absorbed in outcome k | i)
    Eigen::VectorXd win_probability;      ///< P(eventually won | i)
    Eigen::VectorXd mean_time_to_close;   ///< E[T | i], T = time until any outcome
    Eigen::VectorXd time_to_close_variance; ///< Var[T | i]
    Eigen::VectorXd mean_time_to_win;     ///< E[T | i, won]; NaN where P(win | i) = 0
};

[[nodiscard]] inline absorption_analysis analyse(const stage_graph& g);

namespace detail {
/// Branched graphs: the time to close depends on the branch a deal leaves by, so the times
/// (variance, time to a win) come from the latent graph, mixed over each stage's branches
/// by π (a deal entering the stage takes branch k with probability π_k).
inline void times_from_latent(const stage_graph& g, absorption_analysis& a) {
    const absorption_analysis la = analyse(g.latent());
    for (std::size_t s = 0; s < g.open_count(); ++s) {
        double m1 = 0.0, m2 = 0.0, tw = 0.0, w = 0.0;
        for (std::size_t k = 0; k < g.latent_count(s); ++k) {
            const auto l = static_cast<Eigen::Index>(g.latent_first(s) + k);
            const double pi = g.branched(s) ? g.branches(s)[k].probability : 1.0;
            const double mu = la.mean_time_to_close(l);
            m1 += pi * mu;
            m2 += pi * (la.time_to_close_variance(l) + mu * mu);
            if (la.win_probability(l) > 0.0) {
                tw += pi * la.win_probability(l) * la.mean_time_to_win(l);
                w += pi * la.win_probability(l);
            }
        }
        const auto i = static_cast<Eigen::Index>(s);
        a.mean_time_to_close(i) = m1;
        a.time_to_close_variance(i) = std::max(0.0, m2 - m1 * m1);
        a.mean_time_to_win(i) = w > 0.0 ? tw / w : std::numeric_limits<double>::quiet_NaN();
    }
}
} // namespace detail

/// Computes the absorption analysis of a graph. O(m³) for m open stages.
/// Example: `auto a = analyse(g); double p = a.win_probability[g.index_of("Demo")];`
[[nodiscard]] inline absorption_analysis analyse(const stage_graph& g) {
    const auto m = static_cast<Eigen::Index>(g.open_count());
    const Eigen::MatrixXd q = g.transient_block();
    const Eigen::MatrixXd r = g.absorbing_block();
    const Eigen::MatrixXd i_minus_q = Eigen::MatrixXd::Identity(m, m) - q;
    const Eigen::PartialPivLU<Eigen::MatrixXd> lu(i_minus_q);

    absorption_analysis a;
    a.expected_visits = lu.inverse();
    a.outcome_probability = lu.solve(r);
    a.win_probability = Eigen::VectorXd::Zero(m);
    for (std::size_t k = 0; k < g.outcome_count(); ++k)
        if (g.outcomes()[k].win) a.win_probability += a.outcome_probability.col(static_cast<Eigen::Index>(k));
    a.win_probability = a.win_probability.cwiseMax(0.0).cwiseMin(1.0);

    Eigen::VectorXd mu(m), m2(m);
    for (Eigen::Index i = 0; i < m; ++i) {
        const auto& d = g.dwell(static_cast<std::size_t>(i));
        mu(i) = d.mean();
        m2(i) = d.sd() * d.sd() + d.mean() * d.mean();
    }
    a.mean_time_to_close = lu.solve(mu);
    const Eigen::VectorXd second = lu.solve(m2 + 2.0 * mu.cwiseProduct(q * a.mean_time_to_close));
    a.time_to_close_variance = (second - a.mean_time_to_close.cwiseAbs2()).cwiseMax(0.0);

    // Conditioned on a win: h-transform restricted to stages that can win.
    a.mean_time_to_win = Eigen::VectorXd::Constant(m, std::numeric_limits<double>::quiet_NaN());
    std::vector<Eigen::Index> live;
    for (Eigen::Index i = 0; i < m; ++i)
        if (a.win_probability(i) > 0.0) live.push_back(i);
    if (!live.empty()) {
        const auto l = static_cast<Eigen::Index>(live.size());
        Eigen::MatrixXd qt(l, l);
        Eigen::VectorXd mu_l(l);
        for (Eigen::Index x = 0; x < l; ++x) {
            mu_l(x) = mu(live[static_cast<std::size_t>(x)]);
            for (Eigen::Index y = 0; y < l; ++y) {
                const auto i = live[static_cast<std::size_t>(x)], j = live[static_cast<std::size_t>(y)];
                qt(x, y) = q(i, j) * a.win_probability(j) / a.win_probability(i);
            }
        }
        const Eigen::VectorXd tw = (Eigen::MatrixXd::Identity(l, l) - qt).partialPivLu().solve(mu_l);
        for (Eigen::Index x = 0; x < l; ++x) a.mean_time_to_win(live[static_cast<std::size_t>(x)]) = tw(x);
    }
    if (g.has_branches()) detail::times_from_latent(g, a);
    return a;
}

/// P(eventually won | deal in open stage s). O(m³); call analyse() once for many stages.
[[nodiscard]] inline double win_probability(const stage_graph& g, std::size_t s) {
    if (!g.is_open(s)) {
        if (g.is_outcome(s)) return g.is_win(s) ? 1.0 : 0.0;
        throw argument_error(detail::message("win_probability: stage index ", s, " out of range"));
    }
    return analyse(g).win_probability(static_cast<Eigen::Index>(s));
}

/// P(eventually won | stage) for every open stage.
[[nodiscard]] inline Eigen::VectorXd win_probabilities(const stage_graph& g) { return analyse(g).win_probability; }

/// P(eventually won | deal in open stage s for `age` already): Σ_k P(branch k | age) ·
/// P(win | target of k). Equal to win_probability(g, s) for a classic stage; for a branched
/// stage it falls with age where wins come early and losses or stalls late.
/// `w` = win_probabilities(g.latent()) (pass it when calling for many deals).
/// @throws argument_error for a stage that is not open or a bad age.
[[nodiscard]] inline double win_probability_at_age(const stage_graph& g, std::size_t s, double age,
                                                   const Eigen::VectorXd& w) {
    if (!g.is_open(s)) throw argument_error(detail::message("win_probability_at_age: stage index ", s, " is not open"));
    if (w.size() != static_cast<Eigen::Index>(g.latent().open_count()))
        throw argument_error("win_probability_at_age: w must hold P(win) of every latent open state");
    std::vector<double> wt(g.latent_count(s));
    const std::size_t first = g.branch_weights(s, age, wt);
    double p = 0.0;
    for (std::size_t k = 0; k < wt.size(); ++k) p += wt[k] * w(static_cast<Eigen::Index>(first + k));
    return std::clamp(p, 0.0, 1.0);
}
[[nodiscard]] inline double win_probability_at_age(const stage_graph& g, std::size_t s, double age) {
    return win_probability_at_age(g, s, age, analyse(g.latent()).win_probability);
}

/// P(the deal is a stalled one | open stage s, age): the weight of the stalled branches.
/// 0 for a classic stage. @throws argument_error for a stage that is not open or a bad age.
[[nodiscard]] inline double stalled_probability(const stage_graph& g, std::size_t s, double age) {
    if (!g.is_open(s)) throw argument_error(detail::message("stalled_probability: stage index ", s, " is not open"));
    std::vector<double> wt(g.latent_count(s));
    const std::size_t first = g.branch_weights(s, age, wt);
    double p = 0.0;
    for (std::size_t k = 0; k < wt.size(); ++k) p += g.latent_stalled(first + k) ? wt[k] : 0.0;
    return p;
}

/// True if every dwell is exponential, i.e. the model is a continuous-time Markov chain.
[[nodiscard]] inline bool is_markov(const stage_graph& g) noexcept {
    if (g.has_branches()) return false; // the next stage depends on the time in stage
    for (const auto& s : g.stages())
        if (s.dwell.family() != dwell_family::exponential) return false;
    return true;
}

/// The CTMC generator over all stages (outcome rows are zero): G(i,j) = P(i,j)/μ_i for
/// j != i, G(i,i) = -(1 - P(i,i))/μ_i. @throws argument_error unless is_markov(g).
[[nodiscard]] inline Eigen::MatrixXd ctmc_generator(const stage_graph& g) {
    if (!is_markov(g))
        throw argument_error("ctmc_generator: every dwell must be exponential for the model to be Markov");
    const auto n = static_cast<Eigen::Index>(g.size());
    Eigen::MatrixXd gen = Eigen::MatrixXd::Zero(n, n);
    for (std::size_t i = 0; i < g.open_count(); ++i) {
        const auto r = static_cast<Eigen::Index>(i);
        const double rate = 1.0 / g.dwell(i).mean();
        gen.row(r) = rate * g.transitions().row(r);
        gen(r, r) -= rate;
    }
    return gen;
}

/// Exact P(won by time t | deal just entered open stage i), for every open stage, for an
/// all-exponential model: the phase-type distribution, via the matrix exponential e^{Gt}.
/// @throws argument_error unless is_markov(g), or if t is negative or not finite.
[[nodiscard]] inline Eigen::VectorXd won_by_exact(const stage_graph& g, double t) {
    if (!(std::isfinite(t) && t >= 0.0))
        throw argument_error(detail::message("won_by_exact: t must be finite and >= 0, got ", t));
    const Eigen::MatrixXd pt = (ctmc_generator(g) * t).exp();
    const auto m = static_cast<Eigen::Index>(g.open_count());
    Eigen::VectorXd w = Eigen::VectorXd::Zero(m);
    for (std::size_t k = 0; k < g.outcome_count(); ++k)
        if (g.outcomes()[k].win) w += pt.col(m + static_cast<Eigen::Index>(k)).head(m);
    return w.cwiseMax(0.0).cwiseMin(1.0);
}

} // namespace pipecast
