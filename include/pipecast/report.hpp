// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file report.hpp
/// @brief The pipeline report's data: one call gathers what a sales manager looks at —
/// the weighted and in-period forecasts, the Monte Carlo outcome of the period, the funnel
/// against the ideal funnel for the quota, the KPIs and stale deals, win probability by age
/// in stage, stage survival and cumulative incidence, sales progress (销售进展) week by week
/// and, when asked, a backtest — into one plain struct (`pipeline_report`). Nothing here
/// draws or prints: `pipecast report` renders it as HTML and Markdown with svg.hpp.
///
/// Every number comes from the library's own functions (weighted_forecast,
/// age_aware_forecast, period_forecast, simulate, ideal_funnel, compute_kpis, sales_progress,
/// backtest); the open book is rebuilt from the history with book_at().

#include <pipecast/backtest.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation.hpp>
#include <pipecast/forecast.hpp>
#include <pipecast/funnel.hpp>
#include <pipecast/history.hpp>
#include <pipecast/history_view.hpp>
#include <pipecast/kpi.hpp>
#include <pipecast/model.hpp>
#include <pipecast/simulation.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------
// Calendar periods
// ---------------------------------------------------------------------------------------

/// A calendar bucket: month, quarter or year.
enum class calendar_unit { month, quarter, year };

/// Parses "month", "quarter" or "year".
/// @throws argument_error naming the text otherwise.
[[nodiscard]] inline calendar_unit parse_calendar_unit(std::string_view text) {
    if (text == "month") return calendar_unit::month;
    if (text == "quarter") return calendar_unit::quarter;
    if (text == "year") return calendar_unit::year;
    throw argument_error(detail::message("--period: expected month, quarter or year, got '", detail::clip(text), "'"));
}

/// One calendar period in model time units (days since 1970-01-01 / days_per_unit).
struct calendar_period {
    double start = 0.0; ///< the previous period's end
    double end = 0.0;   ///< this period's end
    std::string label;  ///< e.g. "2025-07-01 to 2025-09-30"
};

/// The calendar period an as-of time falls in, with the convention of calendar_cuts() and
/// `--cuts 2024-06-30`: a period ends at 00:00 UTC of its last day, so an as-of date that is
/// a period end (2025-06-30 for quarters) starts the next period (2025-07-01 to 2025-09-30)
/// and an as-of inside a period (2025-05-15) is `elapsed` into it.
/// @param t the as-of time (model time units since 1970-01-01)
/// @param unit month, quarter or year
/// @param fiscal_start the first month of the fiscal year, 1..12 (quarters and years only)
/// @param days_per_unit length of the model time unit in days, > 0
/// @returns start <= t < end
/// @throws argument_error for a fiscal_start outside 1..12, a non-finite t or a bad days_per_unit.
/// Example: `period_of(20269.0, calendar_unit::quarter)` (2025-06-30) gives start 2025-06-30, end 2025-09-30.
[[nodiscard]] inline calendar_period period_of(double t, calendar_unit unit, unsigned fiscal_start = 1,
                                               double days_per_unit = 1.0) {
    namespace chr = std::chrono;
    if (fiscal_start < 1 || fiscal_start > 12)
        throw argument_error(detail::message("--fiscal-year-start: expected a month 1..12, got ", fiscal_start));
    if (!(std::isfinite(days_per_unit) && days_per_unit > 0.0))
        throw argument_error(detail::message("period_of: days_per_unit must be positive, got ", days_per_unit));
    if (!(std::isfinite(t) && std::abs(t * days_per_unit) < 1e7))
        throw argument_error(detail::message("period_of: as-of time ", t, " is not a date"));
    const int months = unit == calendar_unit::month ? 1 : unit == calendar_unit::quarter ? 3 : 12;
    const int first = unit == calendar_unit::month ? 1 : static_cast<int>(fiscal_start);
    // End of the period whose last month is index m (months since year 0, 0-based): 00:00 of its last day.
    auto end_of = [](long m) {
        const chr::year_month_day_last e{chr::year{static_cast<int>(m / 12)} / chr::month{static_cast<unsigned>(m % 12 + 1)} /
                                         chr::last};
        return static_cast<double>(chr::sys_days{e}.time_since_epoch().count());
    };
    const double day = t * days_per_unit;
    const chr::year_month_day ymd{chr::sys_days{chr::days{static_cast<long>(std::floor(day))}}};
    const long month_index = static_cast<long>(static_cast<int>(ymd.year())) * 12 + static_cast<long>(static_cast<unsigned>(ymd.month())) - 1;
    // Last month of the period containing month_index: periods start at months ≡ first-1 (mod months).
    const long offset = ((month_index - (first - 1)) % months + months) % months;
    long last = month_index - offset + months - 1;
    double end = end_of(last);
    if (end <= day + 1e-9) { // t is at (or, for the last day, past) this period's end: the next period
        last += months;
        end = end_of(last);
    }
    const double start = end_of(last - months);
    calendar_period p;
    p.start = start / days_per_unit;
    p.end = end / days_per_unit;
    p.label = format_time(p.start + 1.0 / days_per_unit, true, days_per_unit) + " to " + format_time(p.end, true, days_per_unit);
    return p;
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

/// What the report covers. Times are in the model's time unit.
struct report_options {
    double as_of = 0.0;        ///< the report date: the open book is the log's deals open then
    double quota = 0.0;        ///< value to win in the period, > 0
    double period_start = 0.0; ///< the period's start (<= as_of)
    double period_end = 0.0;   ///< the period's end (> as_of)
    std::size_t paths = 4000;  ///< Monte Carlo paths of the period outcome
    std::uint64_t seed = 1;
    unsigned threads = 0;
    bool arrivals = true;      ///< simulate the model's new deals too (fitted arrival rate)
    bool overdispersion = true; ///< shock conversion per path by the model's fitted overdispersion
    double stalled_threshold = 0.5;
    std::size_t progress_weeks = 13; ///< weeks of sales progress before the as-of
    double week = 7.0;               ///< a week in time units (7 for days)
    std::size_t curve_points = 60;   ///< points of each curve
    std::size_t top_deals = 15;      ///< deals in the top-deals table
    std::optional<backtest_options> backtest; ///< run a backtest on the log (its cuts set)
};

/// One open deal of the book at the as-of date.
struct report_deal {
    std::string id, stage, owner;
    std::size_t stage_index = 0;
    double age = 0.0;
    double amount = 0.0;
    double p_win = 0.0;        ///< P(win | stage, age)
    double p_win_within = 0.0; ///< P(won within the rest of the period | stage, age)
    double expected_close = std::numeric_limits<double>::quiet_NaN(); ///< as_of + E[time of win | won within the period]
    bool stale = false;        ///< among kpi_report::stale
    double expected_value = 0.0; ///< amount × p_win_within
};

/// A curve of one open stage, and the open deals on it.
struct stage_age_curve {
    std::string stage;
    std::vector<double> age, p_win;        ///< P(win | stage, age) on a grid
    std::vector<double> deal_age, deal_p_win;
    std::vector<char> deal_stale;
};

/// Cumulative incidence of one exit of a stage.
struct exit_incidence {
    std::string to;
    bool stalled = false;
    std::vector<double> value; ///< P(left to `to` by t), on the stage curve's grid
};

/// Survival in a stage (P(still in it after t)) and the cumulative incidence of each exit.
struct stage_survival_curve {
    std::string stage;
    std::vector<double> t, survival;
    std::vector<exit_incidence> exits;
};

/// One week of sales progress: forecast + closed-won at the week's end, and the change.
struct progress_week {
    double end = 0.0;
    double forecast = 0.0;   ///< weighted forecast of the book open then
    double closed_won = 0.0; ///< value won since the first week's start
    sales_progress_result progress; ///< against the week before
};

/// Everything the report shows.
struct pipeline_report {
    double as_of = 0.0, period_start = 0.0, period_end = 0.0;
    double quota = 0.0, won_to_date = 0.0, remaining_quota = 0.0;
    std::size_t skipped_deals = 0; ///< open deals in stages the model does not know
    weighted_forecast_result weighted;
    age_aware_forecast_result age_aware;
    period_forecast_result in_period;
    simulation_result outcome;      ///< won value in the rest of the period (sub-periods: weeks)
    double p_quota = 0.0;           ///< P(won_to_date + won value >= quota)
    ideal_funnel_result funnel;     ///< with the gap of the book
    kpi_report kpi;
    std::vector<report_deal> deals; ///< book order
    std::vector<std::size_t> top;   ///< indices of deals, largest expected_value first
    std::vector<stage_age_curve> win_by_age;
    std::vector<stage_survival_curve> survival;
    std::vector<progress_week> progress;
    std::optional<backtest_result> backtest;
};

namespace detail {

/// Value of the deals won in (t0, t1] by the log: visits that left to a win outcome of g.
[[nodiscard]] inline double won_between(const visit_log& log, const stage_graph& g, double t0, double t1) {
    std::vector<char> won(log.stage_names.size(), 0);
    for (std::size_t s = 0; s < won.size(); ++s)
        if (const auto k = g.find(log.stage_names[s])) won[s] = g.is_win(*k) ? 1 : 0;
    double v = 0.0;
    for (std::size_t i = 0; i < log.size(); ++i)
        if (!log.censored(i) && won[log.next[i]] && log.exited[i] > t0 && log.exited[i] <= t1 && std::isfinite(log.amount[i]))
            v += log.amount[i];
    return v;
}

/// A grid of n + 1 points on [0, hi].
[[nodiscard]] inline std::vector<double> grid(double hi, std::size_t n) {
    std::vector<double> x(n + 1);
    for (std::size_t i = 0; i <= n; ++i) x[i] = hi * static_cast<double>(i) / static_cast<double>(n);
    return x;
}

/// The survival of stage s and the cumulative incidence of its exits on a grid up to about
/// the 95th percentile of its time in stage.
[[nodiscard]] inline stage_survival_curve survival_curve(const stage_graph& g, std::size_t s, std::size_t n) {
    stage_survival_curve c;
    c.stage = g.name(s);
    const auto br = g.branches(s);
    double hi = 0.0;
    if (br.empty()) hi = quantile(g.dwell(s), 0.95);
    else
        for (const auto& b : br) hi = std::max(hi, b.stalled ? 0.0 : quantile(b.dwell, 0.95));
    if (!(std::isfinite(hi) && hi > 0.0)) hi = std::max(1.0, 3.0 * g.mean_dwell(s));
    c.t = grid(hi, n);
    c.survival.assign(c.t.size(), 0.0);
    if (br.empty()) {
        for (std::size_t j = 0; j < g.size(); ++j) {
            const double p = g.transition(s, j);
            if (p <= 0.0) continue;
            exit_incidence e{g.name(j), false, {}};
            for (double t : c.t) e.value.push_back(p * cdf(g.dwell(s), t));
            c.exits.push_back(std::move(e));
        }
        for (std::size_t i = 0; i < c.t.size(); ++i) c.survival[i] = survival(g.dwell(s), c.t[i]);
        return c;
    }
    for (const auto& b : br) {
        auto it = std::find_if(c.exits.begin(), c.exits.end(),
                               [&](const exit_incidence& e) { return e.to == b.to && e.stalled == b.stalled; });
        if (it == c.exits.end()) {
            c.exits.push_back({b.to, b.stalled, std::vector<double>(c.t.size(), 0.0)});
            it = c.exits.end() - 1;
        }
        for (std::size_t i = 0; i < c.t.size(); ++i) {
            it->value[i] += b.probability * cdf(b.dwell, c.t[i]);
            c.survival[i] += b.probability * survival(b.dwell, c.t[i]);
        }
    }
    return c;
}

} // namespace detail

/// Builds the report of the deals open at `o.as_of` in `log` (the history as known then:
/// pass the log cut with as_of() or read with --as-of) on the model fitted to it.
///
/// - the book: book_at(log, model graph, as_of); each deal's P(win | stage, age), P(won
///   within the rest of the period) (period_forecast), expected close (simulate) and stale
///   flag (compute_kpis);
/// - the period outcome: simulate() over [as_of, period_end] with weekly sub-periods, the
///   model's overdispersion and (with `arrivals`) its new deals; P(quota) counts the value
///   already won in the period (won_to_date, from the log);
/// - the funnel: ideal_funnel(m, {quota, period, elapsed, won_to_date}, book), with the gap;
/// - sales progress: weekly positions (weighted forecast of the book open at each week's end
///   + value won since the first week) and sales_progress() between consecutive weeks;
/// - the backtest (backtest()) when `o.backtest` is set.
///
/// @param log the history known at the as-of time (dated or not)
/// @param fit the fit of that history (fit_history); @param m to_model(fit) (or an edited copy)
/// @param deals the open book when given (a CRM export of today's deals); else the book is
///   rebuilt from the log (book_at at the as-of time)
/// @throws argument_error for a quota that is not positive and finite, a period that does
///   not contain the as-of time, an as-of time outside the log, or as the functions called.
/// Complexity: dominated by the simulation (paths × deals) and the backtest's refits.
[[nodiscard]] inline pipeline_report make_report(const visit_log& log, const history_fit& fit, const model& m,
                                                 const report_options& o, const book* deals = nullptr) {
    if (!(std::isfinite(o.quota) && o.quota > 0.0))
        throw argument_error(detail::message("--quota: must be positive and finite, got ", o.quota));
    if (!(o.period_start <= o.as_of && o.as_of < o.period_end && std::isfinite(o.period_end)))
        throw argument_error(detail::message("report: the period [", o.period_start, ", ", o.period_end,
                                             ") does not contain the as-of time ", o.as_of));
    if (!(o.week > 0.0 && std::isfinite(o.week)))
        throw argument_error(detail::message("report: a week must be positive, got ", o.week));
    const stage_graph& g = m.graph;
    pipeline_report r;
    r.as_of = o.as_of;
    r.period_start = o.period_start;
    r.period_end = o.period_end;
    r.quota = o.quota;
    const book_view bv = deals ? book_view{book(g), o.as_of, {}, {}, 0, {}, 0} : book_at(log, g, o.as_of);
    const book& b = deals ? *deals : bv.deals;
    r.skipped_deals = bv.skipped;
    r.won_to_date = detail::won_between(log, g, o.period_start, o.as_of);
    r.remaining_quota = std::max(0.0, o.quota - r.won_to_date);
    const double horizon = o.period_end - o.as_of;

    const absorption_analysis a = analyse(g);
    r.weighted = weighted_forecast(g, b, a);
    age_aware_options ao;
    ao.stalled_threshold = o.stalled_threshold;
    ao.per_deal = true;
    r.age_aware = age_aware_forecast(g, b, ao);
    period_forecast_options po;
    po.per_deal = true;
    r.in_period = period_forecast(g, b, horizon, po);

    simulation_options so;
    so.paths = o.paths;
    so.seed = o.seed;
    so.threads = o.threads;
    so.horizon = horizon;
    so.quotas = {r.remaining_quota};
    so.model_arrivals = o.arrivals;
    if (o.overdispersion && m.overdispersed()) so.stage_correlation = m.overdispersion_by_stage();
    for (double t = o.week; t < horizon - 1e-9; t += o.week) so.sub_period_ends.push_back(t);
    so.sub_period_ends.push_back(horizon);
    r.outcome = simulate(m, b, so);
    r.p_quota = r.outcome.won_value.p_quota.empty() ? 0.0 : r.outcome.won_value.p_quota[0];

    funnel_target ft;
    ft.quota = o.quota;
    ft.period = o.period_end - o.period_start;
    ft.elapsed = o.as_of - o.period_start;
    ft.won_to_date = r.won_to_date;
    r.funnel = ideal_funnel(m, ft, b);

    kpi_options ko;
    ko.stalled_threshold = o.stalled_threshold;
    r.kpi = compute_kpis(log, fit, ko, &b);

    // The deals.
    const auto ids = b.ids();
    const auto st = b.stages();
    const auto owners = b.owners();
    std::vector<std::string> stale_ids;
    for (const auto& s : r.kpi.stale) stale_ids.push_back(s.id);
    std::sort(stale_ids.begin(), stale_ids.end());
    r.deals.resize(b.size());
    for (std::size_t i = 0; i < b.size(); ++i) {
        report_deal& d = r.deals[i];
        d.id = ids[i];
        d.stage_index = st[i];
        d.stage = g.name(st[i]);
        d.owner = owners.empty() ? std::string() : b.owner_names()[owners[i]];
        d.age = b.ages()[i];
        d.amount = b.amounts()[i];
        d.p_win = r.age_aware.deal_win_probability[i];
        d.p_win_within = r.in_period.deal_probability[i];
        const double close = r.outcome.deal_expected_close_time[i];
        if (std::isfinite(close)) d.expected_close = o.as_of + close;
        d.expected_value = d.amount * d.p_win_within;
        d.stale = std::binary_search(stale_ids.begin(), stale_ids.end(), d.id);
    }
    r.top.resize(r.deals.size());
    std::iota(r.top.begin(), r.top.end(), std::size_t{0});
    std::stable_sort(r.top.begin(), r.top.end(), [&](std::size_t x, std::size_t y) {
        return r.deals[x].expected_value > r.deals[y].expected_value;
    });
    r.top.resize(std::min(r.top.size(), o.top_deals));

    // Win probability by age, per stage, up to past the oldest open deal.
    const std::size_t n = std::max<std::size_t>(o.curve_points, 2);
    for (std::size_t s = 0; s < g.open_count(); ++s) {
        stage_age_curve c;
        c.stage = g.name(s);
        double oldest = 0.0;
        for (const auto& d : r.deals)
            if (d.stage_index == s) oldest = std::max(oldest, d.age);
        const double typical = std::max(1.0, 3.0 * g.mean_dwell(s));
        c.age = detail::grid(std::max(typical, 1.05 * oldest), n);
        for (double x : c.age) c.p_win.push_back(win_probability_at_age(g, s, x));
        for (const auto& d : r.deals)
            if (d.stage_index == s) {
                c.deal_age.push_back(d.age);
                c.deal_p_win.push_back(d.p_win);
                c.deal_stale.push_back(d.stale ? 1 : 0);
            }
        r.win_by_age.push_back(std::move(c));
        r.survival.push_back(detail::survival_curve(g, s, n));
    }

    // Sales progress week by week.
    const double first = detail::first_entry(log);
    std::vector<double> ends;
    for (std::size_t k = 0; k <= o.progress_weeks; ++k) {
        const double t = o.as_of - o.week * static_cast<double>(o.progress_weeks - k);
        if (t >= first) ends.push_back(t);
    }
    if (ends.size() >= 2) {
        const double weeks_in_period = std::max(1.0, ft.period / o.week);
        const double since = ends.front();
        double last_forecast = 0.0, last_won = 0.0;
        for (std::size_t k = 0; k < ends.size(); ++k) {
            progress_week w;
            w.end = ends[k];
            w.forecast = weighted_forecast(g, book_at(log, g, ends[k]).deals, a).weighted_total;
            w.closed_won = detail::won_between(log, g, since, ends[k]);
            if (k > 0) {
                w.progress = sales_progress({last_forecast, last_won}, {w.forecast, w.closed_won}, o.quota, weeks_in_period);
                r.progress.push_back(w);
            }
            last_forecast = w.forecast;
            last_won = w.closed_won;
        }
    }

    if (o.backtest && !o.backtest->cuts.empty()) r.backtest = backtest(log, *o.backtest);
    return r;
}

} // namespace pipecast
