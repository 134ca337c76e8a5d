// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file report/report.hpp
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

#include <pipecast/data/history.hpp>
#include <pipecast/data/history_view.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/backtest.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/forecast/calendar.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/funnel/funnel.hpp>
#include <pipecast/kpi.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/simulation/simulation.hpp>

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
    /// Also forecast by calendar bucket (calendar_forecast()): unit, fiscal start, buckets,
    /// owner quotas; the as-of time, Closed (from the log) and the simulation's paths, seed,
    /// threads, arrivals and overdispersion are set from the report's.
    std::optional<calendar_options> calendar;
};

/// One open deal of the book at the as-of date (the per-deal row of calendar.hpp; stale:
/// among kpi_report::stale).
using report_deal = deal_forecast;

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
    std::optional<calendar_forecast_result> calendar; ///< with report_options::calendar
};

namespace detail {

/// Value of the deals won in (t0, t1] by the log: visits that left to a win outcome of g.
template <class = void>
[[nodiscard]] double won_between(const visit_log& log, const stage_graph& g, double t0, double t1) {
    return pipecast::won_between(log, g, t0, t1).total;
}

/// A grid of n + 1 points on [0, hi].
template <class = void>
[[nodiscard]] std::vector<double> grid(double hi, std::size_t n) {
    std::vector<double> x(n + 1);
    for (std::size_t i = 0; i <= n; ++i) x[i] = hi * static_cast<double>(i) / static_cast<double>(n);
    return x;
}

/// The survival of stage s and the cumulative incidence of its exits on a grid up to about
/// the 95th percentile of its time in stage.
template <class = void>
[[nodiscard]] stage_survival_curve survival_curve(const stage_graph& g, std::size_t s, std::size_t n) {
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
template <class = void>
[[nodiscard]] pipeline_report make_report(const visit_log& log, const history_fit& fit, const model& m,
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
    std::vector<std::string> stale_ids;
    for (const auto& s : r.kpi.stale) stale_ids.push_back(s.id);
    std::sort(stale_ids.begin(), stale_ids.end());
    std::vector<char> stale(b.size(), 0);
    for (std::size_t i = 0; i < b.size(); ++i)
        stale[i] = std::binary_search(stale_ids.begin(), stale_ids.end(), std::string(b.ids()[i])) ? 1 : 0;
    r.deals = deal_forecasts(g, b, o.as_of, r.age_aware.deal_win_probability, r.in_period.deal_probability,
                             r.outcome.deal_expected_close_time, stale);
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

    if (o.calendar) {
        calendar_options co = *o.calendar;
        co.as_of = o.as_of;
        co.closed = pipecast::won_between(log, g, period_of(o.as_of, co.unit, co.fiscal_start, co.days_per_unit).start, o.as_of);
        co.simulation.paths = o.paths;
        co.simulation.seed = o.seed;
        co.simulation.threads = o.threads;
        co.simulation.model_arrivals = o.arrivals;
        co.simulation.stage_correlation.clear();
        if (o.overdispersion && m.overdispersed()) co.simulation.stage_correlation = m.overdispersion_by_stage();
        r.calendar = calendar_forecast(m, b, co);
    }
    if (o.backtest && !o.backtest->cuts.empty()) r.backtest = backtest(log, *o.backtest);
    return r;
}

} // namespace pipecast
