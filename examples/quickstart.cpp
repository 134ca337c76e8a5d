// Quickstart: forecast a book of open deals on a pipeline model (the README example).
#include <pipecast/pipecast.hpp>

#include <iostream>

int main() {
    const auto model = pipecast::load_model(PIPECAST_EXAMPLES_DIR "/data/saas.json");
    const auto deals = pipecast::load_book_csv(PIPECAST_EXAMPLES_DIR "/data/saas_deals.csv", model.graph);
    const auto forecast = pipecast::weighted_forecast(model.graph, deals);    // sum of amount x P(win)
    const auto next_90 = pipecast::period_forecast(model.graph, deals, 90.0); // won within 90 days
    pipecast::simulation_options mc;                                         // how sure are we?
    mc.horizon = 90.0;
    mc.paths = 20000;
    const auto sim = pipecast::simulate(model, deals, mc).won_value;         // Monte Carlo, 20,000 paths
    std::cout.precision(0);
    std::cout << std::fixed << "Weighted forecast:  " << forecast.weighted_total << ' ' << model.currency << '\n'
              << "Won within 90 days: " << next_90.expected << " (simulated " << sim.mean << " +/- "
              << sim.standard_error << ")\n"
              << "P10 / P50 / P90:    " << sim.quantiles[0] << " / " << sim.quantiles[1] << " / " << sim.quantiles[2]
              << '\n';
}
