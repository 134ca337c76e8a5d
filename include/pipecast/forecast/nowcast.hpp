// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast/nowcast.hpp
/// @brief The current periods' market shocks, read from the outcomes already seen.
///
/// A fitted model carries each stage's overdispersion σ_k: the decisions of the deals that
/// enter stage k in one period (a calendar quarter) share a shock Z ~ N(0, σ_k²) on the
/// log-odds of going forward (won, or a later open stage) against being lost. A forecast
/// made inside a period already sees part of that period's cohort decide. Fast wins come
/// first, so the share won so far is biased, but the model knows each branch's timing, and
/// the cohort's likelihood of Z is exact under it:
///
///     L(z) = Π_finished Σ_{b → next} π_b(z) f_b(d) · Π_open Σ_b π_b(z) S_b(a),
///
/// π_b(z) the branch shares with the forward odds multiplied by e^z (the forward branches
/// scaled by f′/f, the non-stalled losing ones by l′/l, f + l fixed, the stalled and backward
/// branches unchanged). The posterior of Z is the prior times L on a fine grid. An open deal
/// of stage k that entered in period q then has
///
///     P(won within h | k, a, data) = P_marg + E_post[P(z)] − E_prior[P(z)],
///
/// P(z) = Σ_b w_b(a; z) P_b(a) the period forecast with only this visit's branch weights
/// shocked (its later stages are new periods: their shocks are unknown, as in the fit), and
/// P_marg the model's forecast (its branch shares are the pooled, shock-averaged ones, so the
/// prior term is subtracted rather than assuming P_marg = P(0)). Where no deal of the cohort
/// has decided, the posterior is the prior and nothing changes. See docs/estimation.md §9.

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/detail/gauss_hermite.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/first_passage.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace pipecast {

/// Options of nowcast_shocks.
struct nowcast_options {
    /// Length of a shock period in the model's time unit; NaN: calendar quarters for a dated
    /// log, else 365.2425 / 4 days (fit_options::overdispersion_period's rule: use the same).
    double period = std::numeric_limits<double>::quiet_NaN();
    /// Gauss–Hermite nodes of the integrals over the prior and the (normal) posterior.
    std::size_t nodes = 9;
};

/// The posterior of one stage's shock in one period.
struct cohort_shock {
    std::string stage;       ///< open stage of the model
    std::size_t stage_index = 0;
    long long period = 0;    ///< year · 4 + quarter (0–3) for calendar quarters, else ⌊entry / period⌋
    double prior_sd = 0.0;   ///< σ of the stage (model::overdispersion_by_stage)
    double mean = 0.0;       ///< posterior mean of Z
    double sd = 0.0;         ///< posterior standard deviation of Z
    std::size_t visits = 0;  ///< visits of the stage entered in the period, known at the log's end
    std::size_t decided = 0; ///< of which finished (to any next stage)
};

/// The cohorts' shocks of a model on a history (nowcast_shocks).
struct shock_nowcast {
    std::vector<cohort_shock> cohorts; ///< by stage (funnel order), then period
    double period = std::numeric_limits<double>::quiet_NaN(); ///< period length; NaN: calendar quarters
    bool dates = false;                ///< times are days since 1970-01-01 (a dated log)
    double days_per_unit = 1.0;
    std::size_t nodes = 9;

    /// The cohort of stage s and period key q, if one was seen.
    [[nodiscard]] const cohort_shock* find(std::size_t s, long long q) const noexcept {
        for (const auto& c : cohorts)
            if (c.stage_index == s && c.period == q) return &c;
        return nullptr;
    }
};

namespace detail {

/// Which branches of branched stage s move forward (+1: a win or a later open stage, not
/// stalled), are lost (−1: a losing outcome, not stalled), or neither (0).
template <class = void>
[[nodiscard]] std::vector<int> branch_direction(const stage_graph& g, std::size_t s) {
    std::vector<int> dir;
    const auto br = g.branches(s);
    for (std::size_t k = 0; k < br.size(); ++k) {
        const std::size_t j = g.branch_target(s, k);
        if (br[k].stalled) dir.push_back(0);
        else if (g.is_outcome(j)) dir.push_back(g.is_win(j) ? 1 : -1);
        else dir.push_back(j > s ? 1 : 0);
    }
    return dir;
}

/// Branch shares with the forward odds multiplied by e^z (f + l kept).
template <class = void>
void shocked_shares(std::span<const double> pi, std::span<const int> dir, double z, std::span<double> out) {
    double f = 0.0, l = 0.0;
    for (std::size_t k = 0; k < pi.size(); ++k) {
        if (dir[k] > 0) f += pi[k];
        if (dir[k] < 0) l += pi[k];
    }
    const double nf = f > 0.0 && l > 0.0 ? (f + l) / (1.0 + (l / f) * std::exp(-z)) : f;
    const double nl = f + l - nf;
    for (std::size_t k = 0; k < pi.size(); ++k)
        out[k] = dir[k] > 0 ? pi[k] * (nf / f) : dir[k] < 0 ? pi[k] * (nl / l) : pi[k];
}

/// g with stage s's branch shares shocked by z (every other stage as it is).
template <class = void>
[[nodiscard]] stage_graph cohort_shocked_graph(const stage_graph& g, std::size_t s, double z) {
    std::vector<open_stage> st(g.stages().begin(), g.stages().end());
    auto& br = st[s].branches;
    std::vector<double> pi(br.size()), out(br.size());
    for (std::size_t k = 0; k < br.size(); ++k) pi[k] = br[k].probability;
    const auto dir = branch_direction(g, s);
    shocked_shares(pi, dir, z, out);
    for (std::size_t k = 0; k < br.size(); ++k) br[k].probability = out[k];
    transition_rows rows;
    for (std::size_t i = 0; i < g.open_count(); ++i) {
        if (g.branched(i)) continue;
        auto& row = rows[g.name(i)];
        for (const auto& e : g.edges(i)) row[g.name(e.to)] = e.probability;
    }
    return stage_graph::from_rows(std::move(st), std::vector<outcome_stage>(g.outcomes().begin(), g.outcomes().end()),
                                  rows);
}

/// True when every branch dwell of stage s has a density (the cohort likelihood needs f_b).
template <class = void>
[[nodiscard]] bool continuous_branches(const stage_graph& g, std::size_t s) {
    for (const auto& b : g.branches(s))
        if (b.dwell.family() == dwell_family::fixed || b.dwell.family() == dwell_family::empirical) return false;
    return true;
}

} // namespace detail

/// The posterior of every (stage, period) shock of `m` from the visits of `known` (the
/// history known at the forecast time, after the same cleaning as the fit; its end_time is
/// the censoring time). Only branched stages with σ_k > 0 and continuous branch dwells get
/// cohorts; visits to a next stage that none of the stage's branches leads to are left out.
/// @throws argument_error for a non-positive period or fewer than 2 nodes.
/// Complexity: O(visits · branches · grid) with a grid of 241 values of z.
template <class = void>
[[nodiscard]] shock_nowcast nowcast_shocks(const model& m, const visit_log& known, const nowcast_options& o = {}) {
    if (!(std::isnan(o.period) || (o.period > 0.0 && std::isfinite(o.period))))
        throw argument_error(detail::message("nowcast_shocks: period must be positive, got ", o.period));
    if (o.nodes < 2) throw argument_error("nowcast_shocks: nodes must be >= 2");
    const stage_graph& g = m.graph;
    shock_nowcast out;
    out.dates = known.dates;
    out.days_per_unit = days_per_unit(m.time_unit);
    // fit_history's rule: calendar quarters for a dated log, else a quarter of a year
    out.period = !std::isnan(o.period) || known.dates ? o.period : 365.2425 / 4.0 / out.days_per_unit;
    out.nodes = o.nodes;
    const std::vector<double> sigma = m.overdispersion_by_stage();
    std::vector<std::size_t> model_stage(known.stage_names.size(), g.size());
    for (std::size_t c = 0; c < known.stage_names.size(); ++c)
        if (const auto s = g.find(known.stage_names[c])) model_stage[c] = *s;
    constexpr std::size_t grid = 241;
    for (std::size_t s = 0; s < g.open_count(); ++s) {
        if (!(s < sigma.size() && sigma[s] > 0.0) || !g.branched(s) || !detail::continuous_branches(g, s)) continue;
        const auto br = g.branches(s);
        const std::size_t nb = br.size();
        const auto dir = detail::branch_direction(g, s);
        std::vector<double> pi(nb);
        for (std::size_t k = 0; k < nb; ++k) pi[k] = br[k].probability;
        // log π_b(z) on the grid z_j = σ (−8 + 16 j / (grid − 1)).
        std::vector<double> z(grid), lpi(grid * nb), sh(nb);
        for (std::size_t j = 0; j < grid; ++j) {
            z[j] = sigma[s] * (-8.0 + 16.0 * static_cast<double>(j) / static_cast<double>(grid - 1));
            detail::shocked_shares(pi, dir, z[j], sh);
            for (std::size_t k = 0; k < nb; ++k) lpi[j * nb + k] = sh[k] > 0.0 ? std::log(sh[k]) : -std::numeric_limits<double>::infinity();
        }
        std::map<long long, std::vector<double>> ll; // period -> log L on the grid
        std::map<long long, std::pair<std::size_t, std::size_t>> counts;
        std::vector<double> term(nb);
        for (std::size_t i = 0; i < known.size(); ++i) {
            if (model_stage[known.stage[i]] != s) continue;
            const bool open = known.censored(i);
            const double d = known.duration(i);
            bool any = false;
            for (std::size_t k = 0; k < nb; ++k) {
                if (open) {
                    term[k] = detail::log_sf(br[k].dwell, d);
                } else {
                    const bool to = model_stage[known.next[i]] == g.branch_target(s, k);
                    term[k] = to ? detail::log_pdf(br[k].dwell, std::max(d, 1e-9)) : -std::numeric_limits<double>::infinity();
                }
                any = any || term[k] > -std::numeric_limits<double>::infinity();
            }
            if (!any) continue;
            const long long q = detail::shock_period_key(known.entered[i], out.period, out.days_per_unit);
            auto& l = ll[q];
            if (l.empty()) l.assign(grid, 0.0);
            auto& cnt = counts[q];
            ++cnt.first;
            if (!open) ++cnt.second;
            for (std::size_t j = 0; j < grid; ++j) {
                double mx = -std::numeric_limits<double>::infinity();
                for (std::size_t k = 0; k < nb; ++k) mx = std::max(mx, lpi[j * nb + k] + term[k]);
                double acc = 0.0;
                for (std::size_t k = 0; k < nb; ++k) acc += std::exp(lpi[j * nb + k] + term[k] - mx);
                l[j] += mx + std::log(acc);
            }
        }
        for (const auto& [q, l] : ll) {
            double mx = -std::numeric_limits<double>::infinity();
            std::vector<double> lp(grid);
            for (std::size_t j = 0; j < grid; ++j) {
                const double u = z[j] / sigma[s];
                lp[j] = l[j] - 0.5 * u * u;
                mx = std::max(mx, lp[j]);
            }
            double w0 = 0.0, w1 = 0.0, w2 = 0.0;
            for (std::size_t j = 0; j < grid; ++j) {
                const double w = std::exp(lp[j] - mx);
                w0 += w;
                w1 += w * z[j];
                w2 += w * z[j] * z[j];
            }
            cohort_shock c;
            c.stage = g.name(s);
            c.stage_index = s;
            c.period = q;
            c.prior_sd = sigma[s];
            c.mean = w1 / w0;
            c.sd = std::sqrt(std::max(0.0, w2 / w0 - c.mean * c.mean));
            c.visits = counts[q].first;
            c.decided = counts[q].second;
            out.cohorts.push_back(c);
        }
    }
    return out;
}

/// P(won within h | stage, age, the cohorts' outcomes so far) per deal of `b` (book order):
/// the marginal probabilities `p_marginal` (period_forecast on `tab`) plus, for a deal whose
/// stage and entry period (as_of − age) have a cohort in `s`, E_post[P(z)] − E_prior[P(z)]
/// (Gauss–Hermite, the posterior taken as normal), clamped to [0, 1].
/// @param tab win_time_distribution(m.graph, H) for some H >= h (the one p_marginal used)
/// @throws argument_error when p_marginal does not have one entry per deal.
template <class = void>
[[nodiscard]] std::vector<double> nowcast_within(const model& m, const book& b, double as_of, double h,
                                                const shock_nowcast& s, const win_time_table& tab,
                                                std::span<const double> p_marginal) {
    if (p_marginal.size() != b.size())
        throw argument_error(detail::message("nowcast_within: ", p_marginal.size(), " probabilities for ", b.size(), " deals"));
    std::vector<double> p(p_marginal.begin(), p_marginal.end());
    if (s.cohorts.empty() || b.empty()) return p;
    const stage_graph& g = m.graph;
    std::vector<double> x, w;
    detail::gauss_hermite(s.nodes, x, w);
    const auto st = b.stages();
    const auto ages = b.ages();
    for (std::size_t k = 0; k < g.open_count(); ++k) {
        // The deals of stage k whose cohort is known, grouped by cohort.
        std::map<const cohort_shock*, std::vector<std::size_t>> by_cohort;
        for (std::size_t i = 0; i < b.size(); ++i) {
            if (st[i] != k) continue;
            const long long q = detail::shock_period_key(as_of - ages[i], s.period, s.days_per_unit);
            const cohort_shock* c = s.find(k, q);
            if (c && c->decided > 0) by_cohort[c].push_back(i);
        }
        if (by_cohort.empty()) continue;
        // P(z) for the deals of one cohort: a book of those deals on the shocked graph.
        auto within = [&](double z, const std::vector<std::size_t>& idx) {
            const stage_graph gz = detail::cohort_shocked_graph(g, k, z);
            book sub(gz);
            for (std::size_t i : idx) sub.add("", k, 1.0, ages[i]);
            return period_forecast(gz, sub, h, tab, analyse(gz), true).deal_probability;
        };
        const double sigma = by_cohort.begin()->first->prior_sd;
        for (const auto& [c, idx] : by_cohort) {
            std::vector<double> delta(idx.size(), 0.0);
            for (std::size_t n = 0; n < x.size(); ++n) {
                const auto post = within(c->mean + c->sd * x[n], idx);
                const auto prior = within(sigma * x[n], idx);
                for (std::size_t j = 0; j < idx.size(); ++j) delta[j] += w[n] * (post[j] - prior[j]);
            }
            for (std::size_t j = 0; j < idx.size(); ++j) p[idx[j]] = std::clamp(p[idx[j]] + delta[j], 0.0, 1.0);
        }
    }
    return p;
}

} // namespace pipecast
