// Tests of simulation.hpp: determinism across threads, exact phase-type values, an
// independent slow reference on b2b6, the weighted forecast without a horizon, arrivals,
// common random numbers, sub-periods, correlation, cancellation and bad options.
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/first_passage.hpp>
#include <pipecast/simulation/simulation.hpp>

#include "test_support.hpp"
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_simulation {

using namespace pipecast;

namespace {

model b2b6() { return load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json"); }
book b2b6_book(const stage_graph& g) { return load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", g); }

/// b2b6 with every dwell replaced by an exponential of the same mean (a CTMC).
stage_graph markov_b2b6() {
    const stage_graph g = b2b6().graph;
    std::vector<open_stage> st;
    for (const auto& s : g.stages()) st.push_back({s.name, dwell_distribution::exponential(s.dwell.mean())});
    return stage_graph(st, {g.outcomes().begin(), g.outcomes().end()}, g.transitions());
}

/// One open stage with dwell d, then Won with probability p, else Lost.
stage_graph one_stage(dwell_distribution d, double p) {
    Eigen::MatrixXd t(1, 3);
    t << 0.0, p, 1.0 - p;
    return stage_graph({{"S", std::move(d)}}, {{"Won", true}, {"Lost", false}}, t);
}

/// Tolerance for comparing two independent estimates: k combined standard errors.
double combined(double se1, double se2, double k = 4.0) { return k * std::sqrt(se1 * se1 + se2 * se2); }

/// The independent slow reference: std::mt19937_64, <random>, Boost.Math quantiles per
/// draw (through dwell.hpp's residual quantile), a linear search of the transition row.
/// Returns the per-path won value within the horizon.
std::vector<double> slow_reference(const stage_graph& g, const book& b, double horizon, std::size_t paths,
                                   std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    auto open_u = [&] {
        double u;
        do u = unif(rng);
        while (u <= 0.0);
        return u;
    };
    std::vector<double> totals;
    for (std::size_t p = 0; p < paths; ++p) {
        double total = 0.0;
        for (std::size_t d = 0; d < b.size(); ++d) {
            std::size_t s = b.stages()[d];
            double t = quantile(residual(g.dwell(s), b.ages()[d]), open_u() * (1.0 - 1e-16));
            for (;;) {
                if (t > horizon) break;
                const double u = unif(rng);
                double acc = 0.0;
                std::size_t next = g.size() - 1;
                for (std::size_t j = 0; j < g.size(); ++j) {
                    acc += g.transition(s, j);
                    if (u < acc) {
                        next = j;
                        break;
                    }
                }
                if (g.is_outcome(next)) {
                    if (g.is_win(next)) total += b.amounts()[d];
                    break;
                }
                s = next;
                t += quantile(g.dwell(s), open_u() * (1.0 - 1e-16));
            }
        }
        totals.push_back(total);
    }
    return totals;
}

/// The first n deals of `src`, every third with a probability override both above and
/// below its stage's P(win) w (min(0.95, w + 0.3), 0.4 w, 1, 0, 0.5 in turn), and one fresh
/// (age 0) deal per stage with override 0.7 at the end. `plain` gets the same deals without
/// any override.
book overridden_book(const stage_graph& g, const book& src, std::size_t n, book* plain = nullptr) {
    const Eigen::VectorXd w = win_probabilities(g);
    book b(g);
    for (std::size_t d = 0; d < n; ++d) {
        const std::size_t s = src.stages()[d];
        std::optional<double> o;
        if (d % 3 == 0) {
            const double ws = w(static_cast<Eigen::Index>(s));
            const double choice[] = {std::min(0.95, ws + 0.3), 0.4 * ws, 1.0, 0.0, 0.5};
            o = choice[(d / 3) % 5];
        }
        b.add("d", s, src.amounts()[d], src.ages()[d], o);
        if (plain) plain->add("d", s, src.amounts()[d], src.ages()[d]);
    }
    for (std::size_t s = 0; s < g.open_count(); ++s) {
        b.add("fresh", s, 1000.0, 0.0, 0.7);
        if (plain) plain->add("fresh", s, 1000.0, 0.0);
    }
    return b;
}

/// Mean and variance of the time to a win given a win, from a fresh start in each open
/// stage: first and second moments of the first passage in the win-conditioned chain
/// P~(i,j) = P(i,j) w_j / w_i (an independent derivation for the tests).
std::pair<Eigen::VectorXd, Eigen::VectorXd> win_time_moments(const stage_graph& g) {
    const auto m = static_cast<Eigen::Index>(g.open_count());
    const Eigen::VectorXd w = win_probabilities(g);
    Eigen::MatrixXd q = Eigen::MatrixXd::Zero(m, m);
    Eigen::VectorXd mu(m), d2(m);
    for (Eigen::Index i = 0; i < m; ++i) {
        const auto& d = g.dwell(static_cast<std::size_t>(i));
        mu(i) = mean(d);
        d2(i) = variance(d) + mu(i) * mu(i);
        for (Eigen::Index j = 0; j < m; ++j)
            q(i, j) = g.transition(static_cast<std::size_t>(i), static_cast<std::size_t>(j)) * w(j) / w(i);
    }
    const Eigen::MatrixXd a = Eigen::MatrixXd::Identity(m, m) - q;
    const Eigen::VectorXd m1 = a.lu().solve(mu);
    const Eigen::VectorXd m2 = a.lu().solve(d2 + 2.0 * mu.cwiseProduct(q * m1));
    return {m1, m2 - m1.cwiseProduct(m1)};
}

} // namespace

TEST_CASE("simulation") {
    const model m = b2b6();
    const book bk = b2b6_book(m.graph);

    SUBCASE("bit-identical results for 1, 2 and 3 threads and any work unit") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 300;
        o.seed = 42;
        o.quotas = {4.6e7};
        o.sub_period_ends = sub_periods(90, 3);
        o.threads = 1;
        const simulation_result r1 = simulate(m, bk, o);
        o.threads = 2;
        const simulation_result r2 = simulate(m, bk, o);
        o.threads = 3;
        o.chunk_paths = 7;
        const simulation_result r3 = simulate(m, bk, o);
        for (const auto* r : {&r2, &r3}) {
            CHECK(r->status == simulation_status::completed);
            CHECK(r->won_value.mean == r1.won_value.mean);
            CHECK(r->won_value.sd == r1.won_value.sd);
            CHECK(r->won_value.quantiles == r1.won_value.quantiles);
            CHECK(r->won_value.p_quota == r1.won_value.p_quota);
            CHECK(r->won_value.histogram.counts == r1.won_value.histogram.counts);
            CHECK(r->won_count.mean == r1.won_count.mean);
            CHECK(r->sub_period_value[1].mean == r1.sub_period_value[1].mean);
            CHECK(r->deal_win_probability == r1.deal_win_probability);
            for (std::size_t d = 0; d < bk.size(); ++d) { // equal, or both NaN (never won)
                const double a = r->deal_expected_close_time[d], b = r1.deal_expected_close_time[d];
                REQUIRE((a == b || (std::isnan(a) && std::isnan(b))));
            }
        }
        // Another seed gives another stream.
        o.seed = 43;
        CHECK(simulate(m, bk, o).won_value.mean != r1.won_value.mean);
        CHECK(r1.deal_paths == 300u * bk.size());
        CHECK(r1.paths == 300);
    }

    SUBCASE("all-exponential model: P(won by t | stage) matches the exact phase-type value") {
        const stage_graph g = markov_b2b6();
        book b(g);
        // 40 deals per stage at various ages (memoryless: the age must not matter).
        for (std::size_t s = 0; s < g.open_count(); ++s)
            for (int i = 0; i < 40; ++i) b.add("d", s, 1.0, 3.0 * i);
        for (double t : {5.0, 20.0, 60.0, 150.0}) {
            simulation_options o;
            o.horizon = t;
            o.paths = 2000;
            o.seed = 7;
            const simulation_result r = simulate(g, b, o);
            const Eigen::VectorXd exact = won_by_exact(g, t);
            for (std::size_t s = 0; s < g.open_count(); ++s) {
                // Each stage's 40 deals: mean of 80,000 Bernoulli draws (independent deals).
                double p = 0.0;
                for (int i = 0; i < 40; ++i) p += r.deal_win_probability[s * 40 + static_cast<std::size_t>(i)];
                p /= 40.0;
                const double e = exact(static_cast<Eigen::Index>(s));
                const double se = std::sqrt(std::max(e * (1.0 - e), 1e-6) / (40.0 * 2000.0));
                CAPTURE(t);
                CAPTURE(s);
                CHECK(std::abs(p - e) <= 4.0 * se);
            }
        }
    }

    SUBCASE("b2b6, horizon 90: the mean won value matches a slow independent reference") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 2000;
        o.seed = 2026;
        const simulation_result r = simulate(m, bk, o);
        // 200 slow paths: combined 4 SE ≈ 0.65% of the mean, so ignoring the ages (a 1.0%
        // shift on this book) or any bias of that size fails the test.
        const std::vector<double> ref = slow_reference(m.graph, bk, 90.0, 200, 99);
        double mean = 0.0, ss = 0.0;
        for (double v : ref) mean += v;
        mean /= static_cast<double>(ref.size());
        for (double v : ref) ss += (v - mean) * (v - mean);
        const double se = std::sqrt(ss / static_cast<double>(ref.size() - 1) / static_cast<double>(ref.size()));
        CAPTURE(r.won_value.mean);
        CAPTURE(mean);
        CHECK(std::abs(r.won_value.mean - mean) <= combined(r.won_value.standard_error, se));
        CHECK(combined(r.won_value.standard_error, se) < 0.0075 * mean);
        // Identities: per-stage expected wins add up to the mean won count and value.
        double wins = 0.0, value = 0.0;
        for (std::size_t s = 0; s < m.graph.open_count(); ++s) {
            wins += r.stage_expected_wins[s];
            value += r.stage_expected_value[s];
        }
        CHECK(wins == doctest::Approx(r.won_count.mean).epsilon(1e-12));
        CHECK(value == doctest::Approx(r.won_value.mean).epsilon(1e-12));
        for (std::size_t d = 0; d < bk.size(); ++d)
            if (r.deal_win_probability[d] > 0.0) {
                REQUIRE(r.deal_expected_close_time[d] >= 0.0);
                REQUIRE(r.deal_expected_close_time[d] <= 90.0);
            }
    }

    SUBCASE("b2b6 semi-Markov: P(won within 90 | stage, age) matches the renewal solver") {
        // An independent deterministic method (first_passage.hpp, O(Δ²) error, here below
        // 5e-4) for every stage at three ages: the residual dwell of aged deals matters.
        const stage_graph& g = m.graph;
        book b(g);
        const double ages[] = {0.0, 10.0, 30.0};
        for (std::size_t s = 0; s < g.open_count(); ++s)
            for (double a : ages)
                for (int r = 0; r < 20; ++r) b.add("d", s, 1.0, a);
        simulation_options o;
        o.horizon = 90;
        o.paths = 4000;
        o.seed = 3;
        const simulation_result r = simulate(g, b, o);
        const win_time_table tab = win_time_distribution(g, 90.0);
        std::size_t d = 0;
        for (std::size_t s = 0; s < g.open_count(); ++s)
            for (double a : ages) {
                double p = 0.0;
                for (int k = 0; k < 20; ++k) p += r.deal_win_probability[d++];
                p /= 20.0;
                const double e = won_within(g, tab, s, a, 90.0);
                CAPTURE(s);
                CAPTURE(a);
                CHECK(std::abs(p - e) <= 4.0 * std::sqrt(e * (1.0 - e) / 80000.0) + 5e-4);
            }
    }

    SUBCASE("no horizon: the mean equals the weighted forecast") {
        simulation_options o;
        o.paths = 400;
        o.seed = 5;
        const simulation_result r = simulate(m, bk, o);
        const Eigen::VectorXd w = win_probabilities(m.graph);
        double forecast = 0.0, count = 0.0;
        for (std::size_t d = 0; d < bk.size(); ++d) {
            forecast += bk.amounts()[d] * w(bk.stages()[d]);
            count += w(bk.stages()[d]);
        }
        CHECK(std::abs(r.won_value.mean - forecast) <= 4.0 * r.won_value.standard_error);
        CHECK(std::abs(r.won_count.mean - count) <= 4.0 * r.won_count.standard_error);
        CHECK(std::isinf(r.horizon));
    }

    SUBCASE("one exponential stage: win probability and close time in closed form") {
        const double mu = 10.0, p = 0.6, h = 15.0;
        const stage_graph g = one_stage(dwell_distribution::exponential(mu), p);
        book b(g);
        b.add("a", 0, 100.0, 0.0);
        simulation_options o;
        o.horizon = h;
        o.paths = 100000;
        const simulation_result r = simulate(g, b, o);
        const double q = 1.0 - std::exp(-h / mu);
        const double pw = p * q;
        CHECK(std::abs(r.deal_win_probability[0] - pw) <= 4.0 * std::sqrt(pw * (1 - pw) / 1e5));
        // E[T | T <= h] for T ~ Exp(mean mu), and its sd.
        const double et = mu - h * std::exp(-h / mu) / q;
        const double et2 = (2 * mu * mu - std::exp(-h / mu) * (h * h + 2 * mu * h + 2 * mu * mu)) / q;
        const double se = std::sqrt((et2 - et * et) / (pw * 1e5));
        CHECK(std::abs(r.deal_expected_close_time[0] - et) <= 4.0 * se);
        CHECK(r.won_value.mean == doctest::Approx(100.0 * r.deal_win_probability[0]).epsilon(1e-12));
    }

    SUBCASE("aged and overdue deals") {
        // Fixed dwell 10, age 15: overdue, leaves at once; a Weibull deal so old that its
        // survival underflows uses the closed-form residual.
        const stage_graph gf = one_stage(dwell_distribution::fixed(10.0), 0.7);
        book bf(gf);
        bf.add("late", 0, 1.0, 15.0);
        bf.add("young", 0, 1.0, 4.0);
        simulation_options o;
        o.horizon = 5.0;
        o.paths = 20000;
        const simulation_result rf = simulate(gf, bf, o);
        CHECK(std::abs(rf.deal_win_probability[0] - 0.7) <= 4.0 * std::sqrt(0.21 / 20000));
        CHECK(rf.deal_expected_close_time[0] == 0.0);
        CHECK(rf.deal_win_probability[1] == 0.0); // needs 6 more
        const stage_graph gw = one_stage(dwell_distribution::weibull(2.0, 10.0), 1.0);
        book bw(gw);
        bw.add("ancient", 0, 1.0, 400.0);
        o.horizon = 3.0; // P(residual > 3) = exp(-(3·803)/λ²) ≈ 6e-9
        const simulation_result rw = simulate(gw, bw, o);
        CHECK(rw.deal_win_probability[0] == 1.0); // residual mean ≈ λ²/(2a) ≈ 0.16
        CHECK(rw.deal_expected_close_time[0] < 0.5);
        CHECK(rw.deal_expected_close_time[0] > 0.0);
    }

    SUBCASE("empirical dwell and a wide transition row (the general code paths)") {
        Eigen::MatrixXd t = Eigen::MatrixXd::Zero(1, 7);
        t << 0.0, 0.1, 0.2, 0.1, 0.3, 0.2, 0.1; // three winning and three losing outcomes
        const stage_graph g({{"S", dwell_distribution::empirical({2.0, 5.0, 9.0}, {1.0, 1.0, 2.0})}},
                            {{"W1", true}, {"W2", true}, {"W3", true}, {"L1", false}, {"L2", false}, {"L3", false}},
                            t);
        book b(g);
        b.add("fresh", 0, 1.0, 0.0);
        b.add("aged", 0, 1.0, 3.0);
        simulation_options o;
        o.horizon = 4.0;
        o.paths = 40000;
        const simulation_result r = simulate(g, b, o);
        // fresh: P(T <= 4) = 1/4; aged: P(T - 3 <= 4 | T > 3) = P(T = 5 | T > 3) = 1/3; both × 0.4.
        for (const auto& deal_p : {std::pair{0, 0.1}, std::pair{1, 0.4 / 3.0}}) {
            const int d = deal_p.first; // named variables: clang 14 cannot capture a structured binding
            const double p = deal_p.second;
            CAPTURE(d);
            CHECK(std::abs(r.deal_win_probability[static_cast<std::size_t>(d)] - p) <=
                  4.0 * std::sqrt(p * (1 - p) / 40000.0));
        }
        CHECK(r.deal_expected_close_time[0] == doctest::Approx(2.0).epsilon(1e-4));
        CHECK(r.deal_expected_close_time[1] == doctest::Approx(2.0).epsilon(1e-4));
    }

    SUBCASE("arrivals: count and wins within h match the integral of the rate") {
        const stage_graph g = markov_b2b6();
        book empty(g);
        const double h = 60.0;
        for (int seasonal = 0; seasonal < 2; ++seasonal) {
            arrival_process a;
            a.stage = 0;
            a.rate = 4.0;
            if (seasonal) {
                a.period = 10.0;
                a.period_rates = {2.0, 0.0, 9.0};
            }
            simulation_options o;
            o.horizon = h;
            o.paths = 4000;
            o.arrivals = a;
            o.arrival_deal_size = deal_size_distribution(1000.0, 0.5);
            const simulation_result r = simulate(g, empty, o);
            // E[wins] = ∫_0^h λ(τ) F_0(h − τ) dτ, F_0 = P(won by t | entered stage 0).
            auto integrand = [&](double tau) { return a.rate_at(tau) * won_by_exact(g, h - tau)(0); };
            double expected = 0.0;
            const double step = seasonal ? a.period : h;
            for (double s0 = 0.0; s0 < h; s0 += step)
                expected += boost::math::quadrature::gauss_kronrod<double, 15>::integrate(integrand, s0,
                                                                                          std::min(h, s0 + step));
            const double lam = a.expected_count(h);
            CAPTURE(seasonal);
            CHECK(std::abs(r.arrivals_expected_count - lam) <= 4.0 * std::sqrt(lam / 4000.0));
            CHECK(std::abs(r.arrivals_expected_wins - expected) <= 4.0 * std::sqrt(expected / 4000.0));
            CHECK(r.won_count.mean == r.arrivals_expected_wins);
            // Compound Poisson: Var(value) = E[wins] E[A²].
            const deal_size_distribution ds = *o.arrival_deal_size;
            const double ea = ds.mean(), ea2 = ds.median() * ds.median() * std::exp(2 * ds.sigma() * ds.sigma());
            CHECK(std::abs(r.arrivals_expected_value - expected * ea) <= 4.0 * std::sqrt(expected * ea2 / 4000.0));
        }
        // The model overload takes the model's arrivals and deal size when asked.
        simulation_options o;
        o.horizon = 30;
        o.paths = 50;
        o.model_arrivals = true;
        const simulation_result r = simulate(m, book(m.graph), o);
        CHECK(std::abs(r.arrivals_expected_count - 40.0 * 30.0) <= 4.0 * std::sqrt(1200.0 / 50.0));
    }

    SUBCASE("common random numbers: Var(difference) << Var(either run)") {
        model variant = m;
        Eigen::MatrixXd t = m.graph.transitions();
        const auto neg = static_cast<Eigen::Index>(m.graph.index_of("Negotiation"));
        t(neg, static_cast<Eigen::Index>(m.graph.index_of("Won"))) = 0.80;
        t(neg, static_cast<Eigen::Index>(m.graph.index_of("Lost"))) = 0.15;
        variant.graph = stage_graph({m.graph.stages().begin(), m.graph.stages().end()},
                                    {m.graph.outcomes().begin(), m.graph.outcomes().end()}, t);
        simulation_options o;
        o.horizon = 90;
        o.paths = 600;
        o.seed = 11;
        const simulation_difference d = simulate_difference(m, variant, bk, o);
        const double var_diff = d.difference.sd * d.difference.sd;
        CAPTURE(d.difference.sd);
        CAPTURE(d.base.won_value.sd);
        const double var_base = d.base.won_value.sd * d.base.won_value.sd;
        const double var_variant = d.variant.won_value.sd * d.variant.won_value.sd;
        // Independent runs would give Var(difference) = Var(base) + Var(variant).
        CHECK(var_diff < 0.1 * (var_base + var_variant));
        CHECK(var_diff < 0.25 * std::min(var_base, var_variant));
        simulation_options other = o;
        other.seed = 12;
        const simulation_result indep = simulate(variant, bk, other);
        // The same difference estimated from independent runs agrees, with a far larger error.
        CHECK(std::abs(indep.won_value.mean - d.base.won_value.mean - d.difference.mean) <=
              combined(indep.won_value.standard_error, d.base.won_value.standard_error));
        CHECK(d.correlation > 0.9);
        CHECK(d.difference.mean == doctest::Approx(d.variant.won_value.mean - d.base.won_value.mean).epsilon(1e-9));
        CHECK(d.difference.mean > 4.0 * d.difference.standard_error); // the better close rate shows
        // The same model twice: zero difference on every path.
        const simulation_difference same = simulate_difference(m, m, bk, o);
        CHECK(same.difference.sd == 0.0);
        CHECK(same.difference.mean == 0.0);
    }

    SUBCASE("sub-periods: cumulative, the last equals the horizon's, the first equals a shorter run") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 200;
        o.sub_period_ends = sub_periods(90, 3);
        const simulation_result r = simulate(m, bk, o);
        REQUIRE(r.sub_period_value.size() == 3);
        CHECK(r.sub_period_value[0].mean <= r.sub_period_value[1].mean);
        CHECK(r.sub_period_value[1].mean <= r.sub_period_value[2].mean);
        CHECK(r.sub_period_value[2].mean == doctest::Approx(r.won_value.mean).epsilon(1e-12));
        simulation_options o30 = o;
        o30.horizon = 30;
        o30.sub_period_ends.clear();
        CHECK(simulate(m, bk, o30).won_value.mean == doctest::Approx(r.sub_period_value[0].mean).epsilon(1e-12));
        CHECK(sub_periods(90, 3) == std::vector<double>{30, 60, 90});
        CHECK_THROWS_AS((void)sub_periods(90, 0), argument_error);
    }

    SUBCASE("summary: quantiles, P(quota), histogram") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 500;
        o.quantiles = {0.0, 0.1, 0.5, 0.9, 1.0};
        o.quotas = {0.0, 4.5e7, 4.7e7, 1e12};
        o.histogram_bins = 10;
        const simulation_result r = simulate(m, bk, o);
        const auto& s = r.won_value;
        CHECK(s.quantiles.front() == s.min);
        CHECK(s.quantiles.back() == s.max);
        CHECK(std::is_sorted(s.quantiles.begin(), s.quantiles.end()));
        CHECK(s.p_quota[0] == 1.0);
        CHECK(s.p_quota[1] >= s.p_quota[2]);
        CHECK(s.p_quota[3] == 0.0);
        std::uint64_t total = 0;
        for (auto c : s.histogram.counts) total += c;
        CHECK(total == 500);
        CHECK(s.histogram.counts.size() == 10);
        CHECK(s.standard_error == doctest::Approx(s.sd / std::sqrt(500.0)));
    }

    SUBCASE("correlation widens the spread") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 400;
        const simulation_result r0 = simulate(m, bk, o);
        o.correlation = 0.3;
        const simulation_result r1 = simulate(m, bk, o);
        CHECK(r1.won_value.sd > 5.0 * r0.won_value.sd); // about 10x on b2b6
        // The log-odds shock has median 0: the mean moves far less than the spread grows.
        CHECK(std::abs(r1.won_value.mean - r0.won_value.mean) < 0.05 * r0.won_value.mean);
    }

    SUBCASE("progress and cancellation") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 300;
        std::vector<double> seen;
        o.progress = [&](double f) {
            seen.push_back(f);
            return true;
        };
        const simulation_result done = simulate(m, bk, o);
        CHECK(done.status == simulation_status::completed);
        REQUIRE(!seen.empty());
        CHECK(seen.back() == 1.0);
        CHECK(std::is_sorted(seen.begin(), seen.end()));

        o.paths = 2000000; // minutes of work unless cancelled
        o.chunk_paths = 7;
        int calls = 0;
        o.progress = [&](double f) {
            ++calls;
            return f < 0.0; // cancel at the first report
        };
        const simulation_result c = simulate(m, bk, o);
        CHECK(c.status == simulation_status::cancelled);
        CHECK(calls == 1);
        CHECK(c.paths < o.paths);
        CHECK(c.deal_paths == c.paths * bk.size());
        CHECK(c.paths % 7 == 0); // whole work units only
        if (c.paths > 0) CHECK(std::isfinite(c.won_value.mean));
        else CHECK(std::isnan(c.won_value.mean));

        std::stop_source src;
        src.request_stop();
        o.progress = nullptr;
        o.stop = src.get_token();
        const simulation_result s = simulate(m, bk, o);
        CHECK(s.status == simulation_status::cancelled);
        CHECK(s.paths < o.paths);
    }

    SUBCASE("overrides, horizon 90: the mean equals the period forecast") {
        book plain(m.graph);
        const book b = overridden_book(m.graph, bk, 300, &plain);
        simulation_options o;
        o.horizon = 90;
        o.paths = 40000;
        o.seed = 11;
        const simulation_result r = simulate(m, b, o);
        period_forecast_options po;
        po.steps = 8000; // Δ = 0.011: the renewal table's O(Δ²) error is far below the SE
        const period_forecast_result pf = period_forecast(m.graph, b, 90.0, po);
        CAPTURE(r.won_value.mean);
        CAPTURE(r.won_value.standard_error);
        CAPTURE(pf.expected);
        CHECK(std::abs(r.won_value.mean - pf.expected) <= 4.0 * r.won_value.standard_error + pf.error_estimate);
        // The overrides matter: ignoring them would fail the check above by far.
        const double ignored = period_forecast(m.graph, plain, 90.0, po).expected;
        CHECK(std::abs(ignored - pf.expected) > 20.0 * r.won_value.standard_error);
        CHECK(r.overridden == 100 + m.graph.open_count());
        // Deals without an override keep their random streams: bit-identical outcomes.
        const simulation_result rp = simulate(m, plain, o);
        CHECK(rp.overridden == 0);
        for (std::size_t d = 0; d < b.size(); ++d)
            if (std::isnan(b.probability_overrides()[d])) {
                REQUIRE(r.deal_win_probability[d] == rp.deal_win_probability[d]);
                if (r.deal_win_probability[d] > 0.0)
                    REQUIRE(r.deal_expected_close_time[d] == rp.deal_expected_close_time[d]);
            }
    }

    SUBCASE("overrides, no horizon: the mean equals the weighted forecast; P(win) of a deal is its override") {
        const book b = overridden_book(m.graph, bk, 300);
        simulation_options o;
        o.paths = 40000;
        o.seed = 12;
        const simulation_result r = simulate(m, b, o);
        const weighted_forecast_result wf = weighted_forecast(m.graph, b);
        CAPTURE(r.won_value.mean);
        CAPTURE(wf.weighted_total);
        CHECK(std::abs(r.won_value.mean - wf.weighted_total) <= 4.0 * r.won_value.standard_error);
        const auto ov = b.probability_overrides();
        const double paths = static_cast<double>(r.paths);
        std::size_t checked = 0;
        for (std::size_t d = 0; d < b.size(); ++d) {
            const double p = ov[d];
            if (std::isnan(p)) continue;
            CAPTURE(d);
            CAPTURE(p);
            // o = 0 never wins, o = 1 always does (no horizon: a winner always reaches Won).
            REQUIRE(std::abs(r.deal_win_probability[d] - p) <= 4.0 * std::sqrt(p * (1.0 - p) / paths));
            ++checked;
        }
        CHECK(checked == 100 + m.graph.open_count());
        // A winner's timing is that of a win in the model: E[T | won] and its SE from the
        // moments of the win-conditioned chain (fresh deals at the end of the book).
        const auto [mean_t, var_t] = win_time_moments(m.graph);
        const absorption_analysis an = analyse(m.graph);
        for (std::size_t s = 0; s < m.graph.open_count(); ++s) {
            const auto i = static_cast<Eigen::Index>(s);
            CHECK(mean_t(i) == doctest::Approx(an.mean_time_to_win(i)).epsilon(1e-9));
            const std::size_t d = b.size() - m.graph.open_count() + s;
            const double wins = r.deal_win_probability[d] * paths;
            CAPTURE(s);
            CHECK(std::abs(r.deal_expected_close_time[d] - mean_t(i)) <= 4.0 * std::sqrt(var_t(i) / wins));
        }
    }

    SUBCASE("overrides: bit-identical for 1, 2 and 3 threads, with correlation and sub-periods") {
        const book b = overridden_book(m.graph, bk, 2500);
        simulation_options o;
        o.horizon = 90;
        o.paths = 300;
        o.seed = 42;
        o.correlation = 0.3;
        o.sub_period_ends = sub_periods(90, 3);
        o.threads = 1;
        const simulation_result r1 = simulate(m, b, o);
        o.threads = 2;
        const simulation_result r2 = simulate(m, b, o);
        o.threads = 3;
        o.chunk_paths = 7;
        const simulation_result r3 = simulate(m, b, o);
        for (const auto* r : {&r2, &r3}) {
            CHECK(r->won_value.mean == r1.won_value.mean);
            CHECK(r->won_value.sd == r1.won_value.sd);
            CHECK(r->won_value.quantiles == r1.won_value.quantiles);
            CHECK(r->won_count.mean == r1.won_count.mean);
            CHECK(r->sub_period_value[0].mean == r1.sub_period_value[0].mean);
            CHECK(r->deal_win_probability == r1.deal_win_probability);
        }
        // The shock does not apply to overridden deals: their outcomes equal an unshocked run's.
        o.correlation = 0.0;
        const simulation_result r0 = simulate(m, b, o);
        for (std::size_t d = 0; d < b.size(); ++d)
            if (!std::isnan(b.probability_overrides()[d]))
                REQUIRE(r0.deal_win_probability[d] == r1.deal_win_probability[d]);
    }

    SUBCASE("overrides: a stage that cannot win gives no wins, as the period forecast") {
        // A -> Won 0.3 | B 0.3 | Lost 0.4; B (cannot win) -> Lost.
        Eigen::MatrixXd t(2, 4);
        t << 0.0, 0.3, 0.3, 0.4, //
            0.0, 0.0, 0.0, 1.0;
        const stage_graph g({{"A", dwell_distribution::exponential(5.0)}, {"B", dwell_distribution::gamma(2.0, 8.0)}},
                            {{"Won", true}, {"Lost", false}}, t);
        book b(g);
        b.add("a", 0, 100.0, 0.0, 0.9);  // winners go A -> Won directly (P~(A -> Won) = 1)
        b.add("b", 1, 1000.0, 3.0, 0.8); // w_B = 0: the model cannot give it a win time
        b.add("c", 0, 10.0, 2.0);
        simulation_options o;
        o.paths = 20000;
        o.seed = 9;
        const simulation_result r = simulate(g, b, o);
        CHECK(r.deal_win_probability[1] == 0.0);
        CHECK(std::isnan(r.deal_expected_close_time[1]));
        CHECK(std::abs(r.deal_win_probability[0] - 0.9) <= 4.0 * std::sqrt(0.09 / 20000.0));
        // A -> Won directly: the close time of a winner is A's dwell, mean 5.
        CHECK(std::abs(r.deal_expected_close_time[0] - 5.0) <= 4.0 * 5.0 / std::sqrt(0.9 * 20000.0));
        CHECK(std::abs(r.deal_win_probability[2] - 0.3) <= 4.0 * std::sqrt(0.21 / 20000.0));
        o.horizon = 10;
        const simulation_result rh = simulate(g, b, o);
        const period_forecast_result pf = period_forecast(g, b, 10.0, {period_method::automatic, 0, true});
        CHECK(pf.deal_probability[1] == 0.0);
        CHECK(rh.deal_win_probability[1] == 0.0);
        // Deal a: 0.9 × P(Exp(mean 5) <= 10).
        const double pa = 0.9 * (1.0 - std::exp(-2.0));
        CHECK(std::abs(pf.deal_probability[0] - pa) <= 5e-4); // the renewal table's error
        CHECK(std::abs(rh.deal_win_probability[0] - pa) <= 4.0 * std::sqrt(pa * (1.0 - pa) / 20000.0));
        CHECK(std::abs(rh.won_value.mean - pf.expected) <= 4.0 * rh.won_value.standard_error);
    }

    SUBCASE("bad options throw argument_error naming the item") {
        simulation_options o;
        o.paths = 0;
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("paths"), argument_error);
        o = {};
        o.horizon = -1;
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("horizon"), argument_error);
        o.horizon = std::nan("");
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("horizon"), argument_error);
        o.horizon = 0;
        CHECK_THROWS_AS((void)simulate(m, bk, o), argument_error);
        o = {};
        o.threads = 100000;
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("threads"), argument_error);
        o = {};
        o.quotas = {-5};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("quota"), argument_error);
        o.quotas = {std::nan("")};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("quota"), argument_error);
        o = {};
        o.quantiles = {1.5};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("quantile"), argument_error);
        o = {};
        o.histogram_bins = 0;
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("histogram"), argument_error);
        o = {};
        o.correlation = -0.1;
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("correlation"), argument_error);
        o = {};
        o.horizon = 90;
        o.sub_period_ends = {30, 20};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("sub-period"), argument_error);
        o.sub_period_ends = {30, 120};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("sub-period"), argument_error);
        o = {};
        o.arrivals = arrival_process{0, 5.0, 0.0, {}};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("finite horizon"), argument_error);
        o.horizon = 30;
        CHECK_THROWS_WITH_AS((void)simulate(m.graph, bk, o), doctest::Contains("deal-size"), argument_error);
        o.arrivals = arrival_process{0, -5.0, 0.0, {}};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("rate"), argument_error);
        const stage_graph other = one_stage(dwell_distribution::exponential(3.0), 0.5);
        CHECK_THROWS_WITH_AS((void)simulate(other, bk, simulation_options{}), doctest::Contains("book"),
                             argument_error);
    }
}

// ---------------------------------------------------------------------------------------
// Branched stages (per-branch dwells, a stalled share): the engine runs on g.latent().
// ---------------------------------------------------------------------------------------

namespace {

using pipecast_test::crm4_spec_graph; // tests/test_support.hpp

/// Nodes and weights of n-point Gauss–Hermite quadrature for E[f(Z)], Z ~ N(0, 1)
/// (Golub–Welsch: the Jacobi matrix of the probabilists' Hermite polynomials).
std::pair<std::vector<double>, std::vector<double>> gauss_hermite(int n) {
    Eigen::MatrixXd j = Eigen::MatrixXd::Zero(n, n);
    for (int k = 1; k < n; ++k) j(k - 1, k) = j(k, k - 1) = std::sqrt(static_cast<double>(k));
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(j);
    std::vector<double> x(static_cast<std::size_t>(n)), w(static_cast<std::size_t>(n));
    for (int k = 0; k < n; ++k) {
        x[static_cast<std::size_t>(k)] = es.eigenvalues()(k);
        w[static_cast<std::size_t>(k)] = es.eigenvectors()(0, k) * es.eigenvectors()(0, k);
    }
    return {x, w};
}

double logistic_shift(double p, double shift) {
    if (p <= 0.0 || p >= 1.0) return p;
    const double odds = p / (1.0 - p) * std::exp(shift);
    return odds / (1.0 + odds);
}

/// g with every branched stage's shares shocked as the simulator does for a path with
/// e^{σ_s Z} = exp(shift[s]): the forward branches' (to a win or a later open stage) log-odds
/// shifted, and every classic row's forward edges likewise (independent construction).
stage_graph shocked_graph(const stage_graph& g, const std::vector<double>& shifts) {
    const std::size_t m = g.open_count();
    std::vector<open_stage> st(g.stages().begin(), g.stages().end());
    Eigen::MatrixXd t = g.transitions();
    for (std::size_t s = 0; s < m; ++s) {
        auto forward = [&](std::size_t j) { return g.is_outcome(j) ? g.is_win(j) : j > s; };
        if (g.branched(s)) {
            double f = 0.0;
            for (std::size_t k = 0; k < st[s].branches.size(); ++k)
                if (forward(g.branch_target(s, k))) f += st[s].branches[k].probability;
            const double nf = logistic_shift(f, shifts[s]);
            for (std::size_t k = 0; k < st[s].branches.size(); ++k)
                st[s].branches[k].probability *= forward(g.branch_target(s, k)) ? nf / f : (1.0 - nf) / (1.0 - f);
        } else {
            double f = 0.0;
            for (std::size_t j = 0; j < g.size(); ++j)
                if (forward(j)) f += t(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(j));
            const double nf = logistic_shift(f, shifts[s]);
            for (std::size_t j = 0; j < g.size(); ++j)
                t(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(j)) *= forward(j) ? nf / f : (1.0 - nf) / (1.0 - f);
        }
    }
    return stage_graph(std::move(st), {g.outcomes().begin(), g.outcomes().end()}, t);
}

} // namespace

TEST_CASE("simulation on branched stages") {
    const stage_graph g = crm4_spec_graph();
    REQUIRE(g.has_branches());
    const std::size_t m = g.open_count();

    SUBCASE("P(won within 90 | stage, age) matches the renewal solver (branched and mixed graphs)") {
        // 20 deals per (stage, age), 4,000 paths: 80,000 independent Bernoulli draws a cell.
        for (bool mixed : {false, true}) {
            const stage_graph gg = crm4_spec_graph(mixed);
            book b(gg);
            const double ages[] = {0.0, 20.0, 60.0};
            for (std::size_t s = 0; s < m; ++s)
                for (double a : ages)
                    for (int r = 0; r < 20; ++r) b.add("d", s, 1.0, a);
            simulation_options o;
            o.horizon = 90;
            o.paths = 4000;
            o.seed = 17;
            const simulation_result r = simulate(gg, b, o);
            // 1,000 steps: against a 12,000-step table, won_within at ages 0 and 20 of these
            // graphs differs by at most 1.6e-7 (second order in Δ), far inside the 5e-4 below.
            const win_time_table tab = win_time_distribution(gg, 90.0, 1000);
            std::size_t d = 0;
            double total = 0.0;
            for (std::size_t s = 0; s < m; ++s)
                for (double a : ages) {
                    double p = 0.0;
                    for (int k = 0; k < 20; ++k) p += r.deal_win_probability[d++];
                    p /= 20.0;
                    const double e = won_within(gg, tab, s, a, 90.0);
                    total += 20.0 * e;
                    CAPTURE(mixed);
                    CAPTURE(s);
                    CAPTURE(a);
                    CAPTURE(p);
                    CAPTURE(e);
                    CHECK(std::abs(p - e) <= 4.0 * std::sqrt(std::max(e * (1.0 - e), 1e-4) / 80000.0) + 5e-4);
                }
            // Results are reported on the observable stages.
            REQUIRE(r.stage_expected_wins.size() == m);
            double wins = 0.0;
            for (double w : r.stage_expected_wins) wins += w;
            CHECK(wins == doctest::Approx(r.won_count.mean).epsilon(1e-12));
            CHECK(std::abs(r.won_count.mean - total) <= 4.0 * r.won_count.standard_error + 0.01 * 12);
        }
    }

    SUBCASE("no horizon: the mean equals Σ amount × P(win | stage, age)") {
        book b(g);
        std::mt19937_64 rng(5);
        std::uniform_real_distribution<double> age(0.0, 90.0), amount(1000.0, 20000.0);
        for (int i = 0; i < 400; ++i) b.add("d", static_cast<std::size_t>(i) % m, std::round(amount(rng)), age(rng));
        simulation_options o;
        o.paths = 4000;
        o.seed = 23;
        const simulation_result r = simulate(g, b, o);
        const Eigen::VectorXd wl = win_probabilities(g.latent());
        double expected = 0.0, count = 0.0;
        for (std::size_t d = 0; d < b.size(); ++d) {
            const double w = win_probability_at_age(g, b.stages()[d], b.ages()[d], wl);
            expected += b.amounts()[d] * w;
            count += w;
        }
        CAPTURE(r.won_value.mean);
        CAPTURE(expected);
        CHECK(std::abs(r.won_value.mean - expected) <= 4.0 * r.won_value.standard_error);
        CHECK(std::abs(r.won_count.mean - count) <= 4.0 * r.won_count.standard_error);
        // The ages matter: the CRM-style Σ amount × P(win | stage) is far off.
        const Eigen::VectorXd w0 = win_probabilities(g);
        double crm = 0.0;
        for (std::size_t d = 0; d < b.size(); ++d) crm += b.amounts()[d] * w0(b.stages()[d]);
        CHECK(std::abs(crm - expected) > 20.0 * r.won_value.standard_error);
    }

    SUBCASE("bit-identical for 1, 2 and 3 threads (shock, arrivals, overrides, sub-periods)") {
        book b(g);
        std::mt19937_64 rng(8);
        std::uniform_real_distribution<double> age(0.0, 120.0);
        for (int i = 0; i < 3000; ++i) {
            std::optional<double> ov;
            if (i % 11 == 0) ov = 0.6;
            b.add("d", static_cast<std::size_t>(i) % m, 1000.0 + i, age(rng), ov);
        }
        simulation_options o;
        o.horizon = 90;
        o.paths = 300;
        o.seed = 42;
        o.correlation = 0.4;
        o.sub_period_ends = sub_periods(90, 3);
        o.arrivals = arrival_process{0, 6.0, 0.0, {}};
        o.arrival_deal_size = deal_size_distribution(3000.0, 0.8);
        o.threads = 1;
        const simulation_result r1 = simulate(g, b, o);
        o.threads = 2;
        const simulation_result r2 = simulate(g, b, o);
        o.threads = 3;
        o.chunk_paths = 7;
        const simulation_result r3 = simulate(g, b, o);
        for (const auto* r : {&r2, &r3}) {
            CHECK(r->won_value.mean == r1.won_value.mean);
            CHECK(r->won_value.sd == r1.won_value.sd);
            CHECK(r->won_value.quantiles == r1.won_value.quantiles);
            CHECK(r->won_count.mean == r1.won_count.mean);
            CHECK(r->sub_period_value[0].mean == r1.sub_period_value[0].mean);
            CHECK(r->deal_win_probability == r1.deal_win_probability);
            CHECK(r->arrivals_expected_value == r1.arrivals_expected_value);
            CHECK(r->stage_expected_value == r1.stage_expected_value);
        }
        CHECK(r1.arrivals_expected_wins > 0.0);
    }

    SUBCASE("overrides: P(won within h) = o · P(win within h | stage, age) / P(win | stage, age)") {
        book b(g);
        const double ages[] = {0.0, 30.0};
        for (std::size_t s = 0; s < m; ++s)
            for (double a : ages) b.add("d", s, 1.0, a, 0.5);
        simulation_options o;
        o.horizon = 90;
        o.paths = 40000;
        o.seed = 31;
        o.correlation = 0.5; // not applied to overridden deals
        const simulation_result r = simulate(g, b, o);
        const win_time_table tab = win_time_distribution(g, 90.0, 1000); // grid error about 1e-7 (above)
        const Eigen::VectorXd wl = win_probabilities(g.latent());
        o.horizon = std::numeric_limits<double>::infinity();
        const simulation_result ri = simulate(g, b, o);
        std::size_t d = 0;
        for (std::size_t s = 0; s < m; ++s)
            for (double a : ages) {
                const double e = 0.5 * won_within(g, tab, s, a, 90.0) / win_probability_at_age(g, s, a, wl);
                CAPTURE(s);
                CAPTURE(a);
                CHECK(std::abs(r.deal_win_probability[d] - e) <= 4.0 * std::sqrt(e * (1.0 - e) / 40000.0) + 5e-4);
                CHECK(std::abs(ri.deal_win_probability[d] - 0.5) <= 4.0 * std::sqrt(0.25 / 40000.0));
                ++d;
            }
    }

    SUBCASE("arrivals into a branched stage: wins within h match ∫ λ P(won by h − τ | entered) dτ") {
        const double h = 60.0, rate = 5.0;
        simulation_options o;
        o.horizon = h;
        o.paths = 4000;
        o.seed = 4;
        o.arrivals = arrival_process{0, rate, 0.0, {}};
        // Amounts from a price list (the empirical form), drawn per won arrival.
        const deal_size_distribution sizes =
            deal_size_distribution::empirical({1200.0, 3500.0, 8000.0, 20000.0}, {0.4, 0.3, 0.2, 0.1});
        o.arrival_deal_size = sizes;
        const simulation_result r = simulate(g, book(g), o);
        const win_time_table tab = win_time_distribution(g, h, 1000); // a finer grid than at 90 days
        // Trapezoid rule on a fine grid (the table is piecewise linear).
        double expected = 0.0;
        const int n = 6000;
        for (int i = 0; i <= n; ++i) {
            const double tau = h * i / n;
            expected += (i == 0 || i == n ? 0.5 : 1.0) * rate * won_by(g, tab, 0, h - tau) * (h / n);
        }
        CAPTURE(r.arrivals_expected_wins);
        CAPTURE(expected);
        CHECK(std::abs(r.arrivals_expected_wins - expected) <= 4.0 * std::sqrt(expected / 4000.0) + 1e-3 * expected);
        // Compound Poisson: E[value] = E[wins] E[A], Var = E[wins] E[A²].
        double ea = 0.0, ea2 = 0.0;
        for (std::size_t i = 0; i < sizes.values().size(); ++i) {
            ea += sizes.weights()[i] * sizes.values()[i];
            ea2 += sizes.weights()[i] * sizes.values()[i] * sizes.values()[i];
        }
        CHECK(std::abs(r.arrivals_expected_value - expected * ea) <=
              4.0 * std::sqrt(expected * ea2 / 4000.0) + 1e-3 * expected * ea);
        // Every won amount is a price-list value: the per-path value is a sum of them, so with
        // one path's wins known only in total, check the smallest path value is a multiple of 100.
        CHECK(std::fmod(r.won_value.min, 100.0) == 0.0);
    }

    SUBCASE("the shock on branches: mean of P(won within h) = E_Z over the shocked model (Gauss–Hermite)") {
        // Every deal of a path sees the same Z: P(won within 90 | stage, age) averaged over Z,
        // each node a renewal solution of the model with shocked shares and rows. Variant 2:
        // σ on the last stage only (stage_correlation), as fit estimates per stage.
        for (int variant : {0, 1, 2}) {
            const bool mixed = variant == 1;
            const stage_graph gg = crm4_spec_graph(mixed);
            const double sigma = 0.6, ages[] = {0.0, 20.0};
            std::vector<double> sig(m, variant == 2 ? 0.0 : sigma);
            if (variant == 2) sig.back() = sigma;
            const int per = 25;
            book b(gg);
            for (std::size_t s = 0; s < m; ++s)
                for (double a : ages)
                    for (int k = 0; k < per; ++k) b.add("d", s, 1.0, a);
            simulation_options o;
            o.horizon = 90;
            o.paths = 6000;
            o.seed = 77;
            if (variant == 2) o.stage_correlation = sig;
            else o.correlation = sigma;
            const simulation_result r = simulate(gg, b, o);
            const auto [x, w] = gauss_hermite(24);
            std::vector<double> e1(2 * m, 0.0), e2(2 * m, 0.0), ev(2 * m, 0.0);
            for (std::size_t q = 0; q < x.size(); ++q) {
                std::vector<double> shift(m);
                for (std::size_t s = 0; s < m; ++s) shift[s] = sig[s] * x[q];
                const stage_graph gz = shocked_graph(gg, shift);
                // 500 steps: against a 12,000-step table, won_within at ages 0 and 20 of the
                // unshocked graphs differs by at most 6.5e-7, far inside the 1e-3 below; the 75
                // tables of this subcase were most of this file's time under the sanitizers
                const win_time_table tab = win_time_distribution(gz, 90.0, 500);
                for (std::size_t s = 0; s < m; ++s)
                    for (std::size_t i = 0; i < 2; ++i) {
                        const double p = won_within(gz, tab, s, ages[i], 90.0);
                        e1[2 * s + i] += w[q] * p;
                        e2[2 * s + i] += w[q] * p * p;
                        ev[2 * s + i] += w[q] * p * (1.0 - p);
                    }
            }
            const win_time_table tab0 = win_time_distribution(gg, 90.0, 500);
            std::size_t d = 0;
            bool moved = false;
            for (std::size_t s = 0; s < m; ++s)
                for (std::size_t i = 0; i < 2; ++i) {
                    double p = 0.0;
                    for (int k = 0; k < per; ++k) p += r.deal_win_probability[d++];
                    p /= per;
                    const std::size_t c = 2 * s + i;
                    // Per path the cell's fraction has variance Var_Z(q) + E_Z[q(1 − q)]/per.
                    const double var = e2[c] - e1[c] * e1[c] + ev[c] / per;
                    CAPTURE(variant);
                    CAPTURE(s);
                    CAPTURE(ages[i]);
                    CAPTURE(p);
                    CAPTURE(e1[c]);
                    CHECK(std::abs(p - e1[c]) <= 4.0 * std::sqrt(var / 6000.0) + 1e-3);
                    const double p0 = won_within(gg, tab0, s, ages[i], 90.0);
                    moved = moved || std::abs(e1[c] - p0) > 8.0 * std::sqrt(var / 6000.0);
                }
            // Jensen: the shock on every stage moves the mean where p is far from 1/2 (one
            // stage's shock alone moves it less than 8 SE here; the agreement above is its test)
            CHECK((moved || variant == 2));
        }
        simulation_options bad;
        bad.horizon = 90;
        bad.stage_correlation = {0.1, 0.2};
        pipecast_test::check_throws<pipecast::argument_error>([&] { (void)simulate(g, book(g), bad); },
                                                              {"stage_correlation", "2 entries", "4 open stages"});
        bad.stage_correlation = {0.1, 0.2, -1.0, 0.0};
        pipecast_test::check_throws<pipecast::argument_error>([&] { (void)simulate(g, book(g), bad); },
                                                              {"Proposal", "-1"});
    }

    SUBCASE("the shock widens P10–P90 as the closed form of a one-stage model says") {
        // One branched stage: Won (gamma 3, mean 15) 0.45, Lost (lognormal 40, 30) 0.45,
        // stalled 0.1. 200 fresh deals and 200 of age 10, horizon 30, amount 1. Given Z, a
        // deal of age a wins within h with F′(a) · G(a): F′ = logistic(logit F(a) + σZ), F(a)
        // = P(Won branch | age a), G(a) = P(T − a <= h | T > a) of the Won dwell; the count is
        // Bin(200, q₀) + Bin(200, q₁₀). Its distribution is E_Z of that convolution.
        const dwell_distribution dw = dwell_distribution::gamma(3.0, 15.0);
        const dwell_distribution dl = dwell_distribution::lognormal(40.0, 30.0);
        const dwell_distribution ds = dwell_distribution::exponential(300.0);
        const stage_graph one = stage_graph::from_rows(
            {{"S", dwell_distribution::exponential(1.0),
              {{"Won", 0.45, dw, false}, {"Lost", 0.45, dl, false}, {"Lost", 0.1, ds, true}}}},
            {{"Won", true}, {"Lost", false}}, {});
        const double h = 30.0, sigma = 0.5;
        const int n = 200;
        book b(one);
        for (int i = 0; i < 2 * n; ++i) b.add("d", 0, 1.0, i < n ? 0.0 : 10.0);
        auto f_won = [&](double a) {
            const double sw = 0.45 * survival(dw, a), sl = 0.45 * survival(dl, a), ss = 0.1 * survival(ds, a);
            return sw / (sw + sl + ss);
        };
        auto g_won = [&](double a) { return (survival(dw, a) - survival(dw, a + h)) / survival(dw, a); };
        auto binom = [](int nn, double q) {
            std::vector<double> p(static_cast<std::size_t>(nn) + 1);
            for (int k = 0; k <= nn; ++k)
                p[static_cast<std::size_t>(k)] =
                    std::exp(std::lgamma(nn + 1.0) - std::lgamma(k + 1.0) - std::lgamma(nn - k + 1.0) +
                             k * std::log(q) + (nn - k) * std::log1p(-q));
            return p;
        };
        // P(count = k) for a shock σ (σ = 0: no shock).
        auto law = [&](double sg) {
            std::vector<double> pk(2 * n + 1, 0.0);
            const auto [x, w] = gauss_hermite(sg > 0.0 ? 48 : 1);
            for (std::size_t q = 0; q < x.size(); ++q) {
                const double z = sg > 0.0 ? x[q] : 0.0, wq = sg > 0.0 ? w[q] : 1.0;
                const auto a = binom(n, logistic_shift(f_won(0.0), sg * z) * g_won(0.0));
                const auto c = binom(n, logistic_shift(f_won(10.0), sg * z) * g_won(10.0));
                for (int i = 0; i <= n; ++i)
                    for (int j = 0; j <= n; ++j)
                        pk[static_cast<std::size_t>(i + j)] += wq * a[static_cast<std::size_t>(i)] * c[static_cast<std::size_t>(j)];
            }
            return pk;
        };
        auto quantile_of = [](const std::vector<double>& pk, double level) {
            double c = 0.0;
            for (std::size_t k = 0; k < pk.size(); ++k)
                if ((c += pk[k]) >= level) return static_cast<double>(k);
            return static_cast<double>(pk.size() - 1);
        };
        for (double sg : {0.0, sigma}) {
            const std::vector<double> pk = law(sg);
            const double x10 = quantile_of(pk, 0.1), x50 = quantile_of(pk, 0.5), x90 = quantile_of(pk, 0.9);
            simulation_options o;
            o.horizon = h;
            o.paths = 20000;
            o.seed = 13;
            o.correlation = sg;
            o.quotas = {x10, x50, x90};
            const simulation_result r = simulate(one, b, o);
            for (std::size_t i = 0; i < 3; ++i) {
                double tail = 0.0; // exact P(count >= quota)
                for (auto k = static_cast<std::size_t>(o.quotas[i]); k < pk.size(); ++k) tail += pk[k];
                CAPTURE(sg);
                CAPTURE(o.quotas[i]);
                CAPTURE(r.won_value.p_quota[i]);
                CAPTURE(tail);
                CHECK(std::abs(r.won_value.p_quota[i] - tail) <= 4.0 * std::sqrt(tail * (1.0 - tail) / 20000.0));
            }
            // The simulated P10 and P90 sit at the exact ones (discrete: within one deal).
            CHECK(std::abs(r.won_value.quantiles[0] - x10) <= 1.0);
            CHECK(std::abs(r.won_value.quantiles[2] - x90) <= 1.0);
            if (sg > 0.0) {
                const std::vector<double> p0 = law(0.0);
                CHECK(x90 - x10 > 1.8 * (quantile_of(p0, 0.9) - quantile_of(p0, 0.1)));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile input (issue 11): ranges, resource limits, the visit cap, failures, the far tail.
// ---------------------------------------------------------------------------------------

namespace {
/// One open stage that returns to itself with probability `loop`, else is won.
stage_graph self_loop(double loop) {
    Eigen::MatrixXd t(1, 3);
    t << loop, 1.0 - loop, 0.0;
    return stage_graph({{"S", dwell_distribution::exponential(1.0)}}, {{"Won", true}, {"Lost", false}}, t);
}
} // namespace

TEST_CASE("simulation: hostile input") {
    const model m = b2b6();
    const book bk = b2b6_book(m.graph);

    SUBCASE("correlation is limited to [0, max_correlation]; rows stay finite at the limit") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 200;
        o.correlation = 1000; // e^{σZ} overflowed: NaN rows, a hang without a horizon
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("correlation"), argument_error);
        o.correlation = std::numeric_limits<double>::infinity();
        CHECK_THROWS_AS((void)simulate(m, bk, o), argument_error);
        o.correlation = 0.0;
        o.stage_correlation.assign(m.graph.open_count(), 0.1);
        o.stage_correlation[2] = 11.0;
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("stage_correlation"), argument_error);
        o.stage_correlation.clear();
        o.correlation = max_correlation;
        for (double h : {90.0, std::numeric_limits<double>::infinity()}) {
            o.horizon = h;
            const simulation_result r = simulate(m, bk, o);
            CHECK(r.status == simulation_status::completed);
            CHECK(std::isfinite(r.won_value.mean));
            for (double p : r.deal_win_probability) REQUIRE((p >= 0.0 && p <= 1.0));
        }
    }

    SUBCASE("memory and work are estimated and refused before anything is allocated") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 1000;
        o.histogram_bins = std::size_t{1} << 40; // 8 TB of histograms (bad_alloc before)
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("memory"), argument_error);
        o.histogram_bins = 40;
        o.sub_period_ends = sub_periods(90, 2000000); // 1000 paths x 2e6 sub-periods: 16 GB
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("memory"), argument_error);
        o.sub_period_ends.clear();
        o.paths = 1000000000; // 15.6 GB of per-path outputs
        CHECK(estimate_simulation(m.graph, bk, o).memory_bytes > o.max_memory_bytes);
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("memory"), argument_error);
        // 1e12 arrivals a day for 90 days: never finished before
        o.paths = 100;
        o.arrivals = arrival_process{0, 1e12, 0.0, {}};
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), doctest::Contains("stage visits"), argument_error);
        // the estimate: b2b6 without arrivals is far below the limit, and the memory is
        // dominated by the per-path outputs
        o.arrivals.reset();
        o.paths = 10000;
        const simulation_estimate e = estimate_simulation(m.graph, bk, o);
        CHECK(e.stage_visits > 1e4 * static_cast<double>(bk.size()));     // at least one visit a deal
        CHECK(e.stage_visits < 1e4 * 30.0 * static_cast<double>(bk.size())); // b2b6: a few visits a deal
        CHECK(e.memory_bytes < (std::uint64_t{64} << 20));
    }

    SUBCASE("a near-certain self-loop: refused by the work estimate, or capped and reported") {
        const stage_graph g = self_loop(0.999999); // 1e6 visits a deal on average, no horizon
        book b(g);
        for (int i = 0; i < 20; ++i) b.add("d", 0, 1.0, 0.0);
        simulation_options o;
        o.paths = 10000000; // 20 deals x min(1e6, max_path_visits) visits x 1e7 paths
        o.threads = 2;
        CHECK_THROWS_WITH_AS((void)simulate(g, b, o), doctest::Contains("stage visits"), argument_error);
        o.paths = 50;
        o.max_path_visits = 2000; // P(absorbed within 2000 visits) = 1 - 0.999999^2000 ≈ 0.002
        const simulation_result r = simulate(g, b, o);
        CHECK(r.status == simulation_status::completed);
        const double n = 50.0 * 20.0, p = 1.0 - std::pow(0.999999, 1999.0);
        CHECK(std::abs(static_cast<double>(r.capped_deal_paths) - n * (1.0 - p)) <= 5.0 * std::sqrt(n * p * (1 - p)) + 1.0);
        CHECK(static_cast<double>(std::llround(r.won_count.mean * 50.0) + static_cast<long long>(r.capped_deal_paths)) == n);
        o.threads = 1;
        o.chunk_paths = 3;
        CHECK(simulate(g, b, o).capped_deal_paths == r.capped_deal_paths); // bit-identical
        // a sound model is never capped
        simulation_options ob;
        ob.paths = 200;
        CHECK(simulate(m, bk, ob).capped_deal_paths == 0);
        o.max_path_visits = 0;
        CHECK_THROWS_WITH_AS((void)simulate(g, b, o), doctest::Contains("max_path_visits"), argument_error);
    }

    SUBCASE("a throwing progress callback stops the run promptly and is rethrown") {
        simulation_options o;
        o.horizon = 90;
        o.paths = 3000000; // minutes of work on one thread
        o.threads = 2;
        o.chunk_paths = 5;
        int calls = 0;
        o.progress = [&](double) -> bool {
            ++calls;
            throw std::runtime_error("progress failed");
        };
        const auto t0 = std::chrono::steady_clock::now();
        CHECK_THROWS_WITH_AS((void)simulate(m, bk, o), "progress failed", std::runtime_error);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        CHECK(calls == 1);
        CHECK(s < 30.0); // the whole run: minutes (waited for every remaining chunk before)
    }

    SUBCASE("a gamma deal whose survival underflows: residual tends to the exponential, not 'leaves at once'") {
        // gamma shape 2, mean 3 (θ = 1.5) at age 2000: S(a) ≈ e^{-1333} underflows; the
        // residual survival is e^{-u}(1 + x + u)/(1 + x), x = a/θ, u = t/θ.
        const stage_graph g = one_stage(dwell_distribution::gamma(2.0, 3.0), 1.0);
        book b(g);
        b.add("old", 0, 1.0, 2000.0);
        simulation_options o;
        o.horizon = 1.5;
        o.paths = 20000;
        o.seed = 3;
        const simulation_result r = simulate(g, b, o);
        const double x = 2000.0 / 1.5, u = 1.0;
        const double p = 1.0 - std::exp(-u) * (1.0 + x + u) / (1.0 + x);
        CHECK(std::abs(r.deal_win_probability[0] - p) <= 5.0 * std::sqrt(p * (1 - p) / 20000.0));
        CHECK(r.deal_expected_close_time[0] > 0.5); // was 0: left at once
        // the same for a lognormal: P(won within h) = 1 - S_r(h) by the library's residual
        const auto ln = dwell_distribution::lognormal(10.0, 5.0);
        const stage_graph gl = one_stage(ln, 1.0);
        book bl(gl);
        bl.add("old", 0, 1.0, 1e10);
        const double h = 1e8;
        o.horizon = h;
        const simulation_result rl = simulate(gl, bl, o);
        const double pl = cdf(residual(ln, 1e10), h);
        REQUIRE((pl > 0.3 && pl < 0.9));
        CHECK(std::abs(rl.deal_win_probability[0] - pl) <= 5.0 * std::sqrt(pl * (1 - pl) / 20000.0));
    }
}

namespace {

/// Every output of two runs is equal, bit for bit (NaN close times: both NaN).
void require_identical(const simulation_result& a, const simulation_result& b) {
    REQUIRE(a.status == b.status);
    REQUIRE(a.paths == b.paths);
    REQUIRE(a.deal_paths == b.deal_paths);
    REQUIRE(a.capped_deal_paths == b.capped_deal_paths);
    auto same_summary = [](const outcome_summary& x, const outcome_summary& y) {
        REQUIRE(x.mean == y.mean);
        REQUIRE(x.sd == y.sd);
        REQUIRE(x.min == y.min);
        REQUIRE(x.max == y.max);
        REQUIRE(x.quantiles == y.quantiles);
        REQUIRE(x.p_quota == y.p_quota);
        REQUIRE(x.histogram.counts == y.histogram.counts);
    };
    same_summary(a.won_value, b.won_value);
    same_summary(a.won_count, b.won_count);
    REQUIRE(a.sub_period_value.size() == b.sub_period_value.size());
    for (std::size_t i = 0; i < a.sub_period_value.size(); ++i) same_summary(a.sub_period_value[i], b.sub_period_value[i]);
    REQUIRE(a.deal_win_probability == b.deal_win_probability);
    REQUIRE(a.deal_expected_close_time.size() == b.deal_expected_close_time.size());
    for (std::size_t d = 0; d < a.deal_expected_close_time.size(); ++d) {
        const double x = a.deal_expected_close_time[d], y = b.deal_expected_close_time[d];
        REQUIRE((x == y || (std::isnan(x) && std::isnan(y))));
    }
    REQUIRE(a.stage_expected_value == b.stage_expected_value);
    REQUIRE(a.arrivals_expected_count == b.arrivals_expected_count);
    REQUIRE(a.arrivals_expected_value == b.arrivals_expected_value);
    REQUIRE(a.arrival_deal_paths == b.arrival_deal_paths);
}

} // namespace

TEST_CASE("simulation engine: prepared once, split runs, both Philox kernels") {
    const model m = b2b6();
    const book bk = b2b6_book(m.graph);
    const stage_graph crm4 = crm4_spec_graph();
    book cb(crm4);
    {
        std::mt19937_64 rng(8);
        std::uniform_real_distribution<double> age(0.0, 150.0);
        for (int i = 0; i < 2000; ++i) {
            std::optional<double> ov;
            if (i % 13 == 0) ov = 0.55;
            cb.add("d", static_cast<std::size_t>(i) % crm4.open_count(), 1000.0 + i, age(rng), ov);
        }
    }
    simulation_options o;
    o.horizon = 90;
    o.paths = 203;
    o.seed = 11;
    o.quotas = {4.6e7};
    o.sub_period_ends = sub_periods(90, 3);
    o.model_arrivals = true;
    o.correlation = 0.3;
    o.threads = 2;

    SUBCASE("what-ifs on one engine equal simulate() of each, bit for bit") {
        const simulation_engine e(m, bk);
        for (double h : {30.0, 90.0})
            for (double sigma : {0.0, 0.3}) {
                simulation_options w = o;
                w.horizon = h;
                w.sub_period_ends = sub_periods(h, 3);
                w.correlation = sigma;
                w.seed = o.seed + static_cast<std::uint64_t>(h);
                require_identical(e.run(w), simulate(m, bk, w));
            }
        const simulation_engine ce(crm4, cb, 1);
        simulation_options c = o;
        c.model_arrivals = false;
        c.arrivals = arrival_process{0, 5.0, 0.0, {}};
        c.arrival_deal_size = deal_size_distribution(3000.0, 0.8);
        require_identical(ce.run(c), simulate(crm4, cb, c));
    }

    SUBCASE("pieces of the path range combine to the one-run result") {
        const simulation_engine e(m, bk);
        const simulation_result whole = e.run(o);
        std::vector<simulation_paths> parts;
        simulation_options one = o;
        one.threads = 1;
        parts.push_back(e.run_paths(one, 0, 64));
        parts.push_back(e.run_paths(o, 64, 65));
        parts.push_back(e.run_paths(o, 65, 203));
        CHECK(parts[1].value.size() == 1);
        require_identical(e.combine(o, parts), whole);
        // Pieces that do not tile [0, paths) are refused.
        std::vector<simulation_paths> gap = {parts[0], parts[2]};
        CHECK_THROWS_AS((void)e.combine(o, gap), argument_error);
        std::vector<simulation_paths> shortfall = {parts[0], parts[1]};
        CHECK_THROWS_AS((void)e.combine(o, shortfall), argument_error);
        CHECK_THROWS_AS((void)e.run_paths(o, 10, 10), argument_error);
        CHECK_THROWS_AS((void)e.run_paths(o, 0, 204), argument_error);
    }

    SUBCASE("runs from several threads at once on one engine") {
        const simulation_engine e(crm4, cb);
        simulation_options a = o, b = o;
        a.model_arrivals = b.model_arrivals = false;
        b.seed = 99;
        b.correlation = 0.0;
        const simulation_result ra = e.run(a), rb = e.run(b);
        simulation_result pa, pb;
        {
            std::jthread t1([&] { pa = e.run(a); });
            std::jthread t2([&] { pb = e.run(b); });
        }
        require_identical(pa, ra);
        require_identical(pb, rb);
    }

    SUBCASE("the SSE2 and AVX2 Philox kernels give the same results (b2b6 and crm4, 1 and 2 threads)") {
        const bool avx2 = detail::philox_isa_available(philox_isa::avx2);
        MESSAGE(std::string(avx2 ? "AVX2 kernel available: both kernels compared" : "no AVX2: both runs use SSE2"));
        simulation_options s = o, v = o;
        s.philox_kernel = philox_isa::sse2;
        v.philox_kernel = philox_isa::avx2;
        v.threads = 1;
        require_identical(simulate(m, bk, s), simulate(m, bk, v));
        s.model_arrivals = v.model_arrivals = false;
        s.arrivals = v.arrivals = arrival_process{0, 5.0, 0.0, {}};
        s.arrival_deal_size = v.arrival_deal_size = deal_size_distribution(3000.0, 0.8);
        v.threads = 2;
        require_identical(simulate(crm4, cb, s), simulate(crm4, cb, v));
        simulation_options au = v;
        au.philox_kernel = philox_isa::automatic;
        require_identical(simulate(crm4, cb, au), simulate(crm4, cb, v));
    }

    SUBCASE("the AVX-512 sweep gives the scalar sweep's bits (b2b6: plain, shock, overrides, far-tail ages)") {
        const bool avx512 = detail::philox_isa_available(philox_isa::avx512);
        MESSAGE(std::string(avx512 ? "AVX-512 available: the AVX-512 sweep compared with SSE2 and AVX2"
                                   : "no AVX-512 on this CPU: the request falls back (compared all the same)"));
        CHECK(detail::philox_resolve(philox_isa::avx512) ==
              (avx512 ? philox_isa::avx512
                      : (detail::philox_isa_available(philox_isa::avx2) ? philox_isa::avx2 : philox_isa::sse2)));
        // b2b6's book plus deals so old that their first dwell needs the exact residual
        // (S(a) < 2^-960), deals of every stage at age 0, and some overrides (scalar path).
        book big(m.graph);
        for (std::size_t i = 0; i < bk.size(); ++i) big.add(bk.at(i));
        for (std::size_t i = 0; i < 300; ++i) {
            const std::size_t s = i % m.graph.open_count();
            big.add("x", s, 500.0 + static_cast<double>(i), i % 3 == 0 ? 1e7 : (i % 3 == 1 ? 0.0 : 40.0 + static_cast<double>(i)));
        }
        book with_overrides(m.graph);
        for (std::size_t i = 0; i < bk.size(); ++i) {
            deal d = bk.at(i);
            if (i % 17 == 0) d.probability = 0.4;
            with_overrides.add(d);
        }
        for (const book* b : std::array<const book*, 3>{&bk, &big, &with_overrides})
            for (unsigned threads : {1u, 2u})
                for (double sigma : {0.0, 0.3}) {
                    simulation_options s = o, v = o;
                    s.philox_kernel = philox_isa::sse2;
                    v.philox_kernel = philox_isa::avx512;
                    s.threads = v.threads = threads;
                    s.correlation = v.correlation = sigma;
                    s.model_arrivals = v.model_arrivals = b == &bk;
                    const simulation_result rs = simulate(m, *b, s);
                    require_identical(rs, simulate(m, *b, v));
                    if (b == &big) CHECK(rs.status == simulation_status::completed);
                }
        // Horizons that end most paths at the first visit, and one long enough to need many.
        for (double h : {5.0, 400.0}) {
            simulation_options s = o, v = o;
            s.horizon = v.horizon = h;
            s.sub_period_ends = v.sub_period_ends = sub_periods(h, 4);
            s.philox_kernel = philox_isa::avx2;
            v.philox_kernel = philox_isa::avx512;
            require_identical(simulate(m, bk, s), simulate(m, bk, v));
        }
    }
}

} // namespace unit_simulation
