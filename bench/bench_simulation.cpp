// Benchmarks of simulation.hpp: throughput in deal-paths per second (deals × paths / wall
// seconds) on b2b6 (10,000 deals, horizon 90), with arrivals, on synthetic books up to one
// million deals, and the naive baseline (single thread, std::mt19937_64, <random>, a Boost
// quantile per draw) on the same workload, so that one run shows the ratio. The same on a
// branched model: the crm4 generator's spec (../shared/scenarios/crm4_truth.json: per-edge
// dwells and a stalled share) with a 10,000-deal steady-state book generated here, and a
// model fitted from crm4_history.csv (fit_history's defaults, as `pipecast fit`) with the
// deals open at the log's end and the fitted per-stage shock σ. The Philox kernels (SSE2
// 4-wide, AVX2 8-wide) side by side; 1,000 what-ifs on one prepared engine against 1,000
// simulate() calls.
//
//   ./build/bench/bench/bench_simulation --benchmark_format=json > bench_simulation.json
#include <pipecast/data/history.hpp>
#include <pipecast/data/history_view.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <string>
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

// ---- crm4: a branched model ------------------------------------------------------------

/// The crm4 generator's spec as a branched graph: a stage with stall s and edges
/// {to, p, dwell} has branches (1 − s)·p each plus {Lost, s, exponential mean 300, stalled}.
const stage_graph& crm4() {
    static const stage_graph g = [] {
        std::ifstream in(PIPECAST_SHARED_DIR "/scenarios/crm4_truth.json");
        const nlohmann::json spec = nlohmann::json::parse(in).at("spec");
        auto dwell = [](const nlohmann::json& d) {
            const std::string f = d.at("dist");
            if (f == "gamma") return dwell_distribution::gamma(d.at("shape"), d.at("mean"));
            if (f == "lognormal") return dwell_distribution::lognormal(d.at("mean"), d.at("sd"));
            return dwell_distribution::exponential(d.at("mean"));
        };
        std::vector<open_stage> stages;
        for (const auto& s : spec.at("stages")) {
            const double stall = s.at("stall");
            std::vector<stage_branch> br;
            for (const auto& e : s.at("edges"))
                br.push_back({e.at("to"), (1.0 - stall) * e.at("p").get<double>(), dwell(e.at("dwell")), false});
            br.push_back({"Lost", stall, dwell(spec.at("cleanup")), true});
            stages.push_back({s.at("name"), dwell_distribution::exponential(1.0), br});
        }
        return stage_graph::from_rows(std::move(stages), {{"Won", true}, {"Lost", false}}, {});
    }();
    return g;
}

/// A steady-state crm4 book of n open deals (seed 2024): deals enter Qualification at times
/// uniform in [−1500, 0] days, run through the model, and those still open at day 0 are
/// kept with their stage and age in it (so stalled deals and old deals appear as often as in
/// a real pipeline); amounts from the spec's price list times a discount in [0.85, 1].
const book& crm4_book() {
    static const book b = [] {
        const stage_graph& g = crm4();
        const stage_graph& lg = g.latent();
        std::mt19937_64 rng(2024);
        std::uniform_real_distribution<double> unif(0.0, 1.0);
        auto u = [&] { return std::clamp(unif(rng), 1e-12, 1.0 - 1e-12); };
        auto pick = [&](std::size_t row) {
            const double x = u();
            double acc = 0.0;
            for (std::size_t j = 0; j < lg.size(); ++j)
                if (x < (acc += lg.transition(row, j))) return j;
            return lg.size() - 1;
        };
        const double prices[] = {1200, 3500, 8000, 20000, 45000}, weights[] = {0.35, 0.30, 0.20, 0.10, 0.05};
        std::discrete_distribution<int> price(std::begin(weights), std::end(weights));
        book out(g);
        out.reserve(10000);
        const std::size_t entry = g.latent_first(0);
        while (out.size() < 10000) {
            double t = -1500.0 * u();
            // Enter Qualification: its branch by π.
            double x = u(), acc = 0.0;
            std::size_t l = entry;
            for (std::size_t k = 0; k < g.latent_count(0); ++k)
                if (x < (acc += g.branches(0)[k].probability)) {
                    l = entry + k;
                    break;
                }
            for (;;) {
                const double end = t + quantile(lg.dwell(l), u());
                if (end > 0.0) {
                    std::string id = "c"; // not "c" + to_string(): GCC 12's -Wrestrict false positive
                    id += std::to_string(out.size());
                    out.add(id, g.stage_of_latent(l),
                            std::round(prices[price(rng)] * (0.85 + 0.15 * unif(rng)) * 100.0) / 100.0, -t);
                    break;
                }
                t = end;
                const std::size_t next = pick(l);
                if (lg.is_outcome(next)) break;
                l = next;
            }
        }
        return out;
    }();
    return b;
}

/// The naive baseline on a branched model: per deal P(branch | age) by Boost.Math survival
/// functions, the branch by a linear search, the residual by a Boost quantile, then each
/// later stage's branch by π and a Boost quantile per dwell.
double naive_path_branched(const stage_graph& g, const book& b, double horizon, std::mt19937_64& rng) {
    const stage_graph& lg = g.latent();
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    std::vector<double> w;
    double total = 0.0;
    for (std::size_t d = 0; d < b.size(); ++d) {
        const std::size_t s = b.stages()[d];
        w.resize(g.latent_count(s));
        const std::size_t first = g.branch_weights(s, b.ages()[d], w);
        double x = unif(rng), acc = 0.0;
        std::size_t l = first + w.size() - 1;
        for (std::size_t k = 0; k < w.size(); ++k)
            if (x < (acc += w[k])) {
                l = first + k;
                break;
            }
        double t = quantile(residual(lg.dwell(l), b.ages()[d]), std::min(unif(rng), 1.0 - 1e-16));
        while (t <= horizon) {
            const double v = unif(rng);
            double a2 = 0.0;
            std::size_t next = lg.size() - 1;
            for (std::size_t j = 0; j < lg.size(); ++j)
                if (v < (a2 += lg.transition(l, j))) {
                    next = j;
                    break;
                }
            if (lg.is_outcome(next)) {
                if (lg.is_win(next)) total += b.amounts()[d];
                break;
            }
            l = next;
            t += quantile(lg.dwell(l), std::min(unif(rng), 1.0 - 1e-16));
        }
    }
    return total;
}

/// Deal-paths per second of the naive baseline on the crm4 book (as naive_rate()).
double naive_rate_crm4() {
    static const double rate = [] {
        std::mt19937_64 rng(1);
        double sink = naive_path_branched(crm4(), crm4_book(), 90.0, rng), best = 0.0;
        for (int rep = 0; rep < 5; ++rep) {
            const auto start = std::chrono::steady_clock::now();
            for (int p = 0; p < 2; ++p) sink += naive_path_branched(crm4(), crm4_book(), 90.0, rng);
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            best = std::max(best, 2.0 * static_cast<double>(crm4_book().size()) / s);
        }
        benchmark::DoNotOptimize(sink);
        return best;
    }();
    return rate;
}

/// crm4 (branched, 15 latent states): 10,000 steady-state deals, horizon 90, no arrivals.
/// Args: paths, threads (0 = all cores), shock σ × 100 (0: none).
void BM_SimulateCRM4(benchmark::State& state) {
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(0));
    o.threads = static_cast<unsigned>(state.range(1));
    o.correlation = static_cast<double>(state.range(2)) / 100.0;
    (void)crm4_book();
    (void)naive_rate_crm4();
    std::uint64_t dp = 0;
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        const simulation_result r = simulate(crm4(), crm4_book(), o);
        benchmark::DoNotOptimize(r.won_value.mean);
        dp += r.deal_paths;
        ++o.seed;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.counters["deal_paths"] = benchmark::Counter(static_cast<double>(dp), benchmark::Counter::kIsRate);
    state.counters["x_naive"] = static_cast<double>(dp) / seconds / naive_rate_crm4();
}
BENCHMARK(BM_SimulateCRM4)->Args({1000, 0, 0})->Args({4000, 0, 0})->Args({4000, 1, 0})->Args({4000, 0, 35})->Args({4000, 1, 35})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// crm4 fitted from its history (fit_history with its defaults: branched stages, a stalled
/// share, AIC dwells, the estimated overdispersion) and the deals open at the log's end.
struct crm4_fit_case {
    model m;
    book deals;
};
const crm4_fit_case& crm4_fit() {
    static const crm4_fit_case c = [] {
        const visit_log log = load_history(PIPECAST_SHARED_DIR "/scenarios/crm4_history.csv");
        model m = to_model(fit_history(log), "crm4_fit");
        book b = book_at(log, m.graph, log.end_time).deals;
        return crm4_fit_case{std::move(m), std::move(b)};
    }();
    return c;
}

/// The crm4 fit and its open book, horizon 90. Args: paths, threads (0 = all cores),
/// shock (1: the fit's per-stage σ, as `pipecast simulate` uses by default; 0: none).
void BM_SimulateCRM4Fit(benchmark::State& state) {
    const crm4_fit_case& c = crm4_fit();
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(0));
    o.threads = static_cast<unsigned>(state.range(1));
    if (state.range(2) != 0) o.stage_correlation = c.m.overdispersion_by_stage();
    std::uint64_t dp = 0;
    for (auto _ : state) {
        const simulation_result r = simulate(c.m, c.deals, o);
        benchmark::DoNotOptimize(r.won_value.mean);
        dp += r.deal_paths;
        ++o.seed;
    }
    set_counters(state, dp);
    state.counters["deals"] = static_cast<double>(c.deals.size());
    double sigma = 0.0;
    for (double x : o.stage_correlation) sigma = std::max(sigma, x);
    state.counters["max_sigma"] = sigma;
}
BENCHMARK(BM_SimulateCRM4Fit)->Args({4000, 0, 1})->Args({4000, 0, 0})->Args({4000, 1, 1})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// b2b6 (10,000 deals, horizon 90) with the Philox kernel pinned. Args: paths, threads,
/// kernel (1: SSE2 4-wide, 2: AVX2 8-wide, 3: AVX-512 16-wide Philox + AVX-512 sweep, 0:
/// automatic). The same results on every kernel.
void BM_SimulateB2B6Kernel(benchmark::State& state) {
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(0));
    o.threads = static_cast<unsigned>(state.range(1));
    o.philox_kernel = static_cast<philox_isa>(state.range(2));
    if (!detail::philox_isa_available(o.philox_kernel)) {
        state.SkipWithError("kernel not available on this CPU");
        return;
    }
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
BENCHMARK(BM_SimulateB2B6Kernel)->Args({4000, 0, 1})->Args({4000, 0, 2})->Args({4000, 0, 3})->Args({4000, 1, 1})
    ->Args({4000, 1, 2})->Args({4000, 1, 3})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// The same on crm4 (spec, steady-state book). Args: paths, threads, kernel.
void BM_SimulateCRM4Kernel(benchmark::State& state) {
    simulation_options o;
    o.horizon = 90;
    o.paths = static_cast<std::size_t>(state.range(0));
    o.threads = static_cast<unsigned>(state.range(1));
    o.philox_kernel = static_cast<philox_isa>(state.range(2));
    if (!detail::philox_isa_available(o.philox_kernel)) {
        state.SkipWithError("kernel not available on this CPU");
        return;
    }
    (void)crm4_book();
    std::uint64_t dp = 0;
    for (auto _ : state) {
        const simulation_result r = simulate(crm4(), crm4_book(), o);
        benchmark::DoNotOptimize(r.won_value.mean);
        dp += r.deal_paths;
        ++o.seed;
    }
    set_counters(state, dp);
}
BENCHMARK(BM_SimulateCRM4Kernel)->Args({4000, 0, 1})->Args({4000, 0, 2})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// 1,000 what-ifs on b2b6's 10,000 deals: horizons 30..120 days × shock σ in {0, 0.2, 0.4}
/// × seeds, 20 paths each (200,000 deal-paths a what-if), two threads. Arg: 1 = one prepared
/// simulation_engine for all (tables and per-deal start data built once), 0 = a simulate()
/// call each (rebuilding them every time). Counter: what-ifs a second.
void BM_WhatIfSweep(benchmark::State& state) {
    const bool prepared = state.range(0) != 0;
    std::vector<simulation_options> sweep(1000);
    for (std::size_t i = 0; i < sweep.size(); ++i) {
        simulation_options& o = sweep[i];
        o.horizon = 30.0 + 90.0 * static_cast<double>(i % 10) / 9.0;
        o.correlation = 0.2 * static_cast<double>((i / 10) % 3);
        o.seed = 1 + i;
        o.paths = 20;
        o.threads = 0;
    }
    std::uint64_t runs = 0, dp = 0;
    double sink = 0.0;
    for (auto _ : state) {
        if (prepared) {
            const simulation_engine e(b2b6(), b2b6_book());
            for (const simulation_options& o : sweep) {
                const simulation_result r = e.run(o);
                sink += r.won_value.mean;
                dp += r.deal_paths;
            }
        } else {
            for (const simulation_options& o : sweep) {
                const simulation_result r = simulate(b2b6(), b2b6_book(), o);
                sink += r.won_value.mean;
                dp += r.deal_paths;
            }
        }
        runs += sweep.size();
    }
    benchmark::DoNotOptimize(sink);
    state.counters["what_ifs"] = benchmark::Counter(static_cast<double>(runs), benchmark::Counter::kIsRate);
    state.counters["deal_paths"] = benchmark::Counter(static_cast<double>(dp), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WhatIfSweep)->Arg(1)->Arg(0)->Iterations(1)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

/// The naive baseline on the crm4 book (single thread, mt19937_64 + Boost per draw).
void BM_NaiveBaselineCRM4(benchmark::State& state) {
    std::mt19937_64 rng(7);
    std::uint64_t dp = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(naive_path_branched(crm4(), crm4_book(), 90.0, rng));
        dp += crm4_book().size();
    }
    set_counters(state, dp);
}
BENCHMARK(BM_NaiveBaselineCRM4)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

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
