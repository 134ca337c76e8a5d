// pipecast — benchmarks of large stage graphs (CRMs with many pipelines and products).
//
//   BM_LoadModel/M      model_from_json of an M-stage model: parse, build and validate the
//                       graph (row checks, reachability of an outcome by graph search)
//   BM_Analyse/M        absorption analysis (win probabilities, times to close and to a win,
//                       expected visits): sparse LU from 256 open stages on
//   BM_AnalyseDense/M   the dense baseline of the same (dense LU and inverse, O(M³))
//   BM_PeriodForecast/M expected value won within 90 days of a 50-deal book (renewal table)
//   BM_WonByExact/M     P(won by 90 days) of the all-exponential variant (uniformization)
//   BM_Simulate/M       Monte Carlo of the 50-deal book, 1,000 paths, horizon 90 days
//
// The model: M stages in pipelines of 50 (forward 0.80, skip 0.05, back 0.03, disqualified
// 0.02, lost the rest; the last stage of a pipeline wins 0.70), dwells cycling through
// exponential, gamma, lognormal and Weibull with means in [5, 25] days (fixed seed).
// M = 2,000 always; M = 10,000 too when the environment sets PIPECAST_BENCH_LARGE=1 (the
// dense transition matrix alone is 800 MB; BM_AnalyseDense only runs at 2,000).
// Run: PIPECAST_BENCH_LARGE=1 ./build/bench/bench/bench_graph --benchmark_format=json
#include <pipecast/pipecast.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::size_t pipeline_length = 50;

std::string stage_name(std::size_t i) {
    return std::string("P").append(std::to_string(i / pipeline_length)).append(" S").append(std::to_string(i % pipeline_length));
}

/// The generated model's JSON (see the file comment).
nlohmann::json graph_json(std::size_t m, bool markov) {
    std::mt19937_64 rng(20261125 + m);
    std::uniform_real_distribution<double> mean(5.0, 25.0);
    nlohmann::json stages = nlohmann::json::array(), tr = nlohmann::json::object();
    const char* families[] = {"exponential", "gamma", "lognormal", "weibull"};
    for (std::size_t i = 0; i < m; ++i) {
        const double mu = std::round(mean(rng) * 100.0) / 100.0;
        const std::string f = markov ? "exponential" : families[i % 4];
        nlohmann::json d = {{"dist", f}, {"mean", mu}};
        if (f == "gamma") d["shape"] = 2.0;
        if (f == "lognormal") d["sd"] = 0.6 * mu;
        if (f == "weibull") d["shape"] = 1.5;
        stages.push_back({{"name", stage_name(i)}, {"dwell", d}});
        const std::size_t k = i % pipeline_length;
        nlohmann::json row = nlohmann::json::object();
        double used = 0.0;
        auto put = [&](const std::string& to, double p) {
            row[to] = p;
            used += p;
        };
        if (k == pipeline_length - 1 || i + 1 == m) {
            put("Won", 0.70);
            if (k > 0) put(stage_name(i - 1), 0.05);
        } else {
            put(stage_name(i + 1), 0.80);
            if (k > 0) put(stage_name(i - 1), 0.03);
            if (k + 2 < pipeline_length && i + 2 < m) put(stage_name(i + 2), 0.05);
            put("Disqualified", 0.02);
        }
        row["Lost"] = 1.0 - used;
        tr[stage_name(i)] = row;
    }
    return {{"name", std::string("graph").append(std::to_string(m))},
            {"time_unit", "day"},
            {"currency", "USD"},
            {"stages", stages},
            {"outcomes", {{"won", "Won"}, {"lost", "Lost"}, {"other", {{{"name", "Disqualified"}, {"win", false}}}}}},
            {"transitions", tr},
            {"deal_size", {{"dist", "lognormal"}, {"median", 10000}, {"sigma", 1.0}}}};
}

const pipecast::model& graph_model(std::size_t m, bool markov = false) {
    static std::map<std::pair<std::size_t, bool>, std::unique_ptr<pipecast::model>> cache;
    auto& slot = cache[{m, markov}];
    if (!slot) slot = std::make_unique<pipecast::model>(pipecast::model_from_json(graph_json(m, markov)));
    return *slot;
}

/// 50 open deals in random stages, ages up to 30 days.
pipecast::book small_book(const pipecast::stage_graph& g) {
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<std::size_t> stage(0, g.open_count() - 1);
    std::uniform_real_distribution<double> amount(1000.0, 90000.0), age(0.0, 30.0);
    pipecast::book b(g);
    for (int d = 0; d < 50; ++d)
        b.add(std::string("D").append(std::to_string(d)), stage(rng), std::round(amount(rng)), age(rng), std::nullopt, "A", "pipeline",
              "USD");
    return b;
}

void BM_LoadModel(benchmark::State& state) {
    const auto m = static_cast<std::size_t>(state.range(0));
    const nlohmann::json j = graph_json(m, false);
    for (auto _ : state) {
        auto mdl = pipecast::model_from_json(j);
        benchmark::DoNotOptimize(mdl);
    }
    state.counters["stages"] = static_cast<double>(m);
}

void BM_Analyse(benchmark::State& state) {
    const auto& g = graph_model(static_cast<std::size_t>(state.range(0))).graph;
    for (auto _ : state) {
        auto a = pipecast::analyse(g);
        benchmark::DoNotOptimize(a);
    }
}

void BM_AnalyseDense(benchmark::State& state) {
    const auto& g = graph_model(static_cast<std::size_t>(state.range(0))).graph;
    for (auto _ : state) {
        auto a = pipecast::analyse(g, pipecast::solver_method::dense);
        benchmark::DoNotOptimize(a);
    }
}

void BM_PeriodForecast(benchmark::State& state) {
    const auto& g = graph_model(static_cast<std::size_t>(state.range(0))).graph;
    const pipecast::book b = small_book(g);
    for (auto _ : state) {
        auto r = pipecast::period_forecast(g, b, 90.0);
        benchmark::DoNotOptimize(r);
    }
}

void BM_WonByExact(benchmark::State& state) {
    const auto& g = graph_model(static_cast<std::size_t>(state.range(0)), true).graph;
    for (auto _ : state) {
        auto w = pipecast::won_by_exact(g, 90.0);
        benchmark::DoNotOptimize(w);
    }
}

void BM_Simulate(benchmark::State& state) {
    const auto& g = graph_model(static_cast<std::size_t>(state.range(0))).graph;
    const pipecast::book b = small_book(g);
    pipecast::simulation_options o;
    o.paths = 1000;
    o.horizon = 90.0;
    for (auto _ : state) {
        auto r = pipecast::simulate(g, b, o);
        benchmark::DoNotOptimize(r);
    }
    state.counters["deal_paths/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * 1000.0 * 50.0, benchmark::Counter::kIsRate);
}

void sizes(benchmark::internal::Benchmark* b) {
    b->Arg(2000);
    if (const char* e = std::getenv("PIPECAST_BENCH_LARGE"); e != nullptr && std::string(e) == "1") b->Arg(10000);
    b->Unit(benchmark::kMillisecond);
}

} // namespace

BENCHMARK(BM_LoadModel)->Apply(sizes);
BENCHMARK(BM_Analyse)->Apply(sizes);
BENCHMARK(BM_AnalyseDense)->Arg(2000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PeriodForecast)->Apply(sizes);
BENCHMARK(BM_WonByExact)->Apply(sizes);
BENCHMARK(BM_Simulate)->Apply(sizes);

BENCHMARK_MAIN();
