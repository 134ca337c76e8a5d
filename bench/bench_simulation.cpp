// Benchmarks of simulation.hpp: throughput in deal-paths per second (deals × paths / wall
// seconds) on b2b6 (10,000 deals, horizon 90), with arrivals, on synthetic books up to one
// million deals, and the naive baseline (single thread, std::mt19937_64, <random>, a Boost
// quantile per draw) on the same workload, so that one run shows the ratio.
//
//   ./build/bench/bench/bench_simulation --benchmark_format=json > bench_simulation.json
#include <pipecast/book_io.hpp>
#include <pipecast/model_io.hpp>
#include <pipecast/simulation.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <vector>

using namespace pipecast;

namespace {

const model& b2b6() {
    static const model m = load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
    return m;
}
const book& b2b6_book() {
    static const book b = load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", b2b6().graph);
    return b;
}

/// A synthetic book of n deals drawn from the model: stages in the proportions of the
/// b2b6 book, amounts from the deal-size distribution, ages a uniform fraction of a dwell.
book synthetic_book(std::size_t n) {
    const model& m = b2b6();
    std::vector<double> mix(m.graph.open_count(), 0.0);
    for (auto s : b2b6_book().stages()) mix[s] += 1.0;
    std::mt19937_64 rng(12345);
    std::discrete_distribution<std::size_t> stage(mix.begin(), mix.end());
    std::lognormal_distribution<double> amount(m.deal_size->log_mu(), m.deal_size->sigma());
    std::uniform_real_distribution<double> u(0.0, 1.0);
    book b(m.graph);
    b.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t s = stage(rng);
        const double t = quantile(m.graph.dwell(s), 0.999 * u(rng));
        b.add(std::to_string(i), s, std::round(amount(rng) * 100) / 100, t * u(rng));
    }
    return b;
}

/// The naive baseline: one thread, std::mt19937_64 and <random>, Boost.Math quantiles per
/// draw (the residual of the first stage, fresh dwells after), a linear search of the
/// transition row. Returns the won value of one path.
double naive_path(const stage_graph& g, const book& b, double horizon, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    double total = 0.0;
    for (std::size_t d = 0; d < b.size(); ++d) {
        std::size_t s = b.stages()[d];
        double t = quantile(residual(g.dwell(s), b.ages()[d]), unif(rng));
        while (t <= horizon) {
            const double u = unif(rng);
            double acc = 0.0;
            std::size_t next = g.size() - 1;
            for (std::size_t j = 0; j < g.size(); ++j)
                if (u < (acc += g.transition(s, j))) {
                    next = j;
                    break;
                }
            if (g.is_outcome(next)) {
                if (g.is_win(next)) total += b.amounts()[d];
                break;
            }
            s = next;
            t += quantile(g.dwell(s), unif(rng));
        }
    }
    return total;
}

/// Deal-paths per second of the naive baseline on b2b6 (measured once: one warm-up path,
/// then the best of 5 timings of 4 paths).
double naive_rate() {
    static const double rate = [] {
        std::mt19937_64 rng(1);
        double sink = naive_path(b2b6().graph, b2b6_book(), 90.0, rng), best = 0.0;
        for (int rep = 0; rep < 5; ++rep) {
            const auto start = std::chrono::steady_clock::now();
            for (int p = 0; p < 4; ++p) sink += naive_path(b2b6().graph, b2b6_book(), 90.0, rng);
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            best = std::max(best, 4.0 * static_cast<double>(b2b6_book().size()) / s);
        }
        benchmark::DoNotOptimize(sink);
        return best;
    }();
    return rate;
}

/// Sets the deal_paths rate counter; with `seconds` (the wall time of the loop) also the
/// ratio to the naive baseline, x_naive.
void set_counters(benchmark::State& state, std::uint64_t deal_paths, double seconds = 0.0) {
    state.counters["deal_paths"] =
        benchmark::Counter(static_cast<double>(deal_paths), benchmark::Counter::kIsRate);
    if (seconds > 0.0) state.counters["x_naive"] = static_cast<double>(deal_paths) / seconds / naive_rate();
}

/// b2b6: 10,000 deals, horizon 90, no arrivals. Args: paths, threads (0 = all cores).
void BM_SimulateB2B6(benchmark::State& state) {
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(0));
    o.threads = static_cast<unsigned>(state.range(1));
    (void)naive_rate();
    std::uint64_t dp = 0;
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        const simulation_result r = simulate(b2b6(), b2b6_book(), o);
        benchmark::DoNotOptimize(r.won_value.mean);
        dp += r.deal_paths;
        ++o.seed;
    }
    set_counters(state, dp, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}
BENCHMARK(BM_SimulateB2B6)->Args({1000, 0})->Args({4000, 0})->Args({4000, 1})->Args({4000, 2})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// b2b6 with its arrival process (40 new deals a day into Prospecting) over 90 days:
/// 3,600 arrivals a path on top of the 10,000 open deals. Arg: paths.
void BM_SimulateArrivals(benchmark::State& state) {
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(0));
    o.model_arrivals = true;
    std::uint64_t dp = 0, arrivals = 0;
    for (auto _ : state) {
        const simulation_result r = simulate(b2b6(), b2b6_book(), o);
        benchmark::DoNotOptimize(r.won_value.mean);
        dp += r.deal_paths;
        arrivals += r.arrival_deal_paths;
        ++o.seed;
    }
    set_counters(state, dp);
    state.counters["arrival_deal_paths"] =
        benchmark::Counter(static_cast<double>(arrivals), benchmark::Counter::kIsRate);
    state.counters["all_deal_paths"] =
        benchmark::Counter(static_cast<double>(dp + arrivals), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulateArrivals)->Arg(1000)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// Synthetic books drawn from b2b6: scaling in deals and paths. Args: deals, paths.
void BM_Simulate1MDeals(benchmark::State& state) {
    static std::vector<std::pair<std::size_t, book>> books;
    const auto n = static_cast<std::size_t>(state.range(0));
    const book* b = nullptr;
    for (const auto& [k, bk] : books)
        if (k == n) b = &bk;
    if (!b) b = &books.emplace_back(n, synthetic_book(n)).second;
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(1));
    std::uint64_t dp = 0;
    for (auto _ : state) {
        const simulation_result r = simulate(b2b6(), *b, o);
        benchmark::DoNotOptimize(r.won_value.mean);
        dp += r.deal_paths;
        ++o.seed;
    }
    set_counters(state, dp);
}
BENCHMARK(BM_Simulate1MDeals)
    ->Args({10000, 400})->Args({100000, 40})->Args({1000000, 4})
    ->Args({1000000, 8})->Args({1000000, 16})->Args({100000, 160})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// The naive baseline on b2b6 (single thread, mt19937_64 + Boost quantile per draw).
void BM_NaiveBaseline(benchmark::State& state) {
    std::mt19937_64 rng(7);
    std::uint64_t dp = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(naive_path(b2b6().graph, b2b6_book(), 90.0, rng));
        dp += b2b6_book().size();
    }
    set_counters(state, dp);
}
BENCHMARK(BM_NaiveBaseline)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

} // namespace

BENCHMARK_MAIN();
