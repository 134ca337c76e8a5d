// Tutorial 2: forecast a CSV book by calendar quarter.
// The period forecast gives E[value won within h days] = sum of amount x P(won within h | stage,
// age). The value expected in a quarter is the difference between the horizons of its end
// and its start, counted from the as-of date. A Monte Carlo run with the quarter ends as
// sub-periods checks each cumulative figure (it should lie within a few standard errors).
// calendar_forecast() (<pipecast/forecast/calendar.hpp>) does the same for months, quarters or
// years, fiscal years included, with the value already won and per-owner quotas.
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    using namespace pipecast;
    using namespace std::chrono;
    const model m = load_model(PIPECAST_EXAMPLES_DIR "/data/saas.json");
    const book deals = load_book_csv(PIPECAST_EXAMPLES_DIR "/data/saas_deals.csv", m.graph);

    // The rest of this calendar year from the as-of date, quarter by quarter (days = the
    // model's time unit).
    const year_month_day as_of{year{2026}, month{2}, day{15}};
    std::vector<double> ends;
    std::vector<int> quarters;
    for (unsigned q = 1; q <= 4; ++q) {
        const sys_days quarter_end = year{2026} / month{3 * q} / std::chrono::last;
        const double d = static_cast<double>((quarter_end - sys_days{as_of}).count());
        if (d > 0.0) {
            ends.push_back(d);
            quarters.push_back(static_cast<int>(q));
        }
    }

    simulation_options mc;
    mc.horizon = ends.back();
    mc.sub_period_ends = ends;
    mc.paths = 20000;
    mc.seed = 7;
    const simulation_result sim = simulate(m, deals, mc);

    std::printf("As of 2026-02-15, %zu open deals, %s\n", deals.size(), m.currency.c_str());
    std::printf("%-8s %5s %14s %14s %20s\n", "quarter", "days", "expected", "cumulative", "simulated (+/- se)");
    double before = 0.0, worst = 0.0;
    for (std::size_t i = 0; i < ends.size(); ++i) {
        const double cumulative = period_forecast(m.graph, deals, ends[i]).expected;
        const outcome_summary& s = sim.sub_period_value[i];
        worst = std::max(worst, std::abs(s.mean - cumulative) / s.standard_error);
        std::printf("2026-Q%d %5.0f %14.0f %14.0f %12.0f +/- %4.0f\n", quarters[i], ends[i], cumulative - before,
                    cumulative, s.mean, s.standard_error);
        before = cumulative;
    }
    const double eventually = weighted_forecast(m.graph, deals).weighted_total;
    std::printf("after 2026 %19.0f %14.0f\n", eventually - before, eventually);
    std::printf("Monte Carlo check: largest deviation %.1f standard errors\n", worst);
}
