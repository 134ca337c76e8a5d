// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation/dwell_fit.hpp
/// @brief Fitting one stage: a dwell family by censored maximum likelihood, the
/// Kaplan–Meier curve and its dwell, the transition probabilities with their intervals.

#include <pipecast/data/history.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/detail/mle.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Eigen/Dense>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/erf.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <boost/math/tools/roots.hpp>

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

// ---------------------------------------------------------------------------------------
// Dwell estimators
// ---------------------------------------------------------------------------------------

/// Fits one parametric family by maximum likelihood with right-censoring:
/// log L = Σ_exits log f(t) + Σ_censored log S(c).
/// @param exits observed dwell times (durations of completed visits)
/// @param censored ages of the visits still open at the log end
/// @param family exponential, gamma, lognormal or weibull
/// @returns the fit; trouble (too few exits, no convergence) is its status, not an exception.
/// @throws argument_error for another family or a non-finite duration.
/// Complexity: O(n) to form the statistics, then O(n) per Weibull iteration and O(m) per
/// gamma/lognormal iteration for m censored visits (exits enter through sufficient statistics).
/// Example: `auto f = fit_dwell_family(dwell_family::gamma, exits, open_ages);`
template <class = void>
[[nodiscard]] family_fit fit_dwell_family(dwell_family family, std::span<const double> exits,
                                          std::span<const double> censored, const fit_options& opt = {}) {
    for (double x : exits)
        if (!std::isfinite(x)) throw argument_error(detail::message("fit_dwell_family: exit duration ", x, " is not finite"));
    for (double x : censored)
        if (!std::isfinite(x)) throw argument_error(detail::message("fit_dwell_family: censored duration ", x, " is not finite"));
    const detail::dwell_sample s(exits, opt.ignore_censored ? std::span<const double>{} : censored, opt.min_dwell);
    switch (family) {
    case dwell_family::exponential: return detail::fit_exponential(s);
    case dwell_family::gamma: return detail::fit_gamma(s, opt.max_iterations);
    case dwell_family::lognormal: return detail::fit_lognormal(s, opt.max_iterations);
    case dwell_family::weibull: return detail::fit_weibull(s, opt.max_iterations);
    default:
        throw argument_error(detail::message("fit_dwell_family: cannot fit the family '", to_string(family),
                                             "' (exponential, gamma, lognormal, weibull)"));
    }
}

/// The Kaplan–Meier estimate of the survival of a dwell time, with Greenwood standard
/// errors. A visit censored at time c is at risk at every event time <= c.
/// @throws argument_error on a negative or non-finite duration.
/// Complexity: O(n log n) (sorting).
template <class = void>
[[nodiscard]] kaplan_meier fit_kaplan_meier(std::span<const double> exits, std::span<const double> censored) {
    std::vector<double> e(exits.begin(), exits.end()), c(censored.begin(), censored.end());
    for (double x : e)
        if (!(std::isfinite(x) && x >= 0.0)) throw argument_error(detail::message("kaplan_meier: exit duration ", x, " must be finite and >= 0"));
    for (double x : c)
        if (!(std::isfinite(x) && x >= 0.0)) throw argument_error(detail::message("kaplan_meier: censored duration ", x, " must be finite and >= 0"));
    std::sort(e.begin(), e.end());
    std::sort(c.begin(), c.end());
    kaplan_meier km;
    km.last_time = std::max(e.empty() ? 0.0 : e.back(), c.empty() ? 0.0 : c.back());
    double at_risk = static_cast<double>(e.size() + c.size());
    double s = 1.0, greenwood = 0.0, prev_t = 0.0;
    std::size_t ci = 0;
    for (std::size_t i = 0; i < e.size();) {
        const double t = e[i];
        while (ci < c.size() && c[ci] < t) { // censored before t leave the risk set
            ++ci;
            at_risk -= 1.0;
        }
        std::size_t j = i;
        while (j < e.size() && e[j] == t) ++j;
        const double d = static_cast<double>(j - i);
        km.restricted_mean += s * (t - prev_t);
        prev_t = t;
        km.time.push_back(t);
        km.at_risk.push_back(at_risk);
        km.events.push_back(d);
        s *= 1.0 - d / at_risk;
        if (at_risk > d) greenwood += d / (at_risk * (at_risk - d));
        km.survival.push_back(s);
        km.std_error.push_back(s * std::sqrt(greenwood));
        if (std::isnan(km.median) && s <= 0.5) km.median = t;
        at_risk -= d;
        i = j;
    }
    km.restricted_mean += s * (km.last_time - prev_t);
    km.leftover = s;
    return km;
}

/// The Kaplan–Meier estimate as an empirical dwell distribution usable by the simulator:
/// mass S(t_{i-1}) − S(t_i) at each event time, and the mass `leftover` (the survival
/// beyond the last event time, left by censored visits longer than every exit) placed per
/// `tail`: at the largest observed time (efron), or at last_time + the mean residual of
/// `parametric` beyond last_time.
/// @throws argument_error if there are no exits, or km_tail::parametric without a distribution.
template <class = void>
[[nodiscard]] dwell_distribution to_dwell(const kaplan_meier& km, km_tail tail = km_tail::efron,
                                          const dwell_distribution* parametric = nullptr) {
    if (km.time.empty()) throw argument_error("kaplan_meier to_dwell: no exits, the survival never drops");
    std::vector<double> v, w;
    v.reserve(km.time.size() + 1);
    w.reserve(km.time.size() + 1);
    double prev = 1.0;
    for (std::size_t i = 0; i < km.time.size(); ++i) {
        v.push_back(km.time[i]);
        w.push_back(prev - km.survival[i]);
        prev = km.survival[i];
    }
    if (km.leftover > 0.0) {
        double at = km.last_time;
        if (tail == km_tail::parametric) {
            if (!parametric) throw argument_error("kaplan_meier to_dwell: km_tail::parametric needs a parametric dwell");
            at = km.last_time + mean(residual(*parametric, km.last_time));
        }
        v.push_back(at);
        w.push_back(km.leftover);
    }
    return dwell_distribution::empirical(std::move(v), std::move(w));
}

// ---------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------

/// Multinomial MLE and Dirichlet posterior of one transition row.
/// @param targets next-stage names, @param counts exits to each, @param prior pseudo-counts
///   (same length, >= 0), @param level credible level in (0, 1).
/// @throws argument_error on mismatched lengths, negative counts or a bad level.
template <class = void>
[[nodiscard]] std::vector<transition_estimate> estimate_transitions(const std::vector<std::string>& targets,
                                                                    std::span<const double> counts,
                                                                    std::span<const double> prior,
                                                                    double level = 0.95) {
    if (counts.size() != targets.size() || prior.size() != targets.size())
        throw argument_error("estimate_transitions: targets, counts and prior must have the same length");
    if (!(level > 0.0 && level < 1.0))
        throw argument_error(detail::message("estimate_transitions: credible level must be in (0, 1), got ", level));
    double n = 0.0, a = 0.0;
    for (std::size_t j = 0; j < counts.size(); ++j) {
        if (!(counts[j] >= 0.0 && prior[j] >= 0.0))
            throw argument_error(detail::message("estimate_transitions: negative count or prior for '", targets[j], "'"));
        n += counts[j];
        a += counts[j] + prior[j];
    }
    std::vector<transition_estimate> out;
    for (std::size_t j = 0; j < counts.size(); ++j) {
        transition_estimate t;
        t.to = targets[j];
        t.count = counts[j];
        t.mle = n > 0.0 ? counts[j] / n : detail::nan_v;
        const double aj = counts[j] + prior[j];
        if (a > 0.0) {
            t.probability = aj / a;
            t.se = std::sqrt(t.probability * (1.0 - t.probability) / (a + 1.0));
            const double bj = a - aj;
            const double lo = 0.5 * (1.0 - level);
            t.lower = aj <= 0.0 ? 0.0 : bj <= 0.0 ? 1.0 : boost::math::ibeta_inv(aj, bj, lo, detail::boost_policy{});
            t.upper = aj <= 0.0 ? 0.0 : bj <= 0.0 ? 1.0 : boost::math::ibeta_inv(aj, bj, 1.0 - lo, detail::boost_policy{});
        } else {
            t.probability = t.se = t.lower = t.upper = detail::nan_v;
        }
        out.push_back(std::move(t));
    }
    return out;
}

/// True if an outcome name reads as a win: "won", "win", "closed won", 赢单, 成交, 签约 (any
/// case, with spaces, '-' or '_' between the words): outcome_by_name (history.hpp).
template <class = void>
[[nodiscard]] bool looks_won(std::string_view name) { return outcome_by_name(name) == outcome_kind::won; }

// ---------------------------------------------------------------------------------------
// The whole history

} // namespace pipecast
