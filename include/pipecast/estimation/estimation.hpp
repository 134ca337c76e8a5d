// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation/estimation.hpp
/// @brief Learning a pipeline model from deal history: transition probabilities with their
/// uncertainty, and dwell-time distributions fitted with right-censoring.
///
/// The data of one open stage are its visits. A visit that ended (to **any** next stage:
/// the next open stage, a regression, Won or Lost) is an *exit*: its duration is an
/// observed dwell time and its next stage one multinomial draw. A visit still open at the
/// log end is *right-censored*: the dwell is only known to exceed its current age. Lost is
/// a competing risk for Won, not censoring: in the semi-Markov model the dwell ends with any
/// exit and the next stage is drawn independently of it, so
///
///  * the transition row of a stage is estimated from its exits only (multinomial MLE
///    p_j = n_j / n; censored visits carry no information on the next stage), with a
///    Dirichlet posterior Dir(n_j + α_j) for uncertainty and an optional prior α;
///  * the dwell distribution maximises Σ_exits log f(t) + Σ_censored log S(c) (or is the
///    Kaplan–Meier estimate); dropping the censored visits, as most CRMs do, biases the
///    dwell short because long visits are the ones still open.
///
/// Families: exponential (closed form), Weibull (1-D profile likelihood in the shape: the
/// scale given the shape is closed form), gamma and lognormal (closed form or a 1-D
/// equation without censoring; with censoring a safeguarded 2-D Newton method from the
/// uncensored estimate, analytic derivatives for the lognormal, Boost's incomplete gamma
/// for the gamma). The family is chosen by AIC = 2p − 2 log L. Uncensored parts use
/// sufficient statistics (n, Σt, Σlog t, Σlog² t); the censored terms are summed per
/// evaluation; every kernel takes optional per-observation weights.
///
/// **The branched model** (fit_options::kind = model_kind::branched): per open stage one
/// branch per observed next stage plus a stalled branch (no decision, closed lost at an
/// exponential clean-up time), fitted by EM on the censored mixture likelihood
/// Σ_exits w log Σ_{k→j} π_k f_k(t) + Σ_censored w log Σ_k π_k S_k(c); a family per branch by
/// the mixture AIC; sandwich standard errors of π; the stall share capped; optionally
/// Aalen–Johansen (nonparametric) branches. Recency (window, half-life weights) enters every
/// estimate; the fit also gives arrivals per entry stage, empirical deal sizes and the
/// per-period overdispersion of the win/lose decision. See docs/estimation.md §8.

#include <pipecast/estimation/detail/fit.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// Fits transition probabilities and dwell distributions of every open stage of a history;
/// with opt.kind = model_kind::branched also each stage's branches (stage_estimate::branched,
/// by EM; numerical trouble is its status, never an exception). Visits are selected by
/// opt.window and weighted by opt.half_life (by their entry time, before the log end).
/// @throws argument_error on bad options (unknown stage in stage_order / won / prior,
///   negative prior, bad credible level, window or half-life not positive, max_stall_share
///   outside [0, 1)) or an empty history.
/// Complexity: O(n) for n visits plus the per-stage fits (O(n log n) for Kaplan–Meier).
/// Example:
/// @code
///   auto log = load_visit_log("history.csv");
///   auto fit = fit_history(log);
///   save_model(to_model(fit), "fitted.json");
/// @endcode
template <class = void>
[[nodiscard]] history_fit fit_history(const visit_log& log, const fit_options& opt = {}) {
    return detail::fit_selected(log, opt, [](std::size_t) { return true; });
}

/// The dwell estimates of one stage from its durations, as fit_history makes them: the four
/// censored parametric fits, the least-AIC family, Kaplan–Meier, and the dwell opt.dwell
/// chooses (the fields of stage_estimate other than the name and transitions).
/// @throws argument_error on a negative or non-finite duration.
/// Example: `auto e = fit_dwell(exits, open_ages); auto d = *e.dwell;`
template <class = void>
[[nodiscard]] stage_estimate fit_dwell(std::span<const double> exits, std::span<const double> censored,
                                       const fit_options& opt = {}) {
    for (double x : exits)
        if (!(std::isfinite(x) && x >= 0.0)) throw argument_error(detail::message("fit_dwell: exit duration ", x, " must be finite and >= 0"));
    for (double x : censored)
        if (!(std::isfinite(x) && x >= 0.0))
            throw argument_error(detail::message("fit_dwell: censored duration ", x, " must be finite and >= 0"));
    stage_estimate st;
    st.exits = exits.size();
    st.censored = opt.ignore_censored ? 0 : censored.size();
    st.visits = st.exits + st.censored;
    detail::fit_stage_dwell(st, exits, opt.ignore_censored ? std::span<const double>{} : censored, opt);
    return st;
}

/// One segment's fit (the visits whose segment column has this value).
struct segment_fit {
    std::string value;
    history_fit fit;
};

/// Fits each value of an extra column separately (owner, team, region, ...): one
/// history_fit per value, in order of first appearance. Every segment shares the outcomes
/// and the funnel order of the whole history.
/// @throws argument_error if the column is not an extra column of the log.
template <class = void>
[[nodiscard]] std::vector<segment_fit> fit_segments(const visit_log& log, std::string_view column,
                                                    fit_options opt = {}) {
    const auto c = log.find_column(column);
    if (!c) {
        std::string cols;
        for (const auto& n : log.extra_columns) cols += (cols.empty() ? "" : ", ") + n;
        throw argument_error(detail::message("fit_segments: no column '", column, "' in ", log.source,
                                             " (extra columns: ", cols.empty() ? "none" : cols, ")"));
    }
    if (opt.stage_order.empty()) // the whole history's funnel order (fit_history's), without fitting it
        for (std::uint32_t code : detail::funnel_order(log, opt, [&](std::size_t i) { return detail::in_window(log, opt, i); }))
            opt.stage_order.push_back(log.stage_names[code]);
    std::vector<segment_fit> out;
    const auto& codes = log.extra[*c];
    for (std::uint32_t v = 0; v < log.extra_values[*c].size(); ++v) {
        fit_options o = opt;
        // Stages a segment never visits are left out of its order.
        std::vector<char> seen(log.stage_names.size(), 0);
        for (std::size_t i = 0; i < log.size(); ++i)
            if (codes[i] == v) seen[log.stage[i]] = 1;
        o.stage_order.clear();
        for (const auto& nm : opt.stage_order)
            if (seen[*log.find_stage(nm)]) o.stage_order.push_back(nm);
        if (o.stage_order.empty()) continue;
        out.push_back({log.extra_values[*c][v], detail::fit_selected(log, o, [&](std::size_t i) { return codes[i] == v; })});
    }
    return out;
}

/// The fitted model: the stage graph (fitted dwells, posterior-mean transitions; branched
/// stages with their branches when the fit has them, the classic stage where the branched
/// fit failed), the deal size, the main arrival stream, the overdispersion σ, the time unit.
/// @throws model_error naming the stage if a stage has no exits (and no prior) or no dwell
///   estimate, or if the outcomes lack a win or a loss (stage_graph's checks).
template <class = void>
[[nodiscard]] model to_model(const history_fit& fit, std::string name = "fitted") {
    std::vector<open_stage> stages;
    transition_rows rows;
    for (const auto& s : fit.stages) {
        if (s.branched && s.branched->status != fit_status::failed && !s.branched->branches.empty() &&
            std::all_of(s.branched->branches.begin(), s.branched->branches.end(),
                        [](const branch_estimate& b) { return b.dwell.has_value(); })) {
            std::vector<stage_branch> br;
            for (const auto& b : s.branched->branches) br.push_back({b.to, b.probability, *b.dwell, b.stalled});
            // the stage dwell of a branched stage is replaced by the graph's summary
            stages.push_back({s.name, dwell_distribution::exponential(1.0), std::move(br)});
            continue;
        }
        if (!s.dwell)
            throw model_error(detail::message("fitted model: stage '", s.name, "' has no dwell estimate (",
                                              s.exits, " exits, ", s.censored, " censored)"));
        if (s.transitions.empty())
            throw model_error(detail::message("fitted model: stage '", s.name,
                                              "' has no completed exits; its transitions cannot be estimated (give a prior)"));
        stages.push_back({s.name, *s.dwell});
        auto& row = rows[s.name];
        for (const auto& t : s.transitions) row[t.to] = t.probability;
    }
    model m{.graph = stage_graph::from_rows(std::move(stages), fit.outcomes, rows),
            .deal_size = fit.deal_size,
            .arrivals = std::nullopt,
            .name = std::move(name),
            .description = "",
            .time_unit = fit.time_unit,
            .currency = ""};
    m.description = detail::message("Fitted from ", fit.visits, " stage visits of ", fit.deals, " deals");
    if (fit.overdispersion) m.overdispersion = fit.overdispersion->sigma;
    bool any = false;
    for (const auto& o : fit.stage_overdispersion) any = any || o.periods > 0;
    if (any && fit.stage_overdispersion.size() == fit.stages.size())
        for (const auto& o : fit.stage_overdispersion) m.stage_overdispersion.push_back(o.sigma);
    if (std::isfinite(fit.arrival_rate) && fit.arrival_rate >= 0.0) {
        arrival_process a;
        a.stage = m.graph.index_of(fit.entry_stage);
        a.rate = fit.arrival_rate;
        m.arrivals = a;
    }
    return m;
}

} // namespace pipecast
