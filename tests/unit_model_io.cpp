// Tests of model_io.hpp (and model.hpp): the JSON model format, its extensions, round trips
// and the error messages with JSON paths.
#include <pipecast/io/model_json.hpp>
#include <pipecast/model/analytics.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_model_io {

using pipecast::dwell_distribution;
using pipecast::model;
using pipecast::parse_error;
using nlohmann::json;

namespace {

const std::string b2b6_path = PIPECAST_SHARED_DIR "/scenarios/b2b6.json";

model parse(const std::string& text) {
    std::istringstream in(text);
    return pipecast::read_model(in, "test.json");
}

/// A small valid model as JSON, to be broken one field at a time.
json small() {
    return json::parse(R"({
      "name": "small", "time_unit": "week",
      "stages": [
        {"name": "Lead", "dwell": {"dist": "exponential", "mean": 2}},
        {"name": "Deal", "dwell": {"dist": "gamma", "shape": 2, "mean": 3}}
      ],
      "outcomes": {"won": "Won", "lost": "Lost"},
      "transitions": {
        "Lead": {"Deal": 0.5, "Lost": 0.5},
        "Deal": {"Won": 0.6, "Lead": 0.1, "Lost": 0.3}
      }
    })");
}

/// Expects model_from_json(j) to throw parse_error whose message holds every fragment.
void check_parse_error(const json& j, std::initializer_list<const char*> fragments) {
    bool thrown = false;
    try {
        (void)pipecast::model_from_json(j, "test.json");
    } catch (const parse_error& e) {
        thrown = true;
        const std::string msg = e.what();
        CHECK(e.source() == "test.json");
        CHECK(msg.starts_with("test.json: "));
        for (const char* frag : fragments) {
            INFO("message: " << msg << "  expected fragment: " << frag);
            CHECK(msg.find(frag) != std::string::npos);
        }
    }
    CHECK(thrown);
}

} // namespace

TEST_CASE("model_io") {
    SUBCASE("b2b6.json loads as it is") {
        const model m = pipecast::load_model(b2b6_path);
        CHECK(m.name == "b2b6");
        CHECK(m.time_unit == "day");
        CHECK(m.currency == "USD");
        CHECK_FALSE(m.description.empty());
        const auto& g = m.graph;
        REQUIRE(g.open_count() == 5);
        REQUIRE(g.outcome_count() == 2);
        const char* names[] = {"Prospecting", "Qualification", "Demo", "Proposal", "Negotiation", "Won", "Lost"};
        for (std::size_t s = 0; s < 7; ++s) CHECK(g.name(s) == names[s]);
        CHECK(g.is_win(5));
        CHECK_FALSE(g.is_win(6));
        CHECK(g.dwell(0) == dwell_distribution::exponential(7));
        CHECK(g.dwell(1) == dwell_distribution::gamma(2.0, 14));
        CHECK(g.dwell(2) == dwell_distribution::lognormal(10, 6));
        CHECK(g.dwell(3) == dwell_distribution::gamma(3.0, 21));
        CHECK(g.dwell(4) == dwell_distribution::weibull(1.5, 18));
        const std::size_t won = 5, lost = 6;
        CHECK(g.transition(0, 1) == 0.40);
        CHECK(g.transition(0, lost) == 0.60);
        CHECK(g.transition(1, 2) == 0.55);
        CHECK(g.transition(1, 3) == 0.05);
        CHECK(g.transition(1, lost) == 0.40);
        CHECK(g.transition(2, 3) == 0.60);
        CHECK(g.transition(2, 1) == 0.05);
        CHECK(g.transition(2, lost) == 0.35);
        CHECK(g.transition(3, 4) == 0.65);
        CHECK(g.transition(3, 2) == 0.05);
        CHECK(g.transition(3, lost) == 0.30);
        CHECK(g.transition(4, won) == 0.75);
        CHECK(g.transition(4, 3) == 0.05);
        CHECK(g.transition(4, lost) == 0.20);
        CHECK(g.transition(0, won) == 0.0);
        REQUIRE(m.deal_size.has_value());
        CHECK(m.deal_size->median() == 10000.0);
        CHECK(m.deal_size->sigma() == 1.0);
        CHECK(m.deal_size->mean() == doctest::Approx(10000.0 * std::exp(0.5)).epsilon(1e-15));
        REQUIRE(m.arrivals.has_value());
        CHECK(m.arrivals->stage == 0);
        CHECK(m.arrivals->rate == 40.0);
        CHECK(m.arrivals->period_rates.empty());
        CHECK(m.arrivals->expected_count(2.5) == 100.0);
    }

    SUBCASE("round trip: to_json -> model_from_json gives an equal model") {
        const model m = pipecast::load_model(b2b6_path);
        const model back = pipecast::model_from_json(pipecast::to_json(m));
        CHECK(back == m);
        // through text as well
        std::ostringstream out;
        pipecast::write_model(out, m);
        CHECK(parse(out.str()) == m);
        // the written form keeps b2b6's mean-based dwell parameters
        const json j = pipecast::to_json(m);
        CHECK(j["stages"][2]["dwell"] == json{{"dist", "lognormal"}, {"mean", 10.0}, {"sd", 6.0}});
        CHECK(j["stages"][4]["dwell"] == json{{"dist", "weibull"}, {"shape", 1.5}, {"mean", 18.0}});
        CHECK(j["transitions"]["Negotiation"]["Won"] == 0.75);
        // a changed model is not equal
        model other = m;
        other.currency = "EUR";
        CHECK_FALSE(other == m);
    }

    SUBCASE("round trip of every dwell family and parameterisation") {
        json j = small();
        j["stages"] = json::array();
        const json dwells[] = {
            {{"dist", "exponential"}, {"rate", 0.25}},
            {{"dist", "gamma"}, {"shape", 0.7}, {"scale", 3.0}},
            {{"dist", "lognormal"}, {"mu", 1.3}, {"sigma", 0.45}},
            {{"dist", "lognormal"}, {"mean", 4.0}, {"sd", 1.0}},
            {{"dist", "weibull"}, {"shape", 2.5}, {"scale", 7.0}},
            {{"dist", "fixed"}, {"value", 3.5}},
            {{"dist", "fixed"}, {"mean", 2.0}},
            {{"dist", "empirical"}, {"samples", {1.0, 2.0, 2.0, 7.0}}},
            {{"dist", "empirical"}, {"values", {3.0, 1.0}}, {"weights", {1.0, 3.0}}},
        };
        json rows = json::object();
        for (std::size_t i = 0; i < std::size(dwells); ++i) {
            // Names appended, not "S" + to_string(): GCC 12's -Wrestrict false positive (bug 105329).
            std::string nm = "S", next = "S";
            nm += std::to_string(i);
            next += std::to_string(i + 1);
            j["stages"].push_back({{"name", nm}, {"dwell", dwells[i]}});
            rows[nm] = i + 1 < std::size(dwells) ? json{{next, 0.5}, {"Lost", 0.5}} : json{{"Won", 1.0}};
        }
        j["transitions"] = rows;
        const model m = pipecast::model_from_json(j);
        const auto& g = m.graph;
        CHECK(g.dwell(0) == dwell_distribution::exponential(4.0));
        CHECK(g.dwell(1) == dwell_distribution::gamma(0.7, 0.7 * 3.0));
        CHECK(g.dwell(1).scale() == doctest::Approx(3.0).epsilon(1e-15));
        CHECK(g.dwell(2) == dwell_distribution::lognormal_log(1.3, 0.45));
        CHECK(g.dwell(3) == dwell_distribution::lognormal(4.0, 1.0));
        CHECK(g.dwell(4).scale() == doctest::Approx(7.0).epsilon(1e-14));
        CHECK(g.dwell(4).mean() == doctest::Approx(7.0 * std::tgamma(1.4)).epsilon(1e-15));
        CHECK(g.dwell(5) == dwell_distribution::fixed(3.5));
        CHECK(g.dwell(6) == dwell_distribution::fixed(2.0));
        CHECK(g.dwell(7) == dwell_distribution::empirical({1.0, 2.0, 2.0, 7.0}));
        CHECK(g.dwell(8) == dwell_distribution::empirical({3.0, 1.0}, {1.0, 3.0}));

        const model back = pipecast::model_from_json(pipecast::to_json(m));
        // every family but the empirical one round-trips exactly (lognormal_log via mu/sigma)
        for (std::size_t i = 0; i < 7; ++i) CHECK(back.graph.dwell(i) == g.dwell(i));
        for (std::size_t i = 7; i < 9; ++i) { // empirical weights are rewritten as differences
            const auto &a = back.graph.dwell(i), &b = g.dwell(i);
            REQUIRE(a.values().size() == b.values().size());
            for (std::size_t k = 0; k < a.values().size(); ++k) {
                CHECK(a.values()[k] == b.values()[k]);
                CHECK(a.cumulative()[k] == doctest::Approx(b.cumulative()[k]).epsilon(1e-15));
            }
            CHECK(a.mean() == doctest::Approx(b.mean()).epsilon(1e-15));
        }
        CHECK(back.graph.transitions() == g.transitions());
        CHECK(back.time_unit == "week");
    }

    SUBCASE("linear funnel form: win_rate or conversion per stage, no transitions") {
        const json w = json::parse(R"({
          "stages": [
            {"name": "Lead",     "win_rate": 0.2, "dwell": {"dist": "exponential", "mean": 5}},
            {"name": "Demo",     "win_rate": 0.4, "dwell": {"dist": "exponential", "mean": 10}},
            {"name": "Proposal", "win_rate": 0.5, "dwell": {"dist": "gamma", "shape": 2, "mean": 7}},
            {"name": "Nego",     "win_rate": 0.8, "dwell": {"dist": "exponential", "mean": 14}},
            {"name": "Signing",  "win_rate": 1.0, "dwell": {"dist": "fixed", "value": 3}}
          ],
          "outcomes": {"won": "Signed", "lost": "Dropped"}
        })");
        const model m = pipecast::model_from_json(w);
        const auto& g = m.graph;
        CHECK(g.name(5) == "Signed");
        CHECK(g.name(6) == "Dropped");
        const double c[] = {0.5, 0.8, 0.625, 0.8, 1.0};
        for (std::size_t i = 0; i < 5; ++i) {
            CHECK(g.transition(i, i + 1) == doctest::Approx(c[i]).epsilon(1e-15));
            CHECK(g.transition(i, 6) == doctest::Approx(1 - c[i]).epsilon(1e-15));
        }
        json cv = w;
        for (std::size_t i = 0; i < 5; ++i) {
            cv["stages"][i].erase("win_rate");
            cv["stages"][i]["conversion"] = c[i];
        }
        const model mc = pipecast::model_from_json(cv);
        CHECK((mc.graph.transitions() - g.transitions()).cwiseAbs().maxCoeff() <= 1e-15);
        CHECK(mc.graph.dwell(4) == dwell_distribution::fixed(3));
        // written back, it is a general graph that reads back equal
        CHECK(pipecast::model_from_json(pipecast::to_json(m)) == m);
    }

    SUBCASE("more outcomes: a list, or 'other' beside won/lost") {
        json j = small();
        j["outcomes"] = json::parse(R"([{"name": "Won", "win": true}, {"name": "Lost", "win": false},
                                        {"name": "Disqualified", "win": false}, {"name": "Renewed", "win": true}])");
        j["transitions"]["Deal"] = {{"Won", 0.5}, {"Renewed", 0.1}, {"Lead", 0.1}, {"Disqualified", 0.3}};
        const model m = pipecast::model_from_json(j);
        CHECK(m.graph.outcome_count() == 4);
        CHECK(m.graph.name(4) == "Disqualified");
        CHECK_FALSE(m.graph.is_win(4));
        CHECK(m.graph.is_win(5));
        CHECK(m.graph.transition(1, 5) == 0.1);
        CHECK(pipecast::model_from_json(pipecast::to_json(m)) == m);

        json o = small();
        o["outcomes"]["other"] = json::parse(R"([{"name": "Disqualified", "win": false}])");
        o["transitions"]["Lead"] = {{"Deal", 0.5}, {"Lost", 0.3}, {"Disqualified", 0.2}};
        const model mo = pipecast::model_from_json(o);
        CHECK(mo.graph.outcome_count() == 3);
        CHECK(mo.graph.name(2) == "Won");
        CHECK(mo.graph.name(3) == "Lost");
        CHECK(mo.graph.name(4) == "Disqualified");
        CHECK(mo.graph.transition(0, 4) == 0.2);
    }

    SUBCASE("deal_size by median or mean; seasonal arrivals") {
        json j = small();
        j["deal_size"] = {{"dist", "lognormal"}, {"mean", 1000.0}, {"sigma", 0.5}};
        j["arrivals"] = {{"stage", "Deal"}, {"period", 13.0}, {"rates", {10.0, 20.0, 30.0, 40.0}}};
        const model m = pipecast::model_from_json(j);
        CHECK(m.deal_size->mean() == doctest::Approx(1000.0).epsilon(1e-14));
        CHECK(m.deal_size->median() == doctest::Approx(1000.0 * std::exp(-0.125)).epsilon(1e-15));
        CHECK(m.arrivals->stage == 1);
        CHECK(m.arrivals->period == 13.0);
        CHECK(m.arrivals->rate == 25.0); // the average rate
        CHECK(m.arrivals->rate_at(0.0) == 10.0);
        CHECK(m.arrivals->rate_at(13.0) == 20.0);
        CHECK(m.arrivals->rate_at(51.9) == 40.0);
        CHECK(m.arrivals->rate_at(52.0) == 10.0); // the pattern repeats
        CHECK(m.arrivals->rate_at(-1.0) == 40.0);  // ... backwards too
        CHECK(m.arrivals->expected_count(19.5) == doctest::Approx(13 * 10 + 6.5 * 20).epsilon(1e-15));
        CHECK(m.arrivals->expected_count(52.0) == doctest::Approx(13 * 100).epsilon(1e-15));
        CHECK(pipecast::model_from_json(pipecast::to_json(m)) == m);
        CHECK(m.deal_size->quantile(0.5) == doctest::Approx(m.deal_size->median()).epsilon(1e-14));
        CHECK_THROWS_AS((void)m.deal_size->quantile(1.0), pipecast::argument_error);
    }

    SUBCASE("time units") {
        CHECK(pipecast::days_per_unit("day") == 1.0);
        CHECK(pipecast::days_per_unit("weeks") == 7.0);
        CHECK(pipecast::days_per_unit("month") == doctest::Approx(30.436875));
        CHECK(pipecast::days_per_unit("hour") == doctest::Approx(1.0 / 24));
        CHECK_THROWS_AS((void)pipecast::days_per_unit("fortnight"), pipecast::model_error);
    }

    SUBCASE("malformed JSON gives line and column") {
        const std::string text = "{\n  \"stages\": [\n    {\"name\": \"A\",, }\n  ]\n}\n";
        try {
            (void)parse(text);
            FAIL("no exception");
        } catch (const parse_error& e) {
            CHECK(e.source() == "test.json");
            CHECK(e.line() == 3);
            CHECK(e.column() == 18); // the second comma
            CHECK(std::string(e.what()).starts_with("test.json:3:18: malformed JSON"));
        }
        try {
            (void)parse("");
            FAIL("no exception");
        } catch (const parse_error& e) {
            CHECK(e.line() == 1);
        }
        CHECK_THROWS_AS((void)pipecast::load_model("/nonexistent/model.json"), pipecast::error);
    }

    SUBCASE("every malformed model names the JSON path") {
        check_parse_error(json::array(), {"a model must be a JSON object"});
        {
            json j = small();
            j.erase("stages");
            check_parse_error(j, {"missing field 'stages'"});
        }
        {
            json j = small();
            j["stages"] = json::array();
            check_parse_error(j, {"/stages", "non-empty array"});
        }
        {
            json j = small();
            j["stages"][1]["dwell"].erase("mean");
            check_parse_error(j, {"/stages/1/dwell", "missing field 'mean'"});
        }
        {
            json j = small();
            j["stages"][0]["name"] = 3;
            check_parse_error(j, {"/stages/0/name", "expected a string"});
        }
        {
            json j = small();
            j["stages"][1]["dwell"]["shape"] = "two";
            check_parse_error(j, {"/stages/1/dwell/shape", "expected a number", "\"two\""});
        }
        {
            json j = small();
            j["stages"][1]["dwell"]["dist"] = "pareto";
            check_parse_error(j, {"/stages/1/dwell/dist", "unknown distribution 'pareto'"});
        }
        {
            json j = small();
            j["stages"][0]["dwell"]["mean"] = -2;
            check_parse_error(j, {"/stages/0/dwell", "exponential dwell", "mean must be positive", "-2"});
        }
        {
            json j = small();
            j["stages"][0]["dwell"] = {{"dist", "exponential"}, {"rate", 0}};
            check_parse_error(j, {"/stages/0/dwell/rate", "rate must be positive"});
        }
        {
            json j = small();
            j["stages"][0]["dwell"] = {{"dist", "empirical"}, {"samples", {1, "x"}}};
            check_parse_error(j, {"/stages/0/dwell/samples/1", "expected a number"});
        }
        {
            json j = small();
            j["transitions"]["Deal"]["Lost"] = 1.3;
            check_parse_error(j, {"/transitions/Deal/Lost", "stage 'Deal'", "must be in [0, 1]", "1.3"});
        }
        {
            json j = small();
            j["transitions"]["Deal"]["Lost"] = -0.3;
            check_parse_error(j, {"/transitions/Deal/Lost", "-0.3"});
        }
        {
            json j = small();
            j["transitions"]["Deal"]["Lost"] = "0.3";
            check_parse_error(j, {"/transitions/Deal/Lost", "expected a probability"});
        }
        {
            json j = small();
            j["transitions"]["Deal"]["Lost"] = 0.2; // sums to 0.9
            check_parse_error(j, {"/transitions", "stage 'Deal'", "sum to 0.89"});
        }
        {
            json j = small();
            j["transitions"]["Dael"] = {{"Won", 1.0}};
            check_parse_error(j, {"/transitions/Dael", "unknown stage 'Dael'"});
        }
        {
            json j = small();
            j["transitions"]["Deal"]["Wonn"] = 0.0;
            check_parse_error(j, {"/transitions/Deal/Wonn", "unknown target stage 'Wonn'"});
        }
        {
            json j = small();
            j["transitions"]["Won"] = {{"Lost", 1.0}};
            check_parse_error(j, {"/transitions", "'Won'", "is an outcome"});
        }
        {
            json j = small();
            j["transitions"].erase("Deal");
            check_parse_error(j, {"/transitions", "stage 'Deal'", "no transition row"});
        }
        {
            json j = small();
            j["transitions"]["Deal"] = {{"Lead", 1.0}};
            j["transitions"]["Lead"] = {{"Deal", 1.0}};
            check_parse_error(j, {"/transitions", "no outcome can be reached"});
        }
        {
            json j = small();
            j["transitions"] = json::array();
            check_parse_error(j, {"/transitions", "expected an object"});
        }
        {
            json j = small();
            j["outcomes"] = "Won";
            check_parse_error(j, {"/outcomes", "expected an object"});
        }
        {
            json j = small();
            j["outcomes"].erase("lost");
            check_parse_error(j, {"/outcomes", "missing field 'lost'"});
        }
        {
            json j = small();
            j["outcomes"] = json::parse(R"([{"name": "Won", "win": "yes"}, {"name": "Lost", "win": false}])");
            check_parse_error(j, {"/outcomes/0/win", "expected true or false"});
        }
        {
            json j = small();
            j["outcomes"] = json::parse(R"([{"name": "Won", "win": true}, {"name": "Lost", "win": true}])");
            check_parse_error(j, {"/transitions", "no losing outcome"});
        }
        {
            json j = small();
            j["arrivals"] = {{"stage", "Nowhere"}, {"rate", 3}};
            check_parse_error(j, {"/arrivals/stage", "unknown stage 'Nowhere'"});
        }
        {
            json j = small();
            j["arrivals"] = {{"stage", "Won"}, {"rate", 3}};
            check_parse_error(j, {"/arrivals", "open stage"});
        }
        {
            json j = small();
            j["arrivals"] = {{"stage", "Lead"}, {"rate", -3}};
            check_parse_error(j, {"/arrivals", "rate must be finite and >= 0", "-3"});
        }
        {
            json j = small();
            j["arrivals"] = {{"stage", "Lead"}, {"rates", {1, 2}}};
            check_parse_error(j, {"/arrivals", "missing field 'period'"});
        }
        {
            json j = small();
            j["arrivals"] = {{"stage", "Lead"}, {"rates", {1, -2}}, {"period", 4}};
            check_parse_error(j, {"/arrivals", "rate of period 1"});
        }
        {
            json j = small();
            j["time_unit"] = "fortnight";
            check_parse_error(j, {"/time_unit", "unknown time_unit 'fortnight'"});
        }
        {
            json j = small();
            j["deal_size"] = {{"dist", "normal"}, {"median", 1}, {"sigma", 1}};
            check_parse_error(j, {"/deal_size/dist", "only 'lognormal'"});
        }
        {
            json j = small();
            j["deal_size"] = {{"dist", "lognormal"}, {"median", -1}, {"sigma", 1}};
            check_parse_error(j, {"/deal_size", "median must be positive"});
        }
        {
            json j = small();
            j["deal_size"] = {{"dist", "lognormal"}, {"median", 10}};
            check_parse_error(j, {"/deal_size", "missing field 'sigma'"});
        }
    }

    SUBCASE("malformed linear funnels") {
        json j = small();
        j.erase("transitions");
        check_parse_error(j, {"no 'transitions'", "'win_rate' or 'conversion' on every stage"});
        j["stages"][0]["win_rate"] = 0.3;
        check_parse_error(j, {"on every stage"});
        j["stages"][1]["conversion"] = 0.9;
        check_parse_error(j, {"/stages/1", "mixes 'win_rate' and 'conversion'"});
        j["stages"][1].erase("conversion");
        j["stages"][1]["win_rate"] = 0.2; // decreasing
        check_parse_error(j, {"/stages", "must not decrease"});
        j["stages"][1]["win_rate"] = "high";
        check_parse_error(j, {"/stages/1/win_rate", "expected a number"});
        j["stages"][1]["win_rate"] = 1.0;
        CHECK_NOTHROW((void)pipecast::model_from_json(j));
        j["outcomes"]["other"] = json::parse(R"([{"name": "Disqualified", "win": false}])");
        check_parse_error(j, {"/outcomes", "exactly the outcomes 'won' and 'lost'"});
        // rates and transitions together: ambiguous, not silently ignored
        json both = small();
        both["stages"][0]["win_rate"] = 0.3;
        check_parse_error(both, {"/transitions", "stages carry 'win_rate'", "give one or the other"});
    }
}

TEST_CASE("model format 2: branched stages round-trip and are validated with their JSON path") {
    const std::string text = R"({"format_version": 2, "stages": [
        {"name": "Qualify", "dwell": {"dist": "exponential", "mean": 5}},
        {"name": "Negotiate", "branches": [
            {"to": "Won", "probability": 0.5, "dwell": {"dist": "gamma", "shape": 2, "mean": 12}},
            {"to": "Lost", "probability": 0.4, "dwell": {"dist": "lognormal", "mean": 60, "sd": 40}},
            {"to": "Lost", "probability": 0.1, "dwell": {"dist": "exponential", "mean": 300}, "stalled": true}]}],
      "outcomes": {"won": "Won", "lost": "Lost"},
      "transitions": {"Qualify": {"Negotiate": 0.6, "Lost": 0.4}},
      "overdispersion": {"sigma": 0.3}})";
    std::istringstream in(text);
    const auto m = pipecast::read_model(in, "m.json");
    REQUIRE(m.graph.branched(1));
    CHECK(m.graph.branches(1).size() == 3);
    CHECK(m.graph.branches(1)[2].stalled);
    CHECK(m.overdispersion == 0.3);
    CHECK(pipecast::win_probability(m.graph, 0) == doctest::Approx(0.3));
    std::ostringstream out;
    pipecast::write_model(out, m);
    std::istringstream back(out.str());
    CHECK(pipecast::read_model(back, "back.json") == m);
    auto bad = [&](const std::string& from, const std::string& to, std::initializer_list<const char*> frags) {
        std::string t = text;
        t.replace(t.find(from), from.size(), to);
        std::istringstream b(t);
        pipecast_test::check_throws<pipecast::parse_error>([&] { (void)pipecast::read_model(b, "m.json"); }, frags);
    };
    bad(R"("probability": 0.1)", R"("probability": 0.2)", {"m.json", "Negotiate", "sum to 1.1"});
    bad(R"("stalled": true)", R"("stalled": 1)", {"m.json", "/stages/1/branches/2/stalled"});
    bad(R"("to": "Won")", R"("to": "Wonn")", {"m.json", "Wonn"});
    bad(R"("format_version": 2)", R"("format_version": 3)", {"format_version"});
}

// Issue 11: hostile model files. Each check failed before its fix (a crash, an exception
// that is not a pipecast::error, a silent override or a misleading message).
TEST_CASE("model_io: hostile input") {
    const std::string b2b6_text = [] {
        std::ifstream in(b2b6_path);
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>{});
    }();
    auto with = [&](const std::string& from, const std::string& to) {
        std::string t = b2b6_text;
        const auto at = t.find(from);
        REQUIRE(at != std::string::npos);
        return t.replace(at, from.size(), to);
    };
    auto read = [](const std::string& text) {
        std::istringstream in(text);
        return pipecast::read_model(in, "h.json");
    };

    SUBCASE("a stage name 100,000 arrays deep: an error with line and column, no stack overflow") {
        const std::string deep = std::string(100000, '[') + std::string(100000, ']');
        try {
            (void)read(with(R"("name": "Prospecting",)", "\"name\": " + deep + ","));
            FAIL("no exception");
        } catch (const parse_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find("nesting deeper than 64 levels") != std::string::npos);
            CHECK(e.line() == 7);
            CHECK(e.column() == 14 + 61); // the bracket that opens level 65 (the name's is level 4)
            CHECK(std::string(e.what()).size() < 200);
        }
        // deep, but within the limit: the message quotes the value briefly, never a full dump
        const std::string nested = std::string(60, '[') + "1" + std::string(60, ']');
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("name": "Prospecting")", "\"name\": " + nested)); },
                                                 {"h.json: /stages/0/name: expected a string, got an array of 1 values"});
        // a document built in code, 100,000 levels deep: model_from_json quotes it without recursion
        json j = small();
        json* p = &j["stages"][0]["name"];
        *p = json::array();
        for (int i = 0; i < 100000; ++i) {
            p->push_back(json::array());
            p = &p->back();
        }
        check_parse_error(j, {"/stages/0/name", "expected a string, got an array of 1 values"});
    }

    SUBCASE("error messages quote at most 80 characters of a value") {
        const std::string long_name(5000, 'x');
        try {
            (void)read(with(R"("dist": "exponential")", "\"dist\": \"" + long_name + "\""));
            FAIL("no exception");
        } catch (const parse_error& e) {
            CHECK(std::string(e.what()).size() < 300);
            CHECK(std::string(e.what()).find("(5000 bytes)") != std::string::npos);
        }
        pipecast_test::check_throws<parse_error>(
            [&] { (void)read(with(R"("mean": 7)", R"("mean": "7\u0001")")); }, {"expected a number, got \"7\\x01\""});
    }

    SUBCASE("a number beyond the range of a double is a parse_error with line and column") {
        try {
            (void)read(with(R"("mean": 7)", R"("mean": 1e400)"));
            FAIL("no exception");
        } catch (const parse_error& e) {
            CHECK(e.line() == 7);
            CHECK(std::string(e.what()).find("number 1e400 is out of the range of a double") != std::string::npos);
        }
        // and below it: the mean 0 is then rejected by the dwell
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("mean": 7)", R"("mean": 1e-400)")); },
                                                 {"/stages/0/dwell/mean", "stage 'Prospecting'", "must be positive"});
    }

    SUBCASE("duplicate keys are errors naming the JSON path, not silent overrides") {
        try {
            (void)read(with(R"("Prospecting":   {"Qualification": 0.40, "Lost": 0.60},)",
                            R"("Prospecting":   {"Qualification": 0.40, "Lost": 0.60},
    "Prospecting":   {"Qualification": 1.0},)"));
            FAIL("no exception");
        } catch (const parse_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find("/transitions/Prospecting: duplicate key 'Prospecting'") != std::string::npos);
            CHECK(e.line() == 16);
            CHECK(e.column() == 5);
        }
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("mean": 7})", R"("mean": 7, "mean": 8})")); },
                                                 {"h.json:7:", "/stages/0/dwell/mean: duplicate key 'mean'"});
        pipecast_test::check_throws<parse_error>([&] { (void)read(R"({"a": {"b/c": 1, "b/c": 2}})"); },
                                                 {"/a/b~1c: duplicate key 'b/c'"});
        // a key inside a string value is not a key
        CHECK_NOTHROW((void)read(with(R"("name": "b2b6",)", R"("name": "{\"a\": 1, \"a\": 2}",)")));
    }

    SUBCASE("NUL bytes, UTF-16 and empty files") {
        pipecast_test::check_throws<parse_error>([&] { (void)read(std::string("{\"a\":\0 1}", 9)); },
                                                 {"h.json:1:6: NUL byte"});
        pipecast_test::check_throws<parse_error>([&] { (void)read("\xFF\xFE{\0"); }, {"UTF-16"});
        pipecast_test::check_throws<parse_error>([&] { (void)read(" \n\t"); }, {"empty file"});
        pipecast_test::check_throws<parse_error>([&] { (void)read("\xEF\xBB\xBF"); }, {"empty file"});
        CHECK(read("\xEF\xBB\xBF" + b2b6_text).name == "b2b6"); // a UTF-8 byte-order mark is fine
        pipecast_test::check_throws<parse_error>([&] { (void)read(b2b6_text + "}"); }, {"malformed JSON"});
    }

    SUBCASE("a directory as model path is an error, not an internal error") {
        pipecast_test::check_throws<pipecast::error>([] { (void)pipecast::load_model(PIPECAST_SHARED_DIR); },
                                                     {"is a directory"});
    }

    SUBCASE("a lognormal dwell with sd 1e300 is an error naming the stage; mean 1e-300 loads with finite log parameters") {
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("sd": 6)", R"("sd": 1e300)")); },
                                                 {"h.json: /stages/2/dwell: stage 'Demo': lognormal dwell: mean 10 with sd 1e+300",
                                                  "the variance (sd squared) overflows"});
        for (const auto& [from, to] : {std::pair<std::string, std::string>{R"("sd": 6)", R"("sd": 1e150)"},
                                       {R"("mean": 10, "sd": 6)", R"("mean": 1e-300, "sd": 6)"}}) {
            const model m = read(with(from, to));
            const auto& d = m.graph.dwell(2);
            CHECK(std::isfinite(d.log_mu()));
            CHECK(std::isfinite(d.log_sigma()));
            CHECK_NOTHROW((void)pipecast::survival(d, 30.0));
            CHECK_NOTHROW((void)pipecast::quantile(d, 0.5));
        }
    }

    SUBCASE("a stage named like an outcome, duplicate names") {
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("name": "Demo")", R"("name": "Won")")); },
                                                 {"/stages/2/name", "stage 'Won' has the name of an outcome"});
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("name": "Demo")", R"("name": "Prospecting")")); },
                                                 {"/stages/2/name", "duplicate stage name 'Prospecting'"});
    }

    SUBCASE("a dwell parameter is named as written") {
        pipecast_test::check_throws<parse_error>(
            [&] { (void)read(with(R"("shape": 2.0, "mean": 14)", R"("shape": 2.0, "scale": -7)")); },
            {"/stages/1/dwell/scale", "stage 'Qualification': gamma dwell: scale must be positive and finite, got -7"});
        pipecast_test::check_throws<parse_error>(
            [&] { (void)read(with(R"("shape": 1.5, "mean": 18)", R"("shape": 1.5, "scale": -3)")); },
            {"/stages/4/dwell/scale", "weibull dwell: scale must be positive"});
        pipecast_test::check_throws<parse_error>(
            [&] { (void)read(with(R"("shape": 2.0, "mean": 14)", R"("shape": 1e300, "scale": 1e300)")); },
            {"/stages/1/dwell", "the mean shape x scale"});
        pipecast_test::check_throws<parse_error>([&] { (void)read(with(R"("mean": 7)", R"("mean": null)")); },
                                                 {"/stages/0/dwell/mean", "expected a number, got null"});
    }

    SUBCASE("a deal size whose mean overflows, or whose median underflows") {
        pipecast_test::check_throws<parse_error>(
            [&] { (void)read(with(R"("median": 10000, "sigma": 1.0)", R"("median": 10000, "sigma": 40)")); },
            {"/deal_size", "gives an infinite mean"});
        pipecast_test::check_throws<parse_error>(
            [&] { (void)read(with(R"("median": 10000, "sigma": 1.0)", R"("mean": 10000, "sigma": 40)")); },
            {"/deal_size", "median that underflows to 0"});
    }

    SUBCASE("save_model writes all or nothing: a failure keeps the old file") {
        const auto dir = std::filesystem::temp_directory_path() / "pipecast_unit_model_io_save";
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        const std::string path = (dir / "existing.json").string();
        {
            std::ofstream out(path);
            out << "keep";
        }
        model m = pipecast::load_model(b2b6_path);
        m.description = "fitted from h\xFF.csv"; // not UTF-8: cannot be written as JSON
        pipecast_test::check_throws<pipecast::error>([&] { pipecast::save_model(m, path); }, {"cannot be written as JSON"});
        {
            std::ifstream in(path);
            CHECK(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>{}) == "keep");
        }
        m.description = "ok";
        pipecast::save_model(m, path);
        CHECK(pipecast::load_model(path) == m);
        pipecast_test::check_throws<pipecast::error>([&] { pipecast::save_model(m, (dir / "no" / "m.json").string()); },
                                                     {"no/m.json", "cannot write the model file"});
        pipecast_test::check_throws<pipecast::error>([&] { pipecast::save_model(m, dir.string()); }, {"is a directory"});
        std::size_t files = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
        CHECK(files == 1); // no temporary file left behind
        std::filesystem::remove_all(dir);
    }
}

TEST_CASE("the nlohmann ADL hooks: json j = model is what write_model writes, and reads back") {
    for (const std::string& path : {b2b6_path, std::string(PIPECAST_SOURCE_DIR "/examples/data/saas.json")}) {
        INFO(path);
        const model m = pipecast::load_model(path);
        std::ostringstream out;
        pipecast::write_model(out, m);
        const json j = m; // the ADL form: to_json(json&, const model&)
        CHECK(j == json::parse(out.str()));
        CHECK(j.dump(2) + "\n" == out.str()); // the same text, keys in the saved files' order
        const nlohmann::ordered_json o = m;    // ordered_json keeps that order too
        CHECK(o.dump(2) + "\n" == out.str());
        CHECK(j == pipecast::to_json(m)); // the function form still works
        CHECK(pipecast::model_from_json(j) == m);
        CHECK(pipecast::model_from_json(json::parse(o.dump())) == m);
        // a dwell alone
        const json d = m.graph.stages().front().branches.empty() ? json(m.graph.stages().front().dwell)
                                                                 : json(m.graph.stages().front().branches.front().dwell);
        CHECK(d.contains("dist"));
    }
}

} // namespace unit_model_io
