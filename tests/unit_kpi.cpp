// Tests of kpi.hpp on a tiny hand-made history whose every KPI is computed by hand, and on
// the b2b6 reference history.
#include <pipecast/kpi.hpp>
#include <pipecast/model_io.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>

using namespace pipecast;

namespace {

// Six deals, log end 20. Exponential dwells (closed-form MLE) make every number hand-checkable:
//  Lead exits 2 (A), 3 (B), 1 (C), 4 (D), 2 (F) and E open at age 10:
//    P(Demo) = 4/5, P(Lost) = 1/5, mean = (2+3+1+4+2+10)/5 = 4.4
//  Demo exits 4 (A, Won), 8 (C, Won), 1 (D, Lost) and F open at age 6:
//    P(Won) = 2/3, P(Lost) = 1/3, mean = (4+8+1+6)/3 = 19/3
const char* tiny = "deal_id,stage,entered,exited,next_stage,amount\n"
                   "A,Lead,0,2,Demo,100\n"
                   "A,Demo,2,6,Won,100\n"
                   "B,Lead,1,4,Lost,50\n"
                   "C,Lead,2,3,Demo,300\n"
                   "C,Demo,3,11,Won,300\n"
                   "D,Lead,5,9,Demo,20\n"
                   "D,Demo,9,10,Lost,20\n"
                   "E,Lead,10,,,40\n"
                   "F,Lead,12,14,Demo,60\n"
                   "F,Demo,14,,,60\n";

visit_log tiny_log() {
    std::istringstream in(tiny);
    history_options o;
    o.as_of = "20";
    return read_visit_log(in, o);
}

history_fit tiny_fit(const visit_log& log) {
    fit_options o;
    o.dwell = dwell_choice::exponential;
    return fit_history(log, o);
}

} // namespace

TEST_CASE("kpi") {
    const visit_log log = tiny_log();
    const history_fit fit = tiny_fit(log);
    const double lead_mean = 4.4, demo_mean = 19.0 / 3.0;
    const double w_demo = 2.0 / 3.0, w_lead = 0.8 * w_demo;

    SUBCASE("tiny history: every KPI by hand") {
        const kpi_report k = compute_kpis(log, fit);
        CHECK(k.deals == 6);
        CHECK(k.won == 2);
        CHECK(k.lost == 2);
        CHECK(k.open == 2);
        REQUIRE(k.stages.size() == 2);
        const stage_kpi& lead = k.stages[0];
        const stage_kpi& demo = k.stages[1];
        CHECK(lead.stage == "Lead");
        CHECK(lead.visits == 6);
        CHECK(lead.exits == 5);
        CHECK(lead.censored == 1);
        CHECK(lead.next_stage == "Demo");
        CHECK(lead.conversion_to_next == doctest::Approx(0.8));
        CHECK(lead.loss_rate == doctest::Approx(0.2));
        CHECK(lead.win_probability == doctest::Approx(w_lead));
        CHECK(lead.mean_time == doctest::Approx(lead_mean));
        CHECK(lead.median_time == 2.0); // KM: S(1) = 5/6, S(2) = 5/6 · 3/5 = 1/2
        CHECK(lead.naive_mean_time == doctest::Approx(12.0 / 5.0));
        CHECK(demo.next_stage == "Won");
        CHECK(demo.conversion_to_next == doctest::Approx(w_demo));
        CHECK(demo.loss_rate == doctest::Approx(1.0 / 3.0));
        CHECK(demo.win_probability == doctest::Approx(w_demo));
        CHECK(demo.mean_time == doctest::Approx(demo_mean));
        CHECK(demo.median_time == 4.0); // KM: S(1) = 3/4, S(4) = 3/4 · 2/3 = 1/2

        // Win rates: censoring-aware (open deals count with their stage's win probability)
        CHECK(k.win_rate == doctest::Approx((2.0 + w_lead + w_demo) / 6.0));
        CHECK(k.win_rate == doctest::Approx(w_lead)); // the MLE's flow balance: equals P(win | entry)
        CHECK(k.win_rate_by_value == doctest::Approx((400.0 + 40.0 * w_lead + 60.0 * w_demo) / 570.0));
        CHECK(k.closed_win_rate == doctest::Approx(0.5));
        CHECK(k.closed_win_rate_by_value == doctest::Approx(400.0 / 470.0));
        CHECK(k.average_won_deal == doctest::Approx(200.0));

        // Cycle: A won after 6, C after 9
        CHECK(k.cycle.count == 2);
        CHECK(k.cycle.mean == doctest::Approx(7.5));
        CHECK(k.cycle.median == doctest::Approx(7.5));
        CHECK(k.cycle.p10 == doctest::Approx(6.3));
        CHECK(k.cycle.p90 == doctest::Approx(8.7));
        CHECK(k.cycle.model_mean == doctest::Approx(lead_mean + demo_mean)); // one visit each on a winning path

        // Velocity: 2 open × win rate × 200 ÷ 7.5
        CHECK(k.open_opportunities == 2.0);
        CHECK(k.open_value == 100.0);
        CHECK(k.velocity == doctest::Approx(2.0 * w_lead * 200.0 / 7.5));

        // Bottlenecks: one loss each (tie: the earlier stage); Demo takes most of the time to win
        CHECK(lead.loss_share == doctest::Approx(0.5));
        CHECK(demo.loss_share == doctest::Approx(0.5));
        CHECK(k.bottleneck.loss_stage == "Lead");
        CHECK(demo.time_share == doctest::Approx(demo_mean / (lead_mean + demo_mean)));
        CHECK(k.bottleneck.stall_stage == "Demo");
        CHECK(k.bottleneck.stall_ratio == doctest::Approx(2.0 * demo_mean / (lead_mean + demo_mean)));

        // Stale at the 0.9 quantile: none (E: 10 < 4.4 ln 10 = 10.13; F: 6 < 14.58)
        CHECK(k.stale.empty());
    }

    SUBCASE("stale deals at the median, and from an open book") {
        kpi_options o;
        o.stale_quantile = 0.5;
        const kpi_report k = compute_kpis(log, fit, o);
        REQUIRE(k.stale.size() == 2);
        CHECK(k.stale[0].id == "E"); // most overdue first
        CHECK(k.stale[0].stage == "Lead");
        CHECK(k.stale[0].age == doctest::Approx(10.0));
        CHECK(k.stale[0].threshold == doctest::Approx(lead_mean * std::log(2.0)));
        CHECK(k.stale[0].over == doctest::Approx(10.0 - lead_mean * std::log(2.0)));
        CHECK(k.stale[0].ratio == doctest::Approx(10.0 / (lead_mean * std::log(2.0))));
        CHECK(k.stale[0].amount == 40.0);
        CHECK(k.stale[1].id == "F");
        CHECK(k.stale[1].threshold == doctest::Approx(demo_mean * std::log(2.0)));

        const model m = to_model(fit);
        book b(m.graph);
        b.add("X", m.graph.index_of("Lead"), 10.0, 20.0);
        b.add("Y", m.graph.index_of("Demo"), 5.0, 1.0);
        const kpi_report kb = compute_kpis(log, fit, {}, &b);
        REQUIRE(kb.stale.size() == 1);
        CHECK(kb.stale[0].id == "X");
        CHECK(kb.stale[0].threshold == doctest::Approx(lead_mean * std::log(10.0)));
        CHECK(kb.open_opportunities == 2.0);
        CHECK(kb.open_value == 15.0);
        CHECK(kb.velocity == doctest::Approx(2.0 * w_lead * 200.0 / 7.5));
    }

    SUBCASE("bad options") {
        kpi_options o;
        o.stale_quantile = 1.0;
        CHECK_THROWS_AS((void)compute_kpis(log, fit, o), argument_error);
        o.stale_quantile = 0.0;
        CHECK_THROWS_AS((void)compute_kpis(log, fit, o), argument_error);
        // a fit that makes no model (no winning outcome) is a model_error
        std::istringstream in("deal_id,stage,entered,exited,next_stage\nA,Lead,0,1,Signed\nB,Lead,0,2,Dropped\n");
        const visit_log l2 = read_visit_log(in);
        CHECK_THROWS_AS((void)compute_kpis(l2, fit_history(l2)), model_error);
    }

    SUBCASE("b2b6: censoring-aware KPIs against the generating model") {
        history_options ho;
        ho.as_of = "730";
        const visit_log big = load_visit_log(PIPECAST_SHARED_DIR "/scenarios/b2b6_history.csv", ho);
        const history_fit f = fit_history(big);
        const kpi_report k = compute_kpis(big, f);
        CHECK(k.deals == 28930);
        CHECK(k.won + k.lost + k.open == k.deals);
        // The estimate against the true P(win | Prospecting) of b2b6.json: a proportion over
        // 28,930 deals, SE ≈ sqrt(p(1-p)/n) ≈ 0.0016.
        const model truth = load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
        const double p = win_probability(truth.graph, truth.graph.index_of("Prospecting"));
        const double se = std::sqrt(p * (1 - p) / 28930.0);
        CHECK(std::abs(k.win_rate - p) <= 4.0 * se);
        // The naive closed-deal rate is biased low (recent deals that will win are still open).
        CHECK(k.closed_win_rate < k.win_rate);
        CHECK(k.bottleneck.loss_stage == "Prospecting");
        CHECK(k.bottleneck.stall_stage == "Proposal");
        CHECK(k.cycle.median > 0.0);
        CHECK(std::isfinite(k.velocity));
        for (std::size_t i = 1; i < k.stale.size(); ++i) CHECK(k.stale[i - 1].ratio >= k.stale[i].ratio);
    }
}
