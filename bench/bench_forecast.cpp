// pipecast — benchmarks of the weighted and period forecasts and the exact analytics.
//
//   BM_WeightedForecast/N   weighted forecast (totals by stage, owner, category) of N deals
//   BM_PlainBandwidthPass/N the naive baseline: sum the same five columns, nothing else
//   BM_PeriodForecast/N     expected value won within 90 days (b2b6: renewal method)
//   BM_PeriodForecastBranched/N  the same on the crm4 truth model (branched stages: per-branch
//                           dwells and a stalled share, built from crm4_truth.json's spec)
//   BM_WonWithinPerDeal/N   the naive baseline for it: won_within deal by deal (no lattice)
//   BM_WonWithinPerDealB2B6/N  the same naive baseline for BM_PeriodForecast (b2b6)
//   BM_AgeAwareForecast/N   Σ amount × P(win | stage, age) and the stalled totals, crm4 model
//   BM_Analyse/M            absorption analysis of an M-stage graph with skip and back edges
//   BM_WonByExact/M         P(won by t) by matrix exponential, M-stage all-exponential graph
//
// The book is b2b6-shaped (stage mix of b2b6_open_deals.csv, lognormal amounts, 50 owners,
// 4 categories, 5% overrides), generated once per size with a fixed seed.
// Run: ./build/bench/bench/bench_forecast --benchmark_format=json > bench_forecast.json
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/pipecast.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

const pipecast::model& b2b6() {
    static const pipecast::model m = pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
    return m;
}

/// A synthetic b2b6 book of n deals (cached: the 10M-deal book takes seconds to build).
const pipecast::book& synthetic_book(std::size_t n) {
    static std::map<std::size_t, std::unique_ptr<pipecast::book>> cache;
    auto& slot = cache[n];
    if (slot) return *slot;
    const auto& g = b2b6().graph;
    std::mt19937_64 rng(20261122 + n);
    std::discrete_distribution<std::size_t> stage({3181, 2901, 1160, 1773, 985}); // b2b6_open_deals.csv mix
    std::lognormal_distribution<double> amount(std::log(10000.0), 1.0);
    std::exponential_distribution<double> age(1.0 / 12.0);
    std::uniform_int_distribution<int> owner(0, 49), category(0, 3);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const char* categories[] = {"pipeline", "best case", "commit", "omitted"};
    std::vector<std::string> owners;
    for (int k = 0; k < 50; ++k) owners.push_back(std::string("owner ").append(std::to_string(k)));
    slot = std::make_unique<pipecast::book>(g);
    slot->reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::optional<double> p;
        if (unit(rng) < 0.05) p = unit(rng);
        slot->add(std::to_string(i), stage(rng), std::round(amount(rng) * 100.0) / 100.0, age(rng), p,
                  owners[static_cast<std::size_t>(owner(rng))], categories[category(rng)], "USD");
    }
    return *slot;
}

constexpr double bytes_per_deal = 4 + 8 + 8 + 4 + 4; // stage, amount, override, owner, category

void set_counters(benchmark::State& state, std::size_t n) {
    const auto items = static_cast<double>(state.iterations()) * static_cast<double>(n);
    state.counters["deals/s"] = benchmark::Counter(items, benchmark::Counter::kIsRate);
    state.counters["bytes/s"] = benchmark::Counter(items * bytes_per_deal, benchmark::Counter::kIsRate,
                                                   benchmark::Counter::OneK::kIs1024);
}

void BM_WeightedForecast(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& g = b2b6().graph;
    const auto& b = synthetic_book(n);
    const auto a = pipecast::analyse(g);
    for (auto _ : state) {
        auto f = pipecast::weighted_forecast(g, b, a);
        benchmark::DoNotOptimize(f.weighted_total);
    }
    set_counters(state, n);
}
BENCHMARK(BM_WeightedForecast)->RangeMultiplier(10)->Range(10'000, 10'000'000)->Unit(benchmark::kMillisecond);

/// The naive baseline: one pass summing the same five columns (no grouping, no lookups).
void BM_PlainBandwidthPass(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& b = synthetic_book(n);
    const auto st = b.stages();
    const auto am = b.amounts();
    const auto ov = b.probability_overrides();
    const auto ow = b.owners();
    const auto ca = b.categories();
    for (auto _ : state) {
        double amount = 0.0, overrides = 0.0;
        std::uint64_t codes = 0;
        for (std::size_t i = 0; i < n; ++i) {
            amount += am[i];
            overrides += ov[i] == ov[i] ? ov[i] : 0.0;
            codes += st[i] + ow[i] + ca[i];
        }
        benchmark::DoNotOptimize(amount);
        benchmark::DoNotOptimize(overrides);
        benchmark::DoNotOptimize(codes);
    }
    set_counters(state, n);
}
BENCHMARK(BM_PlainBandwidthPass)->RangeMultiplier(10)->Range(10'000, 10'000'000)->Unit(benchmark::kMillisecond);

void BM_PeriodForecast(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& g = b2b6().graph;
    const auto& b = synthetic_book(n);
    for (auto _ : state) {
        auto f = pipecast::period_forecast(g, b, 90.0);
        benchmark::DoNotOptimize(f.expected);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PeriodForecast)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

/// Period forecast with the renewal table built once (repeated forecasts on one model).
void BM_PeriodForecastPrecomputed(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& g = b2b6().graph;
    const auto& b = synthetic_book(n);
    const auto tab = pipecast::win_time_distribution(g, 90.0);
    const auto a = pipecast::analyse(g);
    for (auto _ : state) {
        auto f = pipecast::period_forecast(g, b, 90.0, tab, a);
        benchmark::DoNotOptimize(f.expected);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PeriodForecastPrecomputed)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

/// The crm4 generator's process as a branched graph: a stage with stall s and edges
/// {to, p, dwell} has branches (1 − s)·p each plus {Lost, s, cleanup (exponential 300), stalled}.
const pipecast::stage_graph& crm4() {
    static const pipecast::stage_graph g = [] {
        std::ifstream in(PIPECAST_SHARED_DIR "/scenarios/crm4_truth.json");
        const auto spec = nlohmann::json::parse(in).at("spec");
        auto dwell = [](const nlohmann::json& j) {
            const std::string d = j.at("dist");
            if (d == "gamma") return pipecast::dwell_distribution::gamma(j.at("shape"), j.at("mean"));
            if (d == "lognormal") return pipecast::dwell_distribution::lognormal(j.at("mean"), j.at("sd"));
            return pipecast::dwell_distribution::exponential(j.at("mean"));
        };
        std::vector<pipecast::open_stage> stages;
        for (const auto& s : spec.at("stages")) {
            const double stall = s.at("stall");
            std::vector<pipecast::stage_branch> br;
            for (const auto& e : s.at("edges")) br.push_back({e.at("to"), (1.0 - stall) * e.at("p").get<double>(), dwell(e.at("dwell"))});
            br.push_back({"Lost", stall, dwell(spec.at("cleanup")), true});
            stages.push_back({s.at("name"), pipecast::dwell_distribution::exponential(1.0), std::move(br)});
        }
        return pipecast::stage_graph::from_rows(std::move(stages), {{"Won", true}, {"Lost", false}}, {});
    }();
    return g;
}

/// A crm4-shaped book of n deals: the stage mix of crm4's open deals at the end of its log
/// (318 / 174 / 91 / 39), ages exponential with mean 60 days, lognormal amounts, 5% overrides.
const pipecast::book& crm4_book(std::size_t n) {
    static std::map<std::size_t, std::unique_ptr<pipecast::book>> cache;
    auto& slot = cache[n];
    if (slot) return *slot;
    std::mt19937_64 rng(20261125 + n);
    std::discrete_distribution<std::size_t> stage({318, 174, 91, 39});
    std::lognormal_distribution<double> amount(std::log(5000.0), 1.0);
    std::exponential_distribution<double> age(1.0 / 60.0);
    std::uniform_int_distribution<int> owner(0, 11);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    slot = std::make_unique<pipecast::book>(crm4());
    slot->reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::optional<double> p;
        if (unit(rng) < 0.05) p = unit(rng);
        slot->add(std::to_string(i), stage(rng), std::round(amount(rng) * 100.0) / 100.0, age(rng), p,
                  std::to_string(owner(rng)), "pipeline", "EUR");
    }
    return *slot;
}

void BM_PeriodForecastBranched(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& b = crm4_book(n);
    for (auto _ : state) {
        auto f = pipecast::period_forecast(crm4(), b, 90.0);
        benchmark::DoNotOptimize(f.expected);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PeriodForecastBranched)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

/// The branched period forecast with the renewal table built once.
void BM_PeriodForecastBranchedPrecomputed(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& b = crm4_book(n);
    const auto tab = pipecast::win_time_distribution(crm4(), 90.0);
    const auto a = pipecast::analyse(crm4());
    for (auto _ : state) {
        auto f = pipecast::period_forecast(crm4(), b, 90.0, tab, a);
        benchmark::DoNotOptimize(f.expected);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PeriodForecastBranchedPrecomputed)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

/// The naive baseline: won_within at each deal's own age (the same table, no lattice).
void BM_WonWithinPerDeal(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& b = crm4_book(n);
    const auto tab = pipecast::win_time_distribution(crm4(), 90.0);
    for (auto _ : state) {
        double acc = 0.0;
        for (std::size_t i = 0; i < n; ++i)
            acc += b.amounts()[i] * pipecast::won_within(crm4(), tab, b.stages()[i], b.ages()[i], 90.0);
        benchmark::DoNotOptimize(acc);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WonWithinPerDeal)->Arg(1'000)->Unit(benchmark::kMillisecond);

/// The naive baseline for BM_PeriodForecast (b2b6, one renewal table): won_within deal by deal.
void BM_WonWithinPerDealB2B6(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& g = b2b6().graph;
    const auto& b = synthetic_book(n);
    const auto tab = pipecast::win_time_distribution(g, 90.0);
    for (auto _ : state) {
        double acc = 0.0;
        for (std::size_t i = 0; i < n; ++i) acc += b.amounts()[i] * pipecast::won_within(g, tab, b.stages()[i], b.ages()[i], 90.0);
        benchmark::DoNotOptimize(acc);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WonWithinPerDealB2B6)->Arg(1'000)->Unit(benchmark::kMillisecond);

void BM_AgeAwareForecast(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& b = crm4_book(n);
    for (auto _ : state) {
        auto f = pipecast::age_aware_forecast(crm4(), b);
        benchmark::DoNotOptimize(f.age_weighted_total);
    }
    state.counters["deals/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AgeAwareForecast)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

/// An m-stage funnel with skip-ahead (i -> i+2) and go-back (i -> i-1) edges.
pipecast::stage_graph ten_stage_like(std::size_t m, bool exponential) {
    std::vector<pipecast::open_stage> stages;
    for (std::size_t i = 0; i < m; ++i) {
        const double mean = 5.0 + 2.0 * static_cast<double>(i);
        std::string name = std::to_string(i); // (not "S" + to_string: a GCC 12 -Wrestrict false positive)
        name.insert(name.begin(), 'S');
        stages.push_back({std::move(name), exponential ? pipecast::dwell_distribution::exponential(mean)
                                                               : pipecast::dwell_distribution::gamma(2.0, mean)});
    }
    const auto im = static_cast<Eigen::Index>(m);
    Eigen::MatrixXd p = Eigen::MatrixXd::Zero(im, im + 2);
    for (Eigen::Index i = 0; i < im; ++i) {
        double left = 1.0;
        auto put = [&](Eigen::Index j, double v) {
            p(i, j) += v;
            left -= v;
        };
        put(i + 1 < im ? i + 1 : im, 0.55); // next stage, or Won from the last
        if (i + 2 < im) put(i + 2, 0.05);   // skip ahead
        if (i > 0) put(i - 1, 0.05);        // go back
        put(im + 1, left);                  // Lost
    }
    return {std::move(stages), {{"Won", true}, {"Lost", false}}, std::move(p)};
}

void BM_Analyse(benchmark::State& state) {
    const auto g = ten_stage_like(static_cast<std::size_t>(state.range(0)), false);
    for (auto _ : state) {
        auto a = pipecast::analyse(g);
        benchmark::DoNotOptimize(a.win_probability.data());
    }
}
BENCHMARK(BM_Analyse)->Arg(5)->Arg(10)->Arg(20)->Arg(40)->Unit(benchmark::kMicrosecond);

void BM_WonByExact(benchmark::State& state) {
    const auto g = ten_stage_like(static_cast<std::size_t>(state.range(0)), true);
    for (auto _ : state) {
        auto w = pipecast::won_by_exact(g, 90.0);
        benchmark::DoNotOptimize(w.data());
    }
}
BENCHMARK(BM_WonByExact)->Arg(5)->Arg(10)->Arg(20)->Arg(40)->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
