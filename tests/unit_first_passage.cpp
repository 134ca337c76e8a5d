// Tests of first_passage.hpp: the renewal-equation grid solver for P(won by t) and
// P(won within h | stage, age), against the exact phase-type solution, closed forms and
// quadrature, including its O(Δ²) convergence.
#include <pipecast/io/model_json.hpp>
#include <pipecast/model/first_passage.hpp>

#include "test_support.hpp"
#include <boost/math/distributions/gamma.hpp>
#include <boost/math/quadrature/tanh_sinh.hpp>
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_first_passage {

using pipecast::dwell_distribution;
using pipecast::stage_graph;
using doctest::Approx;

namespace {

/// Loop of three exponential stages (see unit_analytics.cpp):
///   A (mean 2) -> B 0.8, Lost 0.2; B (mean 3) -> C 0.5, A 0.25, Lost 0.25;
///   C (mean 5) -> Won 0.6, B 0.2, Lost 0.2.
stage_graph markov3() {
    Eigen::MatrixXd p(3, 5);
    p << 0.0, 0.8, 0.0, 0.0, 0.2,
         0.25, 0.0, 0.5, 0.0, 0.25,
         0.0, 0.2, 0.0, 0.6, 0.2;
    return stage_graph({{"A", dwell_distribution::exponential(2.0)},
                        {"B", dwell_distribution::exponential(3.0)},
                        {"C", dwell_distribution::exponential(5.0)}},
                       {{"Won", true}, {"Lost", false}}, p);
}

/// One stage with dwell d: -> Won with p, else Lost.
stage_graph single(const dwell_distribution& d, double p) {
    Eigen::MatrixXd m(1, 3);
    m << 0.0, p, 1 - p;
    return stage_graph({{"S", d}}, {{"Won", true}, {"Lost", false}}, m);
}

/// Two stages: A (dwell d) -> B with c (else Lost); B (exponential, mean mu_b) -> Won with p.
stage_graph chain2(const dwell_distribution& d, double c, double mu_b, double p) {
    return pipecast::linear_funnel({"A", "B"}, {c, p}, {d, dwell_distribution::exponential(mu_b)},
                                   pipecast::funnel_rates::conversion);
}

/// Largest |table - exact| over the grid points t = j·H/200.
double max_error_markov(const stage_graph& g, double horizon, std::size_t steps) {
    const auto tab = pipecast::win_time_distribution(g, horizon, steps);
    double err = 0.0;
    for (int j = 1; j <= 200; ++j) {
        const double t = horizon * j / 200.0;
        const Eigen::VectorXd exact = pipecast::won_by_exact(g, t);
        for (std::size_t i = 0; i < g.open_count(); ++i)
            err = std::max(err, std::abs(pipecast::won_by(tab, i, t) - exact(static_cast<Eigen::Index>(i))));
    }
    return err;
}

using pipecast_test::check_throws;

} // namespace

TEST_CASE("first_passage") {
    SUBCASE("Markov model: the grid solution converges to e^{Gt} at O(Δ²)") {
        const auto g = markov3();
        const double e1 = max_error_markov(g, 40.0, 200);
        const double e2 = max_error_markov(g, 40.0, 400);
        const double e3 = max_error_markov(g, 40.0, 800);
        INFO("errors " << e1 << " " << e2 << " " << e3);
        CHECK(e1 < 1e-3);
        // halving Δ divides the error by about 4 (second order)
        CHECK(e1 / e2 == Approx(4.0).epsilon(0.15));
        CHECK(e2 / e3 == Approx(4.0).epsilon(0.15));
        // the default grid is fine enough for 1e-5 here
        const auto tab = pipecast::win_time_distribution(g, 40.0);
        CHECK(tab.steps() >= 200);
        CHECK(tab.horizon() == Approx(40.0).epsilon(1e-15));
        const Eigen::VectorXd exact = pipecast::won_by_exact(g, 40.0);
        for (std::size_t i = 0; i < 3; ++i) CHECK(std::abs(pipecast::won_by(tab, i, 40.0) - exact(static_cast<Eigen::Index>(i))) < 1e-5);
    }

    SUBCASE("won_within: age 0 equals won_by; exponential ages change nothing (memoryless)") {
        const auto g = markov3();
        const auto tab = pipecast::win_time_distribution(g, 30.0, 600);
        for (std::size_t i = 0; i < 3; ++i) {
            for (double h : {0.05, 1.0, 7.5, 30.0}) { // on the grid (Δ = 0.05)
                const double f = pipecast::won_by(tab, i, h);
                CHECK(pipecast::won_within(g, tab, i, 0.0, h) == Approx(f).epsilon(1e-13));
                for (double age : {0.7, 5.0, 100.0})
                    CHECK(pipecast::won_within(g, tab, i, age, h) == Approx(f).epsilon(1e-13));
            }
            CHECK(pipecast::won_within(g, tab, i, 3.0, 0.0) == 0.0);
        }
        // off the grid: age 0 still agrees with the interpolated table to O(Δ²)
        CHECK(pipecast::won_within(g, tab, 0, 0.0, 7.52) == Approx(pipecast::won_by(tab, 0, 7.52)).epsilon(1e-4));
    }

    SUBCASE("single gamma stage: P(win within h) = p G(h); with age p (G(a+h) - G(a)) / S(a)") {
        const double p = 0.7;
        const auto d = dwell_distribution::gamma(2.5, 12.0);
        const auto g = single(d, p);
        const boost::math::gamma_distribution<double> b(2.5, 12.0 / 2.5);
        const auto tab = pipecast::win_time_distribution(g, 60.0, 300);
        for (double h : {2.0, 12.0, 30.0, 60.0}) {
            CHECK(pipecast::won_by(tab, 0, h) == Approx(p * boost::math::cdf(b, h)).epsilon(1e-12));
            for (double age : {0.0, 5.0, 20.0}) {
                if (age + h > 60.0) continue;
                const double s = boost::math::cdf(boost::math::complement(b, age));
                const double want = p * (boost::math::cdf(b, age + h) - boost::math::cdf(b, age)) / s;
                CHECK(pipecast::won_within(g, tab, 0, age, h) == Approx(want).epsilon(1e-11));
            }
        }
    }

    SUBCASE("gamma stage then exponential stage: against quadrature, O(Δ²)") {
        // P(won by t | A) = c p ∫_0^t g_A(s) (1 - e^{-(t-s)/μ_B}) ds
        const double c = 0.6, p = 0.8, mu_b = 4.0;
        const auto d = dwell_distribution::gamma(3.0, 9.0);
        const auto g = chain2(d, c, mu_b, p);
        const boost::math::gamma_distribution<double> b(3.0, 3.0);
        boost::math::quadrature::tanh_sinh<double> ts;
        auto exact = [&](double t) {
            return c * p * ts.integrate([&](double s) { return boost::math::pdf(b, s) * -std::expm1(-(t - s) / mu_b); }, 0.0, t);
        };
        auto max_err = [&](std::size_t steps) {
            const auto tab = pipecast::win_time_distribution(g, 40.0, steps);
            double err = 0.0;
            for (double t : {2.0, 5.0, 10.0, 20.0, 40.0}) err = std::max(err, std::abs(pipecast::won_by(tab, 0, t) - exact(t)));
            return err;
        };
        const double e1 = max_err(100), e2 = max_err(200), e3 = max_err(400);
        INFO("errors " << e1 << " " << e2 << " " << e3);
        CHECK(e1 < 2e-3);
        CHECK(e1 / e2 == Approx(4.0).epsilon(0.2));
        CHECK(e2 / e3 == Approx(4.0).epsilon(0.2));
    }

    SUBCASE("Weibull stage of a given age: the residual dwell, closed form") {
        // A Weibull(k, λ) of age a -> B (exponential μ_B) with c, B -> Won with p:
        //   P(won within h | A, a) = c p ∫_0^h f_a(s) (1 - e^{-(h-s)/μ_B}) ds,
        //   f_a(s) = (k/λ) ((a+s)/λ)^{k-1} exp(((a/λ)^k - ((a+s)/λ)^k))
        const double k = 2.0, c = 0.5, p = 0.9, mu_b = 3.0;
        const auto d = dwell_distribution::weibull(k, 10.0);
        const double lam = d.scale();
        const auto g = chain2(d, c, mu_b, p);
        const auto tab = pipecast::win_time_distribution(g, 30.0, 1200);
        boost::math::quadrature::tanh_sinh<double> ts;
        double young = 0.0, old = 0.0;
        for (double age : {0.0, 5.0, 15.0, 30.0}) {
            for (double h : {3.0, 10.0, 30.0}) {
                auto f = [&](double s) {
                    const double xa = std::pow(age / lam, k), xs = std::pow((age + s) / lam, k);
                    return k / lam * std::pow((age + s) / lam, k - 1) * std::exp(xa - xs) * -std::expm1(-(h - s) / mu_b);
                };
                const double want = c * p * ts.integrate(f, 0.0, h);
                INFO("age " << age << " h " << h);
                CHECK(pipecast::won_within(g, tab, 0, age, h) == Approx(want).epsilon(2e-4));
                if (h == 10.0 && age == 0.0) young = want;
                if (h == 10.0 && age == 15.0) old = want;
            }
        }
        CHECK(old > young); // increasing hazard: an older deal moves on sooner
        // with age a single Weibull stage is the residual survival exactly
        const auto s1 = single(d, p);
        const auto t1 = pipecast::win_time_distribution(s1, 20.0, 400);
        for (double age : {0.0, 8.0, 25.0, 60.0}) {
            const double h = 20.0;
            const double want = p * -std::expm1(std::pow(age / lam, k) - std::pow((age + h) / lam, k));
            CHECK(pipecast::won_within(s1, t1, 0, age, h) == Approx(want).epsilon(1e-12));
        }
    }

    SUBCASE("fixed and empirical dwells: atoms at their exact positions, O(Δ²)") {
        // A (fixed v) -> B (exponential 4) with 0.6, B -> Won with 0.8:
        //   P(won by t | A) = 0.48 (1 - e^{-(t - v)/4}) for t > v
        const double v = 5.13;
        const auto g = chain2(dwell_distribution::fixed(v), 0.6, 4.0, 0.8);
        auto exact = [&](double t, double shift) { return t > shift ? 0.48 * -std::expm1(-(t - shift) / 4.0) : 0.0; };
        auto max_err = [&](std::size_t steps) {
            const auto tab = pipecast::win_time_distribution(g, 40.0, steps);
            double err = 0.0;
            for (double t : {6.0, 10.0, 20.0, 40.0}) {
                err = std::max(err, std::abs(pipecast::won_by(tab, 0, t) - exact(t, v)));
                // a deal of age 2 has 3.13 left
                err = std::max(err, std::abs(pipecast::won_within(g, tab, 0, 2.0, t) - exact(t, v - 2.0)));
            }
            return err;
        };
        const double e1 = max_err(200), e3 = max_err(800);
        INFO("errors " << e1 << " " << e3);
        CHECK(e1 < 2e-4);
        CHECK(e1 / e3 > 10.0); // two halvings: ~16 for O(Δ²), 4 for O(Δ)
        // overdue: the deal leaves at once, P = Y(h)
        const auto tab = pipecast::win_time_distribution(g, 40.0, 400);
        CHECK(pipecast::won_within(g, tab, 0, 7.0, 10.0) ==
              Approx(0.6 * pipecast::won_by(tab, 1, 10.0)).epsilon(1e-12));
        CHECK(pipecast::won_within(g, tab, 0, 2.0, 3.0) == 0.0); // not out of A yet

        // empirical atoms 1.3, 4.0, 6.1 with weights 0.2, 0.5, 0.3
        const auto e = chain2(dwell_distribution::empirical({1.3, 4.0, 6.1}, {0.2, 0.5, 0.3}), 0.6, 4.0, 0.8);
        const double at[3] = {1.3, 4.0, 6.1}, wt[3] = {0.2, 0.5, 0.3};
        const auto te = pipecast::win_time_distribution(e, 40.0, 100); // Δ = 0.4: atoms inside cells
        for (double t : {2.0, 6.0, 10.0, 40.0}) {
            double want = 0.0, want_aged = 0.0; // age 2: atoms 4.0, 6.1 remain with 0.5/0.8, 0.3/0.8
            for (int l = 0; l < 3; ++l) {
                want += wt[l] * exact(t, at[l]);
                if (l > 0) want_aged += wt[l] / 0.8 * exact(t, at[l] - 2.0);
            }
            CHECK(std::abs(pipecast::won_by(te, 0, t) - want) < 1e-4);
            CHECK(std::abs(pipecast::won_within(e, te, 0, 2.0, t) - want_aged) < 2e-4);
        }
    }

    SUBCASE("b2b6: a long horizon gives the win probability; second order on mixed families") {
        const auto g = pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json").graph;
        const auto a = pipecast::analyse(g);
        // the mean time to close is 20-36 days; by 2000 days the tail is far below 1e-12 and
        // the scheme conserves probability mass (the cell masses sum to G(t) exactly), so the
        // limit is reached to rounding even on a coarse grid
        const auto coarse = pipecast::win_time_distribution(g, 2000.0, 1000);
        for (std::size_t i = 0; i < 5; ++i) {
            const double w = a.win_probability(static_cast<Eigen::Index>(i));
            CHECK(std::abs(pipecast::won_by(coarse, i, 2000.0) - w) < 1e-12);
            CHECK(pipecast::won_within(g, coarse, i, 10.0, 2000.0) == Approx(w).epsilon(1e-9));
            for (Eigen::Index n = 1; n < coarse.won_by.rows(); ++n) // monotone in t
                REQUIRE(coarse.won_by(n, static_cast<Eigen::Index>(i)) >= coarse.won_by(n - 1, static_cast<Eigen::Index>(i)) - 1e-15);
        }
        // gamma, lognormal and Weibull dwells: successive differences shrink by ~4 per halving
        const auto t1 = pipecast::win_time_distribution(g, 200.0, 500);
        const auto t2 = pipecast::win_time_distribution(g, 200.0, 1000);
        const auto t3 = pipecast::win_time_distribution(g, 200.0, 2000);
        for (double t : {10.0, 30.0, 60.0, 120.0}) {
            for (std::size_t i = 0; i < 5; ++i) {
                const double d1 = pipecast::won_by(t1, i, t) - pipecast::won_by(t2, i, t);
                const double d2 = pipecast::won_by(t2, i, t) - pipecast::won_by(t3, i, t);
                INFO("t " << t << " stage " << i << " differences " << d1 << " " << d2);
                CHECK(d1 / d2 == Approx(4.0).epsilon(0.1));
                CHECK(std::abs(d2) < 1e-5); // Richardson estimate of the error at Δ = 0.1
            }
        }
    }

    SUBCASE("win_time_quantile: single exponential stage, -μ log(1 - q)") {
        const double mu = 5.0, p = 0.4;
        const auto g = single(dwell_distribution::exponential(mu), p);
        for (double q : {0.05, 0.25, 0.5, 0.9, 0.99})
            CHECK(pipecast::win_time_quantile(g, 0, q) == Approx(-mu * std::log1p(-q)).epsilon(1e-3));
        // two exponential stages: against bisection on the exact phase-type cdf
        const auto g2 = markov3();
        const double w = pipecast::analyse(g2).win_probability(0);
        for (double q : {0.1, 0.5, 0.9}) {
            double lo = 0.0, hi = 500.0;
            for (int it = 0; it < 100; ++it) {
                const double mid = 0.5 * (lo + hi);
                (pipecast::won_by_exact(g2, mid)(0) >= q * w ? hi : lo) = mid;
            }
            CHECK(pipecast::win_time_quantile(g2, 0, q) == Approx(hi).epsilon(2e-3));
        }
        // a stage that cannot win has no quantile
        Eigen::MatrixXd m(2, 4);
        m << 0.0, 0.5, 0.0, 0.5,
             0.0, 0.0, 0.0, 1.0;
        const stage_graph lose({{"A", dwell_distribution::exponential(1.0)}, {"B", dwell_distribution::exponential(1.0)}},
                               {{"Won", true}, {"Lost", false}}, m);
        CHECK(std::isnan(pipecast::win_time_quantile(lose, 1, 0.5)));
    }

    SUBCASE("bad arguments") {
        using pipecast::argument_error;
        const auto g = markov3();
        const double nan_v = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
        for (double bad : {0.0, -1.0, nan_v, inf})
            check_throws<argument_error>([&] { (void)pipecast::win_time_distribution(g, bad); },
                                         {"win_time_distribution", "horizon"});
        const auto tab = pipecast::win_time_distribution(g, 10.0, 200);
        check_throws<argument_error>([&] { (void)pipecast::won_within(g, tab, 3, 0.0, 1.0); }, {"won_within", "stage index 3"});
        for (double bad : {-1.0, 10.5, nan_v, inf})
            check_throws<argument_error>([&] { (void)pipecast::won_within(g, tab, 0, 0.0, bad); }, {"won_within", "horizon"});
        for (double bad : {-1.0, nan_v, inf})
            check_throws<argument_error>([&] { (void)pipecast::won_within(g, tab, 0, bad, 1.0); }, {"age"});
        const auto other = single(dwell_distribution::exponential(1.0), 0.5);
        check_throws<argument_error>([&] { (void)pipecast::won_within(other, tab, 0, 0.0, 1.0); }, {"won_within", "table has 3"});
        check_throws<argument_error>([&] { (void)pipecast::won_by(tab, 3, 1.0); }, {"won_by", "stage index 3"});
        check_throws<argument_error>([&] { (void)pipecast::won_by(tab, 0, nan_v); }, {"won_by", "NaN"});
        for (double bad : {0.0, 1.0, -0.5, nan_v})
            check_throws<argument_error>([&] { (void)pipecast::win_time_quantile(g, 0, bad); }, {"win_time_quantile", "q must be"});
        check_throws<argument_error>([&] { (void)pipecast::win_time_quantile(g, 3, 0.5); }, {"win_time_quantile", "stage index 3"});
        // won_by clamps t to the table
        CHECK(pipecast::won_by(tab, 0, -5.0) == 0.0);
        CHECK(pipecast::won_by(tab, 0, 1e9) == pipecast::won_by(tab, 0, 10.0));
    }
}

// ---- Branched stages (per-branch dwells, stalled share) ---------------------------------

namespace {
using pipecast::stage_branch;

// One stage "Deal": wins after Exp(mean 10) with π = 0.4, normal losses after Exp(mean 40)
// with π = 0.5, stalled deals closed lost after Exp(mean 300) with π = 0.1.
stage_graph competing_one_stage() {
    std::vector<stage_branch> br{{"Won", 0.4, dwell_distribution::exponential(10.0)},
                                 {"Lost", 0.5, dwell_distribution::exponential(40.0)},
                                 {"Lost", 0.1, dwell_distribution::exponential(300.0), true}};
    return stage_graph::from_rows({{"Deal", br.front().dwell, br}}, {{"Won", true}, {"Lost", false}}, {});
}
} // namespace

TEST_CASE("branched stage: closed forms of P(win | age), P(won within h | age), P(stalled | age)") {
    const stage_graph g = competing_one_stage();
    REQUIRE(g.has_branches());
    CHECK(g.latent().open_count() == 3);
    CHECK(g.transition(0, g.index_of("Won")) == Approx(0.4));
    CHECK(g.mean_dwell(0) == Approx(0.4 * 10 + 0.5 * 40 + 0.1 * 300));
    const auto tab = pipecast::win_time_distribution(g, 90.0);
    for (double a : {0.0, 5.0, 20.0, 60.0, 120.0}) {
        // independent computation: the mixture weights of the surviving branches
        const double s_won = 0.4 * std::exp(-a / 10.0), s_lost = 0.5 * std::exp(-a / 40.0),
                     s_stall = 0.1 * std::exp(-a / 300.0), total = s_won + s_lost + s_stall;
        for (double h : {30.0, 90.0}) {
            INFO("age " << a << " h " << h);
            CHECK(pipecast::won_within(g, tab, 0, a, h) == Approx(s_won / total * (1.0 - std::exp(-h / 10.0))).epsilon(1e-4));
        }
        CHECK(pipecast::win_probability_at_age(g, 0, a) == Approx(s_won / total).epsilon(1e-12));
        CHECK(pipecast::stalled_probability(g, 0, a) == Approx(s_stall / total).epsilon(1e-12));
    }
    // the age-0 results are the plain ones
    CHECK(pipecast::win_probability(g, 0) == Approx(0.4));
    CHECK(pipecast::won_by(g, tab, 0, 90.0) == Approx(0.4 * (1.0 - std::exp(-9.0))).epsilon(1e-4));
    // mean time to a win given a win: the win branch's mean
    CHECK(pipecast::analyse(g).mean_time_to_win(0) == Approx(10.0));
    CHECK(pipecast::win_time_quantile(g, 0, 0.5) == Approx(10.0 * std::log(2.0)).epsilon(1e-3));
}

TEST_CASE("branched stages that share one dwell give the classic results") {
    const auto m = pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
    const stage_graph& g = m.graph;
    std::vector<pipecast::open_stage> st;
    for (std::size_t i = 0; i < g.open_count(); ++i) {
        std::vector<stage_branch> br;
        for (std::size_t j = 0; j < g.size(); ++j)
            if (g.transition(i, j) > 0.0) br.push_back({g.name(j), g.transition(i, j), g.dwell(i)});
        st.push_back({g.name(i), g.dwell(i), br});
    }
    const stage_graph b(st, {g.outcomes().begin(), g.outcomes().end()}, Eigen::MatrixXd::Zero(g.open_count(), g.size()));
    REQUIRE(b.has_branches());
    const auto ta = pipecast::analyse(g), tb = pipecast::analyse(b);
    const auto tab_g = pipecast::win_time_distribution(g, 90.0, 900), tab_b = pipecast::win_time_distribution(b, 90.0, 900);
    for (std::size_t i = 0; i < g.open_count(); ++i) {
        const auto r = static_cast<Eigen::Index>(i);
        CHECK(tb.win_probability(r) == Approx(ta.win_probability(r)).epsilon(1e-9));
        CHECK(tb.mean_time_to_close(r) == Approx(ta.mean_time_to_close(r)).epsilon(1e-9));
        CHECK(tb.time_to_close_variance(r) == Approx(ta.time_to_close_variance(r)).epsilon(1e-8));
        CHECK(tb.mean_time_to_win(r) == Approx(ta.mean_time_to_win(r)).epsilon(1e-8));
        for (double a : {0.0, 7.0, 40.0}) {
            CHECK(pipecast::won_within(b, tab_b, i, a, 90.0) == Approx(pipecast::won_within(g, tab_g, i, a, 90.0)).epsilon(1e-6));
            CHECK(pipecast::win_probability_at_age(b, i, a) == Approx(ta.win_probability(r)).epsilon(1e-9));
        }
    }
}

TEST_CASE("branched stage: deals older than every branch's support are stalled, never sure wins") {
    using pipecast::stage_branch;
    std::vector<stage_branch> br{{"Won", 0.5, dwell_distribution::empirical({1.0, 2.0, 3.0})},
                                 {"Lost", 0.5, dwell_distribution::empirical({5.0, 8.0})}};
    const stage_graph g = stage_graph::from_rows({{"Deal", br.front().dwell, br}}, {{"Won", true}, {"Lost", false}}, {});
    CHECK(pipecast::win_probability_at_age(g, 0, 100.0) == 0.0);
    br.push_back({"Lost", 0.1, dwell_distribution::empirical({9.0}), true});
    br[0].probability = 0.45;
    br[1].probability = 0.45;
    const stage_graph h = stage_graph::from_rows({{"Deal", br.front().dwell, br}}, {{"Won", true}, {"Lost", false}}, {});
    CHECK(pipecast::stalled_probability(h, 0, 100.0) == 1.0);
    CHECK(pipecast::win_probability_at_age(h, 0, 100.0) == 0.0);
}

TEST_CASE("large graphs: the sparse solver of each step agrees with the dense one") {
    auto same = [](const stage_graph& g, double horizon, std::size_t steps) {
        const auto d = pipecast::win_time_distribution(g, horizon, steps, pipecast::solver_method::dense);
        const auto s = pipecast::win_time_distribution(g, horizon, steps, pipecast::solver_method::sparse);
        REQUIRE(d.won_by.rows() == s.won_by.rows());
        REQUIRE(d.won_by.cols() == s.won_by.cols());
        CHECK(d.step == s.step);
        // probabilities in [0, 1]: 1e-12 relative, 1e-15 absolute near 0
        auto worst = [](const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
            double w = 0.0;
            for (Eigen::Index i = 0; i < a.rows(); ++i)
                for (Eigen::Index j = 0; j < a.cols(); ++j) {
                    const double diff = std::abs(a(i, j) - b(i, j));
                    if (diff > 1e-15) w = std::max(w, diff / std::max(std::abs(a(i, j)), std::abs(b(i, j))));
                }
            return w;
        };
        CHECK(worst(d.won_by, s.won_by) <= 1e-12);
        CHECK(worst(d.after_exit, s.after_exit) <= 1e-12);
    };
    same(pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json").graph, 120.0, 400);
    same(pipecast_test::crm4_spec_graph(), 90.0, 300);
    same(markov3(), 30.0, 200);
    // a 60-stage ring of pipelines with go-backs and skips, mixed families
    std::vector<pipecast::open_stage> st;
    pipecast::transition_rows rows;
    auto nm = [](std::size_t i) { return std::string("S").append(std::to_string(i)); };
    for (std::size_t i = 0; i < 60; ++i) {
        const double mean = 3.0 + static_cast<double>((i * 7) % 11);
        st.push_back({nm(i), i % 2 ? dwell_distribution::gamma(2.0, mean) : dwell_distribution::lognormal(mean, mean / 2)});
        if (i % 10 == 9) {
            rows[nm(i)] = {{"Won", 0.6}, {nm(i - 1), 0.1}, {"Lost", 0.3}};
        } else {
            rows[nm(i)] = {{nm(i + 1), 0.7}, {nm((i + 23) % 60), 0.05}, {"Lost", 0.25}};
        }
    }
    same(stage_graph::from_rows(st, {{"Won", true}, {"Lost", false}}, rows), 80.0, 300);
}

} // namespace unit_first_passage
