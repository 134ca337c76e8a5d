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
///  * win rate (by count / by value): censoring-aware, (won + Σ_open w(stage, age)) / deals,
///    each deal weighted by 1 or by its amount, with w the model's P(win | stage, age) of an
///    open deal; the naive closed-deal rate won / (won + lost) is reported beside it. The
///    value rates need the lost deals' amounts: when more than 1% of the lost deals have a
///    blank or zero amount (CRM exports often drop them) they are NaN and
///    `value_win_rate_note` says why, instead of a meaningless rate near 100%;
///  * mean time in stage: the fitted (censoring-aware) dwell mean; median: Kaplan–Meier;
///  * sales cycle: first entry to the win, over the won deals (mean, median, quantiles), and
///    the model's E[time to win | entry];
///  * sales velocity: sales_velocity of funnel.hpp, the one definition shared with the funnel:
///    open opportunities × P(win | entry) × average open deal ÷ E[time to close | entry]
///    (value per time unit; the average won deal when the open deals carry no amounts);
///  * stale deals, from the model: an open deal is stale when P(stalled | stage, age) reaches
///    the threshold (default 0.5; branched models with a stalled share) or when its age
///    exceeds the longest time any deal that went on to win ever spent in that stage (from the
///    history); each with its P(stalled) and P(win | stage, age), likeliest stalled first;
///  * bottlenecks: the stage where the largest share of losses happens, and the stage with
///    the largest share of the expected time to win (visits given a win × mean time in the
///    stage given a win).

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/detail/quantile.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/funnel/funnel.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
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
    double stalled_share = 0.0;      ///< the model's stalled share π of the stage (0 for a classic stage)
    /// The longest completed stay in the stage of a deal that went on to win (NaN: no such
    /// visit): open deals older than this are stale.
    double longest_won_stay = std::numeric_limits<double>::quiet_NaN();
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

/// An open deal that is stale: likely stalled by the model, or older than any won deal's stay.
struct stale_deal {
    std::string id;
    std::string stage;
    double age = 0.0;       ///< time in the stage so far
    /// The stage's longest stay of a deal that went on to win (NaN when none won through it).
    double threshold = std::numeric_limits<double>::quiet_NaN();
    double over = std::numeric_limits<double>::quiet_NaN();  ///< age − threshold
    double ratio = std::numeric_limits<double>::quiet_NaN(); ///< age / threshold
    double amount = std::numeric_limits<double>::quiet_NaN();
    double stalled_probability = 0.0; ///< P(stalled | stage, age) (0 for a classic stage)
    double win_probability = 0.0;     ///< P(win | stage, age)
    bool likely_stalled = false;      ///< stalled_probability >= kpi_options::stalled_threshold
    bool older_than_wins = false;     ///< age > threshold
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
    double velocity = std::numeric_limits<double>::quiet_NaN(); ///< value per time unit (velocity_terms.velocity)
    velocity_terms velocity_detail; ///< the terms of sales_velocity (funnel.hpp)
    /// Why the value win rates are NaN (lost deals without amounts); empty when they are computed.
    std::string value_win_rate_note;
    std::size_t lost_without_amount = 0; ///< lost deals whose amount is blank or zero
    double stale_quantile = 0.9;         ///< kpi_options::stale_quantile as given (no longer used)
    double stalled_threshold = 0.5;      ///< kpi_options::stalled_threshold
    std::vector<stale_deal> stale; ///< likeliest stalled first, then most overdue (largest ratio)
    bottleneck_report bottleneck;
    std::string time_unit = "day";
};

/// Options of compute_kpis.
struct kpi_options {
    /// Deprecated, in (0, 1): stale deals used to be those past this quantile of a fitted
    /// dwell; they now come from P(stalled | stage, age) and the longest won stay. Still
    /// validated and echoed in the report so existing callers keep working.
    double stale_quantile = 0.9;
    /// A deal is stale when P(stalled | stage, age) >= this, in (0, 1].
    double stalled_threshold = 0.5;
    /// The value win rates are computed when at most this share of the lost deals lacks an amount.
    double max_lost_without_amount = 0.01;
};

/// The stale deals among open deals, from the model: a deal is stale when
/// P(stalled | stage, age) >= stalled_threshold or its age exceeds the longest completed stay
/// of a won deal in its stage (`longest_won_stay[stage]`; NaN: no such rule for the stage).
/// Not a quantile of a fitted dwell: a fitted tail says how long deals *may* stay, not whether
/// they will still close. Fills each stale deal's stalled_probability, win_probability
/// (P(win | stage, age)), threshold, over, ratio and flags; likeliest stalled first, then the
/// largest age / threshold, then by id.
/// @param candidates open deals (id, stage name, age, amount); their other fields are overwritten
/// @throws argument_error for a stage that is not an open stage of g, a bad age, a
///   longest_won_stay of the wrong length, or a threshold outside (0, 1].
/// Complexity: O(branches) per deal, then a sort of the stale ones.
template <class = void>
[[nodiscard]] std::vector<stale_deal> stale_deals(const stage_graph& g, std::vector<stale_deal> candidates,
                                                  std::span<const double> longest_won_stay,
                                                  double stalled_threshold = 0.5) {
    if (!(stalled_threshold > 0.0 && stalled_threshold <= 1.0))
        throw argument_error(detail::message("stale_deals: stalled_threshold must be in (0, 1], got ", stalled_threshold));
    if (longest_won_stay.size() != g.open_count())
        throw argument_error(detail::message("stale_deals: ", longest_won_stay.size(), " longest stays for ",
                                             g.open_count(), " open stages"));
    const Eigen::VectorXd w_latent = win_probabilities(g.latent());
    std::vector<stale_deal> out;
    for (auto& c : candidates) {
        const auto s = g.find(c.stage);
        if (!s || !g.is_open(*s))
            throw argument_error(detail::message("stale_deals: deal '", c.id, "' is in stage '", c.stage,
                                                 "', not an open stage of the model"));
        c.stalled_probability = stalled_probability(g, *s, c.age);
        c.win_probability = win_probability_at_age(g, *s, c.age, w_latent);
        c.likely_stalled = c.stalled_probability >= stalled_threshold;
        c.threshold = longest_won_stay[*s];
        c.older_than_wins = c.age > c.threshold; // false when NaN
        c.over = c.ratio = std::numeric_limits<double>::quiet_NaN();
        if (std::isfinite(c.threshold)) {
            c.over = c.age - c.threshold;
            c.ratio = c.threshold > 0.0 ? c.age / c.threshold : std::numeric_limits<double>::infinity();
        }
        if (c.likely_stalled || c.older_than_wins) out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(), [](const stale_deal& x, const stale_deal& y) {
        if (x.stalled_probability != y.stalled_probability) return x.stalled_probability > y.stalled_probability;
        const double rx = std::isnan(x.ratio) ? -1.0 : x.ratio, ry = std::isnan(y.ratio) ? -1.0 : y.ratio;
        return rx != ry ? rx > ry : x.id < y.id;
    });
    return out;
}

/// Computes the KPIs of a history from its fit.
/// @param log the history, @param fit fit_history(log) (or a fit with other options)
/// @param open_book optional book of open deals (its stages named as the fit's): it then
///   supplies the open opportunities and the stale-deal candidates (with their ages);
///   otherwise the log's open visits do (age = log end − entry)
/// @throws argument_error unless 0 < stale_quantile < 1, 0 < stalled_threshold <= 1 and
///   0 <= max_lost_without_amount <= 1, or if the book has a stage the fit does not know;
///   model_error if the fit does not make a model (see to_model).
/// Complexity: O(n) for n visits plus O(m³) for m stages.
/// Example: `auto k = compute_kpis(log, fit_history(log));`
template <class = void>
[[nodiscard]] kpi_report compute_kpis(const visit_log& log, const history_fit& fit, const kpi_options& opt = {},
                                      const book* open_book = nullptr) {
    if (!(opt.stale_quantile > 0.0 && opt.stale_quantile < 1.0))
        throw argument_error(detail::message("compute_kpis: stale_quantile must be in (0, 1), got ", opt.stale_quantile));
    if (!(opt.stalled_threshold > 0.0 && opt.stalled_threshold <= 1.0))
        throw argument_error(detail::message("compute_kpis: stalled_threshold must be in (0, 1], got ",
                                             opt.stalled_threshold));
    if (!(opt.max_lost_without_amount >= 0.0 && opt.max_lost_without_amount <= 1.0))
        throw argument_error(detail::message("compute_kpis: max_lost_without_amount must be in [0, 1], got ",
                                             opt.max_lost_without_amount));
    const model m = to_model(fit);
    const stage_graph& g = m.graph;
    const absorption_analysis a = analyse(g);
    const Eigen::VectorXd w_latent = g.has_branches() ? win_probabilities(g.latent()) : a.win_probability;
    const std::size_t ms = g.open_count();
    kpi_report r;
    r.time_unit = fit.time_unit;
    r.stale_quantile = opt.stale_quantile;
    r.stalled_threshold = opt.stalled_threshold;

    // Map log stage codes to graph indices.
    std::vector<std::size_t> gi(log.stage_names.size(), g.size());
    for (std::size_t s = 0; s < log.stage_names.size(); ++s)
        if (auto k = g.find(log.stage_names[s])) gi[s] = *k;

    // Per stage: loss exits, from the log.
    std::vector<double> loss_exits(ms, 0.0);
    double total_loss = 0.0;
    // Per stage: the longest completed stay of a deal that went on to win.
    std::vector<double> longest_won(ms, std::numeric_limits<double>::quiet_NaN());
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
            w = s < ms ? win_probability_at_age(g, s, log.duration(z), w_latent) : 0.0;
            stale_deal c;
            c.id = log.deal_ids[log.deal[z]];
            c.stage = log.stage_names[log.stage[z]];
            c.age = log.duration(z);
            c.amount = amount;
            candidates.push_back(std::move(c));
        } else {
            const std::size_t o = gi[log.next[z]];
            const bool won = o < g.size() && g.is_win(o);
            w = won ? 1.0 : 0.0;
            if (won) {
                ++r.won;
                cycles.push_back(log.exited[z] - log.entered[first]);
                if (has_amount) won_amounts.push_back(amount);
                for (std::size_t i = first; i < last; ++i) {
                    const std::size_t s = gi[log.stage[i]];
                    if (log.censored(i) || s >= ms) continue;
                    const double d = log.duration(i);
                    if (!(longest_won[s] >= d)) longest_won[s] = d;
                }
            } else {
                ++r.lost;
                if (!(has_amount && amount > 0.0)) ++r.lost_without_amount;
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
    if (r.lost_without_amount > 0 &&
        static_cast<double>(r.lost_without_amount) > opt.max_lost_without_amount * static_cast<double>(r.lost)) {
        r.win_rate_by_value = nan;
        r.closed_win_rate_by_value = nan;
        r.value_win_rate_note = detail::message(
            "value win rates need the lost deals' amounts: ", r.lost_without_amount, " of ", r.lost,
            " lost deals have a blank or zero amount (more than ", 100.0 * opt.max_lost_without_amount,
            "%), so a rate by value would count them as nothing lost");
    }
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
    if (a.win_probability(static_cast<Eigen::Index>(entry)) > 0.0 && detail::use_sparse(solver_method::automatic, ms)) {
        // Large graphs: row `entry` of Ñ = (I - Q̃)^-1 by one sparse solve with (I - Q̃)ᵀ.
        std::vector<Eigen::Triplet<double>> t;
        std::vector<double> diag(ms, 1.0);
        detail::for_each_win_conditioned_edge(g, detail::win_span(a), [&](std::size_t i, std::size_t j, double v) {
            if (j >= ms) return;
            if (j == i)
                diag[i] = 1.0 - v;
            else if (v != 0.0)
                t.emplace_back(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i), -v);
        });
        for (std::size_t i = 0; i < ms; ++i)
            t.emplace_back(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i), diag[i]);
        Eigen::SparseMatrix<double> at(static_cast<Eigen::Index>(ms), static_cast<Eigen::Index>(ms));
        at.setFromTriplets(t.begin(), t.end());
        visits_won = detail::sparse_lu(at, "kpi (visits given a win)")
                         .solve(Eigen::VectorXd::Unit(static_cast<Eigen::Index>(ms), static_cast<Eigen::Index>(entry)));
    } else if (a.win_probability(static_cast<Eigen::Index>(entry)) > 0.0) {
        const auto n = static_cast<Eigen::Index>(ms);
        Eigen::MatrixXd qt = Eigen::MatrixXd::Zero(n, n);
        detail::for_each_win_conditioned_edge(g, detail::win_span(a), [&](std::size_t i, std::size_t j, double v) {
            if (j < ms) qt(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = v;
        });
        const Eigen::MatrixXd nt = (Eigen::MatrixXd::Identity(n, n) - qt).partialPivLu().inverse();
        visits_won = nt.row(static_cast<Eigen::Index>(entry)).transpose();
    }
    // Mean time in a stage on a winning path: the branch mixture reweighted by each branch's
    // chance to win afterwards (wins come early in a branched stage); the mean dwell for a
    // classic stage, whose time does not depend on what comes next.
    std::vector<double> time_won(ms);
    for (std::size_t s = 0; s < ms; ++s) {
        time_won[s] = g.mean_dwell(s);
        if (!g.branched(s)) continue;
        double num = 0.0, den = 0.0;
        for (std::size_t k = 0; k < g.branches(s).size(); ++k) {
            const std::size_t to = g.branch_target(s, k);
            const double wt = g.is_outcome(to) ? (g.is_win(to) ? 1.0 : 0.0) : a.win_probability(static_cast<Eigen::Index>(to));
            num += g.branches(s)[k].probability * wt * g.branches(s)[k].dwell.mean();
            den += g.branches(s)[k].probability * wt;
        }
        if (den > 0.0) time_won[s] = num / den;
    }
    double total_time = 0.0;
    for (std::size_t s = 0; s < ms; ++s) total_time += visits_won(static_cast<Eigen::Index>(s)) * time_won[s];

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
        k.mean_time = g.mean_dwell(s);
        k.median_time = e.km.median;
        k.naive_mean_time = e.naive_mean;
        k.time_share = total_time > 0.0 ? visits_won(row) * time_won[s] / total_time : nan;
        if (g.branched(s))
            for (const auto& b : g.branches(s)) k.stalled_share += b.stalled ? b.probability : 0.0;
        k.longest_won_stay = longest_won[s];
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
            stale_deal c;
            c.id = open_book->ids()[i];
            c.stage = st;
            c.age = open_book->ages()[i];
            c.amount = open_book->amounts()[i];
            candidates.push_back(std::move(c));
        }
    }
    r.open_opportunities = static_cast<double>(candidates.size());
    double open_with_amount = 0.0;
    for (const auto& c : candidates)
        if (std::isfinite(c.amount)) {
            r.open_value += c.amount;
            open_with_amount += 1.0;
        }
    // Velocity: the one definition (funnel.hpp), deal size = the average open deal.
    const double size = open_with_amount > 0.0 ? r.open_value / open_with_amount : r.average_won_deal;
    if (std::isfinite(size) && size >= 0.0) {
        r.velocity_detail = sales_velocity(g, a, entry, r.open_opportunities, size);
        r.velocity = r.velocity_detail.velocity;
    }

    // Stale deals: likely stalled by the model, or older than any won deal's stay.
    r.stale = stale_deals(g, std::move(candidates), longest_won, opt.stalled_threshold);
    return r;
}

} // namespace pipecast
