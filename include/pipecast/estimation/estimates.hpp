// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation/estimates.hpp
/// @brief What a fit returns and how it is asked for: the estimates of transitions,
/// dwells, branches and arrivals, history_fit and fit_options (estimation.hpp fits them).

#include <pipecast/error.hpp>
#include <pipecast/model/model.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

/// Outcome of an iterative fit (a status, never an exception).
enum class fit_status {
    converged,      ///< the optimiser met its tolerance
    max_iterations, ///< stopped at the iteration limit; the estimate is the last iterate
    too_few_events, ///< not enough exits to estimate the family (or degenerate data)
    failed          ///< numerical failure (non-finite likelihood, no ascent direction)
};

[[nodiscard]] constexpr std::string_view to_string(fit_status s) noexcept {
    switch (s) {
    case fit_status::converged: return "converged";
    case fit_status::max_iterations: return "max_iterations";
    case fit_status::too_few_events: return "too_few_events";
    case fit_status::failed: return "failed";
    }
    return "?";
}

/// A fitted parameter with its asymptotic standard error (inverse observed information).
struct parameter_estimate {
    std::string name;
    double value = std::numeric_limits<double>::quiet_NaN();
    double se = std::numeric_limits<double>::quiet_NaN();
};

/// One parametric family fitted by censored maximum likelihood.
struct family_fit {
    dwell_family family = dwell_family::exponential;
    fit_status status = fit_status::failed;
    std::size_t iterations = 0;
    double log_likelihood = std::numeric_limits<double>::quiet_NaN();
    double aic = std::numeric_limits<double>::quiet_NaN(); ///< 2p − 2 log L
    /// exponential: mean; gamma: shape, scale; lognormal: mu, sigma (of log T);
    /// weibull: shape, scale.
    std::vector<parameter_estimate> parameters;
    double mean = std::numeric_limits<double>::quiet_NaN();    ///< fitted mean dwell
    double mean_se = std::numeric_limits<double>::quiet_NaN(); ///< its standard error (delta method)
    std::optional<dwell_distribution> dwell; ///< the fitted distribution (when status is converged)

    [[nodiscard]] bool ok() const noexcept { return status == fit_status::converged && dwell.has_value(); }
};

/// Kaplan–Meier estimate of the survival function of a dwell time.
struct kaplan_meier {
    std::vector<double> time;      ///< distinct event (exit) times, increasing
    std::vector<double> survival;  ///< S(t) just after time[i]
    std::vector<double> at_risk;   ///< visits at risk just before time[i]
    std::vector<double> events;    ///< exits at time[i]
    std::vector<double> std_error; ///< Greenwood standard error of survival[i]
    double last_time = 0.0;        ///< largest observed duration (exit or censored)
    /// S after the last event time: the probability mass the events do not place because
    /// the longest visits are censored (0 when the longest visit is an exit).
    double leftover = 1.0;
    double median = std::numeric_limits<double>::quiet_NaN(); ///< first t with S(t) <= 1/2; NaN if never
    double restricted_mean = 0.0;  ///< ∫_0^last_time S(t) dt (a lower bound of the mean)

    /// S(t), the right-continuous step function.
    [[nodiscard]] double survival_at(double t) const noexcept {
        const auto it = std::upper_bound(time.begin(), time.end(), t);
        return it == time.begin() ? 1.0 : survival[static_cast<std::size_t>(it - time.begin()) - 1];
    }
    /// Smallest event time with S <= 1 - p; NaN if S never gets that low.
    [[nodiscard]] double quantile(double p) const noexcept {
        for (std::size_t i = 0; i < time.size(); ++i)
            if (survival[i] <= 1.0 - p + 1e-12) return time[i];
        return std::numeric_limits<double>::quiet_NaN();
    }
};

/// Where a Kaplan–Meier dwell puts the mass `leftover` beyond the last event time.
enum class km_tail {
    efron,     ///< at the largest observed time (Efron: the largest visit counts as an exit); default
    parametric ///< at last_time + the mean residual of a parametric fit beyond last_time
};

/// One transition edge of a stage, with its Dirichlet posterior.
struct transition_estimate {
    std::string to;           ///< next stage
    double count = 0.0;       ///< observed exits to it
    double mle = 0.0;         ///< count / exits
    double probability = 0.0; ///< posterior mean (count + α) / (exits + Σα); the MLE without prior
    double se = 0.0;          ///< posterior standard deviation
    double lower = 0.0;       ///< equal-tailed credible interval (Beta marginal)
    double upper = 0.0;
};

/// Which model fit_history estimates.
enum class model_kind {
    classic, ///< one dwell per stage, the next stage independent of it (semi-Markov)
    branched ///< one branch per exit (its own probability and dwell) plus a stalled branch
};

[[nodiscard]] constexpr std::string_view to_string(model_kind k) noexcept {
    return k == model_kind::branched ? "branched" : "classic";
}

/// One estimated branch of a branched stage (see stage_branch): a share `probability` of the
/// deals entering the stage leave it for `to` after a time from `dwell`.
struct branch_estimate {
    std::string to;
    bool stalled = false;     ///< the no-decision share, closed (lost) at a clean-up time
    double probability = 0.0; ///< π_k, the EM estimate (or Aalen–Johansen F_k(τ))
    double se = std::numeric_limits<double>::quiet_NaN(); ///< standard error of π_k (sandwich, see docs)
    double events = 0.0;      ///< (weighted) exits the branch explains: Σ w_v r_vk over exits
    std::optional<dwell_distribution> dwell;
    std::string family;       ///< "exponential", "gamma", "lognormal", "weibull", "aalen_johansen"
    family_fit fit;           ///< the chosen family's weighted fit (mean, mean_se, parameters, AIC)
    double aic = std::numeric_limits<double>::quiet_NaN(); ///< of the chosen family (complete-data, see docs)
    /// AIC of the stage's mixture likelihood with this branch in each family (exponential,
    /// gamma, lognormal, weibull; the others at their choice); NaN: not tried or not converged.
    std::array<double, 4> family_aic{std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(),
                                     std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
};

/// The branched fit of one stage: the EM of the censored mixture likelihood.
struct branched_estimate {
    fit_status status = fit_status::failed;
    std::size_t iterations = 0;
    double log_likelihood = std::numeric_limits<double>::quiet_NaN(); ///< observed-data, weighted
    double aic = std::numeric_limits<double>::quiet_NaN();            ///< 2 (free parameters) − 2 log L
    std::vector<branch_estimate> branches;                            ///< observed targets in stage order, then the stalled one
    std::string note;                                                 ///< guards that acted (stall share capped, families reduced, ...)
    [[nodiscard]] double stalled_share() const noexcept {
        double s = 0.0;
        for (const auto& b : branches) s += b.stalled ? b.probability : 0.0;
        return s;
    }
};

/// Everything estimated for one open stage.
struct stage_estimate {
    std::string name;
    std::size_t visits = 0;
    std::size_t exits = 0;
    std::size_t censored = 0;
    double weight = std::numeric_limits<double>::quiet_NaN(); ///< Σ recency weights of its visits (= visits unweighted)
    std::vector<transition_estimate> transitions; ///< one per observed (or prior) next stage
    std::array<family_fit, 4> fits;               ///< exponential, gamma, lognormal, weibull
    std::optional<std::size_t> best;              ///< index into fits with the least AIC
    kaplan_meier km;
    std::optional<dwell_distribution> dwell;      ///< the dwell used in the model (see fit_options::dwell)
    std::string dwell_source;                     ///< "aic", "kaplan_meier", or the family name
    double naive_mean = std::numeric_limits<double>::quiet_NaN(); ///< mean of the exits only (ignores censoring)
    /// The branched fit (model_kind::branched only).
    std::optional<branched_estimate> branched;
};

/// Deals created in one stage per time unit.
struct arrival_estimate {
    std::string stage;
    double deals = 0.0; ///< (weighted) deals whose first visit is in this stage
    double rate = std::numeric_limits<double>::quiet_NaN(); ///< deals per time unit
};

/// Period-level overdispersion of a stage's win/lose decision (see docs/estimation.md §6).
struct overdispersion_estimate {
    std::string stage;                                   ///< the deciding stage (most exits to a win)
    double sigma = 0.0;                                  ///< σ of the per-period logit shock, floored at 0
    double raw_variance = std::numeric_limits<double>::quiet_NaN(); ///< between-period variance of logit(win share)
    double binomial_variance = std::numeric_limits<double>::quiet_NaN(); ///< its expected part from independent deals
    std::size_t periods = 0;                             ///< periods used
    double mean_win_share = std::numeric_limits<double>::quiet_NaN();
    std::string period = "quarter";                      ///< "quarter" (calendar, dated logs) or the length used
};

/// A fitted history: the stages in funnel order, the outcomes, arrivals and deal sizes.
struct history_fit {
    model_kind kind = model_kind::classic;
    std::vector<stage_estimate> stages;  ///< open stages in funnel order
    std::vector<outcome_stage> outcomes; ///< outcomes, wins first
    std::string entry_stage;             ///< the stage most deals start in
    double arrival_rate = std::numeric_limits<double>::quiet_NaN(); ///< deals per time unit entering
    std::vector<arrival_estimate> arrivals; ///< per entry stage, most deals first
    /// Deal amounts, one per deal (its last positive finite amount): empirical by default,
    /// lognormal with fit_options::deal_size_lognormal.
    std::optional<deal_size_distribution> deal_size;
    std::size_t deal_size_count = 0;     ///< deals with a usable amount
    std::optional<overdispersion_estimate> overdispersion; ///< of the deciding stage (most exits to a win)
    /// Per open stage (funnel order): the overdispersion of its forward/lose decision
    /// (sigma 0 and periods 0 where it cannot be estimated).
    std::vector<overdispersion_estimate> stage_overdispersion;
    double start_time = 0.0, end_time = 0.0;         ///< first entry and log end
    std::size_t visits = 0, deals = 0;
    std::string time_unit = "day";

    /// The stage estimate by name. @throws argument_error if there is none.
    [[nodiscard]] const stage_estimate& stage(std::string_view name) const {
        for (const auto& s : stages)
            if (s.name == name) return s;
        throw argument_error(detail::message("history_fit: no open stage '", name, "'"));
    }
};

/// Which dwell the model gets (classic: the stage's; branched: each branch's, where
/// kaplan_meier means the Aalen–Johansen cumulative incidences).
enum class dwell_choice { aic, kaplan_meier, exponential, gamma, lognormal, weibull };

/// Options of fit_history.
struct fit_options {
    std::string time_unit = "day"; ///< the model time unit (the history's times are in it)
    /// Outcomes that count as wins. Empty: decided by name ("won", "closed won", "win", ...).
    std::vector<std::string> won;
    /// Funnel order of the open stages. Empty: by the mean position of the stage in the
    /// deals' paths (ties by first appearance).
    std::vector<std::string> stage_order;
    /// Dirichlet pseudo-count added to every observed edge of every stage (0: plain MLE).
    double prior_count = 0.0;
    /// Explicit Dirichlet pseudo-counts per edge (from stage -> next stage -> α), added to
    /// prior_count; may name edges never observed.
    transition_rows prior;
    double credible_level = 0.95; ///< of the transition intervals
    dwell_choice dwell = dwell_choice::aic;
    km_tail tail = km_tail::efron;
    /// The naive CRM-style fit: drop the visits still open (biased; for comparison only).
    bool ignore_censored = false;
    /// Parametric fits count an exit of duration <= 0 (same timestamp in and out) at this
    /// time; the Kaplan–Meier estimate keeps 0.
    double min_dwell = 1e-6;
    std::size_t max_iterations = 200;

    // --- the branched model ---
    /// classic (the library default) or branched (the CLI default).
    model_kind kind = model_kind::classic;
    /// Branched: add a stalled branch (no decision, closed lost at an exponential clean-up time).
    bool stall = true;
    /// Branched: the stall share is kept in [0, max_stall_share] (identifiability guard).
    double max_stall_share = 0.9;
    /// Branched: a branch explaining fewer (weighted) exits than this is fitted as an
    /// exponential only (the two-parameter families need more events).
    double min_branch_events = 20.0;
    /// Branched: EM iteration limit and tolerance (on the change of the observed log-likelihood).
    std::size_t em_max_iterations = 1000;
    double em_tolerance = 1e-8;

    // --- recency ---
    /// Only visits that entered within this many time units before the log end (the as-of
    /// time of the log); infinity: all.
    double window = std::numeric_limits<double>::infinity();
    /// Weight of a visit 0.5^((end − entered) / half_life); infinity: equal weights.
    double half_life = std::numeric_limits<double>::infinity();

    // --- deal sizes and overdispersion ---
    /// Fit deal sizes as a lognormal (log-moments) instead of the empirical distribution.
    bool deal_size_lognormal = false;
    /// Period of the overdispersion estimate in time units; NaN: calendar quarters for a
    /// dated log, else 365.2425/4 days in the time unit.
    double overdispersion_period = std::numeric_limits<double>::quiet_NaN();
};

// ---------------------------------------------------------------------------------------
// Numerical kernels

} // namespace pipecast
