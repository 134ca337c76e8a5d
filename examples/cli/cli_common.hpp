// pipecast command-line tool — shared helpers of the subcommands.
#pragma once

#include <pipecast/pipecast.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "progress.hpp"
#include "table.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <iomanip>
#include <map>
#include <optional>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast_cli {

/// Registers one subcommand each; defined in cmd_<name>.cpp.
void add_forecast_command(CLI::App& app);
void add_funnel_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_fit_commands(CLI::App& app); // fit and kpi
void add_backtest_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_sweep_command(CLI::App& app);

/// Validator of a whole-number option (--paths, --seed, --threads, ...): digits only, so that
/// "-1" is an error instead of wrapping to 18446744073709551615, and a value in [lo, hi].
inline CLI::Validator whole_number(std::uint64_t lo = 0, std::uint64_t hi = std::numeric_limits<std::uint64_t>::max()) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            const std::string_view t = pipecast::detail::trim(text);
            std::uint64_t v = 0;
            const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            const std::string range = hi == std::numeric_limits<std::uint64_t>::max()
                                          ? pipecast::detail::message(">= ", lo)
                                          : pipecast::detail::message("in [", lo, ", ", hi, "]");
            if (t.empty() || ptr != t.data() + t.size() || (ec != std::errc{} && ec != std::errc::result_out_of_range))
                return "expected a whole number " + range + ", got '" + pipecast::detail::clip(text) + "'";
            if (ec == std::errc::result_out_of_range || v < lo || v > hi)
                return "expected a whole number " + range + ", got " + pipecast::detail::clip(text);
            return {};
        },
        lo == 0 && hi == std::numeric_limits<std::uint64_t>::max() ? "UINT" : "UINT in range");
}

// class table (padded by display width): table.hpp; class progress_bar: progress.hpp.

/// A magnitude from which text output switches to scientific notation (1.235e+21):
/// whole units beyond it are not exact in a double, and a 300-digit column helps no one.
inline constexpr double large_magnitude = 1e18;

/// `v` in scientific notation with `digits` digits after the point ("1.000e+19").
inline std::string scientific(double v, int digits = 3) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific, digits);
    return std::string(buf, r.ptr);
}

/// 1234567.891 -> "1,234,568" (money, no decimals); from 1e18 on in scientific notation
/// ("1.000e+19"), never wrapped or clamped.
inline std::string money(double v) {
    if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
    if (std::abs(v) >= large_magnitude) return scientific(v);
    const bool neg = v < 0;
    const auto n = static_cast<long long>(std::llround(std::abs(v))); // < 1e18 < 2^63
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return neg && n != 0 ? "-" + out : out;
}

/// Fixed-point number with `decimals` digits (scientific from 1e18 on).
inline std::string fixed(double v, int decimals = 2) {
    if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
    if (std::abs(v) >= large_magnitude) return scientific(v, std::max(decimals, 3));
    std::ostringstream os;
    os << std::fixed << std::setprecision(decimals) << v;
    return os.str();
}

/// 0.4567 -> "45.7%".
inline std::string percent(double p, int decimals = 1) { return std::isfinite(p) ? fixed(100.0 * p, decimals) + "%" : "n/a"; }

/// `s` with every byte that is not part of valid UTF-8 replaced by '?' (a file name in a
/// model's description: JSON text is UTF-8).
inline std::string valid_utf8(std::string s) {
    for (std::size_t at = pipecast::detail::utf8_valid_prefix(s); at < s.size();
         at += 1 + pipecast::detail::utf8_valid_prefix(std::string_view(s).substr(at + 1)))
        s[at] = '?';
    return s;
}

/// The JSON every command prints: keys in insertion order (a reading order), docs/cli.md.
using json_out = nlohmann::ordered_json;

/// Prints JSON to stdout (indent 2).
inline void print_json(const json_out& j) { std::cout << j.dump(2) << '\n'; }

/// Loads a model file (wrapping errors with the file name).
inline pipecast::model load_model_file(const std::string& path) { return pipecast::load_model(path); }

// --- reading CRM exports (issue 10): one option set and one loader for every command ---

/// How to read a history or book file: --format, --encoding, --delimiter, --map,
/// --stage-map, --stage-order, --won/--lost, --date-format, --decimal-comma.
struct input_options {
    std::string format = "auto";
    std::string encoding = "utf-8";
    std::string delimiter;
    std::vector<std::string> map;         ///< FIELD=COLUMN
    std::vector<std::string> stage_map;   ///< OLD=NEW, or a file of OLD,NEW lines
    std::vector<std::string> stage_order; ///< the open stages in funnel order
    std::vector<std::string> won, lost;
    std::string date_format;
    bool decimal_comma = false;
    std::string fx;          ///< exchange-rate file: currency,rate[,date]
    std::vector<CLI::App*> cmds; ///< the commands they are registered on (for a --won of their own)
};

/// The input options of the commands that read a history (fit, kpi, backtest), and of those
/// that read a book (forecast, simulate): one set each, registered on every such command
/// (one command runs per process).
inline input_options& history_input() {
    static input_options in;
    return in;
}
inline input_options& book_input() {
    static input_options in;
    return in;
}

/// Registers the input options on a command (a --won the command already has is shared).
inline void add_input_options(CLI::App* cmd, input_options& in) {
    in.cmds.push_back(cmd);
    auto* g = cmd;
    g->add_option("--format", in.format, "input format: auto, visits, changes, salesforce, hubspot, opportunities")
        ->capture_default_str();
    g->add_option("--encoding", in.encoding, "input encoding: utf-8, gb18030, gbk, windows-1252, latin1, utf-16")
        ->capture_default_str();
    g->add_option("--delimiter", in.delimiter, "field separator: , ; tab or | (default: detected from the header)");
    g->add_option("--map", in.map, "FIELD=COLUMN[,...]: the column of a field (e.g. deal_id=商机编号,stage=阶段)")
        ->delimiter(',');
    g->add_option("--stage-map", in.stage_map, "OLD=NEW[,...] or a CSV file of OLD,NEW lines: rename stages")
        ->delimiter(',');
    g->add_option("--stage-order", in.stage_order, "the open stages in funnel order (others are errors)")->delimiter(',');
    if (!cmd->get_option_no_throw("--won"))
        g->add_option("--won", in.won, "outcome names that count as wins (besides won, closed won, 赢单, 成交, 签约)")
            ->delimiter(',');
    g->add_option("--lost", in.lost, "outcome names that count as losses (besides lost, closed lost, 丢单, 输单, 失败)")
        ->delimiter(',');
    g->add_option("--date-format", in.date_format, "strftime-style date pattern, e.g. %d/%m/%Y %H:%M");
    g->add_flag("--decimal-comma", in.decimal_comma, "amounts use a decimal comma (1.234,50)");
    g->add_option("--fx", in.fx, "exchange rates CSV (currency,rate[,date]): convert amounts to the report currency");
}

namespace input_detail {

inline std::pair<std::string, std::string> split_pair(const std::string& s, const char* what) {
    if (const std::size_t ok = pipecast::detail::utf8_valid_prefix(s); ok != s.size())
        throw pipecast::argument_error(std::string(what) + ": '" + pipecast::detail::clip(s) + "' is not valid UTF-8 (byte " +
                                       std::to_string(ok + 1) + ")");
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
        throw pipecast::argument_error(std::string(what) + ": expected OLD=NEW, got '" + pipecast::detail::clip(s) + "'");
    return {std::string(pipecast::detail::trim(s.substr(0, eq))), std::string(pipecast::detail::trim(s.substr(eq + 1)))};
}

/// --stage-map entries: OLD=NEW, or a file (two columns OLD,NEW; a header line old,new is skipped).
inline std::vector<std::pair<std::string, std::string>> stage_map_of(const std::vector<std::string>& items) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& it : items) {
        if (it.find('=') == std::string::npos) {
            std::string text = pipecast::detail::to_utf8(pipecast::detail::read_file_bytes(it, "stage map file"), "utf-8", it);
            std::istringstream in(text);
            pipecast::detail::csv_reader csv(in, it, pipecast::detail::csv_dialect{0, true, std::size_t{1} << 20});
            std::vector<std::string> f;
            while (csv.next(f)) {
                if (f.size() != 2)
                    throw pipecast::parse_error(it, csv.line(), 0, "expected two fields: old stage, new stage");
                const auto a = std::string(pipecast::detail::trim(f[0])), b = std::string(pipecast::detail::trim(f[1]));
                if (csv.line() == 1 && pipecast::detail::lower(a) == "old" && pipecast::detail::lower(b) == "new") continue;
                out.emplace_back(a, b);
            }
        } else {
            out.push_back(split_pair(it, "--stage-map"));
        }
    }
    return out;
}

inline char delimiter_of(const std::string& d) {
    if (d.empty()) return 0;
    if (d == "tab" || d == "\\t" || d == "\t") return '\t';
    if (d == "," || d == ";" || d == "|") return d[0];
    throw pipecast::argument_error("--delimiter: expected , ; tab or |, got '" + pipecast::detail::clip(d) + "'");
}

} // namespace input_detail

/// Applies the input options to reader options (column map, stage map and order, outcomes,
/// dates, amounts, delimiter).
inline void apply_input_options(pipecast::history_options& o, const input_options& in) {
    for (const auto& m : in.map) o.columns.push_back(input_detail::split_pair(m, "--map"));
    o.stage_map = input_detail::stage_map_of(in.stage_map);
    if (!in.stage_order.empty()) o.stages = in.stage_order;
    o.won = in.won;
    for (auto* cmd : in.cmds) // a --won the command defines itself (fit, kpi, backtest)
        if (const auto* w = cmd->get_option_no_throw("--won"); o.won.empty() && cmd->parsed() && w && w->count() > 0)
            o.won = w->as<std::vector<std::string>>();
    o.lost = in.lost;
    o.recognise_outcomes = true;
    o.delimiter = input_detail::delimiter_of(in.delimiter);
    o.date_format = in.date_format;
    o.decimal_comma = in.decimal_comma;
    if (!in.fx.empty()) {
        std::istringstream rates(pipecast::detail::to_utf8(pipecast::detail::read_file_bytes(in.fx, "exchange-rate file"), "utf-8", in.fx));
        o.fx = pipecast::read_fx_rates(rates, in.fx);
    }
}

/// Reads a history file as the input options say (base: as-of, time unit, skip_bad_rows,
/// outcomes), and names the format read on stderr.
inline pipecast::visit_log load_history_input(const std::string& path, pipecast::history_options base,
                                              const input_options& in) {
    pipecast::import_options io;
    apply_input_options(base, in);
    io.history = std::move(base);
    io.format = pipecast::parse_history_format(in.format);
    io.encoding = in.encoding;
    pipecast::import_result r = pipecast::import_history(path, io);
    std::cerr << "pipecast: read " << path << " as " << pipecast::to_string(r.format) << " (" << r.rows << " rows, "
              << r.log.deal_count() << " deals, " << r.log.size() << " visits";
    if (r.encoding != "utf-8") std::cerr << ", " << r.encoding;
    if (r.deleted_rows) std::cerr << ", " << r.deleted_rows << " deleted rows left out";
    if (r.lossy_deals) std::cerr << ", " << r.lossy_deals << " deals with back-moves HubSpot did not keep";
    if (r.undated_deals) std::cerr << ", " << r.undated_deals << " deals without dates left out";
    std::cerr << ")\n";
    return std::move(r.log);
}

/// The outcomes of a log read with the input options that count as wins (for fit_options::won,
/// so that 赢单 or a --won name is a win).
inline std::vector<std::string> won_outcomes_input(const pipecast::visit_log& log, const input_options& in) {
    pipecast::history_options o;
    apply_input_options(o, in);
    return pipecast::won_outcomes(log, o);
}

/// Reads a book of open deals as the input options say (base: as-of, time unit).
inline pipecast::book load_book_input(const std::string& path, const pipecast::stage_graph& g,
                                      pipecast::book_csv_options base, const input_options& in) {
    pipecast::history_options h;
    apply_input_options(h, in);
    base.columns = h.columns;
    base.stage_map = h.stage_map;
    base.delimiter = h.delimiter;
    base.date_format = h.date_format;
    base.decimal_comma = h.decimal_comma;
    base.fx = h.fx;
    base.encoding = in.encoding;
    base.format = pipecast::parse_history_format(in.format);
    return pipecast::load_book_csv(path, g, base);
}


// --- reading and fitting a history: one option set for fit, kpi and report ---

/// Options shared by fit, kpi and report: how to read and fit the history.
struct history_args {
    std::string history;
    std::string as_of;
    std::string time_unit = "day";
    std::vector<std::string> won;
    std::vector<std::string> outcomes;
    std::string dwell = "aic";
    double prior_count = 0.0;
    std::vector<double> size_bands;
    bool skip_bad_rows = false;
    bool json = false;
    std::string model_kind = "classic"; ///< fit, kpi and report set branched as their default
    std::string window, half_life;       ///< durations: a number of time units, or with d/w/m/y
    std::string stall = "on";
    /// Artefact cleaning: "auto" (on when the log shows the artefact: pipecast::scan_artefacts),
    /// "off", or a duration.
    std::string min_dwell = "auto", after_the_fact = "auto";
};

/// A positive duration in model time units ("180" time units, or "180d", "26w", "6mo", "1y").
inline double positive_duration(const std::string& text, const std::string& option, const std::string& time_unit) {
    const double v = pipecast::parse_duration(text, pipecast::days_per_unit(time_unit), option);
    if (!(v > 0.0)) throw pipecast::argument_error(option + ": must be positive, got '" + text + "'");
    return v;
}

inline void add_history_options(CLI::App* cmd, history_args& a) {
    cmd->add_option("--history", a.history, "stage-visit log (deal_id,stage,entered,exited,next_stage[,amount]) "
                                             "or stage-change log (deal_id,stage,changed_at[,amount]) CSV")
        ->required();
    cmd->add_option("--as-of", a.as_of,
                    "the history as known at this date: later visits and deals dropped, visits spanning it censored "
                    "at it (default: the whole file)");
    cmd->add_option("--min-dwell", a.min_dwell,
                    "merge click-through visits shorter than this (e.g. 60s) into the visit before; auto: 60s when the "
                    "log shows click-throughs (0.5%+ of visits under a minute, times of day); off")
        ->capture_default_str();
    cmd->add_option("--drop-after-the-fact", a.after_the_fact,
                    "leave out deals created and booked won within this (e.g. 1d): entered after the fact; auto: 1d "
                    "when 5%+ of the wins are such; off")
        ->capture_default_str();
    cmd->add_option("--time-unit", a.time_unit, "model time unit; ISO dates are converted to it (day, week, month, ...)")
        ->capture_default_str();
    cmd->add_option("--won", a.won, "outcome(s) that count as wins (default: by name, e.g. Won, Closed Won)");
    cmd->add_option("--outcomes", a.outcomes, "outcome stage names (default: inferred from the log)");
    cmd->add_option("--dwell", a.dwell, "dwell of the model: aic, km, exponential, gamma, lognormal, weibull")
        ->capture_default_str();
    cmd->add_option("--prior-count", a.prior_count, "Dirichlet pseudo-count added to every observed transition")
        ->capture_default_str();
    cmd->add_option("--size-bands", a.size_bands, "deal-size band edges (e.g. 10000,50000): adds the column size_band")
        ->delimiter(',');
    cmd->add_flag("--skip-bad-rows", a.skip_bad_rows, "report and skip malformed rows instead of stopping");
    cmd->add_option("--model-kind", a.model_kind,
                    "branched (one branch per exit with its own dwell, plus a stalled share) or classic (one dwell per stage)")
        ->check(CLI::IsMember({"branched", "classic"}))
        ->capture_default_str();
    cmd->add_option("--window", a.window, "fit only the visits that entered within this long before the log end (180d, 26w, 6mo, 1y)");
    cmd->add_option("--half-life", a.half_life, "weight visits by 0.5^(age of their entry / half-life) (90d, 13w, 3m, ...)");
    cmd->add_option("--stall", a.stall, "branched: a stalled (no-decision) branch per stage, on or off")
        ->check(CLI::IsMember({"on", "off"}))
        ->capture_default_str();
    cmd->add_flag("--json", a.json, "print JSON");
    add_input_options(cmd, history_input());
}

/// Checks --as-of against a history: a date or time no earlier than the log's first entry
/// (later than its end is fine: open visits are censored there). The messages give the log's
/// span as dates for a dated log ("2024-01-04 .. 2025-12-27"), not as epoch days.
/// @returns the as-of time in model time units.
inline double check_history_as_of(const std::string& text, const pipecast::visit_log& log, double dpu) {
    const double t = pipecast::parse_cut(text, log, dpu);
    if (!(std::abs(t) <= pipecast::detail::max_abs_time))
        throw pipecast::argument_error(pipecast::detail::message("--as-of: '", pipecast::detail::clip(text),
                                                                 "' is out of range (at most ", pipecast::detail::max_abs_time,
                                                                 " time units in magnitude)"));
    if (!log.empty() && t < pipecast::detail::first_entry(log))
        throw pipecast::argument_error(pipecast::detail::message(
            "--as-of ", pipecast::detail::clip(text), " is before the history ", log.source, " starts (it spans ",
            pipecast::format_time(pipecast::detail::first_entry(log), log.dates, dpu), " .. ",
            pipecast::format_time(log.end_time, log.dates, dpu), ")"));
    return t;
}

inline pipecast::visit_log read_history(const history_args& a) {
    pipecast::history_options o;
    o.skip_bad_rows = a.skip_bad_rows;
    o.days_per_unit = pipecast::days_per_unit(a.time_unit);
    o.outcomes = a.outcomes;
    pipecast::visit_log log = load_history_input(a.history, o, history_input());
    // The views of history_view.hpp, each reported with its counts on stderr (--json stays valid).
    if (!a.as_of.empty()) check_history_as_of(a.as_of, log, o.days_per_unit);
    if (!a.as_of.empty() && pipecast::parse_cut(a.as_of, log, o.days_per_unit) >= log.end_time) {
        log.end_time = pipecast::parse_cut(a.as_of, log, o.days_per_unit); // after every event: open visits censored there
    } else if (!a.as_of.empty()) {
        auto v = pipecast::as_of(log, pipecast::parse_cut(a.as_of, log, o.days_per_unit));
        std::cerr << "pipecast: as of " << a.as_of << ": " << v.deals_dropped << " deal(s) created later and "
                  << v.visits_dropped << " visit(s) entered later left out, " << v.visits_censored
                  << " visit(s) censored at it\n";
        log = std::move(v.log);
    }
    // Artefact cleaning: a duration applies it, "auto" applies the default threshold when the
    // log shows the artefact (scanned once, before either is applied), "off" never.
    auto threshold = [&](const std::string& v, const std::string& option, const char* fallback) -> std::optional<double> {
        if (v == "off") return std::nullopt;
        return positive_duration(v == "auto" ? fallback : v, option, a.time_unit);
    };
    const std::optional<double> min_dwell = threshold(a.min_dwell, "--min-dwell", "60s");
    const std::optional<double> after = threshold(a.after_the_fact, "--drop-after-the-fact", "1d");
    const pipecast::artefact_scan scan = pipecast::scan_artefacts(log, min_dwell.value_or(1.0), after.value_or(1.0),
                                                                  pipecast::days_per_unit(a.time_unit), a.won);
    if (min_dwell && (a.min_dwell != "auto" || scan.click_throughs())) {
        const std::string shown = a.min_dwell == "auto" ? "60s" : a.min_dwell;
        auto v = pipecast::merge_click_throughs(log, *min_dwell);
        std::cerr << "pipecast: --min-dwell " << shown << (a.min_dwell == "auto" ? " (auto: " : " (")
                  << scan.short_visits << " of " << scan.finished_visits << " finished visits shorter): " << v.merged
                  << " click-through visit(s) merged, " << v.dropped_first << " short first visit(s) dropped"
                  << (a.min_dwell == "auto" ? "; --min-dwell off keeps them" : "") << "\n";
        log = std::move(v.log);
    }
    if (after && (a.after_the_fact != "auto" || scan.after_the_fact())) {
        const std::string shown = a.after_the_fact == "auto" ? "1d" : a.after_the_fact;
        auto v = pipecast::drop_after_the_fact(log, *after, a.won);
        std::cerr << "pipecast: --drop-after-the-fact " << shown << (a.after_the_fact == "auto" ? " (auto: " : " (")
                  << scan.quick_wins << " of " << scan.won_deals << " wins within it): " << v.deals_dropped
                  << " deal(s) booked won after the fact left out (" << v.visits_dropped << " visits)"
                  << (a.after_the_fact == "auto" ? "; --drop-after-the-fact off keeps them" : "") << "\n";
        log = std::move(v.log);
    }
    if (!a.size_bands.empty()) pipecast::add_amount_bands(log, a.size_bands);
    if (!log.skipped.empty()) {
        std::cerr << "pipecast: skipped " << log.skipped.size() << " bad row(s) of " << a.history << ":\n";
        for (const auto& s : log.skipped) std::cerr << "  " << s.reason << '\n';
    }
    return log;
}

inline pipecast::fit_options fit_options_of(const history_args& a) {
    pipecast::fit_options o;
    o.time_unit = a.time_unit;
    o.won = a.won;
    o.prior_count = a.prior_count;
    static const std::map<std::string, pipecast::dwell_choice> choices{
        {"aic", pipecast::dwell_choice::aic},
        {"km", pipecast::dwell_choice::kaplan_meier},
        {"kaplan_meier", pipecast::dwell_choice::kaplan_meier},
        {"exponential", pipecast::dwell_choice::exponential},
        {"gamma", pipecast::dwell_choice::gamma},
        {"lognormal", pipecast::dwell_choice::lognormal},
        {"weibull", pipecast::dwell_choice::weibull}};
    const auto it = choices.find(a.dwell);
    if (it == choices.end())
        throw pipecast::argument_error("--dwell: expected aic, km, exponential, gamma, lognormal or weibull, got '" +
                                       a.dwell + "'");
    o.dwell = it->second;
    o.kind = a.model_kind == "branched" ? pipecast::model_kind::branched : pipecast::model_kind::classic;
    o.stall = a.stall != "off";
    if (!a.window.empty()) o.window = positive_duration(a.window, "--window", a.time_unit);
    if (!a.half_life.empty()) o.half_life = positive_duration(a.half_life, "--half-life", a.time_unit);
    return o;
}

} // namespace pipecast_cli
