// Tutorial 6: a what-if with common random numbers.
// What is it worth to lift Proposal's conversion from 80% to 90%? simulate_difference() runs
// both models on the same random numbers (the same seed drives the same deal, path and stage
// visit in both), so the per-path difference has a far smaller standard error than two
// independent runs would. All dwells here are exponential, so the period forecast is exact
// and gives the true expected difference to check against.
#include <pipecast/data/book.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/model/stage_graph.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <cmath>
#include <cstdio>
#include <string>

int main() {
    using namespace pipecast;
    const std::vector<double> days{10.0, 20.0, 30.0, 15.0};
    const std::vector<std::string> names{"Lead", "Demo", "Proposal", "Negotiation"};
    const stage_graph base = linear_funnel(names, {0.50, 0.60, 0.80, 0.75}, days, funnel_rates::conversion);
    const stage_graph variant = linear_funnel(names, {0.50, 0.60, 0.90, 0.75}, days, funnel_rates::conversion);
    book deals(base);
    for (int i = 0; i < 400; ++i) {
        std::string id = "D";
        id += std::to_string(i);
        deals.add(id, static_cast<std::size_t>(i % 4), 5000.0 + 250.0 * (i % 40), 0.5 * (i % 20));
    }
    simulation_options o;
    o.horizon = 90.0;
    o.paths = 20000;
    o.seed = 11;
    const simulation_difference d = simulate_difference(base, variant, deals, o);

    const double exact = period_forecast(variant, deals, 90.0).expected - period_forecast(base, deals, 90.0).expected;
    const double se_independent =
        std::sqrt(d.base.won_value.standard_error * d.base.won_value.standard_error +
                  d.variant.won_value.standard_error * d.variant.won_value.standard_error);
    std::printf("won within 90 days: base %.0f, variant %.0f\n", d.base.won_value.mean, d.variant.won_value.mean);
    std::printf("difference: %.0f +/- %.0f (common random numbers; independent runs: +/- %.0f)\n", d.difference.mean,
                d.difference.standard_error, se_independent);
    std::printf("common random numbers cut the standard error %.1fx (correlation of the runs %.3f)\n",
                se_independent / d.difference.standard_error, d.correlation);
    std::printf("exact expected difference: %.0f; deviation %.1f standard errors\n", exact,
                std::abs(d.difference.mean - exact) / d.difference.standard_error);
}
