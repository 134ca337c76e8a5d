// Tests of exact_distribution.hpp: closed forms for tiny books (every outcome enumerated),
// a deal of 40% of the book against an independent integer convolution, and b2b6 / crm4
// books (with arrivals, sub-periods and the correlation shock) against large Monte Carlo runs
// within 4 of their standard errors (a quantile's SE from the exact density).
#include <pipecast/detail/gauss_hermite.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/simulation/exact_distribution.hpp>
// GCC 12's -Wrestrict misfires on a string concatenation inlined from model_io.hpp into this
// file (GCC bug 105329); the warning is silenced for that header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <pipecast/io/model_json.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <pipecast/simulation/simulation.hpp>

#include <doctest/doctest.h>

#include "book_fixtures.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_exact_distribution {

using namespace pipecast;
using pipecast_test::check_throws;
using pipecast_test::crm4_spec_graph;

namespace {

model b2b6() { return load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json"); }
book b2b6_book(const stage_graph& g) { return load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", g); }

/// P(Σ a_i B_i <= x) and friends by enumerating every outcome of a tiny book.
struct enumerated {
    std::vector<std::pair<double, double>> atoms; // (value, probability), sorted by value
    [[nodiscard]] double quantile(double q) const {
        double acc = 0.0;
        for (const auto& [v, p] : atoms) {
            acc += p;
            if (acc >= q * (1.0 - 1e-12)) return v;
        }
        return atoms.back().first;
    }
    [[nodiscard]] double p_at_least(double x) const {
        double acc = 0.0;
        for (const auto& [v, p] : atoms)
            if (v >= x) acc += p;
        return acc;
    }
};
enumerated enumerate(const std::vector<double>& a, const std::vector<double>& p) {
    enumerated e;
    const std::size_t n = a.size();
    for (std::uint32_t mask = 0; mask < (1u << n); ++mask) {
        double v = 0.0, pr = 1.0;
        for (std::size_t i = 0; i < n; ++i) {
            const bool won = (mask >> i) & 1u;
            v += won ? a[i] : 0.0;
            pr *= won ? p[i] : 1.0 - p[i];
        }
        e.atoms.push_back({v, pr});
    }
    std::sort(e.atoms.begin(), e.atoms.end());
    return e;
}

/// Probability of each integer total of Σ k_i B_i, by plain dynamic programming.
std::vector<double> integer_convolution(const std::vector<std::int64_t>& k, const std::vector<double>& p) {
    std::int64_t total = 0;
    for (auto x : k) total += x;
    std::vector<double> f(static_cast<std::size_t>(total) + 1, 0.0);
    f[0] = 1.0;
    std::int64_t reach = 0;
    for (std::size_t i = 0; i < k.size(); ++i) {
        reach += k[i];
        for (std::int64_t v = reach; v >= 0; --v) {
            const auto u = static_cast<std::size_t>(v);
            const double from = v >= k[i] ? f[static_cast<std::size_t>(v - k[i])] : 0.0;
            f[u] = f[u] * (1.0 - p[i]) + from * p[i];
        }
    }
    return f;
}

/// Quantile levels q and q ± 0.02 for each q (the outer two give the density at the quantile).
std::vector<double> with_neighbours(const std::vector<double>& qs) {
    std::vector<double> out;
    for (double q : qs) out.insert(out.end(), {q - 0.02, q, q + 0.02});
    return out;
}

/// Exact quantiles and P(quota) agree with a Monte Carlo run within 4 standard errors: a
/// quantile's SE sqrt(q(1 − q)/n) / f(Q), f from the exact quantiles at q ± 0.02; P(quota)'s
/// sqrt(P(1 − P)/n). `e` was computed with with_neighbours(levels); `mc` with the levels.
void check_against_mc(const exact_summary& e, double error_bound, double probability_error,
                      const outcome_summary& mc, std::size_t paths) {
    const double n = static_cast<double>(paths);
    for (std::size_t i = 0; i < mc.quantile_levels.size(); ++i) {
        const double q = mc.quantile_levels[i];
        const double lo = e.quantiles[3 * i], mid = e.quantiles[3 * i + 1], hi = e.quantiles[3 * i + 2];
        const double density = 0.04 / std::max(hi - lo, 1e-300);
        const double se = std::sqrt(q * (1.0 - q) / n) / density;
        INFO("q " << q << ": exact " << mid << " mc " << mc.quantiles[i] << " se " << se << " bound " << error_bound);
        CHECK(std::abs(mid - mc.quantiles[i]) <= 4.0 * se + error_bound);
    }
    for (std::size_t i = 0; i < mc.quotas.size(); ++i) {
        const double p = e.p_quota[i];
        const double se = std::sqrt(std::max(p * (1.0 - p), 1.0 / n) / n);
        INFO("quota " << mc.quotas[i] << ": exact " << p << " mc " << mc.p_quota[i] << " se " << se);
        CHECK(std::abs(p - mc.p_quota[i]) <= 4.0 * se + probability_error);
    }
    const double mse = mc.sd / std::sqrt(n);
    CHECK(std::abs(e.mean - mc.mean) <= 4.0 * mse);
}

/// A book on the crm4 graph: `n` deals over the open stages, ages up to 120 days, lognormal
/// amounts (median 20,000, sigma 0.8), from a fixed seed.
book crm4_book(const stage_graph& g, std::size_t n) {
    pipecast_fixtures::book_recipe r;
    r.amount_log_mu = std::log(20000.0);
    r.amount_sigma = 0.8;
    r.max_age = 120.0;
    r.seed = 42;
    r.id_prefix = "C";
    return pipecast_fixtures::synthetic_book(g, n, r);
}

} // namespace

TEST_CASE("exact_sum: closed forms") {
    SUBCASE("three deals, integer amounts: every quantile and P(quota) as enumerated") {
        const std::vector<double> a{100, 250, 400}, p{0.3, 0.6, 0.5};
        const enumerated truth = enumerate(a, p);
        simulation_options o;
        o.quantiles = {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0};
        o.quotas = {0, 100, 250, 350, 400, 500, 650, 750, 751};
        double bound = -1.0;
        const exact_summary s = exact_sum(a, p, o, std::nullopt, {}, &bound);
        CHECK(bound == doctest::Approx(1.0)); // Δ = 1, no rounding
        for (std::size_t i = 0; i < o.quantiles.size(); ++i) CHECK(s.quantiles[i] == truth.quantile(o.quantiles[i]));
        for (std::size_t i = 0; i < o.quotas.size(); ++i)
            CHECK(s.p_quota[i] == doctest::Approx(truth.p_at_least(o.quotas[i])).epsilon(1e-12));
        CHECK(s.mean == doctest::Approx(100 * 0.3 + 250 * 0.6 + 400 * 0.5));
        CHECK(s.min == 0.0);
        CHECK(s.max == 750.0);
    }
    SUBCASE("two deals, amounts with cents: within the stated bound") {
        const std::vector<double> a{1234.56, 789.01}, p{0.45, 0.8};
        const enumerated truth = enumerate(a, p);
        simulation_options o;
        o.quantiles = {0.05, 0.2, 0.5, 0.9};
        double bound = 0.0;
        const exact_summary s = exact_sum(a, p, o, std::nullopt, {}, &bound);
        CHECK(bound < 20.0);
        for (std::size_t i = 0; i < o.quantiles.size(); ++i)
            CHECK(std::abs(s.quantiles[i] - truth.quantile(o.quantiles[i])) <= bound);
    }
    SUBCASE("probabilities near one half and above (the direct product and the complement)") {
        const std::vector<double> a{10, 20, 40, 80}, p{0.5, 0.49, 0.93, 0.51};
        const enumerated truth = enumerate(a, p);
        simulation_options o;
        o.quotas = {10, 30, 60, 100, 130, 150};
        const exact_summary s = exact_sum(a, p, o);
        for (std::size_t i = 0; i < o.quotas.size(); ++i)
            CHECK(s.p_quota[i] == doctest::Approx(truth.p_at_least(o.quotas[i])).epsilon(1e-12));
    }
    SUBCASE("amounts from a deal-size distribution (NaN amount)") {
        const auto size = deal_size_distribution::empirical({100, 300}, {0.5, 0.5});
        const double nan = std::numeric_limits<double>::quiet_NaN();
        const std::vector<double> a{nan, nan, 50}, p{0.5, 0.4, 0.7};
        // Enumerate: each unknown deal is a deal of 100 or 300 with half its probability.
        enumerated truth;
        for (int x = 0; x < 3; ++x)
            for (int y = 0; y < 3; ++y)
                for (int z = 0; z < 2; ++z) {
                    const double px = x == 0 ? 0.5 : 0.25, py = y == 0 ? 0.6 : 0.2, pz = z ? 0.7 : 0.3;
                    const double v = (x == 1 ? 100 : x == 2 ? 300 : 0) + (y == 1 ? 100 : y == 2 ? 300 : 0) + 50 * z;
                    truth.atoms.push_back({v, px * py * pz});
                }
        std::sort(truth.atoms.begin(), truth.atoms.end());
        simulation_options o;
        o.quotas = {50, 100, 300, 400, 650};
        const exact_summary s = exact_sum(a, p, o, size);
        for (std::size_t i = 0; i < o.quotas.size(); ++i)
            CHECK(s.p_quota[i] == doctest::Approx(truth.p_at_least(o.quotas[i])).epsilon(1e-9));
        CHECK(s.mean == doctest::Approx(0.9 * 200 + 35));
    }
    SUBCASE("bad input is named") {
        const std::vector<double> a{1, 2}, p{0.5, 1.5}, p1{0.5};
        check_throws<argument_error>([&] { (void)exact_sum(a, p); }, {"probability of deal 1", "1.5"});
        check_throws<argument_error>([&] { (void)exact_sum(a, p1); }, {"2 amounts", "1 probabilities"});
        const std::vector<double> an{std::numeric_limits<double>::quiet_NaN()}, pn{0.5};
        check_throws<argument_error>([&] { (void)exact_sum(an, pn); }, {"deal 0", "deal-size"});
        const std::vector<double> neg{-1.0};
        check_throws<argument_error>([&] { (void)exact_sum(neg, pn); }, {"amount of deal 0", "-1"});
        exact_options eo;
        eo.grid_cells = 1000;
        check_throws<argument_error>([&] { (void)exact_sum(pn, pn, {}, std::nullopt, eo); }, {"grid_cells", "1000"});
        simulation_options o;
        o.quantiles = {1.5};
        check_throws<argument_error>([&] { (void)exact_sum(pn, pn, o); }, {"quantile", "1.5"});
    }
}

TEST_CASE("exact_sum: one deal of 40% of the book is resolved") {
    // 300 deals of 500..1500 units and one of 40% of the total, every amount × 1.37 (not on an
    // integer lattice): the truth from an integer convolution, scaled.
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<std::int64_t> k(500, 1500);
    std::uniform_real_distribution<double> pr(0.05, 0.95);
    std::vector<std::int64_t> ks;
    std::vector<double> p;
    std::int64_t rest = 0;
    for (int i = 0; i < 300; ++i) {
        ks.push_back(k(rng));
        rest += ks.back();
        p.push_back(pr(rng));
    }
    ks.push_back(rest * 2 / 3); // 40% of the whole book
    p.push_back(0.35);
    const std::vector<double> f = integer_convolution(ks, p);
    std::vector<double> a;
    for (auto x : ks) a.push_back(1.37 * static_cast<double>(x));
    simulation_options o;
    o.quantiles = {0.1, 0.3, 0.5, 0.6, 0.64, 0.66, 0.7, 0.9};
    const double big = a.back();
    double mean_rest = 0.0;
    for (std::size_t i = 0; i + 1 < a.size(); ++i) mean_rest += a[i] * p[i];
    o.quotas = {mean_rest, mean_rest + 0.5 * big, mean_rest + big};
    double bound = 0.0;
    const exact_summary s = exact_sum(a, p, o, std::nullopt, {}, &bound);
    auto truth_quantile = [&](double q) {
        double acc = 0.0;
        for (std::size_t v = 0; v < f.size(); ++v) {
            acc += f[v];
            if (acc >= q) return 1.37 * static_cast<double>(v);
        }
        return 1.37 * static_cast<double>(f.size() - 1);
    };
    auto truth_at_least = [&](double x) {
        double acc = 0.0;
        for (std::size_t v = 0; v < f.size(); ++v)
            if (1.37 * static_cast<double>(v) >= x) acc += f[v];
        return acc;
    };
    INFO("bound " << bound << ", big deal " << big);
    CHECK(bound < 0.002 * big);
    for (std::size_t i = 0; i < o.quantiles.size(); ++i) {
        INFO("q " << o.quantiles[i]);
        CHECK(std::abs(s.quantiles[i] - truth_quantile(o.quantiles[i])) <= bound);
    }
    // The two modes: the gap between them holds almost no probability.
    CHECK(s.p_quota[1] == doctest::Approx(truth_at_least(o.quotas[1])).epsilon(1e-6));
    CHECK(s.p_quota[1] == doctest::Approx(0.35).epsilon(1e-6));
    for (std::size_t i = 0; i < o.quotas.size(); ++i)
        CHECK(std::abs(s.p_quota[i] - truth_at_least(o.quotas[i])) < 0.02); // a quota at a mode: ± the rounding
    // The 40% deal's two modes show in the histogram: an empty band between them.
    std::size_t empty_inside = 0;
    for (double h : s.histogram) empty_inside += h < 1e-9 ? 1 : 0;
    CHECK(empty_inside >= 4);
}

TEST_CASE("exact_distribution against Monte Carlo") {
    SUBCASE("b2b6 book, horizon 90, with sub-periods") {
        const model m = b2b6();
        const book bk = b2b6_book(m.graph);
        simulation_options o;
        o.horizon = 90.0;
        o.paths = pipecast_test::mc_paths(20000);
        o.threads = 2;
        o.quotas = {4.0e6, 5.0e6, 6.0e6};
        o.sub_period_ends = sub_periods(90.0, 3);
        const simulation_result mc = simulate(m, bk, o);
        const std::size_t nq = mc.won_value.quantile_levels.size();
        simulation_options eo = o;
        eo.quantiles = with_neighbours(o.quantiles);
        const exact_result ex = exact_distribution(m, bk, eo);
        REQUIRE(ex.won_value.quantiles.size() == 3 * nq);
        CHECK(ex.method == "exact");
        MESSAGE("b2b6 exact P10/P50/P90 " << ex.won_value.quantiles[1] << " " << ex.won_value.quantiles[4] << " "
                                          << ex.won_value.quantiles[7] << "; mc " << mc.won_value.quantiles[0] << " "
                                          << mc.won_value.quantiles[1] << " " << mc.won_value.quantiles[2]
                                          << "; bound " << ex.error_bound << " in " << ex.elapsed_seconds << " s");
        check_against_mc(ex.won_value, ex.error_bound, ex.probability_error, mc.won_value, mc.paths);
        for (std::size_t i = 0; i < 3; ++i)
            check_against_mc(ex.sub_period_value[i], ex.error_bound, ex.probability_error, mc.sub_period_value[i],
                             mc.paths);
        check_against_mc(ex.won_count, 1.0, ex.probability_error, mc.won_count, mc.paths);
        for (std::size_t s = 0; s < m.graph.open_count(); ++s)
            CHECK(ex.stage_expected_value[s] ==
                  doctest::Approx(mc.stage_expected_value[s]).epsilon(0.05).scale(1e4));
        CHECK(ex.error_bound < 0.01 * ex.won_value.sd);
    }
    SUBCASE("b2b6 with the model's arrivals and a correlation shock") {
        const model m = b2b6();
        const book bk = b2b6_book(m.graph);
        simulation_options o;
        o.horizon = 90.0;
        o.paths = 20000; // all of them in every build: the arrivals' value has a fixed 3% tolerance
        o.threads = 2;
        o.model_arrivals = true;
        o.correlation = 0.5;
        o.quotas = {6.0e6};
        const simulation_result mc = simulate(m, bk, o);
        simulation_options eo = o;
        eo.quantiles = with_neighbours(o.quantiles);
        const exact_result ex = exact_distribution(m, bk, eo);
        CHECK(ex.quadrature_nodes == 24);
        CHECK(ex.arrivals_expected_count == doctest::Approx(mc.arrivals_expected_count).epsilon(1e-3));
        CHECK(ex.arrivals_expected_value == doctest::Approx(mc.arrivals_expected_value).epsilon(0.03));
        check_against_mc(ex.won_value, ex.error_bound, ex.probability_error, mc.won_value, mc.paths);
    }
    SUBCASE("crm4 (branched stages, stalled share): independent and with a per-stage shock") {
        const stage_graph g = crm4_spec_graph();
        const book bk = crm4_book(g, 1500);
        for (bool shock : {false, true}) {
            CAPTURE(shock);
            simulation_options o;
            o.horizon = 90.0;
            o.paths = pipecast_test::mc_paths(40000);
            o.threads = 2;
            if (shock) {
                o.stage_correlation.assign(g.open_count(), 0.0);
                o.stage_correlation.back() = 0.8; // the last open stage's win/lose split
                o.stage_correlation.front() = 0.3;
            }
            const simulation_result mc = simulate(g, bk, o);
            o.quotas = {mc.won_value.quantiles[1]};
            const simulation_result mc2 = simulate(g, bk, o); // same seed: the same paths
            simulation_options eo = o;
            eo.quantiles = with_neighbours(o.quantiles);
            const exact_result ex = exact_distribution(g, bk, eo, std::nullopt);
            MESSAGE("crm4 shock " << shock << ": exact P10/P50/P90 " << ex.won_value.quantiles[1] << " "
                                  << ex.won_value.quantiles[4] << " " << ex.won_value.quantiles[7] << "; mc "
                                  << mc.won_value.quantiles[0] << " " << mc.won_value.quantiles[1] << " "
                                  << mc.won_value.quantiles[2]);
            check_against_mc(ex.won_value, ex.error_bound, ex.probability_error, mc2.won_value, mc2.paths);
        }
    }
    SUBCASE("b2b6 with a strong shock (sigma 0.5): the mixture over Z is no comb") {
        // Given Z the value has an sd of about 1 M, its mean spreads by 17 M over Z: the 24
        // Gauss-Hermite nodes' distributions mixed with their weights were a comb of peaks
        // (P10 29.5 M against 27.1 M by Monte Carlo, error_bound 3.8 M). Now each interval
        // between nodes is interpolated; quantiles within 4 SE of 60,000 paths plus a bound
        // below 2% of the sd.
        const model m = b2b6();
        const book bk = b2b6_book(m.graph);
        simulation_options o;
        o.horizon = 90.0;
        o.paths = pipecast_test::mc_paths(60000);
        o.threads = 2;
        o.seed = 20261125;
        o.correlation = 0.5;
        o.quantiles = {0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95};
        // Quotas at the exact P10, P50 and P90 (one Monte Carlo run for both checks).
        const exact_result ex0 = exact_distribution(m, bk, o);
        o.quotas = {ex0.won_value.quantiles[1], ex0.won_value.quantiles[3], ex0.won_value.quantiles[5]};
        const simulation_result mc = simulate(m, bk, o);
        simulation_options eo = o;
        eo.quantiles = with_neighbours(o.quantiles);
        const exact_result ex = exact_distribution(m, bk, eo);
        MESSAGE("b2b6 sigma 0.5: exact P10/P50/P90 " << ex.won_value.quantiles[4] << " " << ex.won_value.quantiles[10]
                                                     << " " << ex.won_value.quantiles[16] << "; mc "
                                                     << mc.won_value.quantiles[1] << " " << mc.won_value.quantiles[3]
                                                     << " " << mc.won_value.quantiles[5] << "; bound "
                                                     << ex.error_bound << ", sd " << ex.won_value.sd);
        CHECK(ex.error_bound < 0.02 * ex.won_value.sd);
        check_against_mc(ex.won_value, ex.error_bound, ex.probability_error, mc.won_value, mc.paths);
        check_against_mc(ex.won_count, 1.0, ex.probability_error, mc.won_count, mc.paths);
    }
}

// Kept apart from the Monte Carlo comparisons above, which the TSan stage of scripts/test leaves
// out (their simulations are the threaded path of unit_simulation, at 10^8 deal-paths): this
// one is the exact distribution's own thread pool.
TEST_CASE("exact_distribution: the same result at any thread count, and bad options named") {
    SUBCASE("the same result at any thread count") {
        const stage_graph g = crm4_spec_graph();
        const book bk = crm4_book(g, 20000);
        simulation_options o;
        o.horizon = 90.0;
        o.quotas = {1.0e7};
        o.sub_period_ends = {30.0};
        o.stage_correlation.assign(g.open_count(), 0.0);
        o.stage_correlation.back() = 0.5;
        exact_options xo;
        xo.quadrature_nodes = 6;
        std::vector<exact_result> rs;
        for (unsigned t : {1u, 2u, 3u}) {
            o.threads = t;
            rs.push_back(exact_distribution(g, bk, o, std::nullopt, xo));
        }
        for (std::size_t i = 1; i < rs.size(); ++i) {
            CHECK(rs[i].won_value.quantiles == rs[0].won_value.quantiles);
            CHECK(rs[i].won_value.p_quota == rs[0].won_value.p_quota);
            CHECK(rs[i].won_value.histogram == rs[0].won_value.histogram);
            CHECK(rs[i].won_count.histogram == rs[0].won_count.histogram);
            CHECK(rs[i].sub_period_value[0].histogram == rs[0].sub_period_value[0].histogram);
            CHECK(rs[i].error_bound == rs[0].error_bound);
        }
    }
    SUBCASE("bad options are named") {
        const model m = b2b6();
        const book bk = b2b6_book(m.graph);
        simulation_options o; // no horizon
        check_throws<argument_error>([&] { (void)exact_distribution(m, bk, o); }, {"horizon", "finite"});
        o.horizon = 90.0;
        exact_options eo;
        eo.quadrature_nodes = 500;
        check_throws<argument_error>([&] { (void)exact_distribution(m, bk, o, eo); }, {"quadrature_nodes", "500"});
        o.quotas = {-1.0};
        check_throws<argument_error>([&] { (void)exact_distribution(m, bk, o); }, {"quota", "-1"});
        CHECK(exact_applicable(o));
        o.horizon = std::numeric_limits<double>::infinity();
        CHECK_FALSE(exact_applicable(o));
        CHECK(parse_distribution_method("mc") == distribution_method::monte_carlo);
        check_throws<argument_error>([&] { (void)parse_distribution_method("fast"); }, {"method", "fast"});
    }
}

TEST_CASE("the Gauss-Hermite rule integrates the normal moments exactly up to degree 2n - 1") {
    // E Z^k for Z ~ N(0, 1): 0 for odd k, (k - 1)!! for even k, independent of the rule.
    for (const std::size_t n : {1u, 2u, 5u, 24u, 48u}) {
        CAPTURE(n);
        std::vector<double> x, w;
        pipecast::detail::gauss_hermite(n, x, w);
        REQUIRE(x.size() == n);
        REQUIRE(w.size() == n);
        for (std::size_t k = 0; k <= std::min<std::size_t>(2 * n - 1, 16); ++k) {
            CAPTURE(k);
            // The rounding scale of the sum is Σ w |x|^k (odd moments cancel to 0 from terms
            // of that size); nodes good to ~1e-14 relative give errors ~k 1e-14 of it.
            double moment = 0.0, magnitude = 0.0;
            for (std::size_t i = 0; i < n; ++i) {
                moment += w[i] * std::pow(x[i], static_cast<double>(k));
                magnitude += w[i] * std::pow(std::abs(x[i]), static_cast<double>(k));
            }
            double truth = k % 2 ? 0.0 : 1.0;
            for (std::size_t j = k; j > 1 && k % 2 == 0; j -= 2) truth *= static_cast<double>(j - 1);
            CHECK(std::abs(moment - truth) <= 1e-12 * static_cast<double>(k + 1) * magnitude);
        }
        for (std::size_t i = 0; i < n; ++i) CHECK(x[i] == doctest::Approx(-x[n - 1 - i]).epsilon(1e-12).scale(1.0));
    }
}

} // namespace unit_exact_distribution
