// A tiny consumer of pipecast: builds a linear funnel and prints its win probabilities;
// simulates a two-deal book on two threads (pipecast::pipecast brings Threads::Threads: this
// project's CMakeLists.txt does not name it) and serialises the result (results_json.hpp).
#include <pipecast/pipecast.hpp>
#include <cmath>
#include <iostream>

int main() {
    const auto g = pipecast::linear_funnel({"Lead", "Demo", "Close"}, {0.2, 0.5, 0.8}, {10.0, 20.0, 30.0});
    const auto a = pipecast::analyse(g);
    std::cout << "consumer ok " << a.win_probability(0) << '\n';
    pipecast::book b(g);
    b.add("d1", 0, 1000.0, 0.0);
    b.add("d2", 2, 2000.0, 0.0);
    pipecast::simulation_options o;
    o.paths = 2000;
    o.threads = 2;
    const auto r = pipecast::simulate(g, b, o);
    const nlohmann::ordered_json j = r;
    std::cout << "simulated mean " << j["won_value"]["mean"] << '\n';
    const double expected = 1000.0 * a.win_probability(0) + 2000.0 * a.win_probability(2);
    return a.win_probability(0) > 0.19 && a.win_probability(0) < 0.21 && j["paths"] == 2000 &&
                   std::abs(r.won_value.mean - expected) < 5.0 * r.won_value.standard_error + 1e-9
               ? 0
               : 1;
}
