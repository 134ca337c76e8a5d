// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model/first_passage.hpp
/// @brief The distribution of the time to a win for semi-Markov models (any dwell
/// family): P(won by t | stage), and P(won within h | stage, age) for a deal of a given age.
///
/// Method (a deterministic renewal-equation solver, not Monte Carlo). Let F_i(t) be
/// P(won by t | deal just entered open stage i) and Y_i(t) = P_i,win + Σ_j Q_ij F_j(t)
/// the same for a deal just leaving i. Then F_i(t) = ∫_0^t dG_i(s) Y_i(t - s), with G_i the
/// dwell cdf. On a grid t_n = nΔ the Stieltjes integral is summed cell by cell with the
/// exact dwell mass of each cell, G_i(t_k) - G_i(t_{k-1}), times Y interpolated linearly at
/// the position of that mass in the cell (the cell midpoint, i.e. the trapezoid average, for
/// continuous dwells; the atoms' exact positions for fixed and empirical dwells); the k = 1
/// cell involves F(t_n) itself and is solved exactly as a small linear system
/// (I - D Q) F(t_n) = ... . The error is O(Δ²) wherever Y is smooth, for continuous
/// densities and atoms alike (a jump of F, which only atoms create, is smeared over one
/// cell); the cell masses sum to G_i(t) exactly so F(∞) = P(win) is reached to rounding;
/// tests check the error order against the matrix-exponential solution of all-exponential
/// models and against quadrature (docs/analytics.md).
///
/// A deal of age a in stage i uses the residual dwell in its first stage:
/// P(won within h | i, a) = ∫_0^h dG_i^a(s) Y_i(h - s), summed the same way (exactly over
/// the atoms for fixed and empirical dwells).
/// Cost: O(K² m) to build a table of K steps for m stages, O(K) per (stage, age) query;
/// the linear system of each step is solved by dense LU for small graphs and by sparse LU
/// over the edges for large ones (solver_method, analytics.hpp), and Q f is a sparse product.

#include <pipecast/error.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace pipecast {

/// P(won by t) on a regular time grid, for every open stage.
struct win_time_table {
    double step = 0.0;          ///< Δ
    Eigen::MatrixXd won_by;     ///< (K+1) x m: F_i(nΔ), a deal that just entered stage i
    Eigen::MatrixXd after_exit; ///< (K+1) x m: Y_i(nΔ), a deal that just left stage i

    [[nodiscard]] std::size_t steps() const noexcept { return static_cast<std::size_t>(won_by.rows()) - 1; }
    [[nodiscard]] double horizon() const noexcept { return step * static_cast<double>(steps()); }
};

namespace detail {
/// Linear interpolation of column `col` of a grid table at time t (clamped to the grid).
template <class = void>
[[nodiscard]] double interpolate(const Eigen::MatrixXd& table, double step, Eigen::Index col, double t) {
    if (t <= 0.0) return table(0, col);
    const double x = t / step;
    const auto last = table.rows() - 1;
    if (x >= static_cast<double>(last)) return table(last, col);
    const auto n = static_cast<Eigen::Index>(x);
    const double f = x - static_cast<double>(n);
    return (1.0 - f) * table(n, col) + f * table(n + 1, col);
}
} // namespace detail

namespace detail {
/// The automatic step count keeps K² m (the table's multiply-adds, about) under this, so
/// that a graph of thousands of stages gets a coarser grid instead of hours of work;
/// graphs of up to 62 stages are never affected (8000² · 62 < 4e9).
inline constexpr double table_max_work = 4e9;
} // namespace detail

/// Builds the table of P(won by t | stage) for 0 <= t <= horizon.
/// @param steps number of grid steps K; 0 picks Δ ≈ (shortest mean dwell)/64, K in [200, 8000],
///   and K <= √(detail::table_max_work / m) for m (latent) open stages (at least 200).
/// @param method how each step's linear system is solved (analytics.hpp)
/// @throws argument_error if horizon is not positive and finite.
/// For a branched graph (stage_graph::has_branches()) the table's columns are the states
/// of g.latent(); won_by(g, ...) and won_within(g, ...) mix them per stage.
template <class = void>
[[nodiscard]] win_time_table win_time_distribution(const stage_graph& graph, double horizon, std::size_t steps = 0,
                                                   solver_method method = solver_method::automatic) {
    if (!(std::isfinite(horizon) && horizon > 0.0))
        throw argument_error(detail::message("win_time_distribution: horizon must be positive and finite, got ", horizon));
    const stage_graph& g = graph.latent();
    const auto m = static_cast<Eigen::Index>(g.open_count());
    if (steps == 0) {
        double shortest = std::numeric_limits<double>::infinity();
        for (const auto& s : g.stages()) shortest = std::min(shortest, s.dwell.mean());
        // In double until clamped: a mean dwell of 1e-300 asks for ~1e303 steps, beyond size_t
        // (converting that is undefined behaviour; clang's UBSan stops there).
        const double wanted = std::ceil(horizon / (shortest / 64.0));
        const auto work_cap =
            static_cast<std::size_t>(std::sqrt(detail::table_max_work / static_cast<double>(std::max<Eigen::Index>(m, 1))));
        const std::size_t cap = std::clamp<std::size_t>(work_cap, 200, 8000);
        steps = wanted < static_cast<double>(cap) ? std::max<std::size_t>(200, static_cast<std::size_t>(wanted)) : cap;
    }
    const auto k_max = static_cast<Eigen::Index>(steps);
    win_time_table tab;
    tab.step = horizon / static_cast<double>(steps);

    // dg(k, i) = G_i(kΔ) - G_i((k-1)Δ), k >= 1 (any mass at 0 goes into the first cell), and
    // pos(k, i) in [0, 1]: where in cell k that mass sits, as a fraction of the cell. It is ½
    // for continuous dwells (the trapezoid rule, O(Δ²) for smooth densities) and the exact
    // mass-weighted position of the atoms for fixed and empirical dwells, so that their atoms
    // are not moved to the cell midpoints (which would cost O(Δ)).
    Eigen::MatrixXd dg(k_max + 1, m);
    Eigen::MatrixXd pos = Eigen::MatrixXd::Constant(k_max + 1, m, 0.5);
    for (Eigen::Index i = 0; i < m; ++i) {
        const auto& d = g.dwell(static_cast<std::size_t>(i));
        double prev = 0.0;
        dg(0, i) = 0.0;
        for (Eigen::Index k = 1; k <= k_max; ++k) {
            const double c = cdf(d, static_cast<double>(k) * tab.step);
            dg(k, i) = c - prev;
            prev = c;
        }
        if (detail::is_continuous(d)) continue;
        const std::vector<double> atoms = d.family() == dwell_family::fixed
                                              ? std::vector<double>{d.mean()}
                                              : std::vector<double>(d.values().begin(), d.values().end());
        Eigen::VectorXd moment = Eigen::VectorXd::Zero(k_max + 1);
        for (std::size_t l = 0; l < atoms.size(); ++l) {
            const double v = atoms[l];
            const double mass = d.family() == dwell_family::fixed ? 1.0 : pdf(d, v);
            // the atoms ascend: one past the table's last cell ends the sum (tested in double,
            // before the cell index becomes an integer: an atom of 1e30 days would overflow it)
            if (v / tab.step > static_cast<double>(k_max) + 2.0) break;
            // the cell of v as cdf() sees it: the smallest k >= 1 with kΔ >= v
            auto k = std::max<Eigen::Index>(1, static_cast<Eigen::Index>(std::ceil(v / tab.step)));
            while (k > 1 && static_cast<double>(k - 1) * tab.step >= v) --k;
            while (k <= k_max && static_cast<double>(k) * tab.step < v) ++k;
            if (k > k_max) break;
            moment(k) += mass * std::clamp(v / tab.step - static_cast<double>(k - 1), 0.0, 1.0);
        }
        for (Eigen::Index k = 1; k <= k_max; ++k)
            if (dg(k, i) > 0.0) pos(k, i) = std::clamp(moment(k) / dg(k, i), 0.0, 1.0);
    }
    // Cell k of stage i contributes dg·((1 - pos) Y(t_{n-k+1}) + pos Y(t_{n-k})): the linear
    // interpolation of Y at the mass's position. `late` and `early` hold the two weights.
    const Eigen::MatrixXd late = dg.cwiseProduct((Eigen::MatrixXd::Ones(k_max + 1, m) - pos));
    const Eigen::MatrixXd early = dg.cwiseProduct(pos);
    dg.resize(0, 0); // no longer needed: large graphs keep 4 tables, not 6
    pos.resize(0, 0);
    const bool sparse = detail::use_sparse(method, g.open_count());
    Eigen::VectorXd p_win = Eigen::VectorXd::Zero(m);
    for (std::size_t i = 0; i < g.open_count(); ++i)
        for (const auto& e : g.edges(i))
            if (g.is_win(e.to)) p_win(static_cast<Eigen::Index>(i)) += e.probability;
    if (!sparse) { // the dense path sums the winning columns as before (identical rounding)
        p_win.setZero();
        for (std::size_t k = 0; k < g.outcome_count(); ++k)
            if (g.outcomes()[k].win) p_win += g.absorbing_block().col(static_cast<Eigen::Index>(k));
    }

    const Eigen::VectorXd late_first = late.row(1).transpose();
    Eigen::MatrixXd q;
    Eigen::SparseMatrix<double, Eigen::RowMajor> q_sparse;
    std::optional<Eigen::PartialPivLU<Eigen::MatrixXd>> lu;
    std::optional<detail::sparse_lu> lu_sparse;
    if (sparse) {
        q_sparse = detail::sparse_transient_block(g);
        const Eigen::SparseMatrix<double> dq = late_first.asDiagonal() * detail::sparse_transient_block(g);
        Eigen::SparseMatrix<double> id(m, m);
        id.setIdentity();
        lu_sparse.emplace(Eigen::SparseMatrix<double>(id - dq), "win_time_distribution");
    } else {
        q = g.transient_block();
        lu.emplace(Eigen::MatrixXd::Identity(m, m) - late_first.asDiagonal() * q);
    }

    tab.won_by = Eigen::MatrixXd::Zero(k_max + 1, m);
    tab.after_exit = Eigen::MatrixXd::Zero(k_max + 1, m);
    tab.after_exit.row(0) = p_win.transpose();
    Eigen::VectorXd rest(m);
    for (Eigen::Index n = 1; n <= k_max; ++n) {
        for (Eigen::Index i = 0; i < m; ++i) {
            double acc = early(1, i) * tab.after_exit(n - 1, i);
            for (Eigen::Index k = 2; k <= n; ++k)
                acc += early(k, i) * tab.after_exit(n - k, i) + late(k, i) * tab.after_exit(n - k + 1, i);
            rest(i) = acc;
        }
        const Eigen::VectorXd rhs = rest + late_first.cwiseProduct(p_win);
        const Eigen::VectorXd f = (sparse ? Eigen::VectorXd(lu_sparse->solve(rhs)) : Eigen::VectorXd(lu->solve(rhs)))
                                      .cwiseMax(0.0)
                                      .cwiseMin(1.0);
        tab.won_by.row(n) = f.transpose();
        const Eigen::VectorXd qf = sparse ? Eigen::VectorXd(q_sparse * f) : Eigen::VectorXd(q * f);
        tab.after_exit.row(n) = (p_win + qf).cwiseMin(1.0).transpose();
    }
    return tab;
}

/// P(won by t | deal just entered stage), linearly interpolated from the table (t is
/// clamped to the table's horizon). @throws argument_error for a stage outside the table or
/// a NaN time.
template <class = void>
[[nodiscard]] double won_by(const win_time_table& tab, std::size_t stage, double t) {
    if (static_cast<Eigen::Index>(stage) >= tab.won_by.cols())
        throw argument_error(detail::message("won_by: stage index ", stage, " is not an open stage of the table (",
                                             tab.won_by.cols(), " stages)"));
    if (std::isnan(t)) throw argument_error("won_by: t is NaN");
    return detail::interpolate(tab.won_by, tab.step, static_cast<Eigen::Index>(stage), t);
}

/// P(won by t | deal just entered `stage` of g): for a branched stage the mixture of its
/// latent states by π. @throws argument_error as won_by(tab, ...).
template <class = void>
[[nodiscard]] double won_by(const stage_graph& g, const win_time_table& tab, std::size_t stage, double t) {
    if (!g.is_open(stage)) throw argument_error(detail::message("won_by: stage index ", stage, " is not open"));
    if (!g.branched(stage)) return won_by(tab, g.latent_first(stage), t);
    double p = 0.0;
    for (std::size_t k = 0; k < g.latent_count(stage); ++k)
        p += g.branches(stage)[k].probability * won_by(tab, g.latent_first(stage) + k, t);
    return std::clamp(p, 0.0, 1.0);
}

namespace detail {
/// won_within for a stage of a classic graph (the table is of that graph).
template <class = void>
[[nodiscard]] double won_within_classic(const stage_graph& g, const win_time_table& tab, std::size_t stage,
                                        double age, double h);
} // namespace detail

/// P(won within h | deal in `stage` for `age` already). h must not exceed the table's
/// horizon. For a branched stage: Σ_k P(branch k | age) · P(won within h | latent k, age).
/// @throws argument_error on a bad stage, age or horizon.
template <class = void>
[[nodiscard]] double won_within(const stage_graph& g, const win_time_table& tab, std::size_t stage, double age,
                                double h) {
    if (!g.is_open(stage)) throw argument_error(detail::message("won_within: stage index ", stage, " is not open"));
    const stage_graph& lg = g.latent();
    if (tab.won_by.cols() != static_cast<Eigen::Index>(lg.open_count()))
        throw argument_error(detail::message("won_within: the table has ", tab.won_by.cols(), " stages, the graph ",
                                             lg.open_count(), " (latent) open stages"));
    if (!(std::isfinite(h) && h >= 0.0 && h <= tab.horizon() * (1.0 + 1e-12)))
        throw argument_error(detail::message("won_within: horizon ", h, " outside the table's [0, ", tab.horizon(), "]"));
    if (!g.branched(stage)) return detail::won_within_classic(lg, tab, g.latent_first(stage), age, h);
    std::vector<double> wt(g.latent_count(stage));
    const std::size_t first = g.branch_weights(stage, age, wt);
    double p = 0.0;
    for (std::size_t k = 0; k < wt.size(); ++k)
        if (wt[k] > 0.0) p += wt[k] * detail::won_within_classic(lg, tab, first + k, age, h);
    return std::clamp(p, 0.0, 1.0);
}

template <class>
[[nodiscard]] double detail::won_within_classic(const stage_graph& g, const win_time_table& tab,
                                                std::size_t stage, double age, double h) {
    if (h == 0.0) return 0.0;
    const residual_dwell r(g.dwell(stage), age);
    const auto col = static_cast<Eigen::Index>(stage);
    const auto y_at = [&](double t) { return detail::interpolate(tab.after_exit, tab.step, col, t); };
    const auto& d = g.dwell(stage);
    if (r.overdue()) return std::clamp(y_at(h), 0.0, 1.0); // leaves at once
    if (d.family() == dwell_family::fixed) {
        const double rest = d.mean() - age;
        return rest <= h ? std::clamp(y_at(h - rest), 0.0, 1.0) : 0.0;
    }
    if (d.family() == dwell_family::empirical) { // exact sum over the atoms of the residual
        const auto v = d.values();
        double acc = 0.0;
        for (std::size_t l = age == 0.0 ? 0 : detail::first_above(d, age); l < v.size() && v[l] - age <= h; ++l)
            acc += pdf(d, v[l]) * y_at(h - (v[l] - age));
        return std::clamp(acc / r.survival_at_age(), 0.0, 1.0);
    }
    const auto cells = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(h / tab.step - 1e-9)));
    const double ds = h / static_cast<double>(cells);
    double acc = 0.0, prev_cdf = 0.0, y_prev = detail::interpolate(tab.after_exit, tab.step, col, h);
    for (std::size_t k = 1; k <= cells; ++k) {
        const double s = static_cast<double>(k) * ds;
        const double c = cdf(r, s);
        const double y = detail::interpolate(tab.after_exit, tab.step, col, h - s);
        acc += (c - prev_cdf) * 0.5 * (y + y_prev);
        prev_cdf = c;
        y_prev = y;
    }
    return std::clamp(acc, 0.0, 1.0);
}

/// The q-quantile of the time to a win given a win, read off a table: the smallest t with
/// P(won by t | stage) >= q · w, w = P(win | stage), linearly interpolated between grid
/// points. Empty when the table is too short to reach that probability.
template <class = void>
[[nodiscard]] std::optional<double> win_time_quantile(const win_time_table& tab, std::size_t stage, double w,
                                                      double q) {
    const auto col = static_cast<Eigen::Index>(stage);
    PIPECAST_ASSERT(col < tab.won_by.cols());
    const double target = q * w;
    for (Eigen::Index n = 1; n < tab.won_by.rows(); ++n) {
        if (tab.won_by(n, col) >= target) {
            const double lo = tab.won_by(n - 1, col), hi = tab.won_by(n, col);
            const double f = hi > lo ? (target - lo) / (hi - lo) : 1.0;
            return (static_cast<double>(n - 1) + f) * tab.step;
        }
    }
    return std::nullopt;
}

namespace detail {
/// The table-lengthening rule for questions about the whole time to a win (quantiles): the
/// first-passage table up to H = the longest mean time to close + 12 sd, doubled (at most
/// three times) while `answered(table)` is false; returns the last table built. Used by
/// win_time_quantile and ideal_funnel.
template <class Answered>
[[nodiscard]] win_time_table lengthened_table(const stage_graph& g, const absorption_analysis& a, Answered&& answered) {
    double horizon = a.mean_time_to_close.maxCoeff() + 12.0 * std::sqrt(a.time_to_close_variance.maxCoeff());
    win_time_table tab;
    for (int attempt = 0; attempt < 4; ++attempt, horizon *= 2.0) {
        tab = win_time_distribution(g, horizon);
        if (answered(std::as_const(tab))) break;
    }
    return tab;
}
} // namespace detail

/// The q-quantile of the time to a win given a win, from `stage`: the smallest t with
/// P(won by t) >= q · P(win). Builds a table long enough (mean + 12 sd of the time to
/// close). Returns NaN where the stage cannot win. @throws argument_error unless 0 < q < 1.
template <class = void>
[[nodiscard]] double win_time_quantile(const stage_graph& g, std::size_t stage, double q) {
    if (!(q > 0.0 && q < 1.0)) throw argument_error(detail::message("win_time_quantile: q must be in (0, 1), got ", q));
    if (!g.is_open(stage)) throw argument_error(detail::message("win_time_quantile: stage index ", stage, " is not open"));
    const absorption_analysis a = analyse(g);
    const auto col = static_cast<Eigen::Index>(stage);
    const double w = a.win_probability(col);
    if (!(w > 0.0)) return std::numeric_limits<double>::quiet_NaN();
    std::optional<double> t;
    (void)detail::lengthened_table(g, a, [&](const win_time_table& tab) {
        if (g.has_branches()) { // one column: the stage's mixture of its latent states
            win_time_table one;
            one.step = tab.step;
            one.won_by.resize(tab.won_by.rows(), 1);
            for (Eigen::Index n = 0; n < tab.won_by.rows(); ++n)
                one.won_by(n, 0) = won_by(g, tab, stage, static_cast<double>(n) * tab.step);
            t = win_time_quantile(one, 0, w, q);
        } else {
            t = win_time_quantile(tab, stage, w, q);
        }
        return t.has_value();
    });
    return t ? *t : std::numeric_limits<double>::infinity();
}

} // namespace pipecast
