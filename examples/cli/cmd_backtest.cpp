// pipecast backtest — refit at past cut dates from the history known then, forecast the
// deals open at each cut, and compare with what they actually did within the horizon.
//
//   pipecast backtest --history H.csv [--cuts 2024-03-31,2024-06-30 | --every quarter|month]
//                     [--horizon 90] [--method model|landmark] [--model branched|classic]
//                     [--min-dwell 60s] [--drop-after-the-fact 1d]
//                     [--window 365d | --half-life 180d] [--paths N] [--seed S] [--json]
//
// The JSON keys cuts[].{cut, predicted.{mean,p10,p90}, actual, predicted_count.{...},
// actual_count}, summary.{mape, coverage, brier} and baselines.{crm_weighted,
// roll_rate}.mape are a fixed interface for downstream tools (docs/backtest.md).
#include <pipecast/data/history_view.hpp>
#include <pipecast/estimation/backtest.hpp>

#include "cli_common.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace pipecast_cli {
namespace {

using json = json_out; // insertion-ordered keys (docs/cli.md)

struct backtest_args {
    std::string history;
    std::vector<std::string> cuts;
    std::string every;
    std::string horizon = "90";
    std::string method = "model";
    std::string kind = "branched";
    std::string min_dwell = "auto";      ///< auto (when the history shows click-throughs), off, or a duration
    std::string after_the_fact = "auto"; ///< the same for after-the-fact bookings
    std::string window;
    std::string half_life;
    std::string time_unit = "day";
    std::vector<std::string> won;
    std::size_t paths = 4000;
    std::uint64_t seed = 1;
    unsigned threads = 0;
    bool skip_bad_rows = false;
    bool json = false;
    std::string per_deal; ///< CSV file of every open deal's prediction and outcome
    std::string nowcast = "on"; ///< --nowcast on|off: the current quarter's shock from its first outcomes
    std::string as_of;    ///< --as-of: the history as known at this date (later events dropped)
};

/// The per-deal CSV: one row per deal open at a cut (columns cut, id, stage, age, amount,
/// p_win_within, won), written whole or not at all.
void write_backtest_per_deal(const pipecast::backtest_result& r, const std::string& path) {
    std::string out = "cut,id,stage,age,amount,p_win_within,won\n";
    char buf[64];
    auto number = [&](double v, const char* f) {
        std::snprintf(buf, sizeof buf, f, v);
        out += buf;
    };
    for (const auto& c : r.cuts)
        for (const auto& d : c.per_deal) {
            pipecast::detail::append_csv_field(out, pipecast::format_time(c.cut, r.dates, r.days_per_unit));
            out += ',';
            pipecast::detail::append_csv_field(out, d.id);
            out += ',';
            pipecast::detail::append_csv_field(out, d.stage);
            out += ',';
            number(d.age, "%.4f");
            out += ',';
            number(d.amount, "%.2f");
            out += ',';
            number(d.p_win_within, "%.6f");
            out += d.won ? ",1\n" : ",0\n";
        }
    pipecast::detail::write_file_atomic(path, out, "per-deal file");
}

void run_backtest(const backtest_args& a) {
    const double dpu = pipecast::days_per_unit(a.time_unit);
    const double horizon = pipecast::parse_duration(a.horizon, dpu, "--horizon");
    if (!(horizon > 0.0)) throw pipecast::argument_error("--horizon: must be positive, got '" + a.horizon + "'");
    pipecast::backtest_options o;
    o.horizon = horizon;
    o.fit.time_unit = a.time_unit;
    o.fit.won = a.won;
    if (a.method == "model") o.method = pipecast::backtest_method::model;
    else if (a.method == "landmark") o.method = pipecast::backtest_method::landmark;
    else throw pipecast::argument_error("--method: expected model or landmark, got '" + a.method + "'");
    if (a.kind == "branched") o.fit.kind = pipecast::model_kind::branched;
    else if (a.kind == "classic") o.fit.kind = pipecast::model_kind::classic;
    else throw pipecast::argument_error("--model: expected branched or classic, got '" + a.kind + "'");
    auto threshold = [&](const std::string& v, const std::string& option, const char* fallback) -> std::optional<double> {
        if (v == "off") return std::nullopt;
        const double x = pipecast::parse_duration(v == "auto" ? fallback : v, dpu, option);
        if (!(x > 0.0)) throw pipecast::argument_error(option + ": must be positive, got '" + v + "'");
        return x;
    };
    o.min_dwell = threshold(a.min_dwell, "--min-dwell", "60s");
    o.after_the_fact = threshold(a.after_the_fact, "--drop-after-the-fact", "1d");
    if (!a.window.empty() && !a.half_life.empty())
        throw pipecast::argument_error("--window and --half-life: give one of them");
    if (!a.window.empty()) {
        const double w = pipecast::parse_duration(a.window, dpu, "--window");
        if (!(w > horizon))
            throw pipecast::argument_error("--window: must exceed the horizon (" + fixed(horizon, 1) + "), got '" + a.window + "'");
        o.fit.window = w;
        o.landmark.window = w;
    }
    if (!a.half_life.empty()) {
        const double hl = pipecast::parse_duration(a.half_life, dpu, "--half-life");
        if (!(hl > 0.0)) throw pipecast::argument_error("--half-life: must be positive, got '" + a.half_life + "'");
        o.fit.half_life = hl;
        o.landmark.half_life = hl;
    }
    o.paths = a.paths;
    o.seed = a.seed;
    o.threads = a.threads;
    o.per_deal = !a.per_deal.empty();
    if (a.nowcast == "on") o.nowcast = true;
    else if (a.nowcast == "off") o.nowcast = false;
    else throw pipecast::argument_error("--nowcast: expected on or off, got '" + a.nowcast + "'");

    pipecast::history_options ho;
    ho.skip_bad_rows = a.skip_bad_rows;
    ho.days_per_unit = dpu;
    pipecast::visit_log log = load_history_input(a.history, ho, history_input());
    if (!a.as_of.empty()) { // the history as known then: the default cuts end one horizon before it
        const double cut = check_history_as_of(a.as_of, log, dpu); // cli_common.hpp: the span as dates
        if (cut < log.end_time) {
            auto v = pipecast::as_of(log, cut);
            std::cerr << "pipecast: as of " << a.as_of << ": " << v.deals_dropped << " deal(s) created later and "
                      << v.visits_dropped << " visit(s) entered later left out, " << v.visits_censored
                      << " visit(s) censored at it\n";
            log = std::move(v.log);
        }
    }
    if (!log.skipped.empty()) {
        std::cerr << "pipecast: skipped " << log.skipped.size() << " bad row(s) of " << a.history << ":\n";
        for (const auto& s : log.skipped) std::cerr << "  " << s.reason << '\n';
    }
    if (!a.cuts.empty() && !a.every.empty()) throw pipecast::argument_error("--cuts and --every: give one of them");
    if (!a.cuts.empty()) {
        for (const auto& c : a.cuts) o.cuts.push_back(pipecast::parse_cut(c, log, dpu));
    } else {
        const std::string every = a.every.empty() ? "quarter" : a.every;
        if (every == "quarter") o.cuts = pipecast::calendar_cuts(log, horizon, 3, dpu);
        else if (every == "month") o.cuts = pipecast::calendar_cuts(log, horizon, 1, dpu);
        else throw pipecast::argument_error("--every: expected quarter or month, got '" + every + "'");
    }

    // "auto" cleaning: on when the history known at the first cut shows the artefact.
    if ((a.min_dwell == "auto" || a.after_the_fact == "auto") && !o.cuts.empty()) {
        const double first_cut = *std::min_element(o.cuts.begin(), o.cuts.end());
        const pipecast::visit_log known = first_cut < log.end_time ? pipecast::as_of(log, first_cut).log : log;
        const pipecast::artefact_scan scan = pipecast::scan_artefacts(known, o.min_dwell.value_or(1.0),
                                                                      o.after_the_fact.value_or(1.0), dpu, a.won);
        if (a.min_dwell == "auto" && !scan.click_throughs()) o.min_dwell.reset();
        if (a.after_the_fact == "auto" && !scan.after_the_fact()) o.after_the_fact.reset();
        if (a.min_dwell == "auto" && o.min_dwell)
            std::cerr << "pipecast: --min-dwell auto: 60s (" << scan.short_visits << " of " << scan.finished_visits
                      << " finished visits before the first cut shorter); --min-dwell off keeps them\n";
        if (a.after_the_fact == "auto" && o.after_the_fact)
            std::cerr << "pipecast: --drop-after-the-fact auto: 1d (" << scan.quick_wins << " of " << scan.won_deals
                      << " wins before the first cut within it); --drop-after-the-fact off keeps them\n";
    }
    progress_bar bar("backtest"); // progress.hpp: stderr, a terminal only
    bar(0.0, "cut 1 of " + std::to_string(o.cuts.size()));
    o.progress = [&bar](std::size_t done, std::size_t all) {
        std::string label = "cut ";
        label += std::to_string(std::min(done + 1, all));
        label += " of ";
        label += std::to_string(all);
        bar(all ? static_cast<double>(done) / static_cast<double>(all) : 1.0, label);
    };
    const pipecast::backtest_result r = pipecast::backtest(log, o);
    bar.finish();
    if (!a.per_deal.empty()) write_backtest_per_deal(r, a.per_deal);
    if (a.json) {
        json j = r;
        j["history"] = a.history;
        print_json(j);
        return;
    }
    std::cout << "Backtest of " << a.history << ": method " << a.method
              << (o.method == pipecast::backtest_method::model ? " (" + a.kind + ")" : std::string()) << ", horizon "
              << fixed(horizon, 1) << ' ' << a.time_unit << "s, " << r.cuts.size() << " cut(s), " << o.paths
              << " paths each\n";
    if (o.min_dwell || o.after_the_fact)
        std::cout << "Artefacts (history known at the last cut): " << r.cuts.back().merged_visits
                  << " click-through visit(s) merged, " << r.cuts.back().dropped_deals
                  << " after-the-fact booking(s) left out\n";
    std::cout << '\n';
    table t({"cut", "deals", "predicted", "P10", "P90", "actual", "error", "won (pred)", "won", "crm weighted",
             "roll rate"});
    for (const auto& c : r.cuts)
        t.add_row({pipecast::format_time(c.cut, r.dates, r.days_per_unit), std::to_string(c.deals), money(c.predicted.mean),
                   money(c.predicted.p10), money(c.predicted.p90), money(c.actual), percent(c.relative_error),
                   fixed(c.predicted_count.mean, 1), std::to_string(c.actual_count), money(c.crm_weighted),
                   money(c.roll_rate)});
    t.print(std::cout);
    std::cout << "\nValue MAPE " << percent(r.summary.mape) << " (CRM weighted " << percent(r.crm_weighted.mape)
              << ", roll rate " << percent(r.roll_rate.mape) << "); actual inside P10-P90 in " << percent(r.coverage, 0)
              << " of cuts (count: " << percent(r.count_coverage, 0) << ")\n";
    std::cout << "Brier score " << fixed(r.summary.brier, 4) << " (CRM weighted " << fixed(r.crm_weighted.brier, 4)
              << ", roll rate " << fixed(r.roll_rate.brier, 4) << ")\n\nCalibration of per-deal P(won within "
              << fixed(horizon, 0) << "):\n";
    // The gap in standard errors (independent deals, predictions taken as true): |z| < 2 is
    // what sampling noise alone gives in 95% of bins.
    auto z = [](const pipecast::calibration_bin& b) {
        return b.standard_error > 0.0 ? fixed((b.observed - b.mean_predicted) / b.standard_error, 1) : std::string("n/a");
    };
    table cal({"predicted", "deals", "mean predicted", "observed", "std error", "gap/se"});
    for (const auto& b : r.summary.calibration)
        if (b.deals > 0)
            cal.add_row({fixed(b.lower, 1) + "-" + fixed(b.upper, 1), std::to_string(b.deals), fixed(b.mean_predicted, 3),
                         fixed(b.observed, 3), fixed(b.standard_error, 3), z(b)});
    cal.print(std::cout);
    std::cout << "\nBy deciles of risk (ten groups of equal count):\n";
    table dec({"decile", "predicted", "deals", "mean predicted", "observed", "std error", "gap/se"});
    for (std::size_t i = 0; i < r.summary.calibration_deciles.size(); ++i) {
        const auto& b = r.summary.calibration_deciles[i];
        dec.add_row({std::to_string(i + 1), fixed(b.lower, 3) + "-" + fixed(b.upper, 3), std::to_string(b.deals),
                     fixed(b.mean_predicted, 3), fixed(b.observed, 3), fixed(b.standard_error, 3), z(b)});
    }
    dec.print(std::cout);
    std::cout << "\n(" << fixed(r.elapsed_seconds, 1) << " s)\n";
}

} // namespace

void add_backtest_command(CLI::App& app) {
    auto a = std::make_shared<backtest_args>();
    CLI::App* cmd = app.add_subcommand(
        "backtest", "refit at past cuts from the history known then and compare the forecasts with what happened");
    cmd->add_option("--history", a->history, "stage-visit or stage-change log CSV")->required();
    cmd->add_option("--cuts", a->cuts, "cut dates (ISO) or times, comma-separated")->delimiter(',');
    cmd->add_option("--every", a->every,
                    "quarter or month: the period ends from one year after the log starts to one horizon before it ends "
                    "(the default without --cuts: quarter)");
    cmd->add_option("--horizon", a->horizon, "forecast horizon (a number in time units, or e.g. 90d)")->capture_default_str();
    cmd->add_option("--method", a->method, "model (fitted model) or landmark (direct estimate)")->capture_default_str();
    cmd->add_option("--model", a->kind, "model class of the refits: branched or classic")->capture_default_str();
    cmd->add_option("--min-dwell", a->min_dwell,
                    "merge click-through visits shorter than this (e.g. 60s); auto: 60s when the history before the "
                    "first cut shows click-throughs; off")
        ->capture_default_str();
    cmd->add_option("--drop-after-the-fact", a->after_the_fact,
                    "leave out deals created and booked won within this (e.g. 1d); auto: 1d when 5%+ of the wins "
                    "before the first cut are such; off")
        ->capture_default_str();
    cmd->add_option("--window", a->window, "fit only the last part of the history known at each cut (e.g. 365d)");
    cmd->add_option("--half-life", a->half_life, "weight the history by recency with this half-life (e.g. 180d)");
    cmd->add_option("--time-unit", a->time_unit, "model time unit (day, week, ...)")->capture_default_str();
    cmd->add_option("--won", a->won, "outcome(s) that count as wins (default: by name)");
    cmd->add_option("--paths", a->paths, "simulated paths per cut")->capture_default_str()->check(whole_number(1));
    cmd->add_option("--seed", a->seed, "random seed")->capture_default_str()->check(whole_number());
    cmd->add_option("--threads", a->threads, "simulation threads (0: all cores)")->capture_default_str()->check(whole_number(0, 4096));
    cmd->add_flag("--skip-bad-rows", a->skip_bad_rows, "report and skip malformed rows instead of stopping");
    cmd->add_flag("--json", a->json, "print JSON");
    cmd->add_option("--nowcast", a->nowcast,
                    "on: read the shock of each open deal's entry quarter from its cohort's outcomes so far "
                    "(docs/estimation.md §9); off: the fitted model's shock-averaged probabilities")
        ->capture_default_str();
    cmd->add_option("--per-deal", a->per_deal,
                    "write every open deal's prediction and outcome at each cut to this CSV file (cut,id,stage,age,amount,p_win_within,won)");
    cmd->add_option("--as-of", a->as_of,
                    "the history as known at this date (ISO, or a time): later visits and deals dropped; the default "
                    "cuts end one horizon before it");
    add_input_options(cmd, history_input());
    cmd->callback([a] { run_backtest(*a); });
}

} // namespace pipecast_cli
