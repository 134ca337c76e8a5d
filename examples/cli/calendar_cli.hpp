// pipecast command-line tool — the calendar forecast and the per-deal output shared by
// forecast, simulate and report (issue 12): the options, the text tables and the JSON.
// The numbers come from pipecast::calendar_forecast and pipecast::deal_forecasts
// (calendar.hpp); this file only reads the options and lays the results out.
#pragma once

#include <pipecast/forecast/calendar.hpp>
#include <pipecast/io/results_json.hpp>

#include "cli_common.hpp"

#include <fstream>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace pipecast_cli {

using cal_json = nlohmann::ordered_json;

/// --period, --fiscal-year-start, --buckets, --quotas, --history and --per-deal.
struct calendar_args {
    std::string period;        ///< month, quarter or year; empty: no calendar forecast
    unsigned fiscal_start = 1; ///< first month of the fiscal year
    std::size_t buckets = 4;   ///< the current period and the next ones
    std::string quotas;        ///< owners.csv (owner,quota): quota per owner per period
    std::string history;       ///< a history whose wins give Closed (the current period's won to date)
    std::string per_deal;      ///< FILE.csv of the per-deal rows
};

/// Adds the calendar and per-deal options (the command has its own --as-of).
inline void add_calendar_options(CLI::App* cmd, calendar_args& a) {
    cmd->add_option("--period", a.period,
                    "Also forecast by calendar period: month, quarter or year, from the one --as-of falls in (a "
                    "period end starts the next one); needs --as-of")
        ->check(CLI::IsMember({"month", "quarter", "year"}));
    cmd->add_option("--fiscal-year-start", a.fiscal_start, "First month of the fiscal year (1-12), for --period")
        ->capture_default_str()
        ->check(whole_number(1, 12));
    cmd->add_option("--buckets", a.buckets, "Calendar periods to forecast with --period (the current one and the next)")
        ->capture_default_str()
        ->check(whole_number(1, 120));
    cmd->add_option("--quotas", a.quotas, "Owner quotas per period for --period: a CSV with the columns owner,quota");
    cmd->add_option("--history", a.history,
                    "Stage-visit or stage-change log whose wins in the current period before --as-of are Closed "
                    "(for --period)");
    cmd->add_option("--per-deal", a.per_deal,
                    "Also write one CSV row per open deal: id,stage,age,amount,p_win,p_win_within,expected_close,"
                    "stale,expected_value,owner (and a per_deal list in --json)");
}

/// The as-of date of --as-of in model time units. @throws argument_error when it is missing
/// (with the option that needs it) or not a date.
inline double as_of_time(const std::optional<std::string>& text, double dpu, const char* needed_by) {
    if (!text) throw pipecast::argument_error(std::string(needed_by) + " needs --as-of DATE (YYYY-MM-DD)");
    const auto d = pipecast::detail::parse_iso8601(*text);
    if (!d) throw pipecast::argument_error("--as-of: expected a date (YYYY-MM-DD), got '" + pipecast::detail::clip(*text) + "'");
    return *d / dpu;
}

/// The calendar options of the arguments: buckets, owner quotas, Closed from --history.
inline pipecast::calendar_options calendar_options_of(const calendar_args& a, const pipecast::model& m, double as_of,
                                                      const pipecast::simulation_options& sim) {
    pipecast::calendar_options o;
    o.as_of = as_of;
    o.unit = pipecast::parse_calendar_unit(a.period);
    o.fiscal_start = a.fiscal_start;
    o.days_per_unit = pipecast::days_per_unit(m.time_unit);
    o.buckets = a.buckets;
    if (!a.quotas.empty()) o.owner_quotas = pipecast::load_owner_quotas(a.quotas);
    if (!a.history.empty()) {
        history_args h;
        h.history = a.history;
        h.time_unit = m.time_unit;
        h.min_dwell = h.after_the_fact = "off"; // every win counts in Closed (the cleanings are for fitting)
        const pipecast::visit_log log = read_history(h);
        if (!log.dates)
            throw pipecast::argument_error("--history: " + a.history + " has plain-number times, not dates: no calendar");
        const double start = pipecast::period_of(as_of, o.unit, o.fiscal_start, o.days_per_unit).start;
        o.closed = pipecast::won_between(log, m.graph, start, as_of);
    }
    o.simulation = sim;
    return o;
}

/// "2025-07-01 to 2025-09-30" -> "2025-07-01..09-30" would lose the year; the label as is.
inline const std::string& bucket_label(const pipecast::bucket_forecast& b) { return b.period.label; }

/// The calendar tables: per period (Closed, expected, simulated P10-P90, quota), the forecast
/// categories' roll-up, and the owners of the current period.
inline void print_calendar(std::ostream& os, const pipecast::calendar_forecast_result& r) {
    const std::string unit(pipecast::to_string(r.unit));
    os << "\nBy " << unit << (r.fiscal_start != 1 ? " (fiscal year from month " + std::to_string(r.fiscal_start) + ")" : "")
       << '\n';
    const bool sim = !r.buckets.empty() && r.buckets.front().simulated.has_value();
    const bool quota = !r.buckets.empty() && r.buckets.front().quota > 0.0;
    std::vector<std::string> h{"Period", "Closed", "Expected", "Closed + expected"};
    if (sim) h.insert(h.end(), {"Simulated", "P10", "P90"});
    if (quota) h.push_back("Quota");
    if (quota && sim) h.push_back("P(quota)");
    table t(h);
    for (const auto& b : r.buckets) {
        std::vector<std::string> row{bucket_label(b), money(b.closed), money(b.expected), money(b.closed + b.expected)};
        if (sim) {
            const auto& s = *b.simulated;
            const std::size_t nq = s.quantiles.size();
            row.push_back(money(b.closed + s.mean));
            row.push_back(nq ? money(b.closed + s.quantiles.front()) : "n/a");
            row.push_back(nq ? money(b.closed + s.quantiles.back()) : "n/a");
        }
        if (quota) row.push_back(money(b.quota));
        if (quota && sim) row.push_back(b.simulated->p_quota.empty() ? "n/a" : percent(b.simulated->p_quota.front()));
        t.add_row(std::move(row));
    }
    t.print(os);
    os << "\nForecast categories (cumulative)\n";
    table c({"Period", "Closed", "Commit", "Best case", "Pipeline"});
    for (const auto& b : r.buckets)
        c.add_row({bucket_label(b), money(b.rollup.closed), money(b.rollup.commit), money(b.rollup.best_case),
                   money(b.rollup.pipeline)});
    c.print(os);
    if (!r.buckets.empty() && !r.buckets.front().owners.empty()) {
        const auto& b = r.buckets.front();
        os << "\nBy owner, " << bucket_label(b) << '\n';
        table o({"Owner", "Deals", "Closed", "Expected", "Commit", "Best case", "Pipeline", "Quota", "Attainment",
                 "Projected"});
        for (const auto& x : b.owners)
            o.add_row({x.owner.empty() ? "(none)" : x.owner, std::to_string(x.deals), money(x.closed), money(x.expected),
                       money(x.rollup.commit), money(x.rollup.best_case), money(x.rollup.pipeline),
                       std::isfinite(x.quota) ? money(x.quota) : "-", std::isfinite(x.attainment) ? percent(x.attainment) : "-",
                       std::isfinite(x.projected_attainment) ? percent(x.projected_attainment) : "-"});
        o.print(os);
    }
    os << "\nClosed = won in the period before the as-of date (from --history); Expected = amount x P(won in the "
          "period)\nof the open deals; Simulated = Closed + the Monte Carlo value won in the period (with new deals "
          "when simulated),\nP10-P90 per period. Categories add up: Commit = Closed + commit deals, Best case = "
          "Commit + best case,\nPipeline = Best case + the rest (omitted deals left out). Attainment = Closed / "
          "quota; Projected = (Closed + Expected) / quota.\n";
}

/// The calendar forecast as JSON: {"period", "fiscal_year_start", "as_of", "buckets": [...]}
/// (the library's calendar_document, results_json.hpp).
inline cal_json calendar_json(const pipecast::calendar_forecast_result& r, double dpu) {
    return pipecast::calendar_document{r, dpu};
}

/// The rep's close date of each deal and what the model says of it.
struct rep_close {
    std::vector<double> date;        ///< per deal (book order): the close date (model time), NaN where none
    std::vector<double> p_won_by;    ///< P(won by that date | stage, age); 0 for a date already past
    std::vector<char> past;          ///< the close date is before the as-of date
    std::size_t dated = 0, past_count = 0;
    [[nodiscard]] bool any() const noexcept { return dated > 0; }
};

/// Reads the rep's close dates from the deals CSV (a column close_date, "close date",
/// closedate, expected_close_date or close, matched by the id column) and computes P(won by
/// that date | stage, age) per deal (period_forecast at each distinct date, one renewal
/// table). A file without such a column, or one this plain UTF-8 reader cannot read (another
/// encoding: the book reader's options are not applied here), gives none; a close date that
/// is not a date is an error naming file:line.
inline rep_close rep_close_dates(const std::string& path, const pipecast::model& m, const pipecast::book& b, double as_of,
                                 double dpu) {
    rep_close r;
    r.date.assign(b.size(), std::numeric_limits<double>::quiet_NaN());
    r.p_won_by.assign(b.size(), std::numeric_limits<double>::quiet_NaN());
    r.past.assign(b.size(), 0);
    if (path.empty() || path == "-" || b.empty()) return r;
    std::unordered_map<std::string, double> by_id;
    try {
        std::ifstream in(path, std::ios::binary);
        if (!in) return r;
        pipecast::detail::csv_reader csv(in, path);
        std::vector<std::string> f;
        if (!csv.next(f)) return r;
        std::optional<std::size_t> c_id, c_close;
        for (std::size_t c = 0; c < f.size(); ++c) {
            const std::string name = pipecast::detail::lower(pipecast::detail::trim(f[c]));
            if (!c_id && (name == "id" || name == "deal_id" || name == "deal id" || name == "opportunity id")) c_id = c;
            if (!c_close && (name == "close_date" || name == "close date" || name == "closedate" ||
                             name == "expected_close_date" || name == "close"))
                c_close = c;
        }
        if (!c_id || !c_close) return r;
        while (csv.next(f)) {
            if (*c_id >= f.size() || *c_close >= f.size()) continue;
            const std::string_view text = pipecast::detail::trim(f[*c_close]);
            if (text.empty()) continue;
            const auto d = pipecast::detail::parse_iso8601(text);
            if (!d)
                throw pipecast::parse_error(path, csv.line(), *c_close + 1,
                                            "column 'close_date': expected a date (YYYY-MM-DD), got '" +
                                                pipecast::detail::clip(text) + "'");
            by_id[std::string(pipecast::detail::trim(f[*c_id]))] = *d / dpu;
        }
    } catch (const pipecast::parse_error& e) {
        if (std::string(e.what()).find("close_date") != std::string::npos) throw;
        std::cerr << "pipecast: note: close dates not read from " << path << " (" << e.what() << ")\n";
        return r;
    }
    std::vector<double> horizons;
    const auto ids = b.ids();
    for (std::size_t i = 0; i < b.size(); ++i) {
        const auto it = by_id.find(ids[i]);
        if (it == by_id.end()) continue;
        r.date[i] = it->second;
        ++r.dated;
        if (it->second < as_of) {
            r.past[i] = 1;
            ++r.past_count;
            r.p_won_by[i] = 0.0;
        } else {
            horizons.push_back(it->second - as_of);
        }
    }
    std::sort(horizons.begin(), horizons.end());
    horizons.erase(std::unique(horizons.begin(), horizons.end()), horizons.end());
    if (horizons.empty()) return r;
    const pipecast::absorption_analysis a = pipecast::analyse(m.graph);
    const bool markov = pipecast::is_markov(m.graph);
    std::optional<pipecast::win_time_table> table;
    if (!markov && horizons.back() > 0.0) table = pipecast::win_time_distribution(m.graph, horizons.back(), 0);
    pipecast::period_forecast_options po;
    po.per_deal = true;
    for (const double h : horizons) {
        const pipecast::period_forecast_result q = table && h > 0.0 ? pipecast::period_forecast(m.graph, b, h, *table, a, true)
                                                                    : pipecast::period_forecast(m.graph, b, h, po);
        for (std::size_t i = 0; i < b.size(); ++i)
            if (!r.past[i] && std::isfinite(r.date[i]) && r.date[i] - as_of == h)
                r.p_won_by[i] = q.deal_probability.empty() ? 0.0 : q.deal_probability[i];
    }
    return r;
}

/// The per-deal CSV: pipecast::per_deal_csv's columns, then, when the book has the reps'
/// close dates, close_date, p_won_by_close_date and close_date_past.
inline std::string per_deal_text(const std::vector<pipecast::deal_forecast>& deals, const rep_close& rc, bool dates,
                                 double dpu) {
    if (!rc.any()) return pipecast::per_deal_csv(deals, dates, dpu);
    std::string s = pipecast::per_deal_csv({}, dates, dpu); // the header
    s.pop_back();
    s += ",close_date,p_won_by_close_date,close_date_past\n";
    for (std::size_t i = 0; i < deals.size(); ++i) {
        std::string row = pipecast::per_deal_csv(std::span<const pipecast::deal_forecast>(&deals[i], 1), dates, dpu);
        row.erase(0, row.find('\n') + 1); // the header has no quoted field: its first line end is its end
        row.pop_back();
        s += row;
        s += ',';
        if (std::isfinite(rc.date[i])) s += pipecast::format_time(rc.date[i], true, dpu);
        s += ',';
        if (std::isfinite(rc.p_won_by[i])) s += pipecast::detail::message(rc.p_won_by[i]);
        s += rc.past[i] ? ",true\n" : std::isfinite(rc.date[i]) ? ",false\n" : ",\n";
    }
    return s;
}

/// The per-deal rows as a JSON list (the CSV's columns as keys).
inline cal_json deals_json(const std::vector<pipecast::deal_forecast>& deals, bool dates, double dpu,
                           const rep_close* rc = nullptr) {
    cal_json list = pipecast::per_deal_document{deals, dates, dpu}; // results_json.hpp
    if (rc && rc->any()) // the reps' close dates: the CLI reads them from the deals file
        for (std::size_t i = 0; i < deals.size(); ++i) {
            cal_json& x = list[i];
            const bool has = std::isfinite(rc->date[i]);
            x["close_date"] = has ? cal_json(pipecast::format_time(rc->date[i], true, dpu)) : cal_json(nullptr);
            x["p_won_by_close_date"] = has ? cal_json(rc->p_won_by[i]) : cal_json(nullptr);
            x["close_date_past"] = has ? cal_json(rc->past[i] != 0) : cal_json(nullptr);
        }
    return list;
}

/// Writes the per-deal CSV (whole or not at all).
inline void write_per_deal(const std::string& path, const std::vector<pipecast::deal_forecast>& deals, bool dates, double dpu,
                           const rep_close& rc = {}) {
    pipecast::detail::write_file_atomic(path, per_deal_text(deals, rc, dates, dpu), "per-deal CSV");
}

/// The deals whose rep's close date is past, and the model beside the reps' dates.
inline void print_rep_close(std::ostream& os, const std::vector<pipecast::deal_forecast>& deals, const rep_close& rc,
                            double dpu) {
    if (!rc.any()) return;
    double rep_value = 0.0, model_value = 0.0;
    for (std::size_t i = 0; i < deals.size(); ++i)
        if (std::isfinite(rc.date[i]) && !rc.past[i]) rep_value += deals[i].amount, model_value += deals[i].amount * rc.p_won_by[i];
    os << "\nReps' close dates: " << rc.dated << " deals dated; the model gives the " << (rc.dated - rc.past_count)
       << " still ahead " << money(model_value) << " of their " << money(rep_value) << " by those dates (P(won by the "
       << "close date)).\n";
    if (rc.past_count == 0) return;
    os << rc.past_count << " deal(s) with a close date already past:\n";
    table t({"Deal", "Stage", "Amount", "Close date", "P(win)", "Expected close"});
    std::size_t shown = 0;
    for (std::size_t i = 0; i < deals.size() && shown < 20; ++i)
        if (rc.past[i]) {
            ++shown;
            const auto& d = deals[i];
            t.add_row({d.id, d.stage, money(d.amount), pipecast::format_time(rc.date[i], true, dpu), percent(d.p_win),
                       std::isfinite(d.expected_close) ? pipecast::format_time(d.expected_close, true, dpu) : "-"});
        }
    t.print(os);
    if (shown < rc.past_count) os << "(the first " << shown << "; --per-deal lists them all)\n";
}

} // namespace pipecast_cli
