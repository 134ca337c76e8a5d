// Tests of kpi.hpp on a tiny hand-made history whose every KPI is computed by hand, and on
// the b2b6 reference history.
#include <pipecast/io/model_json.hpp>
#include <pipecast/kpi.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_kpi {

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

        // Velocity (sales_velocity, Little's law): 2 open × P(win | Lead) × average open deal 50
        // ÷ E[time to close | Lead] = 4.4 + 0.8 · 19/3 (every outcome, not only wins).
        const double close_lead = lead_mean + 0.8 * demo_mean;
        CHECK(k.open_opportunities == 2.0);
        CHECK(k.open_value == 100.0);
        CHECK(k.velocity == doctest::Approx(2.0 * w_lead * 50.0 / close_lead));
        CHECK(k.velocity_detail.cycle_length == doctest::Approx(close_lead));
        CHECK(k.velocity_detail.deal_size == doctest::Approx(50.0));
        CHECK(k.velocity_detail.win_rate == doctest::Approx(w_lead));
        CHECK(k.value_win_rate_note.empty());
        CHECK(k.lost_without_amount == 0);

        // Bottlenecks: one loss each (tie: the earlier stage); Demo takes most of the time to win
        CHECK(lead.loss_share == doctest::Approx(0.5));
        CHECK(demo.loss_share == doctest::Approx(0.5));
        CHECK(k.bottleneck.loss_stage == "Lead");
        CHECK(demo.time_share == doctest::Approx(demo_mean / (lead_mean + demo_mean)));
        CHECK(k.bottleneck.stall_stage == "Demo");
        CHECK(k.bottleneck.stall_ratio == doctest::Approx(2.0 * demo_mean / (lead_mean + demo_mean)));

        // Longest stays of deals that went on to win: Lead 2 (A), Demo 8 (C).
        CHECK(lead.longest_won_stay == 2.0);
        CHECK(demo.longest_won_stay == 8.0);
        CHECK(lead.stalled_share == 0.0);
        // Stale: E sits in Lead for 10 > 2; F in Demo for 6 <= 8 is not. A classic model has no
        // stalled share, so only the age rule applies.
        REQUIRE(k.stale.size() == 1);
        CHECK(k.stale[0].id == "E");
        CHECK(k.stale[0].threshold == 2.0);
        CHECK(k.stale[0].over == 8.0);
        CHECK(k.stale[0].ratio == 5.0);
        CHECK(k.stale[0].older_than_wins);
        CHECK_FALSE(k.stale[0].likely_stalled);
        CHECK(k.stale[0].stalled_probability == 0.0);
        CHECK(k.stale[0].win_probability == doctest::Approx(w_lead));
        CHECK(k.stale[0].amount == 40.0);
    }

    SUBCASE("stale deals from an open book; the stale quantile no longer decides") {
        kpi_options o;
        o.stale_quantile = 0.5; // deprecated: echoed, not used
        const kpi_report k = compute_kpis(log, fit, o);
        CHECK(k.stale_quantile == 0.5);
        REQUIRE(k.stale.size() == 1);
        CHECK(k.stale[0].id == "E");

        const model m = to_model(fit);
        book b(m.graph);
        b.add("X", m.graph.index_of("Lead"), 10.0, 20.0);
        b.add("Y", m.graph.index_of("Demo"), 5.0, 1.0);
        b.add("Z", m.graph.index_of("Demo"), 7.0, 9.0);
        const kpi_report kb = compute_kpis(log, fit, {}, &b);
        REQUIRE(kb.stale.size() == 2);
        CHECK(kb.stale[0].id == "X"); // 20 / 2 = 10 × the longest won stay
        CHECK(kb.stale[0].ratio == 10.0);
        CHECK(kb.stale[1].id == "Z"); // 9 / 8
        CHECK(kb.stale[1].ratio == doctest::Approx(9.0 / 8.0));
        CHECK(kb.open_opportunities == 3.0);
        CHECK(kb.open_value == 22.0);
        CHECK(kb.velocity == doctest::Approx(3.0 * w_lead * (22.0 / 3.0) / (lead_mean + 0.8 * demo_mean)));
    }

    SUBCASE("one sales velocity: compute_kpis and ideal_funnel agree on the same inputs") {
        const model m = to_model(fit);
        book b(m.graph);
        b.add("X", m.graph.index_of("Lead"), 120.0, 3.0);
        b.add("Y", m.graph.index_of("Demo"), 80.0, 1.0);
        b.add("Z", m.graph.index_of("Demo"), 40.0, 2.0);
        const kpi_report k = compute_kpis(log, fit, {}, &b);
        funnel_target t;
        t.quota = 1000.0;
        t.period = 30.0;
        t.deal_size = 200.0;
        t.entry_stage = m.graph.index_of(fit.entry_stage);
        const ideal_funnel_result f = ideal_funnel(m.graph, t, b);
        REQUIRE(f.velocity.actual);
        CHECK(k.velocity == doctest::Approx(f.velocity.actual->velocity).epsilon(1e-12));
        CHECK(k.velocity_detail.cycle_length == doctest::Approx(f.velocity.actual->cycle_length).epsilon(1e-12));
        CHECK(k.velocity_detail.win_rate == doctest::Approx(f.velocity.actual->win_rate).epsilon(1e-12));
        CHECK(k.velocity_detail.deal_size == doctest::Approx(f.velocity.actual->deal_size).epsilon(1e-12));
        // and both are the documented formula
        CHECK(k.velocity == doctest::Approx(3.0 * w_lead * 80.0 / (lead_mean + 0.8 * demo_mean)));
        CHECK(sales_velocity(200.0, 0.25, 10'000.0, 50.0).velocity == doctest::Approx(10'000.0));
        CHECK_THROWS_AS((void)sales_velocity(1.0, 0.5, 1.0, 0.0), argument_error);
        CHECK_THROWS_AS((void)sales_velocity(-1.0, 0.5, 1.0, 1.0), argument_error);
        CHECK_THROWS_AS((void)sales_velocity(1.0, 1.5, 1.0, 1.0), argument_error);
    }

    SUBCASE("value win rates need the lost deals' amounts") {
        // B (lost) with amount 0 and D (lost) with none: a rate by value would be 100% of what
        // is known; it is NaN with a note instead. The count rates are unchanged.
        std::string text = tiny;
        text.replace(text.find("B,Lead,1,4,Lost,50"), 18, "B,Lead,1,4,Lost,0");
        text.replace(text.find("D,Lead,5,9,Demo,20"), 18, "D,Lead,5,9,Demo,");
        text.replace(text.find("D,Demo,9,10,Lost,20"), 19, "D,Demo,9,10,Lost,");
        std::istringstream in(text);
        history_options ho;
        ho.as_of = "20";
        const visit_log l2 = read_visit_log(in, ho);
        const kpi_report k = compute_kpis(l2, tiny_fit(l2));
        CHECK(k.lost == 2);
        CHECK(k.lost_without_amount == 2);
        CHECK(std::isnan(k.win_rate_by_value));
        CHECK(std::isnan(k.closed_win_rate_by_value));
        CHECK(k.value_win_rate_note.find("2 of 2 lost deals have a blank or zero amount") != std::string::npos);
        CHECK(k.closed_win_rate == doctest::Approx(0.5));
        // Tolerating every lost deal without an amount computes them again.
        kpi_options o;
        o.max_lost_without_amount = 1.0;
        const kpi_report k2 = compute_kpis(l2, tiny_fit(l2), o);
        CHECK(k2.closed_win_rate_by_value == doctest::Approx(1.0));
        CHECK(k2.value_win_rate_note.empty());
    }

    SUBCASE("stale deals of a branched model: P(stalled | stage, age) in closed form") {
        // A Negotiation stage like crm4's (its back edge to Proposal folded into the losses):
        // Won 0.665 after gamma(3, mean 15), Lost 0.285 after lognormal(40, 30), stalled 0.05
        // closed after exponential(300). P(stalled | a) = 0.05 e^{−a/300} / Σ π_k S_k(a): 0.45 at
        // 60 days, 0.68 at 90, so only the older one is flagged at the default 0.5.
        std::vector<stage_branch> br{{"Won", 0.665, dwell_distribution::gamma(3.0, 15.0)},
                                     {"Lost", 0.285, dwell_distribution::lognormal(40.0, 30.0)},
                                     {"Lost", 0.05, dwell_distribution::exponential(300.0), true}};
        const stage_graph g = stage_graph::from_rows({{"Negotiation", dwell_distribution::exponential(1.0), br}},
                                                     {{"Won", true}, {"Lost", false}}, {});
        std::vector<stale_deal> open(3);
        open[0].id = "young", open[0].stage = "Negotiation", open[0].age = 10.0;
        open[1].id = "sixty", open[1].stage = "Negotiation", open[1].age = 60.0;
        open[2].id = "ninety", open[2].stage = "Negotiation", open[2].age = 90.0;
        const std::vector<double> longest{std::numeric_limits<double>::quiet_NaN()};
        const auto st = stale_deals(g, open, longest);
        REQUIRE(st.size() == 1);
        CHECK(st[0].id == "ninety");
        CHECK(st[0].likely_stalled);
        CHECK_FALSE(st[0].older_than_wins);
        const double a = 90.0, t = a / 5.0;
        const double s_gamma = std::exp(-t) * (1.0 + t + 0.5 * t * t);
        const double s2 = std::log1p(0.5625), mu = std::log(40.0) - 0.5 * s2;
        const double s_logn = 0.5 * std::erfc((std::log(a) - mu) / std::sqrt(2.0 * s2));
        const double stall = 0.05 * std::exp(-a / 300.0);
        CHECK(st[0].stalled_probability == doctest::Approx(stall / (stall + 0.665 * s_gamma + 0.285 * s_logn)).epsilon(1e-9));
        CHECK(st[0].win_probability < 0.001);
        CHECK(st[0].win_probability == doctest::Approx(win_probability_at_age(g, 0, 90.0)));
        // A lower threshold flags the 60-day deal too, likeliest stalled first; the age rule
        // flags the 10-day deal when won deals never stayed longer than 8.
        const auto st2 = stale_deals(g, open, std::vector<double>{8.0}, 0.4);
        REQUIRE(st2.size() == 3);
        CHECK(st2[0].id == "ninety");
        CHECK(st2[1].id == "sixty");
        CHECK(st2[2].id == "young");
        CHECK(st2[2].older_than_wins);
        CHECK_FALSE(st2[2].likely_stalled);
        CHECK_THROWS_AS((void)stale_deals(g, open, longest, 0.0), argument_error);
        CHECK_THROWS_AS((void)stale_deals(g, open, std::vector<double>{}), argument_error);
    }

    SUBCASE("bad options") {
        kpi_options o;
        o.stale_quantile = 1.0;
        CHECK_THROWS_AS((void)compute_kpis(log, fit, o), argument_error);
        o.stale_quantile = 0.0;
        CHECK_THROWS_AS((void)compute_kpis(log, fit, o), argument_error);
        o = {};
        o.stalled_threshold = 1.5;
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
        for (const auto& d : k.stale) CHECK(d.older_than_wins); // classic: the age rule only
        // b2b6's lost deals carry amounts: the value rates are computed.
        CHECK(k.value_win_rate_note.empty());
        CHECK(std::isfinite(k.win_rate_by_value));
        // Velocity: the open deals of the log, the model's rate and time to close.
        CHECK(k.velocity == doctest::Approx(k.open_opportunities * k.velocity_detail.win_rate *
                                            k.velocity_detail.deal_size / k.velocity_detail.cycle_length));
    }
}

} // namespace unit_kpi
