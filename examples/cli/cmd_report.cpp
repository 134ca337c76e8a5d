// pipecast report — the pipeline report a sales manager reads: one self-contained HTML page
// (inline SVG charts, no script, nothing fetched) and the same content as Markdown with the
// charts as SVG files beside it.
//
//   pipecast report --history H.csv --quota Q [--deals D.csv] [--period month|quarter|year
//                   [--fiscal-year-start MM] | --horizon H] [--as-of DATE] [--out DIR]
//                   [--paths N] [--seed S] [--backtest auto|off] [--per-deal FILE.csv]
//                   [--quotas owners.csv] [--buckets N]
//
// Without --deals the open book is the deals open in the history at the as-of date
// (book_at). The numbers come from pipecast::make_report (report.hpp); this file only lays
// them out (svg.hpp draws the charts). Files are written whole or not at all.
#include <pipecast/report/report.hpp>
#include <pipecast/report/svg.hpp>

#include "calendar_cli.hpp"
#include "cli_common.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pipecast_cli {
namespace {

struct report_args {
    history_args history;
    std::string deals;
    double quota = 0.0;
    std::string period;
    unsigned fiscal_start = 1;
    std::optional<std::string> horizon;
    std::string out = "report";
    std::size_t paths = 4000;
    std::uint64_t seed = 1;
    unsigned threads = 0;
    std::string backtest = "auto";
    std::string per_deal;
    std::string quotas;      ///< owners.csv: the calendar section's owner quotas
    std::size_t buckets = 0; ///< calendar periods in the calendar section (0: 1 with --quotas, else none)
    std::string title = "Pipeline report";
    bool no_arrivals = false;
};

const char* const stage_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
const char* color_of(std::size_t i) { return stage_colors[i % (sizeof stage_colors / sizeof stage_colors[0])]; }

/// A chart of the report: file name (Markdown), caption, SVG text.
struct chart {
    std::string file, caption, svg;
};

/// A table of the report, written as HTML and as Markdown.
struct report_table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::vector<bool> numeric; ///< per column: right-aligned
    std::vector<bool> highlight; ///< per row
};

std::string html_table(const report_table& t) {
    std::string s = "<table><thead><tr>";
    for (std::size_t c = 0; c < t.header.size(); ++c)
        s += std::string(c < t.numeric.size() && t.numeric[c] ? "<th class=\"n\">" : "<th>") + pipecast::svg::escape(t.header[c]) + "</th>";
    s += "</tr></thead><tbody>";
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        s += r < t.highlight.size() && t.highlight[r] ? "<tr class=\"hl\">" : "<tr>";
        for (std::size_t c = 0; c < t.rows[r].size(); ++c)
            s += std::string(c < t.numeric.size() && t.numeric[c] ? "<td class=\"n\">" : "<td>") +
                 pipecast::svg::escape(t.rows[r][c]) + "</td>";
        s += "</tr>";
    }
    return s + "</tbody></table>\n";
}

std::string md_cell(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += "\\|";
        else if (c == '\n') out += ' ';
        else out += c;
    }
    return out;
}

std::string md_table(const report_table& t) {
    std::string s = "|";
    for (const auto& h : t.header) {
        s += ' ';
        s += md_cell(h);
        s += " |";
    }
    s += "\n|";
    for (std::size_t c = 0; c < t.header.size(); ++c) s += c < t.numeric.size() && t.numeric[c] ? "---:|" : "---|";
    s += "\n";
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        s += "|";
        for (std::size_t c = 0; c < t.rows[r].size(); ++c) {
            const bool bold = r < t.highlight.size() && t.highlight[r] && c == 0;
            // Appended piece by piece (GCC 12 warns, falsely, on "literal" + std::string&&).
            s += bold ? " **" : " ";
            s += md_cell(t.rows[r][c]);
            s += bold ? "** |" : " |";
        }
        s += "\n";
    }
    return s + "\n";
}

/// The report as sections of text, tables and charts, rendered twice (HTML and Markdown).
struct section {
    std::string heading;
    std::vector<std::string> paragraphs;
    std::vector<report_table> tables;
    std::vector<chart> charts;
    bool small_charts = false; ///< charts side by side
};

void run_report(const report_args& a) {
    const double dpu = pipecast::days_per_unit(a.history.time_unit);
    if (!(std::isfinite(a.quota) && a.quota > 0.0))
        throw pipecast::argument_error(pipecast::detail::message("--quota: must be a positive amount, got ", a.quota));
    if (!a.period.empty() && a.horizon) throw pipecast::argument_error("--period and --horizon: give one of them");
    if (a.backtest != "auto" && a.backtest != "off")
        throw pipecast::argument_error("--backtest: expected auto or off, got '" + pipecast::detail::clip(a.backtest) + "'");
    {   // The output directory first: a bad --out fails before minutes of work.
        std::error_code ec;
        std::filesystem::create_directories(a.out, ec);
        if (ec || !std::filesystem::is_directory(a.out))
            throw pipecast::argument_error("--out: cannot create the directory '" + a.out + "': " +
                                           (ec ? ec.message() : std::string("a file of that name exists")));
    }
    const pipecast::visit_log log = read_history(a.history);
    if (log.empty()) throw pipecast::argument_error("report: " + a.history.history + ": the history has no visits");
    const double as_of = a.history.as_of.empty() ? log.end_time : pipecast::parse_cut(a.history.as_of, log, dpu);

    // The period: a calendar bucket (dated logs) or as-of + horizon.
    pipecast::report_options o;
    o.as_of = as_of;
    o.quota = a.quota;
    o.paths = a.paths;
    o.seed = a.seed;
    o.threads = a.threads;
    o.arrivals = !a.no_arrivals;
    o.week = 7.0 / dpu;
    std::string period_label;
    if (a.horizon || (a.period.empty() && !log.dates)) {
        const double h = pipecast::parse_duration(a.horizon.value_or("90"), dpu, "--horizon");
        if (!(h > 0.0)) throw pipecast::argument_error("--horizon: must be positive, got '" + *a.horizon + "'");
        o.period_start = as_of;
        o.period_end = as_of + h;
        period_label = "the next " + fixed(h, 0) + " " + a.history.time_unit + "s";
    } else {
        if (!log.dates)
            throw pipecast::argument_error("--period: the history " + a.history.history +
                                           " has plain-number times, not dates; use --horizon");
        const auto p = pipecast::period_of(as_of, pipecast::parse_calendar_unit(a.period.empty() ? "quarter" : a.period),
                                           a.fiscal_start, dpu);
        o.period_start = p.start;
        o.period_end = p.end;
        period_label = p.label;
    }

    progress_bar bar("report"); // progress.hpp: stderr, a terminal only
    bar(0.0, "fitting");
    const pipecast::history_fit fit = pipecast::fit_history(log, fit_options_of(a.history));
    const pipecast::model m = pipecast::to_model(fit, "fitted to " + a.history.history);
    std::optional<pipecast::book> deals;
    if (!a.deals.empty()) {
        pipecast::book_csv_options bo;
        bo.days_per_unit = dpu;
        if (!a.history.as_of.empty() && log.dates) bo.as_of = a.history.as_of;
        deals = load_book_input(a.deals, m.graph, bo, history_input());
    }
    std::string backtest_note;
    if (a.backtest == "auto") {
        pipecast::backtest_options bt;
        bt.horizon = o.period_end - as_of;
        bt.fit = fit_options_of(a.history);
        bt.paths = 1000;
        bt.seed = a.seed;
        bt.threads = a.threads;
        bt.progress = [&bar](std::size_t done, std::size_t all) { // the backtest: most of a report's time
            std::string label = "backtest cut ";
            label += std::to_string(std::min(done + 1, all));
            label += " of ";
            label += std::to_string(all);
            bar(0.1 + 0.9 * (all ? static_cast<double>(done) / static_cast<double>(all) : 1.0), label);
        };
        try {
            bt.cuts = pipecast::calendar_cuts(log, bt.horizon, 3, dpu);
            o.backtest = bt;
        } catch (const pipecast::argument_error& e) {
            backtest_note = std::string("No backtest: ") + e.what() + ".";
        }
    }
    std::cerr << "pipecast: report as of " << pipecast::format_time(as_of, log.dates, dpu) << " for " << period_label
              << (o.backtest ? ", with a backtest at " + std::to_string(o.backtest->cuts.size()) + " cut(s)" : std::string())
              << "\n";
    if (!a.quotas.empty() || a.buckets > 0) { // the calendar section (calendar.hpp)
        if (!log.dates)
            throw pipecast::argument_error("--quotas/--buckets: the history " + a.history.history +
                                           " has plain-number times, not dates: no calendar periods");
        pipecast::calendar_options co;
        co.unit = pipecast::parse_calendar_unit(a.period.empty() ? "quarter" : a.period);
        co.fiscal_start = a.fiscal_start;
        co.days_per_unit = dpu;
        co.buckets = a.buckets > 0 ? a.buckets : 1;
        if (!a.quotas.empty()) co.owner_quotas = pipecast::load_owner_quotas(a.quotas);
        if (co.owner_quotas.empty()) co.quota = a.quota; // else the owners' quotas add up to the period's
        o.calendar = co;
    }
    bar(0.1, "forecasting and simulating");
    const pipecast::pipeline_report r = pipecast::make_report(log, fit, m, o, deals ? &*deals : nullptr);
    bar.finish();

    // --- layout ---
    namespace svg = pipecast::svg;
    const pipecast::stage_graph& g = m.graph;
    const bool dates = log.dates;
    auto when = [&](double t) { return pipecast::format_time(t, dates, dpu); };
    const std::string u = a.history.time_unit + "s";
    const auto xfmt = dates ? svg::axis_format::date : svg::axis_format::number;
    auto xday = [&](double t) { return dates ? t * dpu : t; }; // date axes are in days
    std::vector<section> doc;

    {   // Summary and KPIs.
        section s;
        s.heading = "Summary";
        const double sim_mean = r.won_to_date + r.outcome.won_value.mean;
        s.paragraphs.push_back("As of " + when(r.as_of) + "; period " + period_label + "; quota " + money(r.quota) + ". " +
                               std::to_string(r.deals.size()) +
                               " open deals worth " + money(r.weighted.total_amount) + ".");
        s.paragraphs.push_back("Expected won value in the period: " + money(sim_mean) + " (P10 " +
                               money(r.won_to_date + r.outcome.won_value.quantiles[0]) + ", P90 " +
                               money(r.won_to_date + r.outcome.won_value.quantiles[2]) + "); P(quota) " +
                               percent(r.p_quota) + ".");
        report_table t;
        t.header = {"KPI", "value"};
        t.numeric = {false, true};
        auto add = [&](std::string k, std::string v) { t.rows.push_back({std::move(k), std::move(v)}); };
        add("open deals", std::to_string(r.deals.size()));
        add("open value", money(r.weighted.total_amount));
        add("won in the period to date", money(r.won_to_date));
        add("remaining quota", money(r.remaining_quota));
        add("weighted forecast (CRM: amount x P(win | stage))", money(r.weighted.weighted_total));
        add("age-aware forecast (amount x P(win | stage, age))", money(r.age_aware.age_weighted_total));
        add("expected from the open book within the period", money(r.in_period.expected));
        add("simulated won value in the period: mean", money(sim_mean));
        add("simulated won value: P10 .. P90", money(r.won_to_date + r.outcome.won_value.quantiles[0]) + " .. " +
                                                    money(r.won_to_date + r.outcome.won_value.quantiles[2]));
        add("P(quota)", percent(r.p_quota));
        add("win rate (censoring-aware)", percent(r.kpi.win_rate));
        add("sales cycle median (" + u + ")", fixed(r.kpi.cycle.median, 1));
        add("sales velocity (per " + a.history.time_unit + ")", money(r.kpi.velocity));
        if (r.funnel.coverage.actual) add("pipeline coverage of the remaining quota", fixed(*r.funnel.coverage.actual, 2) + "x");
        if (r.funnel.coverage.required) add("coverage the ideal funnel needs", fixed(*r.funnel.coverage.required, 2) + "x");
        add("stale deals", std::to_string(r.kpi.stale.size()));
        add("bottleneck: most losses", r.kpi.bottleneck.loss_stage + " (" + percent(r.kpi.bottleneck.loss_share) + ")");
        add("bottleneck: most time", r.kpi.bottleneck.stall_stage + " (" + percent(r.kpi.bottleneck.time_share) + ")");
        s.tables.push_back(std::move(t));
        doc.push_back(std::move(s));
    }
    {   // Funnel against the ideal funnel, and the gap per stage.
        section s;
        s.heading = "Funnel against the ideal funnel for the quota";
        const auto& gap = *r.funnel.gap;
        svg::bar_chart c;
        c.title = "Open value per stage: actual vs ideal for the quota";
        c.x_label = "value";
        c.x_format = svg::axis_format::money;
        c.series_names = {"actual", "ideal"};
        c.colors = {"#1f77b4", "#bbbbbb"};
        c.values.assign(2, {});
        report_table t;
        t.header = {"stage", "deals", "ideal deals", "value", "ideal value", "shortfall", "in-period value", "period impact"};
        t.numeric = {false, true, true, true, true, true, true, true};
        for (std::size_t i = 0; i < gap.stages.size(); ++i) {
            const auto& x = gap.stages[i];
            const bool bottleneck = gap.bottleneck && *gap.bottleneck == i;
            c.categories.push_back(g.name(i));
            c.values[0].push_back(x.actual_value);
            c.values[1].push_back(x.ideal_value);
            c.notes.push_back(bottleneck ? "bottleneck" : "");
            t.rows.push_back({g.name(i) + (bottleneck ? " (bottleneck)" : ""), fixed(x.actual_count, 0), fixed(x.ideal_count, 1),
                              money(x.actual_value), money(x.ideal_value), money(x.shortfall_value), money(x.in_period_value),
                              money(x.period_impact)});
            t.highlight.push_back(bottleneck);
        }
        s.charts.push_back({"funnel.svg", "Funnel: actual open value per stage against the ideal funnel for the quota", svg::render(c)});
        s.paragraphs.push_back("The ideal funnel holds, in steady state, the deals each stage needs for " + money(r.quota) +
                               " per period (the model's conversion and time in stage). Shortfall = ideal − actual value; "
                               "period impact = the wins this period the shortfall costs. " +
                               (gap.bottleneck ? "Bottleneck: " + g.name(*gap.bottleneck) + "."
                                               : std::string("No shortfall that matters this period.")));
        s.tables.push_back(std::move(t));
        doc.push_back(std::move(s));
    }
    {   // Forecast fan and outcome histogram.
        section s;
        s.heading = "Forecast of the period";
        svg::line_chart c;
        c.title = "Cumulative won value over the period (mean, P10-P90)";
        c.x_label = dates ? "date" : a.history.time_unit;
        c.y_label = "won value";
        c.x_format = xfmt;
        c.y_format = svg::axis_format::money;
        svg::band b{"P10-P90", {xday(r.as_of)}, {r.won_to_date}, {r.won_to_date}, "#1f77b4"};
        svg::series mean = svg::line_series("mean", {xday(r.as_of)}, {r.won_to_date}, "#1f77b4");
        svg::series median = svg::line_series("median", {xday(r.as_of)}, {r.won_to_date}, "#555555", true);
        for (std::size_t k = 0; k < r.outcome.sub_period_ends.size(); ++k) {
            const auto& v = r.outcome.sub_period_value[k];
            const double x = xday(r.as_of + r.outcome.sub_period_ends[k]);
            b.x.push_back(x);
            b.lo.push_back(r.won_to_date + v.quantiles[0]);
            b.hi.push_back(r.won_to_date + v.quantiles[2]);
            mean.x.push_back(x);
            mean.y.push_back(r.won_to_date + v.mean);
            median.x.push_back(x);
            median.y.push_back(r.won_to_date + v.quantiles[1]);
        }
        c.bands.push_back(std::move(b));
        c.lines = {std::move(mean), std::move(median)};
        c.references.push_back({r.quota, "quota " + money(r.quota), "#d62728"});
        c.y_min = 0.0;
        s.charts.push_back({"fan.svg", "Forecast fan: cumulative won value (value won to date + simulated), P10-P90 band, quota line",
                            svg::render(c)});

        svg::histogram_chart h;
        h.title = "Won value in the period: P(quota) = " + percent(r.p_quota);
        h.x_label = "won value in the period";
        h.x_format = svg::axis_format::money;
        const auto& hist = r.outcome.won_value.histogram;
        h.lower = r.won_to_date + hist.lower;
        h.bin_width = hist.width;
        double total = 0.0;
        for (auto n : hist.counts) total += static_cast<double>(n);
        for (std::size_t i = 0; i < hist.counts.size(); ++i) {
            h.shares.push_back(total > 0.0 ? static_cast<double>(hist.counts[i]) / total : 0.0);
            h.bin_colors.push_back(h.lower + hist.width * static_cast<double>(i + 1) > r.quota ? "#2ca02c" : "#1f77b4");
        }
        h.markers.push_back({r.quota, "quota", "#d62728"});
        s.charts.push_back({"outcome.svg", "Outcome histogram of the simulated won value; green bins reach the quota",
                            svg::render(h)});
        s.paragraphs.push_back(std::to_string(r.outcome.paths) + " simulated paths of the open deals" +
                               (o.arrivals ? " and the new deals the model expects" : std::string()) +
                               ", with the fitted overdispersion between deals. The value already won in the period (" +
                               money(r.won_to_date) + ") is added to each path.");
        doc.push_back(std::move(s));
    }
    {   // Win probability by age, per stage.
        section s;
        s.heading = "Win probability by age in stage";
        s.small_charts = true;
        for (std::size_t i = 0; i < r.win_by_age.size(); ++i) {
            const auto& w = r.win_by_age[i];
            svg::line_chart c;
            c.title = w.stage + ": P(win | age)";
            c.x_label = "age in stage (" + u + ")";
            c.y_format = svg::axis_format::percent;
            c.width = 440;
            c.height = 300;
            c.y_min = 0.0;
            c.x_min = 0.0;
            // The age axis: where the curve has fallen to 2% of its start, or the 90th percentile of
            // the open deals' ages, whichever is later; older deals are counted in the caption.
            std::vector<double> ages = w.deal_age;
            std::sort(ages.begin(), ages.end());
            double x_hi = ages.empty() ? 0.0 : ages[ages.size() * 9 / 10];
            for (std::size_t k = 0; k < w.age.size(); ++k)
                if (w.p_win[k] >= 0.02 * w.p_win.front()) x_hi = std::max(x_hi, w.age[k]);
            x_hi = std::min(1.1 * x_hi, w.age.back());
            svg::series dots = svg::dot_series("open deals", {}, {}, color_of(i), 2.5);
            svg::series curve = svg::line_series("model", {}, {}, "#333333");
            std::size_t stale = 0, older = 0;
            for (std::size_t k = 0; k < w.deal_age.size(); ++k) {
                if (w.deal_age[k] > x_hi) {
                    ++older;
                    continue;
                }
                dots.x.push_back(w.deal_age[k]);
                dots.y.push_back(w.deal_p_win[k]);
                dots.point_colors.push_back(w.deal_stale[k] ? "#d62728" : color_of(i));
                stale += w.deal_stale[k] ? 1 : 0;
            }
            for (std::size_t k = 0; k < w.age.size(); ++k)
                if (w.age[k] <= x_hi) curve.x.push_back(w.age[k]), curve.y.push_back(w.p_win[k]);
            c.x_max = x_hi;
            c.lines.push_back(std::move(curve));
            c.lines.push_back(std::move(dots));
            if (stale) c.lines.push_back(svg::line_series("stale", {}, {}, "#d62728"));
            std::string caption = w.stage + ": P(win | age in stage), open deals as dots (stale in red)";
            if (older) {
                caption += "; ";
                caption += std::to_string(older);
                caption += " older deals beyond the axis";
            }
            s.charts.push_back({"win_by_age_" + std::to_string(i + 1) + ".svg", caption, svg::render(c)});
        }
        s.paragraphs.push_back("The curve is the model's P(win | stage, age); each dot is an open deal at its age. Old "
                               "deals sit where the curve has fallen: wins come early, stalled deals linger.");
        doc.push_back(std::move(s));
    }
    {   // Survival and cumulative incidence.
        section s;
        s.heading = "Stage survival and cumulative incidence";
        s.small_charts = true;
        for (std::size_t i = 0; i < r.survival.size(); ++i) {
            const auto& c0 = r.survival[i];
            svg::line_chart c;
            c.title = c0.stage + ": time in stage";
            c.x_label = "time in stage (" + u + ")";
            c.y_format = svg::axis_format::percent;
            c.width = 440;
            c.height = 300;
            c.y_min = 0.0;
            c.y_max = 1.0;
            c.lines.push_back(svg::line_series("still in stage", c0.t, c0.survival, "#333333"));
            for (std::size_t k = 0; k < c0.exits.size(); ++k) {
                const auto& e = c0.exits[k];
                const auto j = g.find(e.to);
                const std::string color = e.stalled ? "#999999" : j && g.is_win(*j) ? "#2ca02c" : j && !g.is_open(*j) ? "#d62728"
                                                                                               : color_of(k);
                c.lines.push_back(svg::line_series("to " + e.to + (e.stalled ? " (stalled)" : ""), c0.t, e.value, color, e.stalled));
            }
            s.charts.push_back({"survival_" + std::to_string(i + 1) + ".svg",
                                c0.stage + ": P(still in stage after t) and P(left to each exit by t)", svg::render(c)});
        }
        doc.push_back(std::move(s));
    }
    {   // Sales progress.
        section s;
        s.heading = "Sales progress (销售进展) week by week";
        if (r.progress.empty()) {
            s.paragraphs.push_back("The history does not reach back two weeks before the as-of date.");
        } else {
            svg::line_chart c;
            c.title = "Sales progress (销售进展): weekly change of forecast + closed-won";
            c.x_label = dates ? "week ending" : a.history.time_unit;
            c.y_label = "value";
            c.x_format = xfmt;
            c.y_format = svg::axis_format::money;
            svg::series prog = svg::line_series("progress", {}, {}, "#1f77b4");
            svg::series dots = svg::dot_series("", {}, {}, "#1f77b4");
            report_table t;
            t.header = {"week ending", "weighted forecast", "closed-won", "forecast + closed-won", "progress", "share of quota",
                        "pace"};
            t.numeric = {false, true, true, true, true, true, true};
            for (const auto& w : r.progress) {
                prog.x.push_back(xday(w.end));
                prog.y.push_back(w.progress.progress);
                dots.point_colors.push_back(w.progress.progress >= 0 ? "#1f77b4" : "#d62728");
                t.rows.push_back({when(w.end), money(w.forecast), money(w.closed_won), money(w.forecast + w.closed_won),
                                  money(w.progress.progress), percent(w.progress.share_of_quota), fixed(w.progress.pace, 2) + "x"});
            }
            dots.x = prog.x;
            dots.y = prog.y;
            c.lines = {std::move(prog), std::move(dots)};
            c.references.push_back({r.progress.front().progress.steady_share * r.quota, "steady pace", "#2ca02c"});
            c.references.push_back({0.0, "", "#999999"});
            s.charts.push_back({"progress.svg", "Sales progress (销售进展) week by week, against the steady pace quota / weeks",
                                svg::render(c)});
            s.paragraphs.push_back("Progress = (weighted forecast + value won) this week − the same last week; a steady week "
                                   "adds quota / weeks in the period (pace 1.0x).");
            s.tables.push_back(std::move(t));
        }
        doc.push_back(std::move(s));
    }
    {   // Backtest calibration.
        section s;
        s.heading = "Backtest calibration";
        if (!r.backtest) {
            s.paragraphs.push_back(backtest_note.empty() ? "Backtest off (--backtest off)." : backtest_note);
        } else {
            const auto& bt = *r.backtest;
            svg::line_chart c;
            c.title = "Calibration: predicted vs observed P(won within " + fixed(bt.horizon, 0) + " " + u + ")";
            c.x_label = "predicted";
            c.y_label = "observed";
            c.x_format = c.y_format = svg::axis_format::percent;
            c.x_min = c.y_min = 0.0;
            c.x_max = c.y_max = 1.0;
            c.lines.push_back(svg::line_series("perfect", {0.0, 1.0}, {0.0, 1.0}, "#999999", true));
            svg::series pts = svg::dot_series("deciles of risk", {}, {}, "#1f77b4", 4.0);
            for (const auto& b : bt.summary.calibration_deciles)
                if (b.deals > 0) pts.x.push_back(b.mean_predicted), pts.y.push_back(b.observed);
            c.lines.push_back(std::move(pts));
            s.charts.push_back({"calibration.svg", "Backtest calibration by deciles of predicted risk", svg::render(c)});
            s.paragraphs.push_back("Refit at " + std::to_string(bt.cuts.size()) + " past quarter end(s) from the history known "
                                   "then; value MAPE " + percent(bt.summary.mape) + ", actual inside P10-P90 in " +
                                   percent(bt.coverage, 0) + " of cuts, Brier score " + fixed(bt.summary.brier, 4) + ".");
            report_table t;
            t.header = {"cut", "deals", "predicted", "P10", "P90", "actual"};
            t.numeric = {false, true, true, true, true, true};
            for (const auto& x : bt.cuts)
                t.rows.push_back({when(x.cut), std::to_string(x.deals), money(x.predicted.mean), money(x.predicted.p10),
                                  money(x.predicted.p90), money(x.actual)});
            s.tables.push_back(std::move(t));
        }
        doc.push_back(std::move(s));
    }
    if (r.calendar) { // Calendar periods, forecast categories, owners against their quotas.
        const auto& cal = *r.calendar;
        section s;
        s.heading = "Calendar forecast by " + std::string(pipecast::to_string(cal.unit));
        report_table t;
        t.header = {"period", "closed", "expected", "closed + expected", "simulated", "P10", "P90", "quota", "P(quota)"};
        t.numeric = {false, true, true, true, true, true, true, true, true};
        report_table c;
        c.header = {"period", "Closed", "Commit", "Best case", "Pipeline"};
        c.numeric = {false, true, true, true, true};
        svg::bar_chart bc;
        bc.title = "Value per " + std::string(pipecast::to_string(cal.unit)) + ": closed + expected, and the quota";
        bc.x_label = "value";
        bc.x_format = svg::axis_format::money;
        bc.series_names = {"closed + expected", "quota"};
        bc.colors = {"#1f77b4", "#bbbbbb"};
        bc.values.assign(2, {});
        for (const auto& b : cal.buckets) {
            const auto& sim = *b.simulated;
            const bool q = b.quota > 0.0 && !sim.p_quota.empty();
            t.rows.push_back({b.period.label, money(b.closed), money(b.expected), money(b.closed + b.expected),
                              money(b.closed + sim.mean), money(b.closed + sim.quantiles.front()),
                              money(b.closed + sim.quantiles.back()), q ? money(b.quota) : "-",
                              q ? percent(sim.p_quota.front()) : "-"});
            c.rows.push_back({b.period.label, money(b.rollup.closed), money(b.rollup.commit), money(b.rollup.best_case),
                              money(b.rollup.pipeline)});
            bc.categories.push_back(b.period.label);
            bc.values[0].push_back(b.closed + b.expected);
            bc.values[1].push_back(b.quota);
            bc.notes.push_back("");
        }
        if (cal.buckets.front().quota <= 0.0) { // no quotas: the one series
            bc.series_names.pop_back();
            bc.colors.pop_back();
            bc.values.pop_back();
        }
        s.charts.push_back({"calendar.svg", "Closed + expected value per period against the quota", svg::render(bc)});
        s.paragraphs.push_back("Closed = won in the period before the as-of date; expected = amount x P(won in the "
                               "period) of the open deals; simulated = closed + the Monte Carlo value won in the period "
                               "(with new deals), P10-P90 per period. The forecast categories add up: Commit = Closed + "
                               "commit deals, Best case = Commit + best case, Pipeline = Best case + the rest.");
        s.tables.push_back(std::move(t));
        s.tables.push_back(std::move(c));
        const auto& first = cal.buckets.front();
        if (!first.owners.empty()) {
            report_table ot;
            ot.header = {"owner", "deals", "closed", "expected", "quota", "attainment", "projected"};
            ot.numeric = {false, true, true, true, true, true, true};
            for (const auto& x : first.owners) {
                ot.rows.push_back({x.owner.empty() ? "(none)" : x.owner, std::to_string(x.deals), money(x.closed),
                                   money(x.expected), std::isfinite(x.quota) ? money(x.quota) : "-",
                                   std::isfinite(x.attainment) ? percent(x.attainment) : "-",
                                   std::isfinite(x.projected_attainment) ? percent(x.projected_attainment) : "-"});
                ot.highlight.push_back(std::isfinite(x.projected_attainment) && x.projected_attainment < 1.0);
            }
            s.paragraphs.push_back("Owners in " + first.period.label + ": attainment = closed / quota, projected = (closed + "
                                   "expected) / quota (below 100% highlighted).");
            s.tables.push_back(std::move(ot));
        }
        doc.push_back(std::move(s));
    }
    {   // Deals.
        section s;
        s.heading = "Deals";
        report_table top;
        top.header = {"deal", "stage", "owner", "age", "amount", "P(win)", "P(win in period)", "expected close", "expected value"};
        top.numeric = {false, false, false, true, true, true, true, false, true};
        for (std::size_t i : r.top) {
            const auto& d = r.deals[i];
            top.rows.push_back({d.id, d.stage, d.owner, fixed(d.age, 1), money(d.amount), percent(d.p_win),
                                percent(d.p_win_within), std::isfinite(d.expected_close) ? when(d.expected_close) : "-",
                                money(d.expected_value)});
            top.highlight.push_back(d.stale);
        }
        s.paragraphs.push_back("Top " + std::to_string(r.top.size()) + " deals by expected value within the period "
                               "(amount x P(won within the period)):");
        s.tables.push_back(std::move(top));
        doc.push_back(std::move(s));
        s = section{};
        s.heading = "Stale deals";
        report_table st;
        st.header = {"deal", "stage", "age", "longest won stay", "P(stalled)", "P(win | age)", "amount"};
        st.numeric = {false, false, true, true, true, true, true};
        const std::size_t shown = std::min<std::size_t>(r.kpi.stale.size(), 20);
        for (std::size_t i = 0; i < shown; ++i) {
            const auto& d = r.kpi.stale[i];
            st.rows.push_back({d.id, d.stage, fixed(d.age, 1), std::isfinite(d.threshold) ? fixed(d.threshold, 1) : "-",
                               percent(d.stalled_probability), percent(d.win_probability, 2), money(d.amount)});
        }
        s.paragraphs.push_back(std::to_string(r.kpi.stale.size()) + " stale deals (P(stalled | stage, age) >= " +
                               percent(r.kpi.stalled_threshold, 0) + ", or older than the stage's longest stay of a won "
                               "deal)" + (shown < r.kpi.stale.size() ? "; the first " + std::to_string(shown) + ":" : ":"));
        s.tables.push_back(std::move(st));
        doc.push_back(std::move(s));
    }

    // --- write ---
    std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                       "<title>" + svg::escape(a.title) + "</title><style>"
                       "body{font-family:sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#222}"
                       "h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}"
                       "table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}"
                       "th,td{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}"
                       "th{background:#f5f5f5}.n{text-align:right;font-variant-numeric:tabular-nums}"
                       "tr.hl td{background:#fff3f0}figure{margin:8px 0}figcaption{font-size:12px;color:#555}"
                       ".small{display:flex;flex-wrap:wrap;gap:8px}.small figure{width:440px}"
                       "svg.chart{max-width:100%;height:auto;border:1px solid #eee}"
                       "</style></head><body>\n<h1>" + svg::escape(a.title) + "</h1>\n";
    std::string md = "# " + a.title + "\n\n";
    std::vector<chart> files;
    for (const auto& s : doc) {
        html += "<h2>" + svg::escape(s.heading) + "</h2>\n";
        md += "## " + s.heading + "\n\n";
        for (const auto& p : s.paragraphs) {
            html += "<p>" + svg::escape(p) + "</p>\n";
            md += md_cell(p) + "\n\n";
        }
        if (!s.charts.empty()) html += s.small_charts ? "<div class=\"small\">\n" : "";
        for (const auto& c : s.charts) {
            html += "<figure>" + c.svg + "<figcaption>" + svg::escape(c.caption) + "</figcaption></figure>\n";
            md += "![";
            md += md_cell(c.caption);
            md += "](" + c.file + ")\n\n";
            files.push_back(c);
        }
        if (!s.charts.empty() && s.small_charts) html += "</div>\n";
        for (const auto& t : s.tables) {
            html += html_table(t);
            md += md_table(t);
        }
    }
    html += "<p style=\"font-size:11px;color:#777\">Generated by pipecast " PIPECAST_VERSION " from " +
            svg::escape(a.history.history) + ".</p>\n</body></html>\n";

    const std::filesystem::path dir(a.out);
    for (const auto& c : files)
        pipecast::detail::write_file_atomic((dir / c.file).string(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + c.svg + "\n",
                                            "report chart");
    pipecast::detail::write_file_atomic((dir / "report.md").string(), md, "report");
    pipecast::detail::write_file_atomic((dir / "report.html").string(), html, "report");
    if (!a.per_deal.empty()) write_per_deal(a.per_deal, r.deals, dates, dpu);
    if (a.history.json) {
        nlohmann::ordered_json j;
        j["html"] = (dir / "report.html").string();
        j["markdown"] = (dir / "report.md").string();
        j["charts"] = files.size();
        j["as_of"] = when(r.as_of);
        j["period_start"] = when(r.period_start);
        j["period_end"] = when(r.period_end);
        j["quota"] = r.quota;
        j["won_to_date"] = r.won_to_date;
        j["expected"] = r.won_to_date + r.outcome.won_value.mean;
        j["p10"] = r.won_to_date + r.outcome.won_value.quantiles[0];
        j["p90"] = r.won_to_date + r.outcome.won_value.quantiles[2];
        j["p_quota"] = r.p_quota;
        j["deals"] = r.deals.size();
        j["stale"] = r.kpi.stale.size();
        if (r.calendar) j["calendar"] = calendar_json(*r.calendar, dpu);
        if (!a.per_deal.empty()) j["per_deal"] = deals_json(r.deals, dates, dpu);
        std::cout << j.dump(2) << '\n';
    } else {
        std::cout << "pipecast: wrote " << (dir / "report.html").string() << " and " << (dir / "report.md").string() << " ("
                  << files.size() << " charts); expected " << money(r.won_to_date + r.outcome.won_value.mean) << " of "
                  << money(r.quota) << ", P(quota) " << percent(r.p_quota) << '\n';
    }
}

} // namespace

void add_report_command(CLI::App& app) {
    auto a = std::make_shared<report_args>();
    CLI::App* cmd = app.add_subcommand(
        "report", "Pipeline report: one self-contained HTML page (SVG charts) and Markdown: funnel vs ideal funnel, "
                  "forecast fan and P(quota), win probability by age, stage survival, sales progress, backtest, "
                  "stale and top deals");
    a->history.model_kind = "branched";
    add_history_options(cmd, a->history);
    cmd->add_option("--quota", a->quota, "value to win in the period")->required();
    cmd->add_option("--deals", a->deals, "open deals CSV (default: the deals open in the history at the as-of date)");
    cmd->add_option("--period", a->period, "month, quarter or year: the calendar period containing the as-of date "
                                           "(a period end starts the next one; default quarter for dated histories)");
    cmd->add_option("--fiscal-year-start", a->fiscal_start, "first month of the fiscal year (1-12)")
        ->capture_default_str()
        ->check(whole_number(1, 12));
    cmd->add_option("--horizon", a->horizon, "instead of --period: the period is the as-of date + this (e.g. 90 or 13w)");
    cmd->add_option("--out", a->out, "output directory (report.html, report.md and the charts as SVG)")->capture_default_str();
    cmd->add_option("--paths", a->paths, "simulated paths")->capture_default_str()->check(whole_number(1, 10000000));
    cmd->add_option("--seed", a->seed, "random seed")->capture_default_str()->check(whole_number());
    cmd->add_option("--threads", a->threads, "simulation threads (0: all cores)")->capture_default_str()->check(whole_number(0, 4096));
    cmd->add_option("--backtest", a->backtest, "auto (a backtest at past quarter ends when the history allows) or off")
        ->capture_default_str();
    cmd->add_option("--per-deal", a->per_deal,
                    "also write a CSV of the open deals: id,stage,age,amount,p_win,p_win_within,expected_close,stale,"
                    "expected_value,owner");
    cmd->add_option("--quotas", a->quotas, "owner quotas per period (CSV: owner,quota): adds the calendar section "
                                          "with each owner's attainment");
    cmd->add_option("--buckets", a->buckets, "calendar periods (the --period unit) in the calendar section, from the "
                                            "current one (default: 1 with --quotas, else no section)")
        ->check(whole_number(1, 120));
    cmd->add_option("--title", a->title, "the report's title")->capture_default_str();
    cmd->add_flag("--no-arrivals", a->no_arrivals, "simulate the open deals only, without the model's new deals");
    cmd->callback([a] { run_report(*a); });
}

} // namespace pipecast_cli
