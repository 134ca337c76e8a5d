// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model/analytics.hpp
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
///
/// Solvers (solver_method): small graphs use dense LU (Eigen PartialPivLU, O(m³) time,
/// O(m²) memory); from detail::sparse_min_open open stages on, the same systems are solved
/// by sparse LU (Eigen SparseLU with COLAMD ordering) on the graph's edges, so a graph of
/// thousands of stages with a few edges each costs about its edge count and fill-in, and
/// the full matrix N is kept only up to detail::full_visits_max_open stages
/// (expected_visits_row() gives one row of N by one solve at any size). Both agree to
/// rounding (about 1e-15 relative on well-conditioned chains; tests check 1e-12).

#include <pipecast/error.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Eigen/Dense>
#include <Eigen/SparseCore>
#include <Eigen/SparseLU>
#include <unsupported/Eigen/MatrixFunctions>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

namespace pipecast {

/// How the linear systems of the chain are solved (see the file comment).
enum class solver_method {
    automatic, ///< dense below detail::sparse_min_open open stages, sparse from there
    dense,     ///< dense LU: O(m³) time, O(m²) memory
    sparse     ///< sparse LU on the edges: about O(edges + fill-in)
};

namespace detail {
/// From this many open stages on, solver_method::automatic uses sparse LU.
inline constexpr std::size_t sparse_min_open = 256;
/// absorption_analysis::expected_visits (the full m x m matrix N) is filled up to this many
/// open stages (32 MB) and left empty (0 x 0) above; expected_visits_row() works at any size.
inline constexpr std::size_t full_visits_max_open = 2048;

template <class = void>
[[nodiscard]] bool use_sparse(solver_method method, std::size_t open) noexcept {
    return method == solver_method::sparse || (method == solver_method::automatic && open >= sparse_min_open);
}

/// I - Q as a sparse matrix, from the graph's edges (Q(i,i) on the diagonal as 1 - Q(i,i),
/// the same values the dense I - Q holds).
template <class = void>
[[nodiscard]] Eigen::SparseMatrix<double> sparse_i_minus_q(const stage_graph& g) {
    const std::size_t m = g.open_count();
    std::vector<Eigen::Triplet<double>> t;
    t.reserve(m + g.edge_count());
    for (std::size_t i = 0; i < m; ++i) {
        double diag = 1.0;
        for (const auto& e : g.edges(i)) {
            if (e.to == i)
                diag = 1.0 - e.probability;
            else if (e.to < m)
                t.emplace_back(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e.to), -e.probability);
        }
        t.emplace_back(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i), diag);
    }
    Eigen::SparseMatrix<double> a(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
    a.setFromTriplets(t.begin(), t.end());
    return a;
}

/// The open-to-open block Q as a sparse matrix.
template <class = void>
[[nodiscard]] Eigen::SparseMatrix<double> sparse_transient_block(const stage_graph& g) {
    const std::size_t m = g.open_count();
    std::vector<Eigen::Triplet<double>> t;
    t.reserve(g.edge_count());
    for (std::size_t i = 0; i < m; ++i)
        for (const auto& e : g.edges(i))
            if (e.to < m) t.emplace_back(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e.to), e.probability);
    Eigen::SparseMatrix<double> q(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
    q.setFromTriplets(t.begin(), t.end());
    return q;
}

/// The open-to-outcome block R (open x outcomes, dense), from the graph's edges.
template <class = void>
[[nodiscard]] Eigen::MatrixXd outcome_block(const stage_graph& g) {
    const std::size_t open = g.open_count();
    Eigen::MatrixXd r = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(open), static_cast<Eigen::Index>(g.outcome_count()));
    for (std::size_t i = 0; i < open; ++i)
        for (const auto& e : g.edges(i))
            if (e.to >= open) r(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e.to - open)) = e.probability;
    return r;
}

/// The win-conditioned jump chain (Doob h-transform by w = P(win | ·)): calls
/// f(i, j, p̃) for every edge i → j of an open stage i with w_i > 0 into a state j with
/// w_j > 0, where p̃ = P(i→j) · w_j / w_i. `w` holds P(win | open stage) (open_count()
/// entries); an outcome has w = 1 if it is a win, 0 otherwise, so a loss is never entered.
/// Dwell times are unchanged (in a semi-Markov model the next stage is independent of the
/// dwell). The one definition used by analyse() (time to a win), compute_kpis (visits given
/// a win) and the simulator (the rows an overridden winner follows).
template <class F>
void for_each_win_conditioned_edge(const stage_graph& g, std::span<const double> w, F&& f) {
    const std::size_t m = g.open_count();
    PIPECAST_ASSERT(w.size() >= m);
    for (std::size_t i = 0; i < m; ++i) {
        const double wi = w[i];
        if (!(wi > 0.0)) continue;
        for (const auto& e : g.edges(i)) {
            const double wj = e.to < m ? w[e.to] : (g.is_win(e.to) ? 1.0 : 0.0);
            if (wj > 0.0) f(i, e.to, e.probability * wj / wi);
        }
    }
}

/// Dense LU of I - Q, Q the open-to-open block `q` (analyse() and win_probabilities()).
template <class = void>
[[nodiscard]] Eigen::PartialPivLU<Eigen::MatrixXd> dense_i_minus_q_lu(const Eigen::MatrixXd& q) {
    const Eigen::MatrixXd i_minus_q = Eigen::MatrixXd::Identity(q.rows(), q.cols()) - q;
    return Eigen::PartialPivLU<Eigen::MatrixXd>(i_minus_q);
}

/// Sparse LU of a square matrix of the chain. A validated graph makes I - Q (and the
/// h-transformed I - Q̃) non-singular; a failure here is numerical (a self-loop within
/// rounding of 1) and reported as a model_error naming the step.
struct sparse_lu {
    Eigen::SparseLU<Eigen::SparseMatrix<double>, Eigen::COLAMDOrdering<int>> lu;
    template <class = void>
    explicit sparse_lu(const Eigen::SparseMatrix<double>& a, const char* what) {
        lu.analyzePattern(a);
        lu.factorize(a);
        if (lu.info() != Eigen::Success)
            throw model_error(message(what, ": the linear system of the chain is numerically singular (",
                                      lu.lastErrorMessage(), ")"));
    }
    template <class Rhs>
    [[nodiscard]] Eigen::MatrixXd solve(const Rhs& b) const {
        return lu.solve(b);
    }
};
} // namespace detail

/// Everything the jump chain says about a graph, per open stage i (row/entry i).
struct absorption_analysis {
    /// N: open x open, N(i,j) = E[visits to j | start in i]; empty (0 x 0) for graphs of more
    /// than detail::full_visits_max_open open stages (use expected_visits_row()).
    Eigen::MatrixXd expected_visits;
    Eigen::MatrixXd outcome_probability;  ///< B: open x outcomes, P(absorbed in outcome k | i)
    Eigen::VectorXd win_probability;      ///< P(eventually won | i)
    Eigen::VectorXd mean_time_to_close;   ///< E[T | i], T = time until any outcome
    Eigen::VectorXd time_to_close_variance; ///< Var[T | i]
    Eigen::VectorXd mean_time_to_win;     ///< E[T | i, won]; NaN where P(win | i) = 0
};

template <class = void>
[[nodiscard]] absorption_analysis analyse(const stage_graph& g,
                                          solver_method method = solver_method::automatic);

namespace detail {
/// P(win | open stage) of an analysis as a span (for for_each_win_conditioned_edge).
template <class = void>
[[nodiscard]] std::span<const double> win_span(const absorption_analysis& a) noexcept {
    return {a.win_probability.data(), static_cast<std::size_t>(a.win_probability.size())};
}

/// P(win | open stage) from a.outcome_probability: the sum over the winning outcomes,
/// clamped to [0, 1] (both solver paths of analyse()).
template <class = void>
void win_from_outcomes(const stage_graph& g, absorption_analysis& a) {
    a.win_probability = Eigen::VectorXd::Zero(a.outcome_probability.rows());
    for (std::size_t k = 0; k < g.outcome_count(); ++k)
        if (g.outcomes()[k].win) a.win_probability += a.outcome_probability.col(static_cast<Eigen::Index>(k));
    a.win_probability = a.win_probability.cwiseMax(0.0).cwiseMin(1.0);
}

/// The open stages' dwell means μ and second moments E[D²] = sd² + μ².
template <class = void>
void dwell_moments(const stage_graph& g, Eigen::VectorXd& mu, Eigen::VectorXd& m2) {
    const auto m = static_cast<Eigen::Index>(g.open_count());
    mu.resize(m);
    m2.resize(m);
    for (Eigen::Index i = 0; i < m; ++i) {
        const auto& d = g.dwell(static_cast<std::size_t>(i));
        mu(i) = d.mean();
        m2(i) = d.sd() * d.sd() + d.mean() * d.mean();
    }
}

/// Branched graphs: the time to close depends on the branch a deal leaves by, so the times
/// (variance, time to a win) come from the latent graph, mixed over each stage's branches
/// by π (a deal entering the stage takes branch k with probability π_k).
template <class = void>
void times_from_latent(const stage_graph& g, absorption_analysis& a, solver_method method) {
    const absorption_analysis la = analyse(g.latent(), method);
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

namespace detail {
/// analyse() by sparse LU: the same quantities as the dense path, from the edges.
template <class = void>
absorption_analysis analyse_sparse(const stage_graph& g) {
    const std::size_t open = g.open_count();
    const auto m = static_cast<Eigen::Index>(open);
    const detail::sparse_lu lu(sparse_i_minus_q(g), "analyse");
    const Eigen::SparseMatrix<double> q = sparse_transient_block(g);

    absorption_analysis a;
    if (open <= full_visits_max_open) a.expected_visits = lu.solve(Eigen::MatrixXd::Identity(m, m));
    a.outcome_probability = lu.solve(outcome_block(g));
    win_from_outcomes(g, a);
    Eigen::VectorXd mu, m2;
    dwell_moments(g, mu, m2);
    a.mean_time_to_close = lu.solve(mu);
    const Eigen::VectorXd qt_close = q * a.mean_time_to_close;
    const Eigen::VectorXd second = lu.solve(m2 + 2.0 * mu.cwiseProduct(qt_close));
    a.time_to_close_variance = (second - a.mean_time_to_close.cwiseAbs2()).cwiseMax(0.0);

    // Conditioned on a win: the h-transform on the stages that can win, over their edges.
    a.mean_time_to_win = Eigen::VectorXd::Constant(m, std::numeric_limits<double>::quiet_NaN());
    std::vector<Eigen::Index> live_of(open, -1);
    Eigen::Index l = 0;
    for (std::size_t i = 0; i < open; ++i)
        if (a.win_probability(static_cast<Eigen::Index>(i)) > 0.0) live_of[i] = l++;
    if (l > 0) {
        std::vector<Eigen::Triplet<double>> t;
        Eigen::VectorXd openl(l);
        std::vector<double> diag(open, 1.0);
        for_each_win_conditioned_edge(g, win_span(a), [&](std::size_t i, std::size_t j, double v) {
            if (j >= open) return;
            if (j == i)
                diag[i] = 1.0 - v;
            else
                t.emplace_back(live_of[i], live_of[j], -v);
        });
        for (std::size_t i = 0; i < open; ++i) {
            const Eigen::Index x = live_of[i];
            if (x < 0) continue;
            openl(x) = mu(static_cast<Eigen::Index>(i));
            t.emplace_back(x, x, diag[i]);
        }
        Eigen::SparseMatrix<double> i_minus_qt(l, l);
        i_minus_qt.setFromTriplets(t.begin(), t.end());
        const Eigen::VectorXd tw = sparse_lu(i_minus_qt, "analyse (time to a win)").solve(openl);
        for (std::size_t i = 0; i < open; ++i)
            if (live_of[i] >= 0) a.mean_time_to_win(static_cast<Eigen::Index>(i)) = tw(live_of[i]);
    }
    return a;
}
} // namespace detail

/// Computes the absorption analysis of a graph: O(m³) for m open stages by dense LU, about
/// O(edges + fill-in) by sparse LU (the default from detail::sparse_min_open stages on).
/// Example: `auto a = analyse(g); double p = a.win_probability[g.index_of("Demo")];`
template <class>
[[nodiscard]] absorption_analysis analyse(const stage_graph& g, solver_method method) {
    if (detail::use_sparse(method, g.open_count())) {
        absorption_analysis a = detail::analyse_sparse(g);
        if (g.has_branches()) detail::times_from_latent(g, a, method);
        return a;
    }
    const auto m = static_cast<Eigen::Index>(g.open_count());
    const Eigen::MatrixXd q = g.transient_block();
    const auto lu = detail::dense_i_minus_q_lu(q);

    absorption_analysis a;
    a.expected_visits = lu.inverse();
    a.outcome_probability = lu.solve(g.absorbing_block());
    detail::win_from_outcomes(g, a);
    Eigen::VectorXd mu, m2;
    detail::dwell_moments(g, mu, m2);
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
        std::vector<Eigen::Index> live_of(static_cast<std::size_t>(m), -1);
        for (Eigen::Index x = 0; x < l; ++x) live_of[static_cast<std::size_t>(live[static_cast<std::size_t>(x)])] = x;
        Eigen::MatrixXd qt = Eigen::MatrixXd::Zero(l, l);
        Eigen::VectorXd openl(l);
        for (Eigen::Index x = 0; x < l; ++x) openl(x) = mu(live[static_cast<std::size_t>(x)]);
        detail::for_each_win_conditioned_edge(g, detail::win_span(a), [&](std::size_t i, std::size_t j, double v) {
            if (j < static_cast<std::size_t>(m)) qt(live_of[i], live_of[j]) = v;
        });
        const Eigen::VectorXd tw = (Eigen::MatrixXd::Identity(l, l) - qt).partialPivLu().solve(openl);
        for (Eigen::Index x = 0; x < l; ++x) a.mean_time_to_win(live[static_cast<std::size_t>(x)]) = tw(x);
    }
    if (g.has_branches()) detail::times_from_latent(g, a, method);
    return a;
}

/// Row i of the fundamental matrix N = (I - Q)^-1: E[visits to each open stage | start in
/// open stage i], by one solve with (I - Q)ᵀ (no m x m matrix for large graphs).
/// @throws argument_error for a stage that is not open.
template <class = void>
[[nodiscard]] Eigen::VectorXd expected_visits_row(const stage_graph& g, std::size_t i,
                                                  solver_method method = solver_method::automatic) {
    if (!g.is_open(i)) throw argument_error(detail::message("expected_visits_row: stage index ", i, " is not open"));
    const auto m = static_cast<Eigen::Index>(g.open_count());
    const Eigen::VectorXd e = Eigen::VectorXd::Unit(m, static_cast<Eigen::Index>(i));
    if (detail::use_sparse(method, g.open_count())) {
        const Eigen::SparseMatrix<double> at = detail::sparse_i_minus_q(g).transpose();
        return detail::sparse_lu(at, "expected_visits_row").solve(e);
    }
    const Eigen::MatrixXd at = (Eigen::MatrixXd::Identity(m, m) - g.transient_block()).transpose();
    return at.partialPivLu().solve(e);
}

/// Row i of N from an analysis of g: a's matrix where it holds one, else a solve.
template <class = void>
[[nodiscard]] Eigen::VectorXd expected_visits_row(const stage_graph& g, const absorption_analysis& a,
                                                  std::size_t i) {
    if (a.expected_visits.rows() == static_cast<Eigen::Index>(g.open_count()) && g.is_open(i))
        return a.expected_visits.row(static_cast<Eigen::Index>(i)).transpose();
    return expected_visits_row(g, i);
}

/// P(eventually won | deal in open stage s). O(m³); call analyse() once for many stages.
template <class = void>
[[nodiscard]] double win_probability(const stage_graph& g, std::size_t s) {
    if (!g.is_open(s)) {
        if (g.is_outcome(s)) return g.is_win(s) ? 1.0 : 0.0;
        throw argument_error(detail::message("win_probability: stage index ", s, " out of range"));
    }
    return analyse(g).win_probability(static_cast<Eigen::Index>(s));
}

/// P(eventually won | stage) for every open stage: the winning columns of B = (I - Q)⁻¹ R,
/// solved as analyse() solves them (the same LU, bit for bit the same values), without the
/// fundamental matrix and the times, so a weighted forecast compiles and runs only this.
template <class = void>
[[nodiscard]] Eigen::VectorXd win_probabilities(const stage_graph& g, solver_method method = solver_method::automatic) {
    absorption_analysis a;
    if (detail::use_sparse(method, g.open_count())) {
        const detail::sparse_lu lu(detail::sparse_i_minus_q(g), "win_probabilities");
        a.outcome_probability = lu.solve(detail::outcome_block(g));
    } else {
        a.outcome_probability = detail::dense_i_minus_q_lu(g.transient_block()).solve(g.absorbing_block());
    }
    detail::win_from_outcomes(g, a);
    return std::move(a.win_probability);
}

/// P(eventually won | deal in open stage s for `age` already): Σ_k P(branch k | age) ·
/// P(win | target of k). Equal to win_probability(g, s) for a classic stage; for a branched
/// stage it falls with age where wins come early and losses or stalls late.
/// `w` = win_probabilities(g.latent()) (pass it when calling for many deals).
/// @throws argument_error for a stage that is not open or a bad age.
template <class = void>
[[nodiscard]] double win_probability_at_age(const stage_graph& g, std::size_t s, double age,
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
template <class = void>
[[nodiscard]] double win_probability_at_age(const stage_graph& g, std::size_t s, double age) {
    return win_probability_at_age(g, s, age, analyse(g.latent()).win_probability);
}

/// P(the deal is a stalled one | open stage s, age): the weight of the stalled branches.
/// 0 for a classic stage. @throws argument_error for a stage that is not open or a bad age.
template <class = void>
[[nodiscard]] double stalled_probability(const stage_graph& g, std::size_t s, double age) {
    if (!g.is_open(s)) throw argument_error(detail::message("stalled_probability: stage index ", s, " is not open"));
    std::vector<double> wt(g.latent_count(s));
    const std::size_t first = g.branch_weights(s, age, wt);
    double p = 0.0;
    for (std::size_t k = 0; k < wt.size(); ++k) p += g.latent_stalled(first + k) ? wt[k] : 0.0;
    return p;
}

/// True if every dwell is exponential, i.e. the model is a continuous-time Markov chain.
template <class = void>
[[nodiscard]] bool is_markov(const stage_graph& g) noexcept {
    if (g.has_branches()) return false; // the next stage depends on the time in stage
    for (const auto& s : g.stages())
        if (s.dwell.family() != dwell_family::exponential) return false;
    return true;
}

/// The CTMC generator over all stages (outcome rows are zero): G(i,j) = P(i,j)/μ_i for
/// j != i, G(i,i) = -(1 - P(i,i))/μ_i. @throws argument_error unless is_markov(g).
template <class = void>
[[nodiscard]] Eigen::MatrixXd ctmc_generator(const stage_graph& g) {
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

namespace detail {
/// Work limit of won_by_exact's uniformization (multiply-adds) before it gives up.
inline constexpr double uniformization_max_work = 2e11;

/// e^{Gt} w on the open stages, w the indicator of the winning outcomes, by uniformization
/// over the graph's edges: with Λ the largest exit rate and P = I + G/Λ (a stochastic
/// matrix), e^{Gτ} = Σ_k Poisson(k; Λτ) P^k, summed until the Poisson tail is below 1e-18,
/// on pieces τ with Λτ <= 32 (so that e^{-Λτ} does not underflow). Every term is
/// non-negative (no cancellation); the cost is about 2.7 Λt sparse products.
/// `work` = that cost estimate in multiply-adds, for the caller's choice.
template <class = void>
[[nodiscard]] double uniformization_work(const stage_graph& g, double t) {
    double lambda = 0.0;
    for (std::size_t i = 0; i < g.open_count(); ++i) lambda = std::max(lambda, 1.0 / g.dwell(i).mean());
    const double products = 2.7 * lambda * t + 100.0;
    return products * static_cast<double>(g.edge_count() + 3 * g.open_count());
}

template <class = void>
[[nodiscard]] Eigen::VectorXd won_by_uniformized(const stage_graph& g, double t) {
    const std::size_t open = g.open_count();
    const auto m = static_cast<Eigen::Index>(open);
    Eigen::VectorXd rate(m), to_win = Eigen::VectorXd::Zero(m);
    double lambda = 0.0;
    for (std::size_t i = 0; i < open; ++i) {
        rate(static_cast<Eigen::Index>(i)) = 1.0 / g.dwell(i).mean();
        lambda = std::max(lambda, rate(static_cast<Eigen::Index>(i)));
        for (const auto& e : g.edges(i))
            if (g.is_win(e.to)) to_win(static_cast<Eigen::Index>(i)) += e.probability;
    }
    Eigen::VectorXd v = Eigen::VectorXd::Zero(m);
    if (t == 0.0) return v;
    const Eigen::SparseMatrix<double, Eigen::RowMajor> q = sparse_transient_block(g);
    const Eigen::VectorXd stay = (Eigen::VectorXd::Ones(m) - rate / lambda).cwiseMax(0.0);
    const Eigen::VectorXd move = rate / lambda;
    const double x = lambda * t;
    const auto pieces = static_cast<long long>(std::ceil(x / 32.0));
    const double y = x / static_cast<double>(pieces);
    Eigen::VectorXd term(m), next(m), acc(m);
    for (long long piece = 0; piece < pieces; ++piece) {
        term = v; // P^k v
        double weight = std::exp(-y);
        acc = weight * term;
        for (long long k = 1;; ++k) {
            next.noalias() = q * term;
            term = stay.cwiseProduct(term) + move.cwiseProduct(next + to_win);
            weight *= y / static_cast<double>(k);
            acc += weight * term;
            if (static_cast<double>(k) > y && weight < 1e-18) break;
        }
        v = acc.cwiseMin(1.0);
    }
    return v;
}
} // namespace detail

/// Exact P(won by time t | deal just entered open stage i), for every open stage, for an
/// all-exponential model: the phase-type distribution e^{Gt}. Dense: the matrix exponential
/// (O(n³)); sparse (automatic where cheaper, from detail::sparse_min_open open stages on):
/// uniformization over the edges (about 2.7 Λt sparse products, Λ the fastest exit rate).
/// @throws argument_error unless is_markov(g), if t is negative or not finite, or if the
///   sparse path would need more than detail::uniformization_max_work multiply-adds (a
///   stage far faster than the horizon; the renewal method of period_forecast then applies).
template <class = void>
[[nodiscard]] Eigen::VectorXd won_by_exact(const stage_graph& g, double t,
                                           solver_method method = solver_method::automatic) {
    if (!(std::isfinite(t) && t >= 0.0))
        throw argument_error(detail::message("won_by_exact: t must be finite and >= 0, got ", t));
    if (!is_markov(g))
        throw argument_error("ctmc_generator: every dwell must be exponential for the model to be Markov");
    if (detail::use_sparse(method, g.open_count())) {
        const double n = static_cast<double>(g.size());
        const double work = detail::uniformization_work(g, t);
        const bool dense_cheaper = method == solver_method::automatic && 30.0 * n * n * n < work;
        if (!dense_cheaper) {
            if (work > detail::uniformization_max_work)
                throw argument_error(detail::message(
                    "won_by_exact: the horizon ", t, " spans too many mean dwells of the fastest stage (about ",
                    work, " operations): use the renewal method"));
            return detail::won_by_uniformized(g, t);
        }
    }
    const Eigen::MatrixXd pt = (ctmc_generator(g) * t).exp();
    const auto m = static_cast<Eigen::Index>(g.open_count());
    Eigen::VectorXd w = Eigen::VectorXd::Zero(m);
    for (std::size_t k = 0; k < g.outcome_count(); ++k)
        if (g.outcomes()[k].win) w += pt.col(m + static_cast<Eigen::Index>(k)).head(m);
    return w.cwiseMax(0.0).cwiseMin(1.0);
}

} // namespace pipecast
