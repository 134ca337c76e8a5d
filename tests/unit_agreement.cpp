// Tests that the forecast, the funnel, the simulator and the analytics agree where they
// compute the same quantity, now that each rule lives in one function (docs/design.md,
// "One rule, one place"): the override rule, the win-conditioned jump chain, "can this stage
// still win", the type-7 quantile, the table-lengthening rule and P(win within h | stage, age).
#include <pipecast/detail/quantile.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/funnel/funnel.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/first_passage.hpp>
#include <pipecast/model/stage_graph.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_agreement {

using namespace pipecast;

namespace {

/// Lead -> Demo -> Proposal -> Won with losses, a loop back through Nurture and a stage
/// (Stuck) from which only Lost can be reached; non-exponential dwells (renewal method).
stage_graph looped() {
    std::vector<open_stage> st{{"Lead", dwell_distribution::gamma(2.0, 10.0)},
                               {"Demo", dwell_distribution::lognormal(15.0, 10.0)},
                               {"Proposal", dwell_distribution::gamma(3.0, 20.0)},
                               {"Nurture", dwell_distribution::exponential(30.0)},
                               {"Stuck", dwell_distribution::gamma(2.0, 40.0)}};
    const transition_rows rows{{"Lead", {{"Demo", 0.5}, {"Nurture", 0.2}, {"Lost", 0.3}}},
                               {"Demo", {{"Proposal", 0.6}, {"Lead", 0.1}, {"Lost", 0.3}}},
                               {"Proposal", {{"Won", 0.6}, {"Demo", 0.1}, {"Lost", 0.2}, {"Stuck", 0.1}}},
                               {"Nurture", {{"Lead", 0.4}, {"Lost", 0.6}}},
                               {"Stuck", {{"Lost", 1.0}}}};
    return stage_graph::from_rows(std::move(st), {{"Won", true}, {"Lost", false}}, rows);
}

/// A branched two-stage model: Qualify (plain) -> Negotiate, whose deals leave by a fast Won
/// branch, a slower Lost branch or a stalled Lost branch (age-dependent P(win | stage, age)).
stage_graph branched() {
    std::vector<open_stage> st{
        {"Qualify", dwell_distribution::gamma(2.0, 12.0)},
        {"Negotiate",
         dwell_distribution::exponential(1.0),
         {{"Won", 0.5, dwell_distribution::gamma(3.0, 15.0), false},
          {"Lost", 0.3, dwell_distribution::lognormal(25.0, 15.0), false},
          {"Lost", 0.2, dwell_distribution::gamma(2.0, 60.0), true}}}};
    const transition_rows rows{{"Qualify", {{"Negotiate", 0.7}, {"Lost", 0.3}}}};
    return stage_graph::from_rows(std::move(st), {{"Won", true}, {"Lost", false}}, rows);
}

/// A book on g: `per_stage` deals in every open stage at ages spread over [0, 60), amounts
/// 1,000-10,000; every third deal has an override (0.05 to 0.95, and 1 once).
book spread_book(const stage_graph& g, std::size_t per_stage) {
    book b(g);
    std::size_t k = 0;
    for (std::size_t s = 0; s < g.open_count(); ++s)
        for (std::size_t i = 0; i < per_stage; ++i, ++k) {
            const double age = 60.0 * static_cast<double>((i * 7) % per_stage) / static_cast<double>(per_stage);
            const double amount = 1000.0 + 9000.0 * static_cast<double>((k * 13) % 17) / 16.0;
            std::optional<double> o;
            if (k % 3 == 0) o = k == 3 ? 1.0 : 0.05 + 0.9 * static_cast<double>((k * 5) % 11) / 10.0;
            std::string id = "d";
            id += std::to_string(k);
            b.add(id, s, amount, age, o);
        }
    return b;
}

/// Forecast, funnel and simulator on one book and horizon: the expected won value within h.
void check_three_agree(const stage_graph& g, const book& b, double h) {
    period_forecast_options fo;
    fo.per_deal = true;
    const period_forecast_result fc = period_forecast(g, b, h, fo);
    REQUIRE(fc.deal_probability.size() == b.size());

    funnel_target t;
    t.quota = 1e7;
    t.period = h;
    t.deal_size = 5000.0;
    const ideal_funnel_result f = ideal_funnel(g, t, b);
    REQUIRE(f.gap);

    simulation_options so;
    so.paths = 20000;
    so.horizon = h;
    so.seed = 20261206;
    const simulation_result sim = simulate(g, b, so);
    REQUIRE(sim.paths == so.paths);

    double total = 0.0;
    for (double a : b.amounts()) total += a;
    INFO("forecast ", fc.expected, " (interpolation bound ", fc.error_estimate, "), funnel ",
         f.gap->in_period_forecast, ", simulated ", sim.won_value.mean, " ± ", sim.won_value.standard_error);
    // The funnel evaluates P(win within h | stage, age) per deal exactly on its table, the
    // forecast on a lattice of ages: they differ by at most the lattice's interpolation bound
    // plus the two tables' own discretisation (the funnel's table has another step; 1e-5 of
    // the book's value, about 3, against differences of 0.03 and 0.2 seen).
    CHECK(std::abs(f.gap->in_period_forecast - fc.expected) <= fc.error_estimate + 1e-5 * total);
    // The simulator draws the same quantity path by path (standard errors 114 and 142 here).
    CHECK(std::abs(sim.won_value.mean - fc.expected) <= 4.0 * sim.won_value.standard_error + 1e-5 * total);
    // Deal by deal (the override rule included): within 4 binomial standard errors.
    const auto ov = b.probability_overrides();
    std::size_t overridden = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double p = fc.deal_probability[i], q = sim.deal_win_probability[i];
        const double se = std::sqrt(std::max(p * (1.0 - p), 1e-4) / static_cast<double>(so.paths));
        INFO("deal ", i, " stage ", b.stages()[i], " age ", b.ages()[i], " override ", ov[i]);
        CHECK(std::abs(p - q) <= 4.0 * se + 1e-4);
        if (!std::isnan(ov[i])) {
            ++overridden;
            CHECK(p <= ov[i] + 1e-12); // the rule caps at the override
        }
    }
    CHECK(overridden > 0);
}

} // namespace

TEST_CASE("forecast, funnel and simulator agree on the value won within h (overrides included)") {
    SUBCASE("a looped graph with a stage that cannot win") {
        const auto g = looped();
        check_three_agree(g, spread_book(g, 12), 45.0);
    }
    SUBCASE("a branched graph (P(win | stage, age) depends on the age)") {
        const auto g = branched();
        check_three_agree(g, spread_book(g, 30), 40.0);
    }
}

TEST_CASE("an override on a stage that cannot win: 0 in the forecast, the funnel and the simulator") {
    const auto g = looped();
    const std::size_t stuck = g.index_of("Stuck");
    book b(g);
    b.add("stuck", stuck, 5000.0, 3.0, 0.8);
    const auto fc = period_forecast(g, b, 100.0, period_forecast_options{.per_deal = true});
    CHECK(fc.deal_probability[0] == 0.0);
    funnel_target t;
    t.quota = 1e6;
    t.period = 100.0;
    t.deal_size = 5000.0;
    CHECK(ideal_funnel(g, t, b).gap->in_period_forecast == 0.0);
    simulation_options so;
    so.paths = 2000;
    so.horizon = 100.0;
    CHECK(simulate(g, b, so).deal_win_probability[0] == 0.0);
}

TEST_CASE("the win-conditioned jump chain against the unconditioned analytics") {
    const auto g = looped();
    const absorption_analysis a = analyse(g);
    const std::size_t m = g.open_count(), n = g.size();
    Eigen::MatrixXd qt = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(n));
    detail::for_each_win_conditioned_edge(g, detail::win_span(a), [&](std::size_t i, std::size_t j, double v) {
        qt(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = v;
    });
    const Eigen::MatrixXd q = g.transient_block();
    const Eigen::MatrixXd nv = (Eigen::MatrixXd::Identity(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m)) - q).inverse();
    for (std::size_t i = 0; i < m; ++i) {
        const auto ii = static_cast<Eigen::Index>(i);
        const double wi = a.win_probability(ii);
        INFO("stage ", g.name(i));
        if (!(wi > 0.0)) {
            CHECK(qt.row(ii).sum() == 0.0); // a stage that cannot win has no conditioned row
            continue;
        }
        // A proper chain that only ends in wins: rows sum to 1 and never enter a loss.
        CHECK(qt.row(ii).sum() == doctest::Approx(1.0).epsilon(1e-12));
        for (std::size_t j = m; j < n; ++j)
            if (!g.is_win(j)) CHECK(qt(ii, static_cast<Eigen::Index>(j)) == 0.0);
        // Mean time to a win, independently: E[T 1{win} | i] = Σ_j N_ij μ_j w_j (time spent
        // in j counts for a win with probability w_j, the dwell being independent of what
        // follows), divided by w_i.
        double num = 0.0;
        for (std::size_t j = 0; j < m; ++j) {
            const auto jj = static_cast<Eigen::Index>(j);
            num += nv(ii, jj) * g.dwell(j).mean() * a.win_probability(jj);
        }
        CHECK(a.mean_time_to_win(ii) == doctest::Approx(num / wi).epsilon(1e-10));
    }
    // P(win) of the conditioned chain is 1 from every stage that can win.
    const Eigen::MatrixXd qo = qt.leftCols(static_cast<Eigen::Index>(m));
    const Eigen::MatrixXd ro = qt.rightCols(static_cast<Eigen::Index>(n - m));
    const Eigen::MatrixXd bo =
        (Eigen::MatrixXd::Identity(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m)) - qo).inverse() * ro;
    for (std::size_t i = 0; i < m; ++i)
        if (a.win_probability(static_cast<Eigen::Index>(i)) > 0.0)
            CHECK(bo.row(static_cast<Eigen::Index>(i)).sum() == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("can_reach: the stages that can win are those with P(win) > 0") {
    const auto g = looped();
    const absorption_analysis a = analyse(g);
    const auto win = g.can_reach([&g](std::size_t k) { return g.is_win(k); });
    const auto any = g.can_reach([](std::size_t) { return true; });
    REQUIRE(win.size() == g.open_count());
    for (std::size_t i = 0; i < g.open_count(); ++i) {
        INFO("stage ", g.name(i));
        CHECK(static_cast<bool>(win[i]) == (a.win_probability(static_cast<Eigen::Index>(i)) > 0.0));
        CHECK(any[i] == 1);
    }
    CHECK(win[g.index_of("Stuck")] == 0);
    // A closed loop of open stages is refused by the constructor with the same search.
    std::vector<open_stage> st{{"A", dwell_distribution::exponential(1.0)}, {"B", dwell_distribution::exponential(1.0)},
                               {"C", dwell_distribution::exponential(1.0)}};
    const transition_rows loop{{"A", {{"B", 0.5}, {"Won", 0.5}}}, {"B", {{"C", 1.0}}}, {"C", {{"B", 1.0}}}};
    CHECK_THROWS_AS(stage_graph::from_rows(std::move(st), {{"Won", true}, {"Lost", false}}, loop), model_error);
}

TEST_CASE("the type-7 sample quantile") {
    // R: quantile(c(1, 2, 4, 8), c(0, 0.3, 0.5, 1)) = 1, 1.9, 3, 8 (type 7, the default).
    const std::vector<double> v{1.0, 2.0, 4.0, 8.0};
    CHECK(detail::sorted_quantile(v, 0.0) == 1.0);
    CHECK(detail::sorted_quantile(v, 0.3) == doctest::Approx(1.9).epsilon(1e-15));
    CHECK(detail::sorted_quantile(v, 0.5) == 3.0);
    CHECK(detail::sorted_quantile(v, 1.0) == 8.0);
    CHECK(std::isnan(detail::sorted_quantile(std::vector<double>{}, 0.5)));
    // The simulator's summaries use it: a book of one deal that is won for sure at once has
    // every path's won value equal to its amount.
    const auto g = linear_funnel({"Close"}, {1.0}, std::vector<double>{1.0});
    book b(g);
    b.add("x", 0, 700.0, 0.0);
    simulation_options so;
    so.paths = 64;
    so.quantiles = {0.1, 0.5, 0.9};
    const auto r = simulate(g, b, so);
    for (double x : r.won_value.quantiles) CHECK(x == 700.0);
}

TEST_CASE("the table-lengthening rule: the funnel's and first_passage's time-to-win quantiles are one") {
    const auto g = looped();
    funnel_target t;
    t.quota = 1e6;
    t.period = 30.0;
    t.deal_size = 1e4;
    t.quantile = 0.8;
    const auto f = ideal_funnel(g, t);
    for (std::size_t j = 0; j < g.open_count(); ++j) {
        INFO("stage ", g.name(j));
        const double q = win_time_quantile(g, j, 0.8);
        if (std::isnan(q)) {
            CHECK_FALSE(f.stages[j].time_to_win_quantile);
        } else {
            REQUIRE(f.stages[j].time_to_win_quantile);
            CHECK(*f.stages[j].time_to_win_quantile == doctest::Approx(q).epsilon(1e-12));
        }
    }
    // An exponential stage straight to Won: the median time to win is μ ln 2 (known truth).
    const auto one = linear_funnel({"Only"}, {1.0}, std::vector<double>{40.0});
    CHECK(win_time_quantile(one, 0, 0.5) == doctest::Approx(40.0 * std::log(2.0)).epsilon(2e-3));
}

} // namespace unit_agreement
