// Tests of analytics.hpp: absorption analysis of the jump chain against hand-solved small
// cases and independent closed forms; the CTMC phase-type solution.
#include <pipecast/io/model_json.hpp>
#include <pipecast/model/analytics.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_analytics {

using pipecast::dwell_distribution;
using pipecast::stage_graph;
using doctest::Approx;

namespace {

/// Three open stages with a go-back edge from each of B and C, dwells of three families:
///   A (exponential, mean 2):  -> B 0.8, -> Lost 0.2
///   B (gamma k=3, mean 3):    -> C 0.5, -> A 0.25, -> Lost 0.25
///   C (fixed 5):              -> Won 0.6, -> B 0.2, -> Lost 0.2
stage_graph loop3(bool exponential = false) {
    std::vector<pipecast::open_stage> st = {
        {"A", dwell_distribution::exponential(2.0)},
        {"B", exponential ? dwell_distribution::exponential(3.0) : dwell_distribution::gamma(3.0, 3.0)},
        {"C", exponential ? dwell_distribution::exponential(5.0) : dwell_distribution::fixed(5.0)}};
    Eigen::MatrixXd p(3, 5);
    p << 0.0, 0.8, 0.0, 0.0, 0.2,
         0.25, 0.0, 0.5, 0.0, 0.25,
         0.0, 0.2, 0.0, 0.6, 0.2;
    return stage_graph(std::move(st), {{"Won", true}, {"Lost", false}}, p);
}

using pipecast_test::check_throws;

constexpr double tight = 1e-13;

} // namespace

TEST_CASE("analytics") {
    SUBCASE("hand-solved three-stage chain with go-back edges") {
        const auto g = loop3();
        const auto a = pipecast::analyse(g);
        // Win probabilities: w_A = 0.8 w_B, w_B = 0.5 w_C + 0.25 w_A, w_C = 0.6 + 0.2 w_B
        //   => w_B = 0.3 + 0.1 w_B + 0.2 w_B => w_B = 3/7, w_A = 12/35, w_C = 24/35.
        CHECK(a.win_probability(0) == Approx(12.0 / 35).epsilon(tight));
        CHECK(a.win_probability(1) == Approx(3.0 / 7).epsilon(tight));
        CHECK(a.win_probability(2) == Approx(24.0 / 35).epsilon(tight));
        for (int i = 0; i < 3; ++i) {
            CHECK(a.outcome_probability(i, 0) == Approx(a.win_probability(i)).epsilon(tight));
            CHECK(a.outcome_probability.row(i).sum() == Approx(1.0).epsilon(tight));
        }
        // Expected visits N = (I - Q)^-1: det(I - Q) = 0.7 and by cofactors
        //   N = (1/0.7) [[0.9, 0.8, 0.4], [0.25, 1, 0.5], [0.05, 0.2, 0.8]].
        const double n[3][3] = {{0.9, 0.8, 0.4}, {0.25, 1.0, 0.5}, {0.05, 0.2, 0.8}};
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) CHECK(a.expected_visits(i, j) == Approx(n[i][j] / 0.7).epsilon(tight));
        // Mean time to close t = N μ, μ = (2, 3, 5): t = (6.2, 6, 4.7)/0.7 = (62, 60, 47)/7.
        CHECK(a.mean_time_to_close(0) == Approx(62.0 / 7).epsilon(tight));
        CHECK(a.mean_time_to_close(1) == Approx(60.0 / 7).epsilon(tight));
        CHECK(a.mean_time_to_close(2) == Approx(47.0 / 7).epsilon(tight));
        // Second moments s = N (m2 + 2 μ∘(Q t)), m2 = (8, 3 + 9, 25):
        //   Q t = (48, 39, 12)/7, v = m2 + 2 μ∘Qt = (248, 318, 295)/7,
        //   s = (1/4.9) (0.9·248 + 0.8·318 + 0.4·295, 0.25·248 + 318 + 0.5·295, 0.05·248 + 0.2·318 + 0.8·295)
        //     = (595.6, 527.5, 312)/4.9.
        CHECK(a.time_to_close_variance(0) == Approx(595.6 / 4.9 - (62.0 / 7) * (62.0 / 7)).epsilon(1e-12));
        CHECK(a.time_to_close_variance(1) == Approx(527.5 / 4.9 - (60.0 / 7) * (60.0 / 7)).epsilon(1e-12));
        CHECK(a.time_to_close_variance(2) == Approx(312.0 / 4.9 - (47.0 / 7) * (47.0 / 7)).epsilon(1e-12));
        // Time given a win (h-transform Q̃_ij = Q_ij w_j / w_i):
        //   Q̃_AB = 1, Q̃_BA = 0.2, Q̃_BC = 0.8, Q̃_CB = 0.125 (and C -> Won 0.875);
        //   τ_A = 2 + τ_B, τ_B = 3 + 0.2 τ_A + 0.8 τ_C, τ_C = 5 + 0.125 τ_B
        //   => τ_B = 7.4 + 0.3 τ_B = 74/7, τ_A = 88/7, τ_C = 5 + 37/28 = 177/28.
        CHECK(a.mean_time_to_win(0) == Approx(88.0 / 7).epsilon(tight));
        CHECK(a.mean_time_to_win(1) == Approx(74.0 / 7).epsilon(tight));
        CHECK(a.mean_time_to_win(2) == Approx(177.0 / 28).epsilon(tight));
        // single-stage entry points agree
        CHECK(pipecast::win_probability(g, 1) == Approx(3.0 / 7).epsilon(tight));
        CHECK((pipecast::win_probabilities(g) - a.win_probability).cwiseAbs().maxCoeff() <= 1e-15);
    }

    SUBCASE("E[T] = P(win) E[T | win] + P(loss) E[T | loss] (h-transform towards the loss)") {
        const auto g = pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json").graph;
        const auto a = pipecast::analyse(g);
        const Eigen::MatrixXd q = g.transient_block();
        const Eigen::VectorXd l = Eigen::VectorXd::Ones(5) - a.win_probability;
        Eigen::MatrixXd ql(5, 5);
        Eigen::VectorXd mu(5);
        for (int i = 0; i < 5; ++i) {
            mu(i) = g.dwell(static_cast<std::size_t>(i)).mean();
            for (int j = 0; j < 5; ++j) ql(i, j) = q(i, j) * l(j) / l(i);
        }
        const Eigen::VectorXd tl = (Eigen::MatrixXd::Identity(5, 5) - ql).lu().solve(mu);
        for (int i = 0; i < 5; ++i) {
            const double w = a.win_probability(i);
            CHECK(a.mean_time_to_close(i) == Approx(w * a.mean_time_to_win(i) + (1 - w) * tl(i)).epsilon(1e-12));
        }
    }

    SUBCASE("b2b6: win probabilities against value iteration") {
        const auto g = pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json").graph;
        const auto a = pipecast::analyse(g);
        // w <- p_win + Q w converges geometrically from 0
        const Eigen::MatrixXd q = g.transient_block();
        const Eigen::VectorXd pw = g.absorbing_block().col(0);
        Eigen::VectorXd w = Eigen::VectorXd::Zero(5), visits_from_0 = Eigen::VectorXd::Zero(5);
        Eigen::RowVectorXd occupancy = Eigen::RowVectorXd::Unit(5, 0);
        for (int it = 0; it < 2000; ++it) {
            w = pw + q * w;
            visits_from_0 += occupancy.transpose();
            occupancy = occupancy * q;
        }
        for (int i = 0; i < 5; ++i) {
            CHECK(a.win_probability(i) == Approx(w(i)).epsilon(1e-13));
            CHECK(a.expected_visits(0, i) == Approx(visits_from_0(i)).epsilon(1e-13));
        }
        // Negotiation wins directly with 0.75, comes back with 0.05: w_N = 0.75 + 0.05 w_P
        CHECK(a.win_probability(4) == Approx(0.75 + 0.05 * a.win_probability(3)).epsilon(tight));
        // every quantity is finite and in range
        CHECK(a.win_probability.minCoeff() > 0.0);
        CHECK(a.win_probability.maxCoeff() < 1.0);
        CHECK(a.time_to_close_variance.minCoeff() > 0.0);
        CHECK(a.mean_time_to_win.allFinite());
    }

    SUBCASE("straight chain: products of conversions, sums of means and variances") {
        // A -> B (c1) -> C (c2) -> Won (c3); each else Lost
        const double c1 = 0.6, c2 = 0.5, c3 = 0.9;
        const auto dA = dwell_distribution::gamma(2.0, 4.0), dB = dwell_distribution::lognormal(6.0, 3.0),
                   dC = dwell_distribution::weibull(1.5, 10.0);
        const auto g = pipecast::linear_funnel({"A", "B", "C"}, {c1, c2, c3}, {dA, dB, dC}, pipecast::funnel_rates::conversion);
        const auto a = pipecast::analyse(g);
        CHECK(a.win_probability(0) == Approx(c1 * c2 * c3).epsilon(tight));
        CHECK(a.win_probability(1) == Approx(c2 * c3).epsilon(tight));
        CHECK(a.win_probability(2) == Approx(c3).epsilon(tight));
        CHECK(a.expected_visits(0, 2) == Approx(c1 * c2).epsilon(tight));
        CHECK(a.expected_visits(2, 0) == 0.0);
        // T_A = D_A + 1{B} (D_B + 1{C} D_C)
        const double mA = dA.mean(), mB = dB.mean(), mC = dC.mean();
        const double vA = pipecast::variance(dA), vB = pipecast::variance(dB), vC = pipecast::variance(dC);
        CHECK(a.mean_time_to_close(2) == Approx(mC).epsilon(tight));
        CHECK(a.mean_time_to_close(1) == Approx(mB + c2 * mC).epsilon(tight));
        CHECK(a.mean_time_to_close(0) == Approx(mA + c1 * (mB + c2 * mC)).epsilon(tight));
        // Var[X + 1{p} Y] = Var X + p Var Y + p (1 - p) (E Y)²
        const double var_c = vC;
        const double var_b = vB + c2 * var_c + c2 * (1 - c2) * mC * mC;
        const double mean_b = mB + c2 * mC;
        const double var_a = vA + c1 * var_b + c1 * (1 - c1) * mean_b * mean_b;
        CHECK(a.time_to_close_variance(2) == Approx(var_c).epsilon(1e-12));
        CHECK(a.time_to_close_variance(1) == Approx(var_b).epsilon(1e-12));
        CHECK(a.time_to_close_variance(0) == Approx(var_a).epsilon(1e-12));
        // a win passes every stage: E[T | win, A] = mA + mB + mC
        CHECK(a.mean_time_to_win(0) == Approx(mA + mB + mC).epsilon(tight));
        CHECK(a.mean_time_to_win(1) == Approx(mB + mC).epsilon(tight));
        // the cumulative-win-rate form is the same chain
        const auto gw = pipecast::linear_funnel({"A", "B", "C"}, {c1 * c2 * c3, c2 * c3, c3}, {dA, dB, dC});
        CHECK((pipecast::analyse(gw).win_probability - a.win_probability).cwiseAbs().maxCoeff() <= 1e-15);
    }

    SUBCASE("geometric loop: one stage that repeats itself") {
        // A -> A (r), -> Won (p), -> Lost (1 - r - p); visits K ~ Geometric(1 - r)
        const double r = 0.3, p = 0.42, mu = 4.0, sd = 1.5;
        Eigen::MatrixXd m(1, 3);
        m << r, p, 1 - r - p;
        const stage_graph g({{"A", dwell_distribution::lognormal(mu, sd)}}, {{"Won", true}, {"Lost", false}}, m);
        const auto a = pipecast::analyse(g);
        CHECK(a.expected_visits(0, 0) == Approx(1 / (1 - r)).epsilon(tight));
        CHECK(a.win_probability(0) == Approx(p / (1 - r)).epsilon(tight));
        CHECK(a.mean_time_to_close(0) == Approx(mu / (1 - r)).epsilon(tight));
        // Var[Σ_{k<=K} D_k] = E[K] σ² + Var[K] μ², Var[K] = r / (1 - r)²
        CHECK(a.time_to_close_variance(0) == Approx(sd * sd / (1 - r) + r / ((1 - r) * (1 - r)) * mu * mu).epsilon(1e-12));
        // the outcome is independent of K, so the time given a win is the same
        CHECK(a.mean_time_to_win(0) == Approx(mu / (1 - r)).epsilon(tight));
    }

    SUBCASE("more outcomes; a stage that cannot win") {
        // A -> B 0.5, -> Upsold 0.1, -> Disq 0.4; B -> Lost 1 (cannot win)
        Eigen::MatrixXd m(2, 6);
        m << 0.0, 0.5, 0.0, 0.0, 0.4, 0.1,
             0.0, 0.0, 0.0, 1.0, 0.0, 0.0;
        const stage_graph g({{"A", dwell_distribution::exponential(1.0)}, {"B", dwell_distribution::exponential(2.0)}},
                            {{"Won", true}, {"Lost", false}, {"Disq", false}, {"Upsold", true}}, m);
        const auto a = pipecast::analyse(g);
        CHECK(a.outcome_probability(0, 0) == 0.0);
        CHECK(a.outcome_probability(0, 1) == Approx(0.5).epsilon(tight));
        CHECK(a.outcome_probability(0, 2) == Approx(0.4).epsilon(tight));
        CHECK(a.outcome_probability(0, 3) == Approx(0.1).epsilon(tight));
        CHECK(a.win_probability(0) == Approx(0.1).epsilon(tight));
        CHECK(a.win_probability(1) == 0.0);
        CHECK(a.mean_time_to_win(0) == Approx(1.0).epsilon(tight)); // wins only straight from A
        CHECK(std::isnan(a.mean_time_to_win(1)));
        CHECK(a.mean_time_to_close(0) == Approx(1.0 + 0.5 * 2.0).epsilon(tight));
        CHECK(pipecast::win_probability(g, 5) == 1.0); // Upsold
        CHECK(pipecast::win_probability(g, 4) == 0.0); // Disq
        check_throws<pipecast::argument_error>([&] { (void)pipecast::win_probability(g, 6); },
                                               {"win_probability", "stage index 6"});
    }

    SUBCASE("CTMC generator: rows sum to 0, rates P/μ, non-Markov rejected") {
        const auto g = loop3(true);
        CHECK(pipecast::is_markov(g));
        CHECK_FALSE(pipecast::is_markov(loop3(false)));
        const Eigen::MatrixXd gen = pipecast::ctmc_generator(g);
        REQUIRE(gen.rows() == 5);
        REQUIRE(gen.cols() == 5);
        for (int i = 0; i < 5; ++i) CHECK(std::abs(gen.row(i).sum()) <= 1e-15);
        CHECK(gen.row(3).isZero());
        CHECK(gen.row(4).isZero());
        CHECK(gen(0, 0) == Approx(-0.5).epsilon(tight));
        CHECK(gen(0, 1) == Approx(0.8 / 2).epsilon(tight));
        CHECK(gen(1, 0) == Approx(0.25 / 3).epsilon(tight));
        CHECK(gen(2, 3) == Approx(0.6 / 5).epsilon(tight));
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 5; ++j)
                if (i != j) CHECK(gen(i, j) >= 0.0);
        // a self-loop leaves the stage at rate (1 - P_ii)/μ
        Eigen::MatrixXd m(1, 3);
        m << 0.25, 0.5, 0.25;
        const stage_graph s({{"A", dwell_distribution::exponential(2.0)}}, {{"Won", true}, {"Lost", false}}, m);
        CHECK(pipecast::ctmc_generator(s)(0, 0) == Approx(-0.375).epsilon(tight));
        check_throws<pipecast::argument_error>([] { (void)pipecast::ctmc_generator(loop3(false)); },
                                               {"ctmc_generator", "exponential"});
        check_throws<pipecast::argument_error>([] { (void)pipecast::won_by_exact(loop3(false), 1.0); },
                                               {"exponential"});
    }

    SUBCASE("won_by_exact: single exponential stage p (1 - e^{-t/μ})") {
        const double p = 0.35, mu = 6.0;
        Eigen::MatrixXd m(1, 3);
        m << 0.0, p, 1 - p;
        const stage_graph g({{"A", dwell_distribution::exponential(mu)}}, {{"Won", true}, {"Lost", false}}, m);
        for (double t : {0.0, 0.1, 1.0, 6.0, 20.0, 100.0})
            CHECK(pipecast::won_by_exact(g, t)(0) == Approx(p * -std::expm1(-t / mu)).epsilon(1e-12));
        CHECK(pipecast::won_by_exact(g, 0.0)(0) == 0.0);
    }

    SUBCASE("won_by_exact: two-stage chain, hypoexponential cdf") {
        // A (rate l1) -> B with c, B (rate l2) -> Won with p.
        const double mu1 = 3.0, mu2 = 7.0, c = 0.6, p = 0.8, l1 = 1 / mu1, l2 = 1 / mu2;
        const auto g = pipecast::linear_funnel({"A", "B"}, {c, p}, std::vector<double>{mu1, mu2},
                                               pipecast::funnel_rates::conversion);
        for (double t : {0.5, 2.0, 5.0, 10.0, 30.0, 80.0}) {
            const double hypo = 1 - (l2 * std::exp(-l1 * t) - l1 * std::exp(-l2 * t)) / (l2 - l1);
            const Eigen::VectorXd w = pipecast::won_by_exact(g, t);
            CHECK(w(0) == Approx(c * p * hypo).epsilon(1e-11));
            CHECK(w(1) == Approx(p * -std::expm1(-l2 * t)).epsilon(1e-11));
        }
    }

    SUBCASE("won_by_exact: t -> infinity gives the win probability; monotone; backward equation") {
        const auto g = loop3(true);
        const auto a = pipecast::analyse(g);
        const Eigen::VectorXd far = pipecast::won_by_exact(g, 2000.0);
        for (int i = 0; i < 3; ++i) CHECK(far(i) == Approx(a.win_probability(i)).epsilon(1e-10));
        Eigen::VectorXd prev = Eigen::VectorXd::Zero(3);
        for (double t = 0.5; t < 60.0; t += 0.5) {
            const Eigen::VectorXd w = pipecast::won_by_exact(g, t);
            CHECK((w - prev).minCoeff() >= -1e-14);
            prev = w;
        }
        // Kolmogorov backward equation on the open rows: F'(t) = G_open,open F(t) + G_open,won
        const Eigen::MatrixXd gen = pipecast::ctmc_generator(g);
        const double t = 7.0, h = 1e-4;
        const Eigen::VectorXd deriv = (pipecast::won_by_exact(g, t + h) - pipecast::won_by_exact(g, t - h)) / (2 * h);
        const Eigen::VectorXd rhs = gen.topLeftCorner(3, 3) * pipecast::won_by_exact(g, t) + gen.block(0, 3, 3, 1);
        CHECK((deriv - rhs).cwiseAbs().maxCoeff() <= 1e-8);
        for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
            check_throws<pipecast::argument_error>([&] { (void)pipecast::won_by_exact(g, bad); }, {"won_by_exact", "t must be"});
    }
}

// ---------------------------------------------------------------------------------------
// Large graphs: sparse LU (and uniformization) against the dense path
// ---------------------------------------------------------------------------------------

namespace {

/// A random graph of m open stages: forward edges, random skips and go-backs, self-loops,
/// a region that can only lose, mixed dwell families (all exponential with `markov`), and
/// with `branched` every seventh stage branched (with a stalled share).
stage_graph random_graph(std::size_t m, std::uint64_t seed, bool markov = false, bool branched = false) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::uniform_int_distribution<std::size_t> any(0, m - 1);
    std::vector<pipecast::open_stage> st;
    pipecast::transition_rows rows;
    auto name = [](std::size_t i) { return std::string("S").append(std::to_string(i)); };
    for (std::size_t i = 0; i < m; ++i) {
        const double mean = 2.0 + 20.0 * u(rng);
        dwell_distribution d = dwell_distribution::exponential(mean);
        if (!markov && i % 3 == 1) d = dwell_distribution::gamma(2.0, mean);
        if (!markov && i % 3 == 2) d = dwell_distribution::lognormal(mean, 0.5 * mean);
        const bool dead = i >= m - m / 10; // the last tenth only loses (no winning path)
        std::map<std::string, double> row;
        double left = 1.0;
        auto put = [&](const std::string& to, double p) {
            row[to] += p;
            left -= p;
        };
        if (i + 1 < m && !(i + 1 == m - m / 10)) put(name(i + 1), 0.5 + 0.3 * u(rng));
        for (int k = 0; k < 2; ++k) {
            const std::size_t j = any(rng);
            if (dead != (j >= m - m / 10)) continue; // the dead region stays closed to wins
            put(name(j), 0.05 * u(rng));
        }
        if (!dead && u(rng) < 0.3) put("Won", left * 0.5 * u(rng));
        if (u(rng) < 0.3) put("Disqualified", left * 0.2);
        row["Lost"] += left;
        if (branched && i % 7 == 3 && !markov) {
            std::vector<pipecast::stage_branch> br;
            double stall = 0.1;
            for (const auto& [to, p] : row)
                br.push_back({to, p * (1.0 - stall), dwell_distribution::gamma(2.0, 3.0 + 10.0 * u(rng))});
            br.push_back({"Lost", stall, dwell_distribution::exponential(60.0), true});
            st.push_back({name(i), d, br});
        } else {
            st.push_back({name(i), d});
            rows[name(i)] = row;
        }
    }
    return stage_graph::from_rows(std::move(st), {{"Won", true}, {"Lost", false}, {"Disqualified", false}}, rows);
}

/// Each entry within `rel` relative or `abs` absolute (for values that are 0 up to the
/// rounding of a solve, such as P(win) of a stage that cannot win); NaN where the other is.
void check_close(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, double rel, double abs) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    double worst = 0.0;
    for (Eigen::Index i = 0; i < a.rows(); ++i)
        for (Eigen::Index j = 0; j < a.cols(); ++j) {
            if (std::isnan(a(i, j)) || std::isnan(b(i, j))) {
                CHECK(std::isnan(a(i, j)));
                CHECK(std::isnan(b(i, j)));
                continue;
            }
            const double diff = std::abs(a(i, j) - b(i, j));
            if (diff > abs) worst = std::max(worst, diff / std::max(std::abs(a(i, j)), std::abs(b(i, j))));
        }
    CHECK(worst <= rel);
}

void check_same_analysis(const stage_graph& g) {
    const auto d = pipecast::analyse(g, pipecast::solver_method::dense);
    const auto s = pipecast::analyse(g, pipecast::solver_method::sparse);
    check_close(d.expected_visits, s.expected_visits, 1e-12, 1e-15);
    check_close(d.outcome_probability, s.outcome_probability, 1e-12, 1e-15);
    check_close(d.win_probability, s.win_probability, 1e-12, 1e-15);
    // win_probabilities solves only B, with the same LU as analyse: the same values, bit for bit
    CHECK(pipecast::win_probabilities(g, pipecast::solver_method::dense) == d.win_probability);
    CHECK(pipecast::win_probabilities(g, pipecast::solver_method::sparse) == s.win_probability);
    check_close(d.mean_time_to_close, s.mean_time_to_close, 1e-12, 0.0);
    check_close(d.time_to_close_variance, s.time_to_close_variance, 1e-12, 0.0);
    // E[T | win] where both solves see a stage that can win (noise of 1e-17 in P(win) of a
    // stage that cannot win would make it "live" in one of them)
    for (Eigen::Index i = 0; i < d.win_probability.size(); ++i)
        if (d.win_probability(i) > 1e-9) {
            INFO("stage " << i);
            CHECK(std::abs(d.mean_time_to_win(i) - s.mean_time_to_win(i)) <= 1e-12 * d.mean_time_to_win(i));
        }
}

} // namespace

TEST_CASE("large graphs: sparse LU agrees with dense LU") {
    SUBCASE("b2b6, loop3, crm4 (branched, latent graph)") {
        check_same_analysis(pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json").graph);
        check_same_analysis(loop3());
        check_same_analysis(pipecast_test::crm4_spec_graph());
        check_same_analysis(pipecast_test::crm4_spec_graph(true));
    }
    SUBCASE("random 300-stage graphs with loops, a losing region and branched stages") {
        for (std::uint64_t seed : {1u, 2u, 3u}) {
            const auto g = random_graph(300, seed, false, seed == 3);
            INFO("seed " << seed);
            check_same_analysis(g);
            // automatic = sparse at this size (>= detail::sparse_min_open)
            const auto a = pipecast::analyse(g), s = pipecast::analyse(g, pipecast::solver_method::sparse);
            CHECK(a.win_probability == s.win_probability);
            CHECK(pipecast::win_probabilities(g) == a.win_probability);
            CHECK(a.win_probability.maxCoeff() > 0.0);
            CHECK(a.win_probability.minCoeff() <= 1e-15); // the losing region
            // rows of N by one solve
            for (std::size_t i : {std::size_t{0}, std::size_t{17}, std::size_t{299}}) {
                check_close(pipecast::expected_visits_row(g, i, pipecast::solver_method::sparse),
                            a.expected_visits.row(static_cast<Eigen::Index>(i)).transpose(), 1e-12, 1e-15);
                check_close(pipecast::expected_visits_row(g, i, pipecast::solver_method::dense),
                            a.expected_visits.row(static_cast<Eigen::Index>(i)).transpose(), 1e-12, 1e-15);
            }
        }
        check_throws<pipecast::argument_error>(
            [&] { (void)pipecast::expected_visits_row(loop3(), 3); }, {"expected_visits_row", "stage index 3"});
    }
    SUBCASE("won_by_exact: uniformization against the matrix exponential") {
        const auto g = random_graph(120, 5, true);
        REQUIRE(pipecast::is_markov(g));
        for (double t : {0.0, 0.3, 5.0, 40.0, 900.0}) { // 900: Λt ≈ 450, many pieces
            INFO("t = " << t);
            check_close(pipecast::won_by_exact(g, t, pipecast::solver_method::dense),
                        pipecast::won_by_exact(g, t, pipecast::solver_method::sparse), 1e-12, 1e-15);
        }
        const auto l3 = loop3(true);
        for (double t : {1.0, 7.0, 2000.0})
            check_close(pipecast::won_by_exact(l3, t, pipecast::solver_method::dense),
                        pipecast::won_by_exact(l3, t, pipecast::solver_method::sparse), 1e-12, 1e-15);
        check_throws<pipecast::argument_error>(
            [&] { (void)pipecast::won_by_exact(loop3(), 1.0, pipecast::solver_method::sparse); }, {"exponential"});
    }
}

TEST_CASE("large graphs: a 2,500-stage chain loads and is analysed by sparse LU") {
    // Stage i -> i+1 with c = 0.999 (the last -> Won with 0.9), else Lost; mean dwell 1 + i%5.
    const std::size_t m = 2500;
    std::vector<std::string> names;
    std::vector<double> conv(m, 0.999), means;
    for (std::size_t i = 0; i < m; ++i) {
        names.push_back(std::string("Stage ").append(std::to_string(i)));
        means.push_back(1.0 + static_cast<double>(i % 5));
    }
    conv.back() = 0.9;
    const auto g = pipecast::linear_funnel(names, conv, means, pipecast::funnel_rates::conversion);
    const auto a = pipecast::analyse(g);
    // N is not formed above detail::full_visits_max_open open stages; rows come by a solve.
    CHECK(a.expected_visits.size() == 0);
    const Eigen::VectorXd n0 = pipecast::expected_visits_row(g, a, 0);
    double w = 1.0, t = 0.0, tw = 0.0, reach = 1.0;
    for (std::size_t k = m; k-- > 0;) { // backwards: P(win), E[T], E[T | win] from stage k
        w *= conv[k];
        t = means[k] + (k + 1 < m ? conv[k] * t : 0.0);
        tw += means[k];
        const auto ki = static_cast<Eigen::Index>(k);
        if (k % 499 == 0 || k + 1 == m) {
            CHECK(a.win_probability(ki) == Approx(w).epsilon(1e-12));
            CHECK(a.mean_time_to_close(ki) == Approx(t).epsilon(1e-12));
            CHECK(a.mean_time_to_win(ki) == Approx(tw).epsilon(1e-12));
        }
    }
    for (std::size_t j = 0; j < m; ++j) { // visits from stage 0: Π_{k<j} c_k
        if (j % 250 == 0) CHECK(n0(static_cast<Eigen::Index>(j)) == Approx(reach).epsilon(1e-12));
        reach *= conv[j];
    }
}

} // namespace unit_analytics
