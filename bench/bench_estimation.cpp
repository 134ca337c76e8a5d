// Benchmarks of the estimator: fitting a whole history (transitions, four censored
// parametric families per stage, Kaplan–Meier; the branched EM fit beside the classic one on
// crm4 and b2b6), reading the history CSV, and the cost of one gamma log-likelihood
// evaluation with sufficient statistics versus per observation.
//
//   ./build/bench/bench/bench_estimation --benchmark_counters_tabular=true
//
// For scale (not measured here): R's msm took 219 s to fit the 54,711 visits of
// b2b6_history.csv, with exponential dwell times only.
#include <pipecast/data/history.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/io/model_json.hpp>

#include <benchmark/benchmark.h>
#include <boost/math/distributions/gamma.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <string>

using namespace pipecast;

namespace {

const std::string b2b6_dir = PIPECAST_SHARED_DIR "/scenarios/";

/// Draws a dwell time of a model stage with the standard library's generators.
double draw_dwell(const dwell_distribution& d, std::mt19937_64& rng) {
    switch (d.family()) {
    case dwell_family::exponential: return std::exponential_distribution<double>(1.0 / d.mean())(rng);
    case dwell_family::gamma: return std::gamma_distribution<double>(d.shape(), d.scale())(rng);
    case dwell_family::lognormal: return std::lognormal_distribution<double>(d.log_mu(), d.log_sigma())(rng);
    case dwell_family::weibull: return std::weibull_distribution<double>(d.shape(), d.scale())(rng);
    default: return d.mean();
    }
}

/// A history simulated from b2b6.json: Poisson arrivals at `rate` a day over `days`, each
/// deal walking the semi-Markov graph; visits open at the end are censored (as in the
/// shared b2b6_history.csv, which has rate 40 over 730 days).
visit_log simulate_history(double rate, double days, std::uint64_t seed) {
    const model m = load_model(b2b6_dir + "b2b6.json");
    const stage_graph& g = m.graph;
    std::mt19937_64 rng(seed);
    std::exponential_distribution<double> gap(rate);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    visit_log log;
    const std::size_t entry = m.arrivals ? m.arrivals->stage : 0;
    std::size_t deal = 0;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (double t = gap(rng); t < days; t += gap(rng), ++deal) {
        std::string id = "D"; // appended: GCC 12 -Wrestrict false positive on "D" + to_string()
        id += std::to_string(deal);
        std::size_t s = entry;
        double now = t;
        while (true) {
            const double out = now + draw_dwell(g.dwell(s), rng);
            if (out >= days) {
                log.add_visit(id, g.name(s), now, nan, "");
                break;
            }
            double x = u(rng);
            std::size_t next = g.size() - 1;
            for (std::size_t j = 0; j < g.size(); ++j) {
                x -= g.transition(s, j);
                if (x < 0.0) {
                    next = j;
                    break;
                }
            }
            log.add_visit(id, g.name(s), now, out, g.name(next));
            if (g.is_outcome(next)) break;
            s = next;
            now = out;
        }
    }
    history_options opt;
    opt.as_of = std::to_string(days);
    log.finish(opt);
    return log;
}

const visit_log& synthetic_1m() {
    static const visit_log log = simulate_history(730.0, 730.0, 2026); // about 1,000,000 visits
    return log;
}

const visit_log& b2b6_log() {
    static const visit_log log = [] {
        history_options opt;
        opt.as_of = "730";
        return load_visit_log(b2b6_dir + "b2b6_history.csv", opt);
    }();
    return log;
}

const visit_log& crm4_log() {
    static const visit_log log = [] {
        history_options opt;
        opt.as_of = "2025-12-31T00:00:00Z";
        return load_history(b2b6_dir + "crm4_history.csv", opt);
    }();
    return log;
}

void fit_bench(benchmark::State& state, const visit_log& log, const fit_options& opt = {}) {
    std::size_t censored = 0;
    for (std::size_t i = 0; i < log.size(); ++i) censored += log.censored(i);
    for (auto _ : state) {
        history_fit fit = fit_history(log, opt);
        benchmark::DoNotOptimize(fit);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * log.size()));
    state.counters["visits"] = static_cast<double>(log.size());
    state.counters["censored"] = static_cast<double>(censored);
    state.counters["visits/s"] =
        benchmark::Counter(static_cast<double>(log.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_FitVisits_Synthetic1M(benchmark::State& state) { fit_bench(state, synthetic_1m()); }
BENCHMARK(BM_FitVisits_Synthetic1M)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FitVisits_B2B6History(benchmark::State& state) { fit_bench(state, b2b6_log()); }
BENCHMARK(BM_FitVisits_B2B6History)->Unit(benchmark::kMillisecond)->UseRealTime();

fit_options branched() {
    fit_options o;
    o.kind = model_kind::branched;
    return o;
}

// The branched fit (EM per stage, family per branch by the mixture AIC) against the classic one.
void BM_FitBranched_CRM4History(benchmark::State& state) { fit_bench(state, crm4_log(), branched()); }
BENCHMARK(BM_FitBranched_CRM4History)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FitClassic_CRM4History(benchmark::State& state) { fit_bench(state, crm4_log()); }
BENCHMARK(BM_FitClassic_CRM4History)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FitBranched_B2B6History(benchmark::State& state) { fit_bench(state, b2b6_log(), branched()); }
BENCHMARK(BM_FitBranched_B2B6History)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Reading and validating the 54,711-row CSV (not part of the fit).
void BM_ReadVisitLog_B2B6History(benchmark::State& state) {
    std::ifstream in(b2b6_dir + "b2b6_history.csv");
    std::stringstream text;
    text << in.rdbuf();
    const std::string csv = text.str();
    history_options opt;
    opt.as_of = "730";
    std::size_t n = 0;
    for (auto _ : state) {
        std::istringstream is(csv);
        visit_log log = read_visit_log(is, opt);
        n = log.size();
        benchmark::DoNotOptimize(log);
    }
    state.counters["rows/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ReadVisitLog_B2B6History)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Exits and censored ages of the Qualification stage (gamma) of the 1M-visit history.
struct stage_data {
    std::vector<double> exits, censored;
};
const stage_data& qualification() {
    static const stage_data d = [] {
        const visit_log& log = synthetic_1m();
        const auto s = *log.find_stage("Qualification");
        stage_data out;
        for (std::size_t i = 0; i < log.size(); ++i)
            if (log.stage[i] == s) (log.censored(i) ? out.censored : out.exits).push_back(log.duration(i));
        return out;
    }();
    return d;
}

/// One censored gamma log-likelihood evaluation: exits by sufficient statistics (O(1))
/// plus the censored terms (O(m)) — what the optimiser pays per step.
void BM_GammaLogLik_SufficientStats(benchmark::State& state) {
    const stage_data& d = qualification();
    double sum = 0, sum_log = 0;
    for (double t : d.exits) {
        sum += t;
        sum_log += std::log(t);
    }
    const double n = static_cast<double>(d.exits.size());
    const double k = 2.0, th = 7.0;
    for (auto _ : state) {
        double ll = (k - 1.0) * sum_log - sum / th - n * k * std::log(th) - n * std::lgamma(k);
        for (double c : d.censored) ll += std::log(boost::math::gamma_q(k, c / th, detail::boost_policy{}));
        benchmark::DoNotOptimize(ll);
    }
    state.counters["visits"] = static_cast<double>(d.exits.size() + d.censored.size());
}
BENCHMARK(BM_GammaLogLik_SufficientStats)->Unit(benchmark::kMicrosecond);

/// The naive baseline: Σ log pdf over every exit and Σ log S over the censored visits.
void BM_GammaLogLik_PerObservation(benchmark::State& state) {
    const stage_data& d = qualification();
    const boost::math::gamma_distribution<double, detail::boost_policy> g(2.0, 7.0);
    for (auto _ : state) {
        double ll = 0.0;
        for (double t : d.exits) ll += std::log(boost::math::pdf(g, t));
        for (double c : d.censored) ll += std::log(boost::math::cdf(boost::math::complement(g, c)));
        benchmark::DoNotOptimize(ll);
    }
    state.counters["visits"] = static_cast<double>(d.exits.size() + d.censored.size());
}
BENCHMARK(BM_GammaLogLik_PerObservation)->Unit(benchmark::kMicrosecond);

/// Each family alone on the Qualification stage of the 1M-visit history (~210,000 visits).
void BM_FitFamily(benchmark::State& state) {
    const stage_data& d = qualification();
    const auto family = static_cast<dwell_family>(state.range(0));
    for (auto _ : state) {
        family_fit f = fit_dwell_family(family, d.exits, d.censored);
        benchmark::DoNotOptimize(f);
    }
    state.SetLabel(std::string(to_string(family)));
    state.counters["visits/s"] = benchmark::Counter(static_cast<double>(d.exits.size() + d.censored.size()),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_FitFamily)
    ->Arg(static_cast<int>(dwell_family::exponential))
    ->Arg(static_cast<int>(dwell_family::gamma))
    ->Arg(static_cast<int>(dwell_family::lognormal))
    ->Arg(static_cast<int>(dwell_family::weibull))
    ->Unit(benchmark::kMillisecond);

/// Kaplan–Meier alone on the same stage (dominated by the sort).
void BM_KaplanMeier(benchmark::State& state) {
    const stage_data& d = qualification();
    for (auto _ : state) {
        kaplan_meier km = fit_kaplan_meier(d.exits, d.censored);
        benchmark::DoNotOptimize(km);
    }
    state.counters["visits/s"] = benchmark::Counter(static_cast<double>(d.exits.size() + d.censored.size()),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_KaplanMeier)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
