// Tests of landmark.hpp: the landmark rows and cells by hand, the shrinkage and isotonic
// steps, the forecast of a book, accuracy against the crm4 truths, bad options.
#include <pipecast/forecast/landmark.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_landmark {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

visit_log visits_from(const std::string& text) {
    std::istringstream in(text);
    history_options opt;
    opt.source = "h.csv";
    return read_visit_log(in, opt);
}

nlohmann::json truth_of(const std::string& name) {
    std::ifstream in(PIPECAST_SHARED_DIR "/scenarios/" + name + "_truth.json");
    nlohmann::json j;
    in >> j;
    return j["truth"];
}

/// Largest |table − truth| of P(won within 90 | stage, age) over the truth's ages 0..120.
double worst_error(const landmark_table& t, const nlohmann::json& truth) {
    double worst = 0.0;
    for (const auto& item : truth.items()) {
        const std::string& stage = item.key(); // not a structured binding: clang 14 cannot capture one (INFO)
        for (const auto& r : item.value()) {
            const double age = r["age"];
            if (age > 120) continue;
            const double d = std::abs(t.probability(stage, age) - r["won_within_90"].get<double>());
            INFO(stage << " age " << age << ": landmark " << t.probability(stage, age) << ", truth " << r["won_within_90"]);
            CHECK(d < 1.0);
            worst = std::max(worst, d);
        }
    }
    return worst;
}

} // namespace

TEST_CASE("landmark rows by hand") {
    // Log end 100, horizon 20, spacing 10: landmarks 80, 70, ..., 10 (>= start + spacing).
    const visit_log log = visits_from("deal_id,stage,entered,exited,next_stage\n"
                                      "a,S,0,35,Won\n"      // open at 10,20,30: won at 35
                                      "b,S,12,45,Lost\n"    // open at 20,30,40
                                      "c,S,50,,\n"          // open at 50..80, never decided
                                      "d,T,0,100,Won\n");   // never open before a win within 20 of a landmark <= 80
    landmark_options o;
    o.horizon = 20;
    o.spacing = 10;
    o.age_edges = {0, 15, 100};
    o.prior_strength = 0;
    o.monotone = false;
    const landmark_table t = fit_landmarks(log, o);
    REQUIRE(t.landmarks.size() == 8);
    CHECK(t.landmarks.front() == 10.0);
    CHECK(t.landmarks.back() == 80.0);
    const auto s = t.find("S");
    REQUIRE(s);
    // S rows: a at 10 (age 10, won at 35 > 30: no), 20 (age 20, yes), 30 (age 30, yes);
    // b at 20 (age 8), 30 (18), 40 (28): no; c at 50..80 (ages 0..30): no.
    // Bucket [0,15): a@10, b@20, c@50 (0), c@60 (10): 4 rows, 0 won.
    // Bucket [15,100): a@20, a@30, b@30, b@40, c@70 (20), c@80 (30): 6 rows, 2 won.
    const auto& cells = t.stages[*s].cells;
    REQUIRE(cells.size() == 2);
    CHECK(cells[0].rows == 4);
    CHECK(cells[0].won == 0.0);
    CHECK(cells[1].rows == 6);
    CHECK(cells[1].won == 2.0);
    CHECK(cells[1].mean_age == doctest::Approx((20 + 30 + 18 + 28 + 20 + 30) / 6.0));
    CHECK(cells[1].probability == doctest::Approx(2.0 / 6.0));
    // d: open at 10..80 with ages 10..80; won at 100, within 20 of landmark 80 only.
    const auto d = t.find("T");
    REQUIRE(d);
    CHECK(t.stages[*d].rows == 8);
    CHECK(t.stages[*d].won == 1.0);
    CHECK(t.rows == 18);
    CHECK(t.overall == doctest::Approx(3.0 / 18.0));

    SUBCASE("shrinkage: towards the neighbourhood, itself towards the stage") {
        landmark_options k = o;
        k.prior_strength = 4;
        const landmark_table u = fit_landmarks(log, k);
        const auto& st = u.stages[*u.find("S")];
        const double pooled = (2.0 + 4.0 * u.overall) / (10.0 + 4.0);
        CHECK(st.pooled == doctest::Approx(pooled));
        // Both cells' neighbourhoods are the whole stage (two buckets).
        const double q = (2.0 + 4.0 * pooled) / (10.0 + 4.0);
        CHECK(st.cells[0].probability == doctest::Approx((0.0 + 4.0 * q) / (4.0 + 4.0)));
        CHECK(st.cells[1].probability == doctest::Approx((2.0 + 4.0 * q) / (6.0 + 4.0)));
    }
    SUBCASE("isotonic: the increase from bucket 0 to 1 is pooled") {
        landmark_options m = o;
        m.monotone = true;
        const landmark_table u = fit_landmarks(log, m);
        const auto& st = u.stages[*u.find("S")];
        CHECK(st.cells[0].probability == doctest::Approx(2.0 / 10.0));
        CHECK(st.cells[1].probability == doctest::Approx(2.0 / 10.0));
    }
    SUBCASE("recency weights and window") {
        landmark_options w = o;
        w.half_life = 10; // landmark L weighs 2^-(80 - L)/10
        const landmark_table u = fit_landmarks(log, w);
        const auto& c1 = u.stages[*u.find("S")].cells[1];
        const double won = std::exp2(-6.0) + std::exp2(-5.0); // a@20, a@30
        const double all = won + std::exp2(-5.0) + std::exp2(-4.0) + std::exp2(-1.0) + 1.0;
        CHECK(c1.weight == doctest::Approx(all));
        CHECK(c1.probability == doctest::Approx(won / all));
        landmark_options win = o;
        win.window = 45; // landmarks >= 55: 60, 70, 80
        const landmark_table v = fit_landmarks(log, win);
        CHECK(v.landmarks.size() == 3);
        CHECK(v.rows == 6); // c and d at 60, 70, 80
    }
    SUBCASE("interpolation between the cells' mean ages") {
        const double a0 = t.stages[*s].cells[0].mean_age, a1 = t.stages[*s].cells[1].mean_age;
        CHECK(t.probability("S", a0) == doctest::Approx(0.0));
        CHECK(t.probability("S", 0.5 * (a0 + a1)) == doctest::Approx(1.0 / 6.0));
        CHECK(t.probability("S", 1000.0) == doctest::Approx(2.0 / 6.0));
        CHECK(t.probability("S", 0.0) == doctest::Approx(0.0));
    }
}

TEST_CASE("landmark_forecast") {
    const visit_log log = visits_from("deal_id,stage,entered,exited,next_stage\n"
                                      "a,S,0,35,Won\n"
                                      "b,S,12,45,Lost\n"
                                      "c,S,50,,\n"
                                      "d,T,0,100,Won\n");
    landmark_options o;
    o.horizon = 20;
    o.spacing = 10;
    const landmark_table t = fit_landmarks(log, o);
    const stage_graph g = stage_graph::from_rows({{"S", dwell_distribution::exponential(5.0)},
                                                  {"T", dwell_distribution::exponential(5.0)},
                                                  {"U", dwell_distribution::exponential(5.0)}},
                                                 {{"Won", true}, {"Lost", false}},
                                                 {{"S", {{"Won", 0.5}, {"Lost", 0.5}}},
                                                  {"T", {{"Won", 0.5}, {"Lost", 0.5}}},
                                                  {"U", {{"Won", 0.5}, {"Lost", 0.5}}}});
    book b(g);
    b.add("x", g.index_of("S"), 100.0, 3.0);
    b.add("y", g.index_of("T"), 50.0, 40.0);
    b.add("z", g.index_of("U"), 10.0, 0.0);
    const auto f = landmark_forecast(t, b);
    REQUIRE(f.deal_probability.size() == 3);
    CHECK(f.deal_probability[0] == doctest::Approx(t.probability("S", 3.0)));
    CHECK(f.deal_probability[1] == doctest::Approx(t.probability("T", 40.0)));
    CHECK(f.deal_probability[2] == doctest::Approx(t.overall)); // no rows for U
    CHECK(f.unknown_stage == 1);
    CHECK(f.expected == doctest::Approx(100.0 * f.deal_probability[0] + 50.0 * f.deal_probability[1] +
                                        10.0 * f.deal_probability[2]));
    CHECK(f.expected_count == doctest::Approx(f.deal_probability[0] + f.deal_probability[1] + f.deal_probability[2]));
    CHECK(f.total_amount == 160.0);
}

TEST_CASE("landmarks on crm4 recover the truth") {
    // crm4: a stationary process; every landmark of the three years. Measured worst error
    // 0.023 (Proposal); the tolerance is about two standard errors of a sparse cell.
    const visit_log log = load_visit_log(PIPECAST_SHARED_DIR "/scenarios/crm4_history.csv");
    landmark_options o;
    o.horizon = 90;
    const landmark_table t = fit_landmarks(log, o);
    CHECK(t.landmarks.size() > 100);
    CHECK(worst_error(t, truth_of("crm4")) < 0.04);
}

TEST_CASE("landmarks on crm4_messy") {
    // The truth is the process at the end of the log (stall shares doubled from day 730):
    // a one-year window of landmarks follows the drift. Landmarks are little affected by
    // the artefacts (a click-through deal is still won; an after-the-fact booking is open
    // at a landmark only during its two hours). Measured worst error 0.087 (Negotiation,
    // age 30, where P falls by 0.02 a day and three quarters' market shocks (σ = 0.35 on
    // the logit) move the estimate); all history: 0.064.
    const visit_log log = load_visit_log(PIPECAST_SHARED_DIR "/scenarios/crm4_messy_history.csv");
    const auto clean = drop_after_the_fact(merge_click_throughs(log, parse_duration("60s")).log, parse_duration("1d"));
    landmark_options o;
    o.horizon = 90;
    o.window = 365;
    CHECK(worst_error(fit_landmarks(clean.log, o), truth_of("crm4_messy")) < 0.11);
}

TEST_CASE("landmark options") {
    const visit_log log = visits_from("deal_id,stage,entered,exited,next_stage\na,S,0,35,Won\nb,S,1,100,Lost\n");
    auto with = [&](auto set) {
        landmark_options o;
        o.horizon = 20;
        set(o);
        return [o, &log] { (void)fit_landmarks(log, o); };
    };
    check_throws<argument_error>(with([](landmark_options& o) { o.horizon = 0; }), {"horizon", "0"});
    check_throws<argument_error>(with([](landmark_options& o) { o.spacing = -1; }), {"spacing", "-1"});
    check_throws<argument_error>(with([](landmark_options& o) { o.age_edges = {1, 2}; }), {"age_edges", "0"});
    check_throws<argument_error>(with([](landmark_options& o) { o.age_edges = {0, 5, 5}; }), {"increasing", "5"});
    check_throws<argument_error>(with([](landmark_options& o) { o.window = 10; }), {"window", "10", "horizon"});
    check_throws<argument_error>(with([](landmark_options& o) { o.half_life = 0; }), {"half_life", "0"});
    check_throws<argument_error>(with([](landmark_options& o) { o.prior_strength = -2; }), {"prior_strength", "-2"});
    check_throws<argument_error>(with([](landmark_options& o) { o.horizon = 95; }), {"h.csv", "no landmark"});
    // A spacing too small to move the landmark time (was an endless loop filling memory).
    check_throws<argument_error>(with([](landmark_options& o) { o.spacing = 1e-300; }),
                                 {"h.csv", "spacing 1e-300", "more than 1e+05 landmarks"});
    landmark_options o;
    o.horizon = 20;
    const landmark_table t = fit_landmarks(log, o);
    check_throws<argument_error>([&] { (void)t.probability("Nope", 1.0); }, {"Nope"});
}

} // namespace unit_landmark
