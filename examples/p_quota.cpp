// Tutorial 4: simulate the book and print P(quota).
// Monte Carlo paths of the open book over the next 90 days give the distribution of the
// value won: its P10/P50/P90 and the chance of reaching the quota. Deals are independent
// here, so the exact distribution (a sum of independent Bernoulli amounts) gives the same
// P(quota) without noise; the Monte Carlo estimate should lie within a few of its standard
// errors, sqrt(p (1 - p) / paths), of it.
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/simulation/exact_distribution.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <cmath>
#include <cstdio>

int main() {
    using namespace pipecast;
    const model m = load_model(PIPECAST_EXAMPLES_DIR "/data/saas.json");
    const book deals = load_book_csv(PIPECAST_EXAMPLES_DIR "/data/saas_deals.csv", m.graph);
    const double quota = 2100000.0;

    simulation_options o;
    o.horizon = 90.0;
    o.paths = 40000;
    o.seed = 2026;
    o.quotas = {quota};
    const simulation_result sim = simulate(m, deals, o);
    const exact_result exact = exact_distribution(m, deals, o);

    const double p = sim.won_value.p_quota[0];
    const double se = std::sqrt(p * (1.0 - p) / static_cast<double>(sim.paths));
    const double q = exact.won_value.p_quota[0];
    std::printf("Won within 90 days (%zu paths): mean %.0f, P10 %.0f, P50 %.0f, P90 %.0f %s\n", sim.paths,
                sim.won_value.mean, sim.won_value.quantiles[0], sim.won_value.quantiles[1], sim.won_value.quantiles[2],
                m.currency.c_str());
    std::printf("P(won >= %.0f within 90 days): %.4f +/- %.4f (simulated)\n", quota, p, se);
    std::printf("P(won >= %.0f within 90 days): %.4f (exact distribution)\n", quota, q);
    std::printf("difference: %.1f standard errors\n", std::abs(p - q) / se);
}
