// The check's control: a unit that calls what lazy/umbrella.cpp must not compile, so
// tests/cmake/lazy_headers.cmake can show that its patterns find those symbols when they are
// there (a check that found nothing anywhere would prove nothing).
#include <pipecast/pipecast.hpp>

int main() {
    using namespace pipecast;
    const stage_graph g = linear_funnel({"Lead", "Demo"}, {0.5, 0.4}, {10.0, 20.0});
    const model m{g};
    book b(g);
    b.add("d1", 0, 1000.0, 0.0);
    const double w = analyse(g).win_probability(0);
    const double c = cdf(dwell_distribution::gamma(2.0, 10.0), 5.0);
    const double f = weighted_forecast(g, b).weighted_total;
    const double s = simulate(m, b).won_value.mean;
    return w + c + f + s > 0.0 ? 0 : 1;
}
