// Tests of nowcast.hpp: the shocked branch shares by hand, the cohorts' shocks recovered from
// a log generated here with known shocks, the nowcast probability against a direct
// computation of the one-stage model, bad options.
#include <pipecast/forecast/nowcast.hpp>

#include "test_support.hpp"
#include <boost/math/distributions/gamma.hpp>
#include <boost/math/distributions/lognormal.hpp>
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_nowcast {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

// One stage, Negotiation: won after a gamma (shape 3, mean 15) with 0.60, lost after a
// lognormal (mean 40, sd 30) with 0.35, stalled (closed lost after an exponential of mean
// 300) with 0.05.
constexpr double pi_won = 0.60, pi_lost = 0.35, pi_stall = 0.05;

stage_graph one_stage() {
    std::vector<stage_branch> br = {
        {"Won", pi_won, dwell_distribution::gamma(3.0, 15.0), false},
        {"Lost", pi_lost, dwell_distribution::lognormal(40.0, 30.0), false},
        {"Lost", pi_stall, dwell_distribution::exponential(300.0), true},
    };
    return stage_graph::from_rows({{"Negotiation", dwell_distribution::exponential(1.0), br}},
                                  {{"Won", true}, {"Lost", false}}, {});
}

model one_stage_model() { return model{one_stage(), {}, {}, {}, {}, "day", {}}; }

// The lognormal's log-scale parameters from its mean and sd (as the generator uses them).
struct lognormal_parameters {
    double mu, sigma;
};
lognormal_parameters lognormal_of(double mean, double sd) {
    const double s2 = std::log(1.0 + (sd / mean) * (sd / mean));
    return {std::log(mean) - 0.5 * s2, std::sqrt(s2)};
}

// Shares with the won/lost odds shifted by z (f + l kept), written out for the test.
void shares(double z, double& won, double& lost) {
    const double f = pi_won, l = pi_lost;
    won = (f + l) / (1.0 + (l / f) * std::exp(-z));
    lost = f + l - won;
}

/// A log of `per_period` deals entering Negotiation uniformly in each 90-day period q with
/// shock z[q], censored at `end`.
visit_log generated_log(const std::vector<double>& z, std::size_t per_period, double end, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::gamma_distribution<double> won_time(3.0, 5.0);
    const auto ln = lognormal_of(40.0, 30.0);
    std::lognormal_distribution<double> lost_time(ln.mu, ln.sigma);
    std::exponential_distribution<double> stall_time(1.0 / 300.0);
    visit_log log;
    std::size_t id = 0;
    for (std::size_t q = 0; q < z.size(); ++q) {
        double pw, pl;
        shares(z[q], pw, pl);
        for (std::size_t i = 0; i < per_period; ++i) {
            const double entered = 90.0 * (static_cast<double>(q) + u(rng));
            if (entered >= end) continue;
            const double r = u(rng);
            double t;
            std::string next;
            if (r < pw) t = won_time(rng), next = "Won";
            else if (r < pw + pl) t = lost_time(rng), next = "Lost";
            else t = stall_time(rng), next = "Lost";
            std::string deal = "D";
            deal += std::to_string(id++);
            if (entered + t < end) log.add_visit(deal, "Negotiation", entered, entered + t, next);
            else log.add_visit(deal, "Negotiation", entered, std::nan(""), "");
        }
    }
    log.end_time = end;
    log.finish();
    return log;
}

// P(won within h | age a, shock z) of the one-stage model, directly from Boost's
// distributions (no pipecast forecast code).
double direct_within(double a, double h, double z) {
    double pw, pl;
    shares(z, pw, pl);
    const boost::math::gamma_distribution<> gw(3.0, 5.0);
    const auto ln = lognormal_of(40.0, 30.0);
    const boost::math::lognormal_distribution<> gl(ln.mu, ln.sigma);
    const double sw = cdf(complement(gw, a)), sl = cdf(complement(gl, a)), ss = std::exp(-a / 300.0);
    return pw * (cdf(gw, a + h) - cdf(gw, a)) / (pw * sw + pl * sl + pi_stall * ss);
}

// E[f(Z)], Z ~ N(m, s²), by the trapezoid rule on ±8 s (independent of the Gauss–Hermite rule).
template <class F>
double normal_expectation(double m, double s, F&& f) {
    const int n = 4000;
    double acc = 0.0, norm = 0.0;
    for (int i = 0; i <= n; ++i) {
        const double u = -8.0 + 16.0 * i / n, w = (i == 0 || i == n ? 0.5 : 1.0) * std::exp(-0.5 * u * u);
        acc += w * f(m + s * u);
        norm += w;
    }
    return acc / norm;
}

} // namespace

TEST_CASE("shocked shares: the forward odds times e^z, forward + lost kept, stalled and backward unchanged") {
    std::vector<stage_branch> br = {
        {"Won", 0.5, dwell_distribution::gamma(3.0, 15.0), false},
        {"Proposal", 0.1, dwell_distribution::gamma(2.0, 10.0), false},
        {"Lost", 0.3, dwell_distribution::lognormal(40.0, 30.0), false},
        {"Lost", 0.1, dwell_distribution::exponential(300.0), true},
    };
    const stage_graph g = stage_graph::from_rows(
        {{"Proposal", dwell_distribution::exponential(10.0)}, {"Negotiation", dwell_distribution::exponential(1.0), br}},
        {{"Won", true}, {"Lost", false}}, {{"Proposal", {{"Negotiation", 0.6}, {"Lost", 0.4}}}});
    const auto dir = detail::branch_direction(g, 1);
    CHECK(dir == std::vector<int>{1, 0, -1, 0});
    const std::vector<double> pi = {0.5, 0.1, 0.3, 0.1};
    std::vector<double> out(4);
    detail::shocked_shares(pi, dir, 0.0, out);
    for (std::size_t k = 0; k < 4; ++k) CHECK(out[k] == doctest::Approx(pi[k]).epsilon(1e-15));
    detail::shocked_shares(pi, dir, 0.7, out);
    CHECK(out[0] / out[2] == doctest::Approx(0.5 / 0.3 * std::exp(0.7)).epsilon(1e-12));
    CHECK(out[0] + out[2] == doctest::Approx(0.8).epsilon(1e-15));
    CHECK(out[1] == 0.1);
    CHECK(out[3] == 0.1);
    const stage_graph gz = detail::cohort_shocked_graph(g, 1, -1.2);
    CHECK(gz.branches(1)[0].probability / gz.branches(1)[2].probability ==
          doctest::Approx(0.5 / 0.3 * std::exp(-1.2)).epsilon(1e-12));
    CHECK(gz.transition(0, 1) == g.transition(0, 1));
}

TEST_CASE("nowcast_shocks recovers the shocks of a generated log, the open period's from its first outcomes") {
    // Three 90-day periods with shocks −0.5, 0 and +0.8; the log ends 30 days into the third,
    // whose cohort has decided only in part (mostly early wins).
    const std::vector<double> z = {-0.5, 0.0, 0.8};
    const visit_log log = generated_log(z, 600, 210.0, 7);
    model m = one_stage_model();
    m.stage_overdispersion = {0.5};
    nowcast_options o;
    o.period = 90.0;
    const shock_nowcast s = nowcast_shocks(m, log, o);
    REQUIRE(s.cohorts.size() == 3);
    for (std::size_t q = 0; q < 3; ++q) {
        const cohort_shock& c = s.cohorts[q];
        CHECK(c.stage == "Negotiation");
        CHECK(c.period == static_cast<long long>(q));
        CHECK(c.sd > 0.0);
        CHECK(c.sd < 0.5);
        // the posterior mean is shrunk towards 0 by at most σ²/(σ² + sd²) of the truth: allow
        // four posterior standard deviations plus that shrinkage
        const double shrink = z[q] * c.sd * c.sd / (0.25);
        CHECK(std::abs(c.mean - z[q]) < 4.0 * c.sd + std::abs(shrink));
    }
    // the third period has seen fewer decisions, so its posterior is wider
    CHECK(s.cohorts[2].sd > s.cohorts[0].sd);
    CHECK(s.cohorts[2].decided < s.cohorts[2].visits);
    // a model without overdispersion has nothing to nowcast
    const model flat = one_stage_model();
    CHECK(nowcast_shocks(flat, log, o).cohorts.empty());
    check_throws<argument_error>([&] { (void)nowcast_shocks(m, log, {.period = -1.0}); }, {"period must be positive"});
    check_throws<argument_error>([&] { (void)nowcast_shocks(m, log, {.period = 90.0, .nodes = 1}); }, {"nodes"});
}

TEST_CASE("nowcast_within: the marginal plus E_post − E_prior of the direct one-stage probability") {
    const std::vector<double> z = {0.0, 0.9};
    const visit_log log = generated_log(z, 800, 150.0, 11);
    model m = one_stage_model();
    m.stage_overdispersion = {0.4};
    nowcast_options o;
    o.period = 90.0;
    const shock_nowcast s = nowcast_shocks(m, log, o);
    const cohort_shock* c = s.find(0, 1);
    REQUIRE(c != nullptr);
    CHECK(c->mean > 0.3); // the second period's early wins show its shock
    const double h = 90.0, as_of = 150.0;
    book b(m.graph);
    const std::vector<double> ages = {0.0, 5.0, 20.0, 45.0, 100.0};
    for (std::size_t i = 0; i < ages.size(); ++i) {
        std::string id = "d";
        id += std::to_string(i);
        b.add(id, 0, 1000.0, ages[i]);
    }
    const win_time_table tab = win_time_distribution(m.graph, h);
    const auto pf = period_forecast(m.graph, b, h, tab, analyse(m.graph), true);
    const std::vector<double> p = nowcast_within(m, b, as_of, h, s, tab, pf.deal_probability);
    REQUIRE(p.size() == ages.size());
    for (std::size_t i = 0; i < ages.size(); ++i) {
        const double a = ages[i];
        // the marginal forecast itself against the direct formula averaged over the prior
        const double marg = normal_expectation(0.0, 0.4, [&](double x) { return direct_within(a, h, x); });
        CHECK(pf.deal_probability[i] == doctest::Approx(direct_within(a, h, 0.0)).epsilon(2e-3));
        const double entered = as_of - a;
        if (entered >= 90.0) {
            // in the second period: shifted by the posterior
            const double post = normal_expectation(c->mean, c->sd, [&](double x) { return direct_within(a, h, x); });
            const double expect = pf.deal_probability[i] + post - marg;
            CHECK(p[i] == doctest::Approx(expect).epsilon(2e-3));
            CHECK(p[i] > pf.deal_probability[i]);
        } else {
            const cohort_shock* c0 = s.find(0, 0);
            REQUIRE(c0 != nullptr);
            const double post = normal_expectation(c0->mean, c0->sd, [&](double x) { return direct_within(a, h, x); });
            CHECK(p[i] == doctest::Approx(pf.deal_probability[i] + post - marg).epsilon(2e-3));
        }
    }
    check_throws<argument_error>([&] { (void)nowcast_within(m, b, as_of, h, s, tab, std::vector<double>(2)); },
                                 {"2 probabilities for 5 deals"});
}

} // namespace unit_nowcast
