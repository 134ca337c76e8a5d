// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file kpi.hpp
/// @brief Pipeline health from deal history: conversion and win rates, time in stage, deal
/// size, sales-cycle length, sales velocity, stale deals and bottlenecks.
///
/// Definitions (docs/estimation.md has the details):
///  * conversion to next: P(a deal leaving the stage goes to the next open stage in funnel
///    order; for the last open stage, to a winning outcome), from the fitted transitions;
///  * win probability: P(eventually won | deal enters the stage), from the fitted model;
///  * win rate (by count / by value): censoring-aware, (won + Σ_open w(stage)) / deals, each
///    deal weighted by 1 or by its amount, with w the model's win probability of the stage an
///    open deal is in; the naive closed-deal rate won / (won + lost) is reported beside it;
///  * mean time in stage: the fitted (censoring-aware) dwell mean; median: Kaplan–Meier;
///  * sales cycle: first entry to the win, over the won deals (mean, median, quantiles), and
///    the model's E[time to win | entry];
///  * sales velocity = open opportunities × win rate × average won deal ÷ mean cycle length
///    (value per time unit);
///  * stale deals: open deals whose age in stage exceeds the stale quantile (default 0.9) of
///    the stage's fitted dwell, most overdue first;
///  * bottlenecks: the stage where the largest share of losses happens, and the stage with
///    the largest share of the expected time to win (visits given a win × mean dwell).

#include <pipecast/analytics.hpp>
#include <pipecast/book.hpp>
#include <pipecast/dwell.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation.hpp>
#include <pipecast/history.hpp>
#include <pipecast/model.hpp>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace pipecast {

/// KPIs of one open stage.
struct stage_kpi {
    std::string stage;
    std::size_t visits = 0, exits = 0, censored = 0;
    std::string next_stage;          ///< the stage "next" refers to (next open stage, or the win outcome)
    double conversion_to_next = 0.0; ///< P(leaving to next_stage)
    double win_probability = 0.0;    ///< P(eventually won | entering the stage)
    double loss_rate = 0.0;          ///< P(leaving to a losing outcome)
    double loss_share = 0.0;         ///< share of all exits to losing outcomes that leave from here
    double mean_time = 0.0;          ///< fitted dwell mean (censoring-aware)
    double median_time = 0.0;        ///< Kaplan–Meier median (NaN if S never reaches 1/2)
    double naive_mean_time = 0.0;    ///< mean of the completed visits only (biased short)
    double time_share = 0.0;         ///< share of the expected time to win spent in this stage
};

/// Distribution of the sales-cycle length (first entry to the win) of the won deals.
struct cycle_length_stats {
    std::size_t count = 0;
    double mean = std::numeric_limits<double>::quiet_NaN();
    double median = std::numeric_limits<double>::quiet_NaN();
    double p10 = std::numeric_limits<double>::quiet_NaN(), p25 = std::numeric_limits<double>::quiet_NaN();
    double p75 = std::numeric_limits<double>::quiet_NaN(), p90 = std::numeric_limits<double>::quiet_NaN();
    double model_mean = std::numeric_limits<double>::quiet_NaN(); ///< E[time to win | entry] of the fitted model
};

/// An open deal that has outstayed its stage.
struct stale_deal {
    std::string id;
    std::string stage;
    double age = 0.0;       ///< time in the stage so far
    double threshold = 0.0; ///< the stale quantile of the stage's dwell
    double over = 0.0;      ///< age − threshold
    double ratio = 0.0;     ///< age / threshold
    double amount = std::numeric_limits<double>::quiet_NaN();
};

/// The two bottlenecks.
struct bottleneck_report {
    std::string loss_stage;  ///< stage with the largest loss share
    double loss_share = 0.0;
    std::string stall_stage; ///< stage with the largest share of the time to win
    double time_share = 0.0;
    /// time_share × number of stages: how many times its even share the stage takes.
    double stall_ratio = 0.0;
};

/// All KPIs.
struct kpi_report {
    std::vector<stage_kpi> stages; ///< funnel order
    std::size_t deals = 0, won = 0, lost = 0, open = 0;
    double win_rate = 0.0;                ///< censoring-aware, by count
    double win_rate_by_value = 0.0;       ///< censoring-aware, by amount
    double closed_win_rate = 0.0;         ///< naive: won / (won + lost)
    double closed_win_rate_by_value = 0.0;
    double average_won_deal = std::numeric_limits<double>::quiet_NaN();
    cycle_length_stats cycle;
    double open_opportunities = 0.0; ///< count used by the velocity (the book, else the log's open deals)
    double open_value = 0.0;
    double velocity = std::numeric_limits<double>::quiet_NaN(); ///< value per time unit
    double stale_quantile = 0.9;
    std::vector<stale_deal> stale; ///< most overdue (largest ratio) first
    bottleneck_report bottleneck;
    std::string time_unit = "day";
};

/// Options of compute_kpis.
struct kpi_options {
    double stale_quantile = 0.9; ///< in (0, 1)
};

namespace detail {

/// Linear-interpolated sample quantile of sorted values (type 7).
[[nodiscard]] inline double sorted_quantile(const std::vector<double>& v, double p) {
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    const double h = p * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

} // namespace detail

/// Computes the KPIs of a history from its fit.
/// @param log the history, @param fit fit_history(log) (or a fit with other options)
/// @param open_book optional book of open deals (its stages named as the fit's): it then
///   supplies the open opportunities and the stale-deal candidates (with their ages);
///   otherwise the log's open visits do (age = log end − entry)
/// @throws argument_error unless 0 < stale_quantile < 1, or if the book has a stage the
///   fit does not know; model_error if the fit does not make a model (see to_model).
/// Complexity: O(n) for n visits plus O(m³) for m stages.
/// Example: `auto k = compute_kpis(log, fit_history(log));`
[[nodiscard]] inline kpi_report compute_kpis(const visit_log& log, const history_fit& fit, const kpi_options& opt = {},
                                             const book* open_book = nullptr) {
    if (!(opt.stale_quantile > 0.0 && opt.stale_quantile < 1.0))
        throw argument_error(detail::message("compute_kpis: stale_quantile must be in (0, 1), got ", opt.stale_quantile));
    const model m = to_model(fit);
    const stage_graph& g = m.graph;
    const absorption_analysis a = analyse(g);
    const std::size_t ms = g.open_count();
    kpi_report r;
    r.time_unit = fit.time_unit;
    r.stale_quantile = opt.stale_quantile;

    // Map log stage codes to graph indices.
    std::vector<std::size_t> gi(log.stage_names.size(), g.size());
    for (std::size_t s = 0; s < log.stage_names.size(); ++s)
        if (auto k = g.find(log.stage_names[s])) gi[s] = *k;

    // Per stage: loss exits, from the log.
    std::vector<double> loss_exits(ms, 0.0);
    double total_loss = 0.0;
    // Per deal: outcome, amount, cycle.
    std::vector<double> cycles, won_amounts;
    double win_count = 0.0, win_value = 0.0, deal_value = 0.0, closed_won_value = 0.0, closed_value = 0.0;
    std::vector<stale_deal> candidates;
    for (std::size_t first = 0; first < log.size();) {
        std::size_t last = first + 1;
        while (last < log.size() && log.deal[last] == log.deal[first]) ++last;
        double amount = std::numeric_limits<double>::quiet_NaN();
        for (std::size_t i = first; i < last; ++i) {
            if (!std::isnan(log.amount[i])) amount = log.amount[i];
            if (!log.censored(i)) {
                const std::size_t to = gi[log.next[i]], from = gi[log.stage[i]];
                if (to < g.size() && g.is_outcome(to) && !g.is_win(to) && from < ms) {
                    loss_exits[from] += 1.0;
                    total_loss += 1.0;
                }
            }
        }
        const std::size_t z = last - 1; // the deal's last visit
        const bool has_amount = std::isfinite(amount);
        ++r.deals;
        if (has_amount) deal_value += amount;
        double w = 0.0;
        if (log.censored(z)) {
            ++r.open;
            const std::size_t s = gi[log.stage[z]];
            w = s < ms ? a.win_probability(static_cast<Eigen::Index>(s)) : 0.0;
            candidates.push_back({log.deal_ids[log.deal[z]], log.stage_names[log.stage[z]], log.duration(z), 0, 0, 0, amount});
        } else {
            const std::size_t o = gi[log.next[z]];
            const bool won = o < g.size() && g.is_win(o);
            w = won ? 1.0 : 0.0;
            if (won) {
                ++r.won;
                cycles.push_back(log.exited[z] - log.entered[first]);
                if (has_amount) won_amounts.push_back(amount);
            } else {
                ++r.lost;
            }
            if (has_amount) {
                closed_value += amount;
                if (won) closed_won_value += amount;
            }
        }
        win_count += w;
        if (has_amount) win_value += w * amount;
        first = last;
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.win_rate = r.deals ? win_count / static_cast<double>(r.deals) : nan;
    r.win_rate_by_value = deal_value > 0.0 ? win_value / deal_value : nan;
    r.closed_win_rate = r.won + r.lost ? static_cast<double>(r.won) / static_cast<double>(r.won + r.lost) : nan;
    r.closed_win_rate_by_value = closed_value > 0.0 ? closed_won_value / closed_value : nan;
    if (!won_amounts.empty()) {
        double s = 0.0;
        for (double x : won_amounts) s += x;
        r.average_won_deal = s / static_cast<double>(won_amounts.size());
    }

    // Sales cycle.
    std::sort(cycles.begin(), cycles.end());
    r.cycle.count = cycles.size();
    if (!cycles.empty()) {
        double s = 0.0;
        for (double x : cycles) s += x;
        r.cycle.mean = s / static_cast<double>(cycles.size());
        r.cycle.median = detail::sorted_quantile(cycles, 0.5);
        r.cycle.p10 = detail::sorted_quantile(cycles, 0.1);
        r.cycle.p25 = detail::sorted_quantile(cycles, 0.25);
        r.cycle.p75 = detail::sorted_quantile(cycles, 0.75);
        r.cycle.p90 = detail::sorted_quantile(cycles, 0.9);
    }
    const std::size_t entry = g.index_of(fit.entry_stage);
    r.cycle.model_mean = a.mean_time_to_win(static_cast<Eigen::Index>(entry));

    // Expected visits given a win, from the entry stage (Doob h-transform), for time shares.
    Eigen::VectorXd visits_won = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(ms));
    if (a.win_probability(static_cast<Eigen::Index>(entry)) > 0.0) {
        const auto n = static_cast<Eigen::Index>(ms);
        Eigen::MatrixXd qt = Eigen::MatrixXd::Zero(n, n);
        for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index j = 0; j < n; ++j)
                if (a.win_probability(i) > 0.0)
                    qt(i, j) = g.transient_block()(i, j) * a.win_probability(j) / a.win_probability(i);
        const Eigen::MatrixXd nt = (Eigen::MatrixXd::Identity(n, n) - qt).partialPivLu().inverse();
        visits_won = nt.row(static_cast<Eigen::Index>(entry)).transpose();
    }
    double total_time = 0.0;
    for (std::size_t s = 0; s < ms; ++s) total_time += visits_won(static_cast<Eigen::Index>(s)) * g.dwell(s).mean();

    for (std::size_t s = 0; s < ms; ++s) {
        const stage_estimate& e = fit.stages[s];
        stage_kpi k;
        k.stage = e.name;
        k.visits = e.visits;
        k.exits = e.exits;
        k.censored = e.censored;
        const auto row = static_cast<Eigen::Index>(s);
        if (s + 1 < ms) {
            k.next_stage = g.name(s + 1);
            k.conversion_to_next = g.transition(s, s + 1);
        } else {
            for (std::size_t o = ms; o < g.size(); ++o)
                if (g.is_win(o)) {
                    k.conversion_to_next += g.transition(s, o);
                    if (k.next_stage.empty()) k.next_stage = g.name(o);
                }
        }
        for (std::size_t o = ms; o < g.size(); ++o)
            if (!g.is_win(o)) k.loss_rate += g.transition(s, o);
        k.win_probability = a.win_probability(row);
        k.loss_share = total_loss > 0.0 ? loss_exits[s] / total_loss : nan;
        k.mean_time = g.dwell(s).mean();
        k.median_time = e.km.median;
        k.naive_mean_time = e.naive_mean;
        k.time_share = total_time > 0.0 ? visits_won(row) * g.dwell(s).mean() / total_time : nan;
        r.stages.push_back(std::move(k));
    }

    // Bottlenecks.
    for (const auto& k : r.stages) {
        if (std::isfinite(k.loss_share) && (r.bottleneck.loss_stage.empty() || k.loss_share > r.bottleneck.loss_share)) {
            r.bottleneck.loss_stage = k.stage;
            r.bottleneck.loss_share = k.loss_share;
        }
        if (std::isfinite(k.time_share) && (r.bottleneck.stall_stage.empty() || k.time_share > r.bottleneck.time_share)) {
            r.bottleneck.stall_stage = k.stage;
            r.bottleneck.time_share = k.time_share;
        }
    }
    r.bottleneck.stall_ratio = r.bottleneck.time_share * static_cast<double>(ms);

    // Open deals: the book, else the log's open visits.
    if (open_book) {
        candidates.clear();
        const auto& names = open_book->stage_names();
        for (std::size_t i = 0; i < open_book->size(); ++i) {
            const std::string& st = names[open_book->stages()[i]];
            if (!g.find(st) || !g.is_open(*g.find(st)))
                throw argument_error(detail::message("compute_kpis: deal '", open_book->ids()[i], "' is in stage '", st,
                                                     "', not an open stage of the fitted model"));
            candidates.push_back({open_book->ids()[i], st, open_book->ages()[i], 0, 0, 0, open_book->amounts()[i]});
        }
    }
    r.open_opportunities = static_cast<double>(candidates.size());
    for (const auto& c : candidates)
        if (std::isfinite(c.amount)) r.open_value += c.amount;
    r.velocity = r.cycle.mean > 0.0 ? r.open_opportunities * r.win_rate * r.average_won_deal / r.cycle.mean : nan;

    std::vector<double> threshold(ms);
    for (std::size_t s = 0; s < ms; ++s) threshold[s] = quantile(g.dwell(s), opt.stale_quantile);
    for (auto& c : candidates) {
        const std::size_t s = g.index_of(c.stage);
        c.threshold = threshold[s];
        if (!(c.age > c.threshold)) continue;
        c.over = c.age - c.threshold;
        c.ratio = c.threshold > 0.0 ? c.age / c.threshold : std::numeric_limits<double>::infinity();
        r.stale.push_back(std::move(c));
    }
    std::sort(r.stale.begin(), r.stale.end(), [](const stale_deal& x, const stale_deal& y) {
        return x.ratio != y.ratio ? x.ratio > y.ratio : x.id < y.id;
    });
    return r;
}

} // namespace pipecast
