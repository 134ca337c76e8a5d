// Unit tests of sweep.hpp: the scenario file, each lever against an independent computation
// (a hand-changed model, the scaled distribution, linearity), the split into pieces
// (bit-identical at any split and thread count) and the errors.
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/simulation/sweep.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_sweep {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

model b2b6() { return load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json"); }
book b2b6_book(const stage_graph& g) { return load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", g); }

std::vector<scenario> parse(const std::string& text) { return scenarios_from_json(nlohmann::json::parse(text), "s.json"); }

/// The forward share f with its odds times k, written out from the definition.
double odds_up(double f, double k) { return k * f / (1.0 - f + k * f); }

void check_same(const outcome_summary& a, const outcome_summary& b) {
    CHECK(a.mean == b.mean);
    CHECK(a.sd == b.sd);
    CHECK(a.standard_error == b.standard_error);
    CHECK(a.quantiles == b.quantiles);
    CHECK(a.p_quota == b.p_quota);
    CHECK(a.min == b.min);
    CHECK(a.max == b.max);
}

void check_same(const sweep_result& a, const sweep_result& b) {
    REQUIRE(a.scenarios.size() == b.scenarios.size());
    for (std::size_t i = 0; i < a.scenarios.size(); ++i) {
        INFO("scenario " << a.scenarios[i].name);
        check_same(a.scenarios[i].won_value, b.scenarios[i].won_value);
        check_same(a.scenarios[i].won_count, b.scenarios[i].won_count);
        check_same(a.scenarios[i].difference, b.scenarios[i].difference);
        CHECK(a.scenarios[i].correlation == b.scenarios[i].correlation);
    }
}

} // namespace

TEST_CASE("scenario file") {
    const auto s = parse(R"({"scenarios": [{"name": "base"}, {"name": "faster", "dwell_scale": 0.8},
        {"name": "late", "win_odds_scale": 1.2, "stages": {"Negotiation": {"win_odds_scale": 1.5, "dwell_scale": 2}}},
        {"name": "more", "arrival_scale": 1.5, "deal_size_scale": 1.1, "description": "hiring"}]})");
    REQUIRE(s.size() == 4);
    CHECK(s[0].name == "base");
    CHECK(s[0].dwell_scale == 1.0);
    CHECK(s[1].dwell_scale == 0.8);
    CHECK(s[2].win_odds_scale == 1.2);
    CHECK(s[2].stages.at("Negotiation").win_odds_scale == 1.5);
    CHECK(s[2].stages.at("Negotiation").dwell_scale == 2.0);
    CHECK(s[3].arrival_scale == 1.5);
    CHECK(s[3].deal_size_scale == 1.1);

    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"name": "x", "dwel_scale": 0.8}]})"); },
                                 {"s.json", "scenario 'x'", "unknown key 'dwel_scale'"});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"name": "x", "dwell_scale": -1}]})"); },
                                 {"scenario 'x'", "dwell_scale", "-1"});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"name": "x", "win_odds_scale": 0}]})"); },
                                 {"scenario 'x'", "win_odds_scale", "positive"});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"name": "x", "arrival_scale": "2"}]})"); },
                                 {"scenario 'x'", "arrival_scale must be a number", "\"2\""});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"name": "x", "stages": {"A": {"speed": 2}}}]})"); },
                                 {"scenario 'x'", "stages: 'A'", "unknown key 'speed'"});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"name": "x"}, {"name": "x"}]})"); },
                                 {"scenario 'x'", "used twice"});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": [{"dwell_scale": 2}]})"); },
                                 {"scenario 1", "missing \"name\""});
    check_throws<argument_error>([] { (void)parse(R"({"scenarios": []})"); }, {"empty"});
    check_throws<argument_error>([] { (void)parse(R"({"scenario": []})"); }, {"unknown key 'scenario'"});
    check_throws<argument_error>([] { (void)parse(R"([1, 2])"); }, {"expected a JSON object"});
    check_throws<parse_error>(
        [] { (void)scenarios_from_json(detail::parse_json("{\"scenarios\": [\n {\"name\": \"a\",}]}", "bad.json"), "bad.json"); },
        {"bad.json:2"});
}

TEST_CASE("levers") {
    const model m = b2b6();
    const stage_graph& g = m.graph;

    SUBCASE("scale_dwell is the distribution of cT for every family") {
        const std::vector<dwell_distribution> ds = {
            dwell_distribution::exponential(7), dwell_distribution::gamma(2, 14), dwell_distribution::lognormal(10, 6),
            dwell_distribution::weibull(1.5, 18), dwell_distribution::fixed(5),
            dwell_distribution::empirical({1, 4, 9}, {0.2, 0.5, 0.3})};
        for (const auto& d : ds) {
            INFO(to_string(d.family()));
            const double c = 0.7;
            const dwell_distribution e = scale_dwell(d, c);
            CHECK(e.family() == d.family());
            CHECK(e.mean() == doctest::Approx(c * d.mean()).epsilon(1e-12));
            CHECK(e.sd() == doctest::Approx(c * d.sd()).epsilon(1e-12));
            for (double t : {0.5, 3.0, 8.0, 20.0}) // P(cT <= ct) = P(T <= t)
                CHECK(cdf(e, c * t) == doctest::Approx(cdf(d, t)).epsilon(1e-12));
            CHECK(scale_dwell(d, 1.0) == d);
        }
        check_throws<argument_error>([] { (void)scale_dwell(dwell_distribution::exponential(1), 0.0); }, {"scale"});
    }

    SUBCASE("dwell_scale: every stage's dwell times x c, a stage override replaces it there") {
        const auto s = parse(R"({"scenarios": [{"name": "f", "dwell_scale": 0.8, "stages": {"Demo": {"dwell_scale": 1.5}}}]})");
        const model v = apply_scenario(m, s[0]);
        for (std::size_t i = 0; i < g.open_count(); ++i) {
            INFO(g.name(i));
            const double c = g.name(i) == "Demo" ? 1.5 : 0.8;
            CHECK(v.graph.dwell(i).mean() == doctest::Approx(c * g.dwell(i).mean()).epsilon(1e-12));
            CHECK(v.graph.dwell(i).family() == g.dwell(i).family());
        }
        CHECK(v.graph.transitions() == g.transitions());
        // Only times change: the mean time to close from entry scales with the mixture of c's;
        // with a single c it is exactly c times the base (an independent check through analyse()).
        const model w = apply_scenario(m, parse(R"({"scenarios": [{"name": "f", "dwell_scale": 0.5}]})")[0]);
        const Eigen::VectorXd t0 = analyse(g).mean_time_to_close, t1 = analyse(w.graph).mean_time_to_close;
        for (Eigen::Index i = 0; i < t0.size(); ++i) CHECK(t1(i) == doctest::Approx(0.5 * t0(i)).epsilon(1e-10));
    }

    SUBCASE("win_odds_scale equals a hand-changed model (transitions and P(win))") {
        const double k = 1.2;
        // b2b6 written out with the forward share of each row (to a later stage or Won) at odds x k.
        auto row = [&](double fwd, std::vector<std::pair<std::string, double>> forward,
                       std::vector<std::pair<std::string, double>> other) {
            std::map<std::string, double> r;
            const double nf = odds_up(fwd, k);
            for (const auto& [to, p] : forward) r[to] = p * nf / fwd;
            for (const auto& [to, p] : other) r[to] = p * (1.0 - nf) / (1.0 - fwd);
            return r;
        };
        transition_rows rows;
        rows["Prospecting"] = row(0.40, {{"Qualification", 0.40}}, {{"Lost", 0.60}});
        rows["Qualification"] = row(0.60, {{"Demo", 0.55}, {"Proposal", 0.05}}, {{"Lost", 0.40}});
        rows["Demo"] = row(0.60, {{"Proposal", 0.60}}, {{"Qualification", 0.05}, {"Lost", 0.35}});
        rows["Proposal"] = row(0.65, {{"Negotiation", 0.65}}, {{"Demo", 0.05}, {"Lost", 0.30}});
        rows["Negotiation"] = row(0.75, {{"Won", 0.75}}, {{"Proposal", 0.05}, {"Lost", 0.20}});
        const stage_graph hand = stage_graph::from_rows(std::vector<open_stage>(g.stages().begin(), g.stages().end()),
                                                        std::vector<outcome_stage>(g.outcomes().begin(), g.outcomes().end()),
                                                        rows);
        const model v = apply_scenario(m, parse(R"({"scenarios": [{"name": "better", "win_odds_scale": 1.2}]})")[0]);
        CHECK((v.graph.transitions() - hand.transitions()).cwiseAbs().maxCoeff() < 1e-14);
        for (std::size_t i = 0; i < g.open_count(); ++i) {
            CHECK(win_probability(v.graph, i) == doctest::Approx(win_probability(hand, i)).epsilon(1e-12));
            CHECK(win_probability(v.graph, i) > win_probability(g, i));
        }

        // The sweep's mean won value of that scenario against the period forecast of the
        // hand-changed model (exact up to its small discretisation error).
        const book bk = b2b6_book(g);
        sweep_options o;
        o.horizon = 90;
        o.paths = 400;
        o.seed = 5;
        o.model_arrivals = false;
        const sweep sw(m, bk, parse(R"({"scenarios": [{"name": "base"}, {"name": "better", "win_odds_scale": 1.2}]})"), o);
        const sweep_result r = sw.run();
        const period_forecast_result pf = period_forecast(hand, b2b6_book(hand), 90.0);
        const double se = r.scenarios[1].won_value.standard_error;
        CHECK(std::abs(r.scenarios[1].won_value.mean - pf.expected) < 4.0 * se + pf.error_estimate + 1e-4 * pf.expected);
        CHECK(r.scenarios[1].difference.mean > 0.0);
        // Common random numbers: the paired difference is far more precise than either run.
        CHECK(r.scenarios[1].difference.standard_error < 0.5 * se);
    }

    SUBCASE("win_odds_scale on a branched stage scales its forward branches' odds") {
        const stage_graph cg = pipecast_test::crm4_spec_graph();
        const model cm{cg, {}, {}, "crm4", "", "day", "", 0.0, {}};
        const model v = apply_scenario(cm, parse(R"({"scenarios": [{"name": "b", "win_odds_scale": 2}]})")[0]);
        for (std::size_t i = 0; i < cg.open_count(); ++i) {
            if (!cg.branched(i)) continue;
            double f = 0.0, nf = 0.0;
            const auto b0 = cg.branches(i), b1 = v.graph.branches(i);
            REQUIRE(b0.size() == b1.size());
            for (std::size_t k = 0; k < b0.size(); ++k) {
                const std::size_t j = cg.index_of(b0[k].to);
                const bool fwd = cg.is_outcome(j) ? cg.is_win(j) : j > i;
                if (fwd) {
                    f += b0[k].probability;
                    nf += b1[k].probability;
                }
                CHECK(b1[k].dwell == b0[k].dwell);
            }
            INFO(cg.name(i) << " forward " << f);
            CHECK(nf == doctest::Approx(odds_up(f, 2.0)).epsilon(1e-12));
        }
    }

    SUBCASE("arrival_scale: rates x a; 0 is the run without arrivals; the effect is linear in a") {
        model ms = m;
        ms.arrivals->period = 30;
        ms.arrivals->period_rates = {30, 50};
        const model v = apply_scenario(ms, parse(R"({"scenarios": [{"name": "a", "arrival_scale": 1.5}]})")[0]);
        CHECK(v.arrivals->rate == 1.5 * ms.arrivals->rate);
        CHECK(v.arrivals->period_rates == std::vector<double>{45, 75});

        const book bk = b2b6_book(m.graph);
        sweep_options o;
        o.horizon = 60;
        o.paths = 300;
        o.seed = 11;
        const sweep sw(m, bk, parse(R"({"scenarios": [{"name": "base"}, {"name": "none", "arrival_scale": 0},
                                                      {"name": "double", "arrival_scale": 2}]})"), o);
        const sweep_result r = sw.run();
        o.model_arrivals = false;
        const sweep_result plain = sweep(m, bk, parse(R"({"scenarios": [{"name": "base"}]})"), o).run();
        check_same(r.scenarios[1].won_value, plain.scenarios[0].won_value);
        // E[won from arrivals] is proportional to the rate: (double − none) = 2 (base − none).
        const double one = r.scenarios[0].won_value.mean - r.scenarios[1].won_value.mean;
        const double two = r.scenarios[2].won_value.mean - r.scenarios[1].won_value.mean;
        const double se = std::hypot(r.scenarios[2].difference.standard_error, 2.0 * r.scenarios[1].difference.standard_error);
        CHECK(one > 0.0);
        CHECK(std::abs(two - 2.0 * one) < 4.0 * se);

        const model none = [&] { model x = m; x.arrivals.reset(); return x; }();
        check_throws<argument_error>(
            [&] { (void)apply_scenario(none, parse(R"({"scenarios": [{"name": "hire", "arrival_scale": 2}]})")[0]); },
            {"scenario 'hire'", "arrival_scale", "no"});
    }

    SUBCASE("deal_size_scale: every path's won value x c") {
        const book bk = b2b6_book(m.graph);
        sweep_options o;
        o.horizon = 45;
        o.paths = 200;
        o.seed = 3;
        o.quotas = {3e7};
        const sweep sw(m, bk, parse(R"({"scenarios": [{"name": "base"}, {"name": "big", "deal_size_scale": 1.25}]})"), o);
        const sweep_result r = sw.run();
        const scenario_result &b = r.scenarios[0], &s = r.scenarios[1];
        CHECK(s.won_value.mean == doctest::Approx(1.25 * b.won_value.mean).epsilon(1e-9));
        for (std::size_t q = 0; q < 3; ++q)
            CHECK(s.won_value.quantiles[q] == doctest::Approx(1.25 * b.won_value.quantiles[q]).epsilon(1e-9));
        CHECK(s.difference.mean == doctest::Approx(0.25 * b.won_value.mean).epsilon(1e-9));
        CHECK(s.won_count.mean == b.won_count.mean); // the same deals win
        CHECK(s.correlation == doctest::Approx(1.0).epsilon(1e-9));
        CHECK(sw.scenario_model(1).deal_size->median() == 1.25 * m.deal_size->median());
        const book big = scale_amounts(bk, m.graph, 2.0);
        CHECK(big.amounts()[7] == 2.0 * bk.amounts()[7]);
        CHECK(big.ids()[7] == bk.ids()[7]);
    }

    SUBCASE("a scenario without changes is simulate() bit for bit; the base's difference is 0") {
        const book bk = b2b6_book(m.graph);
        sweep_options o;
        o.horizon = 90;
        o.paths = 150;
        o.seed = 9;
        o.quotas = {4e7};
        const sweep sw(m, bk, parse(R"({"scenarios": [{"name": "faster", "dwell_scale": 0.9}, {"name": "base"}]})"), o);
        CHECK(sw.base() == 1);
        CHECK(sw.scenario_model(1) == m);
        const sweep_result r = sw.run();
        simulation_options so;
        so.horizon = 90;
        so.paths = 150;
        so.seed = 9;
        so.quotas = {4e7};
        so.model_arrivals = true;
        const simulation_result ref = simulate(m, bk, so);
        check_same(r.scenarios[1].won_value, ref.won_value);
        CHECK(r.scenarios[1].difference.mean == 0.0);
        CHECK(r.scenarios[1].difference.sd == 0.0);
        CHECK(r.scenarios[0].difference.mean > 0.0); // faster cycles: more won within 90 days
    }

    SUBCASE("bad scenarios name the scenario and the field") {
        const book bk = b2b6_book(m.graph);
        check_throws<argument_error>(
            [&] { (void)sweep(m, bk, parse(R"({"scenarios": [{"name": "s", "stages": {"Closing": {"dwell_scale": 2}}}]})"), {}); },
            {"scenario 's'", "'Closing'", "not an open stage"});
        check_throws<argument_error>(
            [&] { (void)sweep(m, bk, parse(R"({"scenarios": [{"name": "s", "stages": {"Won": {"dwell_scale": 2}}}]})"), {}); },
            {"scenario 's'", "'Won'"});
        check_throws<model_error>(
            [&] { (void)apply_scenario(m, parse(R"({"scenarios": [{"name": "huge", "deal_size_scale": 1e95}]})")[0]); },
            {"scenario 'huge'", "deal_size"});
        scenario bad;
        bad.name = "direct";
        bad.dwell_scale = std::nan("");
        check_throws<argument_error>([&] { (void)apply_scenario(m, bad); }, {"scenario 'direct'", "dwell_scale"});
    }
}

TEST_CASE("split sweeps") {
    const model m = b2b6();
    const book bk = b2b6_book(m.graph);

    SUBCASE("sweep_share tiles the work evenly") {
        for (std::size_t parts : {1, 2, 3, 7, 40}) {
            std::vector<std::vector<int>> seen(3, std::vector<int>(11, 0));
            std::size_t lo = 1000, hi = 0;
            for (std::size_t r = 0; r < parts; ++r) {
                std::size_t n = 0;
                for (const sweep_work& w : sweep_share(3, 11, parts, r)) {
                    CHECK(w.first < w.last);
                    for (std::size_t p = w.first; p < w.last; ++p) ++seen[w.scenario][p];
                    n += w.last - w.first;
                }
                lo = std::min(lo, n);
                hi = std::max(hi, n);
            }
            for (const auto& s : seen)
                for (int c : s) CHECK(c == 1);
            CHECK(hi - lo <= 1);
        }
        CHECK(sweep_share(2, 5, 3, 1) == std::vector<sweep_work>{{0, 4, 5}, {1, 0, 2}});
        CHECK_THROWS_AS((void)sweep_share(2, 5, 3, 3), argument_error);
    }

    SUBCASE("any split and thread count gives the bit-identical result") {
        sweep_options o;
        o.horizon = 60;
        o.paths = 97;
        o.seed = 77;
        o.quotas = {2e7, 3e7};
        o.threads = 1;
        const auto sc = parse(R"({"scenarios": [{"name": "base"}, {"name": "faster", "dwell_scale": 0.8},
            {"name": "better", "win_odds_scale": 1.3}, {"name": "big", "deal_size_scale": 1.1, "arrival_scale": 1.2}]})");
        const sweep sw(m, bk, sc, o);
        const sweep_result one = sw.run();
        o.threads = 2;
        check_same(sweep(m, bk, sc, o).run(), one);
        for (std::size_t parts : {2, 3, 5}) {
            INFO(parts << " parts");
            std::vector<sweep_piece> pieces;
            for (std::size_t r = parts; r-- > 0;) // any order
                for (const sweep_work& w : sweep_share(sw.size(), o.paths, parts, r)) pieces.push_back(sw.run_piece(w));
            check_same(sw.combine(pieces), one);
        }
        std::vector<sweep_piece> gap = {sw.run_piece(0, 0, 97), sw.run_piece(1, 0, 50), sw.run_piece(2, 0, 97),
                                        sw.run_piece(3, 0, 97)};
        check_throws<argument_error>([&] { (void)sw.combine(gap); }, {"miss paths of scenario 1"});
        gap.push_back(sw.run_piece(1, 40, 97));
        check_throws<argument_error>([&] { (void)sw.combine(gap); }, {"path 40", "twice"});
    }
}

} // namespace unit_sweep
