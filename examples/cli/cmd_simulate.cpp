// pipecast simulate — Monte Carlo simulation of the open book (and optional new arrivals)
// to a horizon: the distribution of the won value, P(quota), by sub-period and by stage.
//
//   pipecast simulate --model M.json --deals D.csv [--horizon H] [--paths N] [--seed S]
//                     [--threads T] [--quota Q]... [--arrivals RATE | --model-arrivals]
//                     [--quantiles 0.1,0.5,0.9] [--correlation SD] [--sub-periods K]
//                     [--histogram BINS] [--method exact|mc|auto] [--json]
//                     [--period month|quarter|year --as-of DATE [--fiscal-year-start MM]
//                      [--buckets N] [--quotas owners.csv] [--history H.csv]] [--per-deal FILE.csv]
//
// --period adds the calendar forecast (calendar.hpp, a second run with the same paths, seed,
// correlation and arrivals): per period Closed (the wins of --history before the as-of date),
// expected and simulated P10-P90 value, the forecast categories' roll-up and the owners
// against --quotas (JSON key `calendar`). --per-deal writes report's per-deal rows with
// p_win_within and expected_close from this run (JSON key `per_deal`). Both need --method mc.
//
// --method exact computes the distribution without Monte Carlo noise (exact_distribution.hpp,
// docs/exact.md): the same JSON keys (stderr 0, paths 0), plus `method` and `error_bound`
// (Monte Carlo runs report method "mc" and error_bound null).
//
// Deals with a probability override (the CSV's probability column) are won with that
// probability, timed by the model (docs/simulation.md); "overridden" counts them.
//
// Correlation: without --correlation the run uses the model's estimated overdispersion
// ("overdispersion": {"sigma": x} in the model file, model::overdispersion) when it has one,
// else independent deals; the report and the JSON keys `correlation` and
// `correlation_source` ("option", "model" or "none") say which.
//
// The JSON keys mean, stderr, quantiles.{p10,p50,p90}, p_quota (with --quota), deal_paths,
// elapsed_seconds and deal_paths_per_second are a fixed interface for downstream tools.
#include <pipecast/io/book_csv.hpp>
#include <pipecast/simulation/exact_distribution.hpp>
#include <pipecast/simulation/simulation.hpp>

#include "calendar_cli.hpp"
#include "cli_common.hpp"
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

namespace pipecast_cli {
namespace {

struct simulate_args {
    std::string model_path;
    std::string deals_path;
    std::optional<double> horizon;
    std::size_t paths = 10000;
    std::uint64_t seed = 1;
    unsigned threads = 0;
    std::vector<double> quotas;
    std::optional<double> arrivals;
    bool model_arrivals = false;
    std::vector<double> quantiles = {0.1, 0.5, 0.9};
    std::optional<double> correlation;
    std::size_t sub_periods = 0;
    std::size_t bins = pipecast::simulation_options{}.histogram_bins; ///< the library's default
    std::size_t max_path_visits = pipecast::simulation_options{}.max_path_visits;
    bool json = false;
    std::string method = "mc"; ///< --method: exact, mc or auto
    std::optional<std::string> as_of; ///< --as-of: the date deal ages are measured to
    calendar_args cal;
};

using pipecast::detail::quantile_key; // 0.1 -> "p10" (results_json.hpp)

/// Ctrl-C during a run: the first SIGINT asks the simulation to stop (it finishes the work
/// units in flight, prints the completed paths marked cancelled and exits with status 130);
/// a second one, half a second or more after it, kills the process as usual. SIGINTs within
/// that half second are the same interrupt delivered twice and are ignored: `timeout -s INT`
/// signals the process and then its process group, and a Ctrl-C to the terminal's process
/// group can meet a supervisor's kill. (Resetting to SIG_DFL at the first one let such a
/// duplicate kill the run with no output: cli_simulate_sigint under load, exit 130.)
volatile std::sig_atomic_t interrupted = 0;
timespec first_interrupt{}; // written and read only by on_sigint
extern "C" void on_sigint(int) {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now); // async-signal-safe
    if (interrupted == 0) {
        first_interrupt = now;
        interrupted = 1;
        return;
    }
    const double since = static_cast<double>(now.tv_sec - first_interrupt.tv_sec) +
                         1e-9 * static_cast<double>(now.tv_nsec - first_interrupt.tv_nsec);
    if (since >= 0.5) {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    }
}
/// Installs on_sigint for its lifetime.
class sigint_guard {
public:
    sigint_guard() : previous_(std::signal(SIGINT, on_sigint)) { interrupted = 0; }
    ~sigint_guard() { std::signal(SIGINT, previous_ == SIG_ERR ? SIG_DFL : previous_); }
    sigint_guard(const sigint_guard&) = delete;
    sigint_guard& operator=(const sigint_guard&) = delete;

private:
    void (*previous_)(int);
};

/// The σ of the per-path shock a run uses and where it comes from: --correlation, else the
/// model's overdispersion when positive, else none (independent deals).
using correlation_choice = pipecast::correlation_used; // sigma, source, by_stage (results_json.hpp)
correlation_choice choose_correlation(const pipecast::model& m, const simulate_args& a) {
    if (a.correlation) return {*a.correlation, "option", {}};
    if (!m.overdispersed()) return {};
    correlation_choice c{0.0, "model", m.overdispersion_by_stage()};
    for (double x : c.by_stage) c.sigma = std::max(c.sigma, x);
    return c;
}

/// The tables both reports share: the won value (mean, its standard error where the method
/// has one, sd, quantiles, P(quota)), won count and arrivals; the sub-period ends; per stage.
template <class Result>
void print_value_tables(std::ostream& os, const pipecast::model& m, const Result& r, const simulate_args& a) {
    const auto& v = r.won_value;
    table t({"Won value" + (m.currency.empty() ? std::string() : " (" + m.currency + ")"), "value"});
    t.add_row({"mean", money(v.mean)});
    if constexpr (requires { v.standard_error; }) t.add_row({"standard error", money(v.standard_error)});
    t.add_row({"sd", money(v.sd)});
    for (std::size_t i = 0; i < v.quantile_levels.size(); ++i)
        t.add_row({"P" + quantile_key(v.quantile_levels[i]).substr(1), money(v.quantiles[i])});
    for (std::size_t i = 0; i < a.quotas.size(); ++i) t.add_row({"P(won >= " + money(a.quotas[i]) + ")", percent(v.p_quota[i])});
    t.add_rule();
    t.add_row({"deals won (mean)", fixed(r.won_count.mean, 1)});
    if (a.arrivals || a.model_arrivals) {
        t.add_row({"arrivals (mean)", fixed(r.arrivals_expected_count, 1)});
        t.add_row({"arrivals won (mean)", fixed(r.arrivals_expected_wins, 1)});
        t.add_row({"value won from arrivals", money(r.arrivals_expected_value)});
    }
    t.print(os);
    if (!r.sub_period_ends.empty()) {
        os << '\n';
        table sp({"Won by", "mean", "P10", "P50", "P90"});
        for (std::size_t i = 0; i < r.sub_period_ends.size(); ++i) {
            const auto& s = r.sub_period_value[i];
            std::vector<std::string> row = {fixed(r.sub_period_ends[i], 1), money(s.mean)};
            for (double q : {0.1, 0.5, 0.9}) {
                const auto it = std::find(s.quantile_levels.begin(), s.quantile_levels.end(), q);
                row.push_back(it == s.quantile_levels.end() ? "" : money(s.quantiles[static_cast<std::size_t>(it - s.quantile_levels.begin())]));
            }
            sp.add_row(row);
        }
        sp.print(os);
    }
    os << '\n';
    table st({"Stage", "expected wins", "expected won value"});
    for (std::size_t s = 0; s < m.graph.open_count(); ++s)
        st.add_row({m.graph.name(s), fixed(r.stage_expected_wins[s], 1), money(r.stage_expected_value[s])});
    st.print(os);
}

void print_report(const pipecast::model& m, const pipecast::simulation_result& r, const simulate_args& a,
                  unsigned threads) {
    auto& os = std::cout;
    const auto& v = r.won_value;
    os << "Monte Carlo simulation of " << (m.name.empty() ? a.model_path : m.name) << ": " << r.deals << " deals, "
       << r.paths << " paths, horizon "
       << (std::isfinite(r.horizon) ? fixed(r.horizon, 0) + " " + m.time_unit + (r.horizon == 1 ? "" : "s")
                                     : std::string("none (until every deal closes)"))
       << ", seed " << r.seed << '\n';
    const correlation_choice c = choose_correlation(m, a);
    const bool uniform = std::all_of(c.by_stage.begin(), c.by_stage.end(), [&](double x) { return x == c.sigma; });
    if (std::string_view(c.source) == "model" && uniform) {
        os << "Correlation: shock sd " << fixed(c.sigma, 3)
           << " on the log-odds of forward conversion, the model's estimated overdispersion (--correlation to change)\n";
    } else if (std::string_view(c.source) == "model") {
        os << "Correlation: one shock per path on the log-odds of forward conversion, sd by stage:";
        for (std::size_t s = 0; s < c.by_stage.size(); ++s)
            os << (s ? ", " : " ") << m.graph.name(s) << ' ' << fixed(c.by_stage[s], 3);
        os << " (the model's estimated overdispersion; --correlation to change)\n";
    }
    else if (c.sigma > 0.0)
        os << "Correlation: shock sd " << fixed(c.sigma, 3) << " on the log-odds of forward conversion (--correlation)\n";
    else
        os << "Correlation: none (independent deals"
           << (std::string_view(c.source) == "option" ? ", --correlation 0" : "; the model has no overdispersion")
           << ")\n";
    if (r.overridden > 0)
        os << r.overridden << " deal" << (r.overridden == 1 ? " has" : "s have")
           << " a probability override: won with that probability, at the times of a win in the model"
           << (c.sigma > 0.0 ? " (the correlation shock does not apply to them)" : "") << '\n';
    if (r.status == pipecast::simulation_status::cancelled) os << "CANCELLED: statistics cover the completed paths\n";
    if (r.capped_deal_paths > 0)
        os << "WARNING: " << r.capped_deal_paths << " deal-paths stopped after " << a.max_path_visits
           << " stage visits (counted as not won): the model has a near-certain loop\n";
    os << '\n';
    print_value_tables(os, m, r, a);

    // A small text histogram of the won value.
    const auto& h = v.histogram;
    std::uint64_t top = 0;
    for (auto c : h.counts) top = std::max(top, c);
    if (top > 0 && r.paths > 1) {
        os << "\nDistribution of the won value (" << r.paths << " paths)\n";
        for (std::size_t b = 0; b < h.counts.size(); ++b) {
            const double lo = h.lower + h.width * static_cast<double>(b);
            const auto bar = static_cast<std::size_t>(std::llround(50.0 * static_cast<double>(h.counts[b]) /
                                                                   static_cast<double>(top)));
            std::string label = money(lo);
            os << std::string(label.size() < 14 ? 14 - label.size() : 0, ' ') << label << " | "
               << std::string(bar, '#') << (h.counts[b] ? " " + std::to_string(h.counts[b]) : "") << '\n';
        }
    }
    os << '\n'
       << r.deal_paths << " deal-paths in " << fixed(r.elapsed_seconds, 3) << " s on " << threads << " thread"
       << (threads == 1 ? "" : "s") << ": " << fixed(r.deal_paths_per_second() / 1e6, 1)
       << " million deal-paths per second\n";
}

// --- --method exact: the same keys from exact_distribution() ------------------------------

void print_exact_report(const pipecast::model& m, const pipecast::exact_result& r, const simulate_args& a) {
    auto& os = std::cout;
    os << "Exact distribution (no Monte Carlo) for " << (m.name.empty() ? a.model_path : m.name) << ": " << r.deals
       << " deals, horizon " << fixed(r.horizon, 0) << ' ' << m.time_unit << (r.horizon == 1 ? "" : "s") << '\n'
       << "Method: " << r.detail << "; quantiles within " << money(r.error_bound) << ", probabilities within "
       << r.probability_error << '\n';
    const correlation_choice c = choose_correlation(m, a);
    if (c.sigma > 0.0)
        os << "Correlation: shock sd " << fixed(c.sigma, 3) << " on the log-odds of forward conversion ("
           << c.source << "), integrated by Gauss-Hermite quadrature\n";
    os << '\n';
    print_value_tables(os, m, r, a);
    os << "\nComputed in " << fixed(r.elapsed_seconds, 3) << " s\n";
}

void run_simulate(const simulate_args& a) {

    const pipecast::model m = load_model_file(a.model_path);
    pipecast::book_csv_options opt;
    opt.source = a.deals_path;
    opt.as_of = a.as_of; // as forecast: ages of a book with an 'entered' column measured to it
    opt.days_per_unit = pipecast::days_per_unit(m.time_unit);
    const pipecast::book b = load_book_input(a.deals_path, m.graph, opt, book_input());

    pipecast::simulation_options o;
    o.paths = a.paths;
    o.horizon = a.horizon ? *a.horizon : std::numeric_limits<double>::infinity();
    o.seed = a.seed;
    o.threads = a.threads;
    o.quotas = a.quotas;
    o.quantiles = a.quantiles;
    const correlation_choice cc = choose_correlation(m, a);
    o.correlation = cc.sigma;
    o.stage_correlation = cc.by_stage;
    o.histogram_bins = a.bins;
    o.max_path_visits = a.max_path_visits;
    if (a.sub_periods > 0) {
        if (!a.horizon) throw pipecast::argument_error("simulate: --sub-periods needs --horizon");
        const unsigned t = a.threads ? a.threads : std::max(1u, std::thread::hardware_concurrency());
        const std::uint64_t bytes = pipecast::simulation_memory_bytes(a.paths, b.size(), a.sub_periods, a.bins,
                                                                      a.arrivals || a.model_arrivals, t);
        if (bytes > o.max_memory_bytes) // refused before the sub-period ends are even allocated
            throw pipecast::argument_error(pipecast::detail::message(
                "simulate: --sub-periods ", a.sub_periods, " with ", a.paths, " paths needs about ",
                static_cast<double>(bytes) / 1e9, " GB of memory, more than the limit of ",
                static_cast<double>(o.max_memory_bytes) / 1e9, " GB"));
        o.sub_period_ends = pipecast::sub_periods(*a.horizon, a.sub_periods);
    }
    if (a.arrivals) {
        pipecast::arrival_process p;
        p.stage = m.arrivals ? m.arrivals->stage : 0;
        p.rate = *a.arrivals;
        o.arrivals = p;
    }
    o.model_arrivals = a.model_arrivals;
    if (a.model_arrivals && !m.arrivals)
        throw pipecast::argument_error("simulate: --model-arrivals but the model has no arrivals");
    const pipecast::distribution_method method = pipecast::parse_distribution_method(a.method);
    const bool calendar = !a.cal.period.empty(), rows_wanted = !a.cal.per_deal.empty();
    if (!calendar && (!a.cal.quotas.empty() || !a.cal.history.empty()))
        throw pipecast::argument_error(a.cal.quotas.empty() ? "--history needs --period" : "--quotas needs --period");
    if (method == pipecast::distribution_method::exact && (calendar || rows_wanted))
        throw pipecast::argument_error("simulate: --period and --per-deal need --method mc (or auto)");
    if (method == pipecast::distribution_method::exact ||
        (method == pipecast::distribution_method::automatic && pipecast::exact_applicable(o) && !calendar && !rows_wanted)) {
        if (!a.horizon) throw pipecast::argument_error("simulate: --method exact needs --horizon");
        const pipecast::exact_result r = pipecast::exact_distribution(m, b, o);
        if (a.json)
            print_json(pipecast::exact_document{m, r, choose_correlation(m, a), a.seed, a.paths, a.arrivals || a.model_arrivals,
                                                a.as_of}); // results_json.hpp
        else print_exact_report(m, r, a);
        return;
    }
    progress_bar bar("simulate"); // progress.hpp: stderr, a terminal only
    o.progress = [&bar](double f) { return interrupted == 0 && bar(f); };
    std::optional<pipecast::simulation_result> result;
    {
        const sigint_guard guard;
        result = pipecast::simulate(m, b, o);
    }
    const pipecast::simulation_result& r = *result;
    bar.finish();
    const unsigned threads = a.threads ? a.threads : std::max(1u, std::thread::hardware_concurrency());

    // The calendar forecast (a second run) and the per-deal rows of this run (calendar.hpp).
    const double dpu = pipecast::days_per_unit(m.time_unit);
    std::optional<pipecast::calendar_forecast_result> cal;
    std::vector<pipecast::deal_forecast> rows;
    if (interrupted == 0 && calendar) {
        pipecast::simulation_options so = o;
        so.progress = nullptr;
        cal = pipecast::calendar_forecast(m, b, calendar_options_of(a.cal, m, as_of_time(a.as_of, dpu, "--period"), so));
    }
    rep_close rc; // the reps' close dates, when the deals file has them
    if (interrupted == 0 && a.as_of) rc = rep_close_dates(a.deals_path, m, b, as_of_time(a.as_of, dpu, "--as-of"), dpu);
    if (interrupted == 0 && (rows_wanted || rc.any())) {
        pipecast::age_aware_options ao;
        ao.per_deal = true;
        const auto aa = pipecast::age_aware_forecast(m.graph, b, ao);
        std::vector<char> stale(b.size(), 0);
        for (std::size_t i = 0; i < b.size(); ++i) stale[i] = aa.deal_stalled_probability[i] >= ao.stalled_threshold ? 1 : 0;
        const double t0 = a.as_of ? as_of_time(a.as_of, dpu, "--per-deal") : 0.0;
        rows = pipecast::deal_forecasts(m.graph, b, t0, aa.deal_win_probability, r.deal_win_probability,
                                        r.deal_expected_close_time, stale);
        if (rows_wanted) write_per_deal(a.cal.per_deal, rows, a.as_of.has_value(), dpu, rc);
    }
    if (a.json) {
        json_out j = pipecast::simulation_document{m, r, choose_correlation(m, a), threads, a.arrivals || a.model_arrivals,
                                                   a.as_of}; // results_json.hpp
        if (cal) j["calendar"] = calendar_json(*cal, dpu);
        if (rows_wanted && interrupted == 0) j["per_deal"] = deals_json(rows, a.as_of.has_value(), dpu, &rc);
        print_json(j);
    } else {
        print_report(m, r, a, threads);
        if (cal) print_calendar(std::cout, *cal);
        print_rep_close(std::cout, rows, rc, dpu);
        if (rows_wanted && interrupted == 0) std::cout << "\nPer-deal rows: " << a.cal.per_deal << " (" << rows.size() << " deals)\n";
    }
    if (interrupted != 0) {
        std::cout.flush();
        std::cerr << "simulate: interrupted: " << r.paths << " of " << r.paths_requested << " paths completed\n";
        std::exit(130);
    }
}

} // namespace

void add_simulate_command(CLI::App& app) {
    auto args = std::make_shared<simulate_args>();
    CLI::App* cmd = app.add_subcommand(
        "simulate", "Monte Carlo simulation: the distribution of the value won within a horizon, P(quota), by "
                    "sub-period and stage");
    cmd->add_option("--model", args->model_path, "Model JSON file (stages, dwell times, transitions)")->required();
    add_input_options(cmd, book_input());
    cmd->add_option("--deals", args->deals_path, "Open deals CSV (id, stage, amount, age)")->required();
    cmd->add_option("--horizon", args->horizon, "Count wins up to this time (model time unit, e.g. 90); default: none");
    cmd->add_option("--paths", args->paths, "Number of simulated paths (default 10000)")->check(whole_number(1));
    cmd->add_option("--seed", args->seed, "Random seed (default 1); the same seed gives the same result")->check(whole_number());
    cmd->add_option("--threads", args->threads, "Worker threads (default 0 = all cores); results do not depend on it")
        ->check(whole_number(0, 4096));
    cmd->add_option("--quota", args->quotas, "Report P(won value >= Q); may be repeated");
    auto* arr = cmd->add_option("--arrivals", args->arrivals,
                                "New deals per time unit entering the model's arrival stage (or the first stage)");
    cmd->add_flag("--model-arrivals", args->model_arrivals, "Simulate the model's own arrival process")->excludes(arr);
    cmd->add_option("--quantiles", args->quantiles, "Quantile levels (default 0.1,0.5,0.9)")->delimiter(',');
    cmd->add_option("--correlation", args->correlation,
                    "SD of a per-path shock on the log-odds of forward conversion, in [0, 10] (0 = independent "
                    "deals); default: the model's overdispersion, else 0");
    cmd->add_option("--sub-periods", args->sub_periods, "Also report the value won by the end of K equal sub-periods");
    cmd->add_option("--histogram", args->bins, "Histogram bins (default: the library's, simulation_options::histogram_bins)")
        ->capture_default_str();
    cmd->add_option("--max-path-visits", args->max_path_visits,
                    "Stop a deal-path after this many stage visits, counted as not won and reported (default 10000)");
    cmd->add_option("--method", args->method,
                    "exact (the lattice/FFT distribution, no noise; needs --horizon), mc (Monte Carlo, the default) "
                    "or auto (exact where possible)")
        ->check(CLI::IsMember({"exact", "mc", "auto"}));
    cmd->add_flag("--json", args->json, "Print JSON instead of a report");
    cmd->add_option("--as-of", args->as_of, "Date (YYYY-MM-DD) ages are measured to, for a deals file with an "
                                            "'entered' column");
    add_calendar_options(cmd, args->cal);
    cmd->callback([args] { run_simulate(*args); });
}

} // namespace pipecast_cli
