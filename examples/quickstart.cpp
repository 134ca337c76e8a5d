// Quickstart: forecast a book of open deals on a pipeline model (the README example).
#include <pipecast/pipecast.hpp>
#include <iomanip>
#include <iostream>

int main() {
    const auto model = pipecast::load_model(PIPECAST_EXAMPLES_DIR "/data/saas.json");
    const auto deals = pipecast::load_book_csv(PIPECAST_EXAMPLES_DIR "/data/saas_deals.csv", model.graph);
    const double weighted = pipecast::weighted_forecast(model.graph, deals).weighted_total; // Σ amount × P(win)
    const double next_90 = pipecast::period_forecast(model.graph, deals, 90.0).expected;    // won within 90 days
    pipecast::simulation_options mc;                                                        // how sure are we?
    mc.horizon = 90.0;
    mc.paths = 20000;
    const auto sim = pipecast::simulate(model, deals, mc).won_value;
    std::cout << std::fixed << std::setprecision(0) << "Weighted forecast:  " << weighted << ' ' << model.currency
              << "\nWon within 90 days: " << next_90 << " (simulated " << sim.mean << " +/- " << sim.standard_error
              << ")\nP10 / P50 / P90:    " << sim.quantiles[0] << " / " << sim.quantiles[1] << " / " << sim.quantiles[2] << '\n';
}
