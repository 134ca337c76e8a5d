// Tutorial 1: a linear funnel from stage-to-stage conversion rates.
// Four stages, each converting to the next (the last to Won) or lost, with exponential
// dwell times. The chance that a deal in a stage is eventually won is the product of the
// conversions from there on (0.50 x 0.60 x 0.80 x 0.75 = 0.18 from Lead); pipecast gets it
// from the absorbing Markov chain, which also gives the expected time to close.
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <cstdio>

int main() {
    using namespace pipecast;
    const stage_graph g = linear_funnel({"Lead", "Demo", "Proposal", "Negotiation"}, {0.50, 0.60, 0.80, 0.75},
                                        std::vector<double>{10.0, 20.0, 30.0, 15.0}, funnel_rates::conversion);
    const absorption_analysis a = analyse(g);
    std::printf("%-12s %8s %16s\n", "stage", "P(win)", "E[days to close]");
    for (std::size_t s = 0; s < g.open_count(); ++s) {
        const auto i = static_cast<Eigen::Index>(s);
        std::printf("%-12s %8.4f %16.2f\n", g.name(s).c_str(), a.win_probability(i), a.mean_time_to_close(i));
    }
}
