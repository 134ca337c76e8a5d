// A tiny consumer of pipecast: builds a linear funnel and prints its win probabilities.
#include <pipecast/pipecast.hpp>
#include <iostream>

int main() {
    const auto g = pipecast::linear_funnel({"Lead", "Demo", "Close"}, {0.2, 0.5, 0.8}, {10.0, 20.0, 30.0});
    const auto a = pipecast::analyse(g);
    std::cout << "consumer ok " << a.win_probability(0) << '\n';
    return a.win_probability(0) > 0.19 && a.win_probability(0) < 0.21 ? 0 : 1;
}
