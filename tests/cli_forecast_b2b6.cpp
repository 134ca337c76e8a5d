// Acceptance check of `pipecast forecast --json` on the reference scenario: the CLI's
// weighted total equals Σ amount × P(win | stage), computed here independently of the
// library (own JSON walk of the transition rows, P(win) by iterating the jump chain,
// own CSV split), and the per-stage lines agree with the same independent numbers.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string run(const std::string& cmd) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    REQUIRE(pipe);
    std::string out;
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe.get())) out += buf.data();
    return out;
}

// P(eventually won | stage) by value iteration on the jump chain: p <- P p until it stops moving.
std::map<std::string, double> win_probabilities(const nlohmann::json& model) {
    const std::string won = model["outcomes"]["won"];
    std::map<std::string, double> p;
    for (const auto& s : model["stages"]) p[s["name"]] = 0.0;
    for (int it = 0; it < 100000; ++it) {
        double change = 0.0;
        for (const auto& [from, row] : model["transitions"].items()) {
            double v = 0.0;
            for (const auto& [to, q] : row.items())
                v += q.get<double>() * (to == won ? 1.0 : (p.count(to) ? p[to] : 0.0));
            change = std::max(change, std::abs(v - p[from]));
            p[from] = v;
        }
        if (change < 1e-15) break;
    }
    return p;
}

} // namespace

TEST_CASE("cli forecast b2b6: weighted total equals an independent sum") {
    const std::string model_path = PIPECAST_SHARED_DIR "/scenarios/b2b6.json";
    const std::string deals_path = PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv";
    std::ifstream model_in(model_path);
    REQUIRE(model_in);
    const auto model = nlohmann::json::parse(model_in);
    const auto pwin = win_probabilities(model);

    std::ifstream deals_in(deals_path);
    REQUIRE(deals_in);
    std::string line;
    auto next_line = [&] {
        if (!std::getline(deals_in, line)) return false;
        if (!line.empty() && line.back() == '\r') line.pop_back(); // CRLF files
        return true;
    };
    REQUIRE(next_line());
    REQUIRE(line == "id,stage,amount,age");
    double expected = 0.0;
    std::map<std::string, double> by_stage;
    std::size_t n = 0;
    while (next_line()) {
        std::stringstream ss(line);
        std::string id, stage, amount;
        std::getline(ss, id, ',');
        std::getline(ss, stage, ',');
        std::getline(ss, amount, ',');
        REQUIRE(pwin.count(stage) == 1);
        const double w = std::stod(amount) * pwin.at(stage);
        expected += w;
        by_stage[stage] += w;
        ++n;
    }
    REQUIRE(n == 10000);

    const auto out = nlohmann::json::parse(run(std::string("\"") + PIPECAST_CLI + "\" forecast --model \"" + model_path +
                                               "\" --deals \"" + deals_path + "\" --json"));
    const double total = out.at("weighted_total").get<double>();
    CHECK(total == doctest::Approx(expected).epsilon(1e-12));
    REQUIRE(out.at("by_stage").size() == by_stage.size());
    for (const auto& s : out.at("by_stage")) {
        const std::string name = s.at("stage");
        CHECK(s.at("win_probability").get<double>() == doctest::Approx(pwin.at(name)).epsilon(1e-12));
        CHECK(s.at("weighted").get<double>() == doctest::Approx(by_stage.at(name)).epsilon(1e-12));
    }
}
