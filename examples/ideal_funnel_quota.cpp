// Tutorial 3: back-solve the ideal funnel for a quota.
// To win 900,000 a quarter (90 days) with deals of 20,000 the team must win 45 deals a
// quarter. With P(win | Lead) = 0.18 that takes 45 / 0.18 = 250 new leads a quarter; each
// stage then sees 250 times the conversions before it, and by Little's law holds
// (deals entering per period) x (mean days in the stage) / (days in the period) at any time.
#include <pipecast/funnel/funnel.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <cstdio>

int main() {
    using namespace pipecast;
    const stage_graph g = linear_funnel({"Lead", "Demo", "Proposal", "Negotiation"}, {0.50, 0.60, 0.80, 0.75},
                                        std::vector<double>{10.0, 20.0, 30.0, 15.0}, funnel_rates::conversion);
    funnel_target t;
    t.quota = 900000.0;
    t.period = 90.0;
    t.deal_size = 20000.0;
    const ideal_funnel_result f = ideal_funnel(g, t);
    std::printf("deals to win per period: %.2f\n", f.deals_to_win);
    std::printf("P(win | entry):          %.4f\n", f.entry_win_probability);
    std::printf("new deals per period:    %.2f\n", f.new_deals_per_period);
    std::printf("%-12s %10s %10s %14s\n", "stage", "entering", "in stage", "in-stage value");
    for (const funnel_stage& s : f.stages)
        std::printf("%-12s %10.2f %10.2f %14.0f\n", s.name.c_str(), s.entering_per_period, s.in_stage, s.in_stage_value);
    std::printf("pipeline: %.2f deals worth %.0f\n", f.pipeline_count, f.pipeline_value);
}
