// Benchmarks of exact_distribution.hpp: the exact distribution of the value won within 90
// days by synthetic b2b6 books of 10,000 to 1,000,000 deals (stages in the proportions of the
// b2b6 book, lognormal amounts from the model, ages a uniform fraction of a dwell), split
// into the whole call (per-deal probabilities + lattice) and the lattice part alone
// (exact_sum on the per-deal probabilities), the whole call at 1 and 2 threads, with a
// correlation shock (24 quadrature nodes), and the naive baseline beside them: a Monte Carlo
// run of 1,000 paths, whose quantiles still carry about 3% of an sd of noise. CPU time is the
// process's (all threads).
//
//   ./build/bench/bench/bench_exact --benchmark_format=json > bench_exact.json
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/simulation/exact_distribution.hpp>
// GCC 12's -Wrestrict misfires on a string concatenation inlined from model_io.hpp into this
// file (GCC bug 105329); the warning is silenced for that header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <pipecast/io/model_json.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <pipecast/simulation/simulation.hpp>

#include <benchmark/benchmark.h>

#include "../tests/book_fixtures.hpp"

#include <cmath>
#include <vector>

using namespace pipecast;

namespace {

const model& b2b6() {
    static const model m = load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
    return m;
}

/// A synthetic book of n deals drawn from the model: stages in the proportions of the b2b6
/// book, amounts from its deal size, ages a uniform fraction of a dwell (tests/book_fixtures.hpp).
book synthetic_book(std::size_t n) {
    const model& m = b2b6();
    static const book real = load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", m.graph);
    pipecast_fixtures::book_recipe r;
    r.stage_weights = pipecast_fixtures::stage_mix(real, m.graph.open_count());
    r.amount_log_mu = m.deal_size->log_mu();
    r.amount_sigma = m.deal_size->sigma();
    r.seed = 12345;
    return pipecast_fixtures::synthetic_book(m.graph, n, r);
}

const book& cached_book(std::size_t n) {
    static std::vector<std::pair<std::size_t, book>> cache;
    for (const auto& [k, b] : cache)
        if (k == n) return b;
    cache.emplace_back(n, synthetic_book(n));
    return cache.back().second;
}

simulation_options options90() {
    simulation_options o;
    o.horizon = 90.0;
    o.quotas = {1.0e7};
    return o;
}

/// The whole call: per-deal P(won within 90) from the period forecast, then the lattice;
/// the second argument is the thread count (the result is the same at any count).
void BM_ExactDistribution(benchmark::State& state) {
    const book& b = cached_book(static_cast<std::size_t>(state.range(0)));
    simulation_options o = options90();
    o.threads = static_cast<unsigned>(state.range(1));
    exact_result r;
    for (auto _ : state) {
        r = exact_distribution(b2b6(), b, o);
        benchmark::DoNotOptimize(r.won_value.quantiles.data());
    }
    state.counters["deals/s"] = benchmark::Counter(static_cast<double>(b.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["cells"] = static_cast<double>(r.cells);
    state.counters["error_bound_over_sd"] = r.error_bound / r.won_value.sd;
}
BENCHMARK(BM_ExactDistribution)
    ->ArgsProduct({{10000, 100000, 1000000}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

/// The lattice alone: Σ a_i B_i from given probabilities (the period forecast done once).
void BM_ExactSum(benchmark::State& state) {
    const book& b = cached_book(static_cast<std::size_t>(state.range(0)));
    period_forecast_options po;
    po.per_deal = true;
    const std::vector<double> p = period_forecast(b2b6().graph, b, 90.0, po).deal_probability;
    simulation_options o = options90();
    o.threads = 2;
    std::size_t near_half = 0;
    for (double x : p) near_half += std::abs(x - 0.5) < 0.00025 ? 1 : 0;
    for (auto _ : state) {
        const exact_summary s = exact_sum(b.amounts(), p, o);
        benchmark::DoNotOptimize(s.quantiles.data());
    }
    state.counters["deals/s"] = benchmark::Counter(static_cast<double>(b.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["direct_deals"] = static_cast<double>(near_half);
}
BENCHMARK(BM_ExactSum)->RangeMultiplier(10)->Range(10000, 1000000)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

/// With a correlation shock σ = 0.5: 24 Gauss–Hermite nodes, each a shocked model.
void BM_ExactDistributionShock(benchmark::State& state) {
    const book& b = cached_book(static_cast<std::size_t>(state.range(0)));
    simulation_options o = options90();
    o.correlation = 0.5;
    o.threads = 2;
    for (auto _ : state) {
        const exact_result r = exact_distribution(b2b6(), b, o);
        benchmark::DoNotOptimize(r.won_value.quantiles.data());
    }
    state.counters["deals/s"] = benchmark::Counter(static_cast<double>(b.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ExactDistributionShock)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

/// The naive baseline: Monte Carlo with 1,000 paths (all cores) on the same book.
void BM_MonteCarlo1000Paths(benchmark::State& state) {
    const book& b = cached_book(static_cast<std::size_t>(state.range(0)));
    simulation_options o = options90();
    o.paths = 1000;
    for (auto _ : state) {
        const simulation_result r = simulate(b2b6(), b, o);
        benchmark::DoNotOptimize(r.won_value.quantiles.data());
    }
    state.counters["deals/s"] = benchmark::Counter(static_cast<double>(b.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MonteCarlo1000Paths)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(1);

} // namespace

BENCHMARK_MAIN();
