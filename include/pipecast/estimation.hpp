// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation.hpp
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

#include <pipecast/dwell.hpp>
#include <pipecast/error.hpp>
#include <pipecast/history.hpp>
#include <pipecast/model.hpp>
#include <pipecast/stage_graph.hpp>

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
// ---------------------------------------------------------------------------------------

namespace detail {

inline constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

/// Durations of one stage (or one branch), split into exits and censored visits, with their
/// logs, optional per-observation weights (recency weights times EM responsibilities; 1 when
/// not given) and the weighted sufficient statistics of the exits. With unit weights every
/// sum is the plain sum (a product by 1.0 is exact), so unweighted fits are unchanged.
struct dwell_sample {
    std::vector<double> t, log_t, wt; ///< exits (clamped to min_dwell) and their weights
    std::vector<double> c, log_c, wc; ///< censored durations > 0 (a visit censored at 0 carries no information)
    double n = 0, sum_t = 0, sum_log = 0, sum_log2 = 0, sum_c = 0; ///< n = Σ exit weights
    std::size_t events = 0; ///< exits with a positive weight

    dwell_sample(std::span<const double> exits, std::span<const double> censored, double min_dwell,
                 std::span<const double> exit_weights = {}, std::span<const double> censored_weights = {}) {
        PIPECAST_ASSERT(exit_weights.empty() || exit_weights.size() == exits.size());
        PIPECAST_ASSERT(censored_weights.empty() || censored_weights.size() == censored.size());
        t.reserve(exits.size());
        log_t.reserve(exits.size());
        wt.reserve(exits.size());
        for (std::size_t i = 0; i < exits.size(); ++i) {
            const double w = exit_weights.empty() ? 1.0 : exit_weights[i];
            if (!(w > 0.0)) continue;
            const double v = std::max(exits[i], min_dwell);
            const double l = std::log(v);
            t.push_back(v);
            log_t.push_back(l);
            wt.push_back(w);
            sum_t += w * v;
            sum_log += w * l;
            sum_log2 += w * (l * l);
            n += w;
        }
        events = t.size();
        for (std::size_t i = 0; i < censored.size(); ++i) {
            const double x = censored[i];
            const double w = censored_weights.empty() ? 1.0 : censored_weights[i];
            if (!(x > 0.0) || !(w > 0.0)) continue;
            c.push_back(x);
            log_c.push_back(std::log(x));
            wc.push_back(w);
            sum_c += w * x;
        }
    }
    [[nodiscard]] bool has_censoring() const noexcept { return !c.empty(); }
    [[nodiscard]] double mean_log() const noexcept { return sum_log / n; }
    [[nodiscard]] double var_log() const noexcept { return std::max(0.0, sum_log2 / n - mean_log() * mean_log()); }
};

/// Value, gradient and Hessian of a 2-parameter log-likelihood.
struct local_quadratic {
    double f = 0;
    std::array<double, 2> g{};
    std::array<double, 4> h{}; ///< row-major 2x2
};

/// 2x2 inverse of the negated Hessian (the covariance); nullopt unless positive definite.
[[nodiscard]] inline std::optional<std::array<double, 4>> covariance(const std::array<double, 4>& h) {
    const double a = -h[0], b = -h[1], d = -h[3];
    const double det = a * d - b * b;
    if (!(a > 0.0 && det > 0.0 && std::isfinite(det))) return std::nullopt;
    return std::array<double, 4>{d / det, -b / det, -b / det, a / det};
}

struct newton_result {
    std::array<double, 2> x{};
    local_quadratic q;
    fit_status status = fit_status::failed;
    std::size_t iterations = 0;
};

/// Maximises f from x0 by Newton's method with a backtracking line search (gradient ascent
/// where the Hessian is not negative definite); steps are capped at `max_step` per
/// coordinate. f returns a local_quadratic (f = -inf outside the domain).
template <class F>
[[nodiscard]] newton_result maximise_2d(F&& f, std::array<double, 2> x, std::size_t max_iter, double max_step = 2.0) {
    newton_result r;
    local_quadratic q = f(x);
    if (!std::isfinite(q.f)) return r;
    for (std::size_t it = 1; it <= max_iter; ++it) {
        r.iterations = it;
        std::array<double, 2> d;
        const auto cov = covariance(q.h);
        if (cov) {
            d = {(*cov)[0] * q.g[0] + (*cov)[1] * q.g[1], (*cov)[2] * q.g[0] + (*cov)[3] * q.g[1]};
        } else {
            const double gn = std::hypot(q.g[0], q.g[1]);
            if (!(gn > 0.0)) break;
            d = {q.g[0] / gn * 0.1, q.g[1] / gn * 0.1};
        }
        const double big = std::max(std::abs(d[0]), std::abs(d[1]));
        if (big > max_step) d = {d[0] * max_step / big, d[1] * max_step / big};
        const double slope = q.g[0] * d[0] + q.g[1] * d[1];
        if (cov && slope < 1e-12 * (1.0 + std::abs(q.f)) && big < 1e-7) {
            r.status = fit_status::converged;
            break;
        }
        double step = 1.0;
        local_quadratic next;
        std::array<double, 2> y{};
        bool moved = false;
        for (int k = 0; k < 40; ++k, step *= 0.5) {
            y = {x[0] + step * d[0], x[1] + step * d[1]};
            next = f(y);
            if (std::isfinite(next.f) && next.f >= q.f + 1e-4 * step * slope) {
                moved = true;
                break;
            }
        }
        if (!moved) {
            // No ascent: at a maximum up to rounding if the Newton decrement is tiny.
            if (cov && slope < 1e-8 * (1.0 + std::abs(q.f))) r.status = fit_status::converged;
            break;
        }
        const double change = std::max(std::abs(y[0] - x[0]), std::abs(y[1] - x[1]));
        x = y;
        q = next;
        if (cov && change < 1e-10) {
            r.status = fit_status::converged;
            break;
        }
        if (it == max_iter) r.status = fit_status::max_iterations;
    }
    r.x = x;
    r.q = q;
    if (r.status == fit_status::converged && !covariance(q.h)) r.status = fit_status::failed;
    return r;
}

/// log Φc(z) = log P(Z > z) and the inverse Mills ratio h(z) = φ(z)/Φc(z), stable in both tails.
inline void normal_tail(double z, double& log_sf, double& mills) {
    constexpr double log_sqrt_2pi = 0.91893853320467274178;
    if (z < 30.0) {
        const double sf = 0.5 * boost::math::erfc(z / std::numbers::sqrt2, boost_policy{});
        log_sf = std::log(sf);
        mills = std::exp(-0.5 * z * z - log_sqrt_2pi) / sf;
    } else { // asymptotic series (relative error < 1e-9 at z = 30)
        const double iz2 = 1.0 / (z * z);
        log_sf = -0.5 * z * z - std::log(z) - log_sqrt_2pi + std::log1p(-iz2 + 3.0 * iz2 * iz2 - 15.0 * iz2 * iz2 * iz2);
        mills = z / (1.0 - iz2 + 3.0 * iz2 * iz2 - 15.0 * iz2 * iz2 * iz2);
    }
}

inline void set_aic(family_fit& f, double k) { f.aic = 2.0 * k - 2.0 * f.log_likelihood; }

/// Exponential: closed form θ = (Σt + Σc) / n.
[[nodiscard]] inline family_fit fit_exponential(const dwell_sample& s) {
    family_fit f;
    f.family = dwell_family::exponential;
    if (s.events < 1 || !(s.n > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    const double theta = (s.sum_t + s.sum_c) / s.n;
    f.log_likelihood = -s.n * std::log(theta) - s.n;
    set_aic(f, 1);
    f.mean = theta;
    f.mean_se = theta / std::sqrt(s.n);
    f.parameters = {{"mean", theta, f.mean_se}};
    f.iterations = 0;
    f.status = fit_status::converged;
    f.dwell = dwell_distribution::exponential(theta);
    return f;
}

/// Weibull: profile likelihood in the shape k (the scale given k is closed form:
/// λ^k = Σ_all x^k / n), solved by Newton's method on the monotone score with a bracket.
[[nodiscard]] inline family_fit fit_weibull(const dwell_sample& s, std::size_t max_iter) {
    family_fit f;
    f.family = dwell_family::weibull;
    if (s.events < 2 || !(s.var_log() > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    // Work with u = log x - g (g = mean log of the exits), shifted by u_max in the exponent.
    const double g = s.mean_log();
    double u_max = -std::numeric_limits<double>::infinity();
    for (double l : s.log_t) u_max = std::max(u_max, l - g);
    for (double l : s.log_c) u_max = std::max(u_max, l - g);
    const double sum_u_events = s.sum_log - s.n * g; // = 0 up to rounding
    auto moments = [&](double k, double& b, double& a, double& c2) {
        b = a = c2 = 0.0;
        auto acc = [&](const std::vector<double>& logs, const std::vector<double>& wts) {
            for (std::size_t i = 0; i < logs.size(); ++i) {
                const double u = logs[i] - g;
                const double w = wts[i] * std::exp(k * (u - u_max));
                b += w;
                a += w * u;
                c2 += w * u * u;
            }
        };
        acc(s.log_t, s.wt);
        acc(s.log_c, s.wc);
    };
    auto score = [&](double k) {
        double b, a, c2;
        moments(k, b, a, c2);
        const double ab = a / b;
        const double val = s.n / k + sum_u_events - s.n * ab;
        const double der = -s.n / (k * k) - s.n * (c2 / b - ab * ab);
        return std::pair<double, double>(val, der);
    };
    const double guess = std::clamp(std::numbers::pi / std::sqrt(6.0 * s.var_log()), 0.02, 50.0);
    boost::uintmax_t iters = max_iter;
    double k = guess;
    try {
        k = boost::math::tools::newton_raphson_iterate(score, guess, 1e-3, 1e3, 40, iters);
    } catch (const std::exception&) {
        f.status = fit_status::failed;
        return f;
    }
    f.iterations = static_cast<std::size_t>(iters);
    double b, a, c2;
    moments(k, b, a, c2);
    const double log_lambda = g + u_max + (std::log(b) - std::log(s.n)) / k;
    const double lambda = std::exp(log_lambda);
    f.log_likelihood = s.n * std::log(k) - s.n * k * log_lambda + (k - 1.0) * s.sum_log - s.n;
    set_aic(f, 2);
    // Observed information in (k, η = log λ): with w = (x/λ)^k, S0 = Σw (= n), S1 = Σ w log(x/λ),
    // S2 = Σ w log²(x/λ): H_ηη = -k² S0, H_kk = -n/k² - S2, H_kη = -n + S0 + k S1.
    double s0 = 0, s1 = 0, s2 = 0;
    auto acc = [&](const std::vector<double>& logs, const std::vector<double>& wts) {
        for (std::size_t i = 0; i < logs.size(); ++i) {
            const double v = logs[i] - log_lambda;
            const double w = wts[i] * std::exp(k * v);
            s0 += w;
            s1 += w * v;
            s2 += w * v * v;
        }
    };
    acc(s.log_t, s.wt);
    acc(s.log_c, s.wc);
    const std::array<double, 4> h{-s.n / (k * k) - s2, -s.n + s0 + k * s1, -s.n + s0 + k * s1, -k * k * s0};
    const double score_at = score(k).first;
    const bool finite = std::isfinite(k) && std::isfinite(lambda) && std::isfinite(f.log_likelihood);
    f.status = !finite                                                   ? fit_status::failed
               : iters >= max_iter                                       ? fit_status::max_iterations
               : std::abs(score_at) > 1e-6 * s.n                         ? fit_status::failed
                                                                         : fit_status::converged;
    if (!finite) return f;
    const auto cov = covariance(h);
    const double g1 = std::tgamma(1.0 + 1.0 / k);
    f.mean = lambda * g1;
    double se_k = nan_v, se_l = nan_v;
    if (cov) {
        se_k = std::sqrt((*cov)[0]);
        se_l = lambda * std::sqrt((*cov)[3]);
        const double dk = f.mean * (-1.0 / (k * k)) * boost::math::digamma(1.0 + 1.0 / k, boost_policy{});
        const double de = f.mean;
        f.mean_se = std::sqrt(std::max(0.0, dk * dk * (*cov)[0] + 2 * dk * de * (*cov)[1] + de * de * (*cov)[3]));
    }
    f.parameters = {{"shape", k, se_k}, {"scale", lambda, se_l}};
    if (f.status == fit_status::converged) {
        try {
            f.dwell = dwell_distribution::weibull(k, f.mean);
        } catch (const model_error&) {
            f.status = fit_status::failed;
        }
    }
    return f;
}

/// Gamma shape from s = log(mean) - mean(log) > 0 (the uncensored profile equation
/// log k - ψ(k) = s), by Newton's method from the Minka/Thom approximation.
[[nodiscard]] inline std::optional<double> gamma_shape(double s, std::size_t max_iter, std::size_t& used) {
    if (!(s > 0.0) || !std::isfinite(s)) return std::nullopt;
    const double guess = (3.0 - s + std::sqrt((s - 3.0) * (s - 3.0) + 24.0 * s)) / (12.0 * s);
    auto eq = [s](double k) {
        return std::pair<double, double>(std::log(k) - boost::math::digamma(k, boost_policy{}) - s,
                                         1.0 / k - boost::math::trigamma(k, boost_policy{}));
    };
    boost::uintmax_t iters = max_iter;
    try {
        const double k = boost::math::tools::newton_raphson_iterate(eq, guess, 1e-6, 1e7, 45, iters);
        used = static_cast<std::size_t>(iters);
        return k;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

/// Gamma: closed-form scale and a 1-D shape equation without censoring; with censoring a
/// 2-D Newton method in (log k, log θ) from that estimate, the censored terms log Q(k, c/θ)
/// (Boost's regularised upper incomplete gamma) differentiated by central differences.
[[nodiscard]] inline family_fit fit_gamma(const dwell_sample& s, std::size_t max_iter) {
    family_fit f;
    f.family = dwell_family::gamma;
    if (s.events < 2 || !(s.var_log() > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    std::size_t used = 0;
    const double mean_t = s.sum_t / s.n;
    const auto k0 = gamma_shape(std::log(mean_t) - s.mean_log(), max_iter, used);
    if (!k0) {
        f.status = fit_status::failed;
        return f;
    }
    // Exact part in (a, b) = (log k, log θ): ℓ_e = (k-1)Σlog t - Σt/θ - n k log θ - n lnΓ(k).
    auto exits_part = [&](double a, double b, local_quadratic& q) {
        const double k = std::exp(a), th = std::exp(b);
        const double lg = boost::math::lgamma(k, boost_policy{});
        const double psi = boost::math::digamma(k, boost_policy{});
        const double tri = boost::math::trigamma(k, boost_policy{});
        q.f = (k - 1.0) * s.sum_log - s.sum_t / th - s.n * k * b - s.n * lg;
        const double dk = s.sum_log - s.n * b - s.n * psi; // ∂/∂k
        const double db = s.sum_t / th - s.n * k;          // ∂/∂b
        q.g = {k * dk, db};
        q.h = {k * dk - k * k * s.n * tri, -s.n * k, -s.n * k, -s.sum_t / th};
    };
    auto censored_sum = [&](double a, double b) {
        const double k = std::exp(a), th = std::exp(b);
        double acc = 0.0;
        for (std::size_t i = 0; i < s.c.size(); ++i) {
            const double q = boost::math::gamma_q(k, s.c[i] / th, boost_policy{});
            acc += q > 0.0 ? s.wc[i] * std::log(q) : -std::numeric_limits<double>::infinity();
        }
        return acc;
    };
    auto loglik = [&](const std::array<double, 2>& x) {
        local_quadratic q;
        if (!(std::abs(x[0]) < 30.0 && std::abs(x[1]) < 700.0)) {
            q.f = -std::numeric_limits<double>::infinity();
            return q;
        }
        exits_part(x[0], x[1], q);
        if (!s.has_censoring()) return q;
        constexpr double h = 1e-4;
        const double c0 = censored_sum(x[0], x[1]);
        const double ap = censored_sum(x[0] + h, x[1]), am = censored_sum(x[0] - h, x[1]);
        const double bp = censored_sum(x[0], x[1] + h), bm = censored_sum(x[0], x[1] - h);
        const double pp = censored_sum(x[0] + h, x[1] + h), mm = censored_sum(x[0] - h, x[1] - h);
        q.f += c0;
        q.g[0] += (ap - am) / (2 * h);
        q.g[1] += (bp - bm) / (2 * h);
        const double haa = (ap - 2 * c0 + am) / (h * h), hbb = (bp - 2 * c0 + bm) / (h * h);
        const double hab = (pp - ap - bp + 2 * c0 - am - bm + mm) / (2 * h * h);
        q.h[0] += haa;
        q.h[3] += hbb;
        q.h[1] += hab;
        q.h[2] += hab;
        return q;
    };
    const std::array<double, 2> x0{std::log(*k0), std::log(mean_t / *k0)};
    newton_result r;
    if (!s.has_censoring()) {
        r.x = x0;
        r.q = loglik(x0);
        r.status = fit_status::converged;
        r.iterations = used;
    } else {
        r = maximise_2d(loglik, x0, max_iter);
    }
    const double k = std::exp(r.x[0]), th = std::exp(r.x[1]);
    f.iterations = r.iterations;
    f.status = r.status;
    f.log_likelihood = r.q.f;
    set_aic(f, 2);
    f.mean = k * th;
    const auto cov = covariance(r.q.h);
    if (cov) {
        f.parameters = {{"shape", k, k * std::sqrt((*cov)[0])}, {"scale", th, th * std::sqrt((*cov)[3])}};
        f.mean_se = f.mean * std::sqrt(std::max(0.0, (*cov)[0] + 2 * (*cov)[1] + (*cov)[3]));
    } else {
        f.parameters = {{"shape", k, nan_v}, {"scale", th, nan_v}};
    }
    if (f.status == fit_status::converged) {
        try {
            f.dwell = dwell_distribution::gamma(k, f.mean);
        } catch (const model_error&) {
            f.status = fit_status::failed;
        }
    }
    return f;
}

/// Lognormal: closed form without censoring (mean and variance of log t); with censoring a
/// 2-D Newton method in (μ, log σ) with analytic derivatives of log Φc.
[[nodiscard]] inline family_fit fit_lognormal(const dwell_sample& s, std::size_t max_iter) {
    family_fit f;
    f.family = dwell_family::lognormal;
    if (s.events < 2 || !(s.var_log() > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    constexpr double log_sqrt_2pi = 0.91893853320467274178;
    auto loglik = [&](const std::array<double, 2>& x) {
        local_quadratic q;
        const double mu = x[0], ls = x[1];
        if (!(std::abs(ls) < 300.0 && std::isfinite(mu))) {
            q.f = -std::numeric_limits<double>::infinity();
            return q;
        }
        const double sg = std::exp(ls), is2 = std::exp(-2.0 * ls);
        const double s1 = s.sum_log - s.n * mu;
        const double s2 = s.sum_log2 - 2.0 * mu * s.sum_log + s.n * mu * mu;
        q.f = -s.n * ls - 0.5 * s2 * is2 - s.sum_log - s.n * log_sqrt_2pi;
        q.g = {s1 * is2, -s.n + s2 * is2};
        q.h = {-s.n * is2, -2.0 * s1 * is2, -2.0 * s1 * is2, -2.0 * s2 * is2};
        for (std::size_t i = 0; i < s.log_c.size(); ++i) {
            const double w = s.wc[i];
            const double z = (s.log_c[i] - mu) / sg;
            double lsf, h;
            normal_tail(z, lsf, h);
            const double g2 = -h * (h - z); // second derivative of log Φc
            q.f += w * lsf;
            q.g[0] += w * (h / sg);
            q.g[1] += w * (h * z);
            q.h[0] += w * (g2 / (sg * sg));
            const double cross = g2 * z / sg - h / sg;
            q.h[1] += w * cross;
            q.h[2] += w * cross;
            q.h[3] += w * (g2 * z * z - h * z);
        }
        return q;
    };
    const std::array<double, 2> x0{s.mean_log(), 0.5 * std::log(s.var_log())};
    const newton_result r = s.has_censoring() ? maximise_2d(loglik, x0, max_iter)
                                              : newton_result{x0, loglik(x0), fit_status::converged, 0};
    const double mu = r.x[0], sg = std::exp(r.x[1]);
    f.iterations = r.iterations;
    f.status = r.status;
    f.log_likelihood = r.q.f;
    set_aic(f, 2);
    f.mean = std::exp(mu + 0.5 * sg * sg);
    const auto cov = covariance(r.q.h);
    if (cov) {
        f.parameters = {{"mu", mu, std::sqrt((*cov)[0])}, {"sigma", sg, sg * std::sqrt((*cov)[3])}};
        const double dm = f.mean, ds = f.mean * sg * sg; // ∂mean/∂μ, ∂mean/∂log σ
        f.mean_se = std::sqrt(std::max(0.0, dm * dm * (*cov)[0] + 2 * dm * ds * (*cov)[1] + ds * ds * (*cov)[3]));
    } else {
        f.parameters = {{"mu", mu, nan_v}, {"sigma", sg, nan_v}};
    }
    if (f.status == fit_status::converged) {
        try {
            f.dwell = dwell_distribution::lognormal_log(mu, sg);
        } catch (const model_error&) {
            f.status = fit_status::failed;
        }
    }
    return f;
}

} // namespace detail

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
[[nodiscard]] inline family_fit fit_dwell_family(dwell_family family, std::span<const double> exits,
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
[[nodiscard]] inline kaplan_meier fit_kaplan_meier(std::span<const double> exits, std::span<const double> censored) {
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
[[nodiscard]] inline dwell_distribution to_dwell(const kaplan_meier& km, km_tail tail = km_tail::efron,
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
[[nodiscard]] inline std::vector<transition_estimate> estimate_transitions(const std::vector<std::string>& targets,
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
[[nodiscard]] inline bool looks_won(std::string_view name) { return outcome_by_name(name) == outcome_kind::won; }

// ---------------------------------------------------------------------------------------
// The whole history
// ---------------------------------------------------------------------------------------

namespace detail {

/// log f(t) of a fitted continuous dwell (the E-step's exit term), in log space throughout.
[[nodiscard]] inline double log_pdf(const dwell_distribution& d, double t) {
    constexpr double log_sqrt_2pi = 0.91893853320467274178;
    switch (d.family()) {
    case dwell_family::exponential: return -std::log(d.mean()) - t / d.mean();
    case dwell_family::gamma: {
        const double k = d.shape(), th = d.scale();
        return (k - 1.0) * std::log(t) - t / th - k * std::log(th) - boost::math::lgamma(k, boost_policy{});
    }
    case dwell_family::lognormal: {
        const double z = (std::log(t) - d.log_mu()) / d.log_sigma();
        return -std::log(t) - std::log(d.log_sigma()) - log_sqrt_2pi - 0.5 * z * z;
    }
    case dwell_family::weibull: {
        const double k = d.shape(), x = t / d.scale();
        return std::log(k) - std::log(d.scale()) + (k - 1.0) * std::log(x) - std::pow(x, k);
    }
    default: {
        const double p = pdf(d, t);
        return p > 0.0 ? std::log(p) : -std::numeric_limits<double>::infinity();
    }
    }
}

/// log S(c) of a fitted dwell (the E-step's censored term), without underflow for the
/// lognormal (normal tail series) and −inf only where the survival truly underflows.
[[nodiscard]] inline double log_sf(const dwell_distribution& d, double c) {
    if (!(c > 0.0)) return 0.0;
    switch (d.family()) {
    case dwell_family::gamma: {
        const double q = boost::math::gamma_q(d.shape(), c / d.scale(), boost_policy{});
        return q > 0.0 ? std::log(q) : -std::numeric_limits<double>::infinity();
    }
    case dwell_family::lognormal: {
        double lsf = 0.0, h = 0.0;
        normal_tail((std::log(c) - d.log_mu()) / d.log_sigma(), lsf, h);
        return lsf;
    }
    default: return log_survival(d, c);
    }
}

/// The visits of one stage for the branched fit: duration, target (index into the stage's
/// targets, −1 when censored) and recency weight.
struct stage_visits {
    std::vector<double> d;
    std::vector<int> target;
    std::vector<double> w;
};

/// Index of a parametric family in stage_estimate::fits (exponential, gamma, lognormal, weibull).
[[nodiscard]] constexpr int family_index(dwell_family f) noexcept {
    return f == dwell_family::gamma ? 1 : f == dwell_family::lognormal ? 2 : f == dwell_family::weibull ? 3 : 0;
}

/// One EM branch while fitting.
struct em_branch {
    int target = -1;              ///< index into the stage's targets
    bool stalled = false;
    double pi = 0.0;
    std::optional<dwell_distribution> dwell;
    family_fit fit;
    int family = -1;              ///< frozen family index (0..3), −1 while selecting
    std::array<double, 4> family_aic{nan_v, nan_v, nan_v, nan_v};
    bool reduced = false;         ///< too few events: exponential only
};

/// Fits the dwell of one branch from its weighted exits and censored visits: the frozen
/// family, or the least AIC among the families its events allow.
inline void fit_branch_dwell(em_branch& b, const dwell_sample& s, const fit_options& opt) {
    auto fit_family = [&](int f) {
        switch (f) {
        case 0: return fit_exponential(s);
        case 1: return fit_gamma(s, opt.max_iterations);
        case 2: return fit_lognormal(s, opt.max_iterations);
        default: return fit_weibull(s, opt.max_iterations);
        }
    };
    b.reduced = !b.stalled && s.n < opt.min_branch_events;
    int forced = -1;
    if (b.stalled || b.reduced) forced = 0;
    else if (opt.dwell == dwell_choice::exponential) forced = 0;
    else if (opt.dwell == dwell_choice::gamma) forced = 1;
    else if (opt.dwell == dwell_choice::lognormal) forced = 2;
    else if (opt.dwell == dwell_choice::weibull) forced = 3;
    else if (b.family >= 0) forced = b.family;
    if (forced >= 0) {
        family_fit f = fit_family(forced);
        if (!f.ok() && forced != 0) f = fit_family(0);
        if (f.ok()) {
            b.fit = std::move(f);
            b.dwell = b.fit.dwell;
            b.family_aic[static_cast<std::size_t>(forced)] = b.fit.aic;
        }
        return;
    }
    std::optional<family_fit> best;
    for (int f = 0; f < 4; ++f) {
        family_fit ff = fit_family(f);
        b.family_aic[static_cast<std::size_t>(f)] = ff.ok() ? ff.aic : nan_v;
        if (ff.ok() && (!best || ff.aic < best->aic)) best = std::move(ff);
    }
    if (best) {
        b.fit = std::move(*best);
        b.dwell = b.fit.dwell;
    }
}

/// Exponential dwell of the stalled branch (the clean-up time) with at least one event
/// (a guard for a stall nobody ever cleaned up: mean = exposure / max(events, 1)).
/// The clean-up is the slowest way out: the mean is at least `floor` (the longest mean of
/// the other branches; the constrained MLE of the exponential is max(θ̂, floor)).
inline void fit_stall_dwell(em_branch& b, const dwell_sample& s, double floor) {
    const double events = std::max(s.n, 1.0);
    const double exposure = s.sum_t + s.sum_c;
    family_fit f;
    f.family = dwell_family::exponential;
    const double theta = std::max(exposure > 0.0 ? exposure / events : 1.0, floor);
    f.log_likelihood = s.n > 0.0 ? -s.n * std::log(theta) - exposure / theta : 0.0;
    set_aic(f, 1);
    f.mean = theta;
    f.mean_se = theta / std::sqrt(events);
    f.parameters = {{"mean", theta, f.mean_se}};
    f.status = fit_status::converged;
    f.dwell = dwell_distribution::exponential(theta);
    b.fit = std::move(f);
    b.dwell = b.fit.dwell;
    b.family_aic = {b.fit.aic, nan_v, nan_v, nan_v};
}

/// The EM fit of a branched stage (docs/estimation.md §3). `targets` are stage codes;
/// `stall_target` indexes targets (the losing outcome the stalled branch closes to), −1
/// without a stalled branch.
[[nodiscard]] inline branched_estimate fit_branched_em_once(const stage_visits& v, const std::vector<std::string>& target_names,
                                                            int stall_target, const fit_options& opt) {
    branched_estimate out;
    const std::size_t n = v.d.size();
    const int nt = static_cast<int>(target_names.size());
    std::vector<em_branch> br;
    std::vector<double> exit_w(static_cast<std::size_t>(nt), 0.0);
    double total_w = 0.0;
    std::vector<double> exit_d;
    for (std::size_t i = 0; i < n; ++i) {
        total_w += v.w[i];
        if (v.target[i] >= 0) {
            exit_w[static_cast<std::size_t>(v.target[i])] += v.w[i];
            exit_d.push_back(v.d[i]);
        }
    }
    for (int j = 0; j < nt; ++j)
        if (exit_w[static_cast<std::size_t>(j)] > 0.0) {
            br.emplace_back();
            br.back().target = j;
        }
    if (br.empty() || !(total_w > 0.0)) {
        out.status = fit_status::too_few_events;
        out.note = "no exits";
        return out;
    }
    const bool stall = stall_target >= 0;
    if (stall) {
        br.emplace_back();
        br.back().target = stall_target;
        br.back().stalled = true;
    }
    const std::size_t nb = br.size();
    const std::size_t ks = stall ? nb - 1 : nb; // index of the stalled branch

    // Initial responsibilities: exits to the stall target longer than the 95th percentile of
    // all exits start half in the stalled branch, censored visits older than it wholly.
    std::sort(exit_d.begin(), exit_d.end());
    const double q95 = exit_d.empty() ? 0.0 : exit_d[static_cast<std::size_t>(0.95 * static_cast<double>(exit_d.size() - 1))];
    // r[i * nb + k]: responsibility of branch k for visit i
    std::vector<double> r(n * nb, 0.0), la(n * nb, 0.0);
    std::vector<std::size_t> normal_of(static_cast<std::size_t>(nt), nb);
    for (std::size_t k = 0; k < ks; ++k) normal_of[static_cast<std::size_t>(br[k].target)] = k;
    double exits_total = 0.0;
    for (double x : exit_w) exits_total += x;
    for (std::size_t i = 0; i < n; ++i) {
        double* ri = &r[i * nb];
        if (v.target[i] >= 0) {
            const std::size_t k = normal_of[static_cast<std::size_t>(v.target[i])];
            // A target whose exits all weigh 0 (a half-life weight that underflows for a
            // visit centuries before the log's end) has no branch: the visit stays without
            // responsibility, as the E-step leaves a visit no branch explains.
            if (k == nb) continue;
            if (stall && v.target[i] == stall_target && v.d[i] > q95) ri[ks] = ri[k] = 0.5;
            else ri[k] = 1.0;
        } else if (stall && v.d[i] > q95) {
            ri[ks] = 1.0;
        } else {
            for (std::size_t k = 0; k < ks; ++k) ri[k] = exit_w[static_cast<std::size_t>(br[k].target)] / exits_total;
        }
    }

    std::vector<double> ex_t, ex_w, ce_t, ce_w;
    auto m_step = [&]() -> bool {
        std::vector<double> mass(nb, 0.0);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t k = 0; k < nb; ++k) mass[k] += v.w[i] * r[i * nb + k];
        for (std::size_t k = 0; k < nb; ++k) br[k].pi = mass[k] / total_w;
        if (stall && br[ks].pi > opt.max_stall_share) { // constrained M-step: cap, rescale the rest
            const double rest = 1.0 - br[ks].pi;
            for (std::size_t k = 0; k < ks; ++k) br[k].pi *= rest > 0.0 ? (1.0 - opt.max_stall_share) / rest : 0.0;
            br[ks].pi = opt.max_stall_share;
        }
        for (std::size_t k = 0; k < nb; ++k) {
            ex_t.clear();
            ex_w.clear();
            ce_t.clear();
            ce_w.clear();
            for (std::size_t i = 0; i < n; ++i) {
                const double wi = v.w[i] * r[i * nb + k];
                if (!(wi > 1e-12 * v.w[i])) continue;
                if (v.target[i] >= 0) {
                    ex_t.push_back(v.d[i]);
                    ex_w.push_back(wi);
                } else {
                    ce_t.push_back(v.d[i]);
                    ce_w.push_back(wi);
                }
            }
            const dwell_sample s(ex_t, ce_t, opt.min_dwell, ex_w, ce_w);
            if (br[k].stalled) {
                double floor = 0.0;
                for (std::size_t j = 0; j < ks; ++j)
                    if (br[j].dwell) floor = std::max(floor, br[j].dwell->mean());
                fit_stall_dwell(br[k], s, floor);
            } else {
                fit_branch_dwell(br[k], s, opt);
            }
            if (!br[k].dwell) return false;
        }
        return true;
    };
    // E-step: log a_ik (without π), responsibilities and the observed log-likelihood.
    auto e_step = [&]() {
        double ll = 0.0;
        std::vector<double> lp(nb);
        for (std::size_t k = 0; k < nb; ++k) lp[k] = br[k].pi > 0.0 ? std::log(br[k].pi) : -std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < n; ++i) {
            double* li = &la[i * nb];
            double* ri = &r[i * nb];
            double top = -std::numeric_limits<double>::infinity();
            const double x = std::max(v.d[i], opt.min_dwell);
            for (std::size_t k = 0; k < nb; ++k) {
                if (v.target[i] >= 0) li[k] = br[k].target == v.target[i] ? log_pdf(*br[k].dwell, x) : -std::numeric_limits<double>::infinity();
                else li[k] = log_sf(*br[k].dwell, v.d[i]);
                top = std::max(top, li[k] + lp[k]);
            }
            if (top == -std::numeric_limits<double>::infinity()) {
                // no branch explains it (every density or survival underflows): keep the
                // previous responsibilities and leave it out of the likelihood
                continue;
            }
            double sum = 0.0;
            for (std::size_t k = 0; k < nb; ++k) sum += (ri[k] = std::exp(li[k] + lp[k] - top));
            for (std::size_t k = 0; k < nb; ++k) ri[k] /= sum;
            ll += v.w[i] * (top + std::log(sum));
        }
        return ll;
    };

    // EM to convergence with the families as they are (frozen: b.family >= 0).
    struct run_result {
        double ll = -std::numeric_limits<double>::infinity();
        fit_status status = fit_status::failed;
        std::size_t iterations = 0;
    };
    auto run = [&](std::size_t max_it) {
        run_result res;
        for (std::size_t it = 1; it <= max_it; ++it) {
            res.iterations = it;
            if (!m_step()) {
                res.status = fit_status::failed;
                return res;
            }
            const double next = e_step();
            if (!std::isfinite(next)) {
                res.status = fit_status::failed;
                return res;
            }
            const bool small = std::abs(next - res.ll) <= opt.em_tolerance * (1.0 + std::abs(next));
            res.ll = next;
            if (small) {
                res.status = fit_status::converged;
                return res;
            }
        }
        res.status = fit_status::max_iterations;
        return res;
    };
    auto parameters = [&] {
        double p = static_cast<double>(nb - 1);
        for (const auto& b : br) p += static_cast<double>(b.fit.parameters.size());
        return p;
    };
    // 1. Three EM steps choosing each branch's family by its complete-data AIC, then frozen.
    run_result res = run(std::min<std::size_t>(3, opt.em_max_iterations));
    for (auto& b : br) b.family = b.fit.ok() ? family_index(b.fit.family) : -1;
    // 2. EM to convergence.
    std::size_t total_it = res.iterations;
    if (res.status != fit_status::failed) {
        res = run(opt.em_max_iterations);
        total_it += res.iterations;
    }
    // 3. Family per branch by the AIC of the observed (mixture) likelihood: each other family
    //    of one branch at a time, EM from the current responsibilities, kept if the AIC drops.
    const bool search = opt.dwell == dwell_choice::aic || opt.dwell == dwell_choice::kaplan_meier;
    if (res.status == fit_status::converged && search) {
        double best_aic = 2.0 * parameters() - 2.0 * res.ll;
        for (std::size_t k = 0; k < nb; ++k) {
            // branches with a target of their own: their exits are theirs, the complete-data
            // choice stands; the search is for those sharing a target (the stall target)
            bool shared = false;
            for (std::size_t j = 0; j < nb; ++j) shared = shared || (j != k && br[j].target == br[k].target);
            if (br[k].stalled || br[k].reduced || !shared) continue;
            const int current = br[k].family;
            br[k].family_aic = {nan_v, nan_v, nan_v, nan_v};
            br[k].family_aic[static_cast<std::size_t>(current)] = best_aic;
            for (int f = 0; f < 4; ++f) {
                if (f == current) continue;
                const auto saved_br = br;
                const auto saved_r = r, saved_la = la;
                br[k].family = f;
                const run_result trial = run(opt.em_max_iterations);
                total_it += trial.iterations;
                const double aic = 2.0 * parameters() - 2.0 * trial.ll;
                if (trial.status == fit_status::converged && br[k].fit.ok() && family_index(br[k].fit.family) == f)
                    br[k].family_aic[static_cast<std::size_t>(f)] = aic;
                if (trial.status == fit_status::converged && aic < best_aic - 1e-9 && family_index(br[k].fit.family) == f) {
                    best_aic = aic;
                    res = trial;
                } else {
                    br = saved_br;
                    r = saved_r;
                    la = saved_la;
                }
            }
        }
    }
    out.status = res.status;
    if (res.status == fit_status::failed) out.note += "EM failed (a branch dwell could not be fitted or the likelihood is not finite); ";
    const double ll = res.ll;
    const std::size_t it = total_it;
    out.iterations = it;
    out.log_likelihood = ll;

    // Standard errors of π: sandwich H⁻¹ J H⁻¹ with H = Σ w s sᵀ, J = Σ w² s sᵀ, s_k =
    // (a_k − a_K)/L for the free π_1..π_{K−1} (dwells held at their estimates).
    std::vector<double> se(nb, nan_v);
    if (nb == 1) {
        se[0] = 0.0;
    } else if (std::isfinite(ll)) {
        const auto m = static_cast<Eigen::Index>(nb - 1);
        Eigen::MatrixXd h = Eigen::MatrixXd::Zero(m, m), jm = Eigen::MatrixXd::Zero(m, m);
        Eigen::VectorXd sv(m);
        for (std::size_t i = 0; i < n; ++i) {
            const double* li = &la[i * nb];
            double top = -std::numeric_limits<double>::infinity();
            for (std::size_t k = 0; k < nb; ++k)
                if (br[k].pi > 0.0) top = std::max(top, li[k] + std::log(br[k].pi));
            if (top == -std::numeric_limits<double>::infinity()) continue;
            double lsum = 0.0;
            for (std::size_t k = 0; k < nb; ++k)
                if (br[k].pi > 0.0) lsum += std::exp(li[k] + std::log(br[k].pi) - top);
            const double log_l = top + std::log(lsum);
            const double last = std::exp(li[nb - 1] - log_l);
            for (Eigen::Index k = 0; k < m; ++k) sv(k) = std::exp(li[static_cast<std::size_t>(k)] - log_l) - last;
            h.noalias() += v.w[i] * sv * sv.transpose();
            jm.noalias() += v.w[i] * v.w[i] * sv * sv.transpose();
        }
        const Eigen::FullPivLU<Eigen::MatrixXd> lu(h);
        if (lu.isInvertible()) {
            const Eigen::MatrixXd hi = lu.inverse();
            const Eigen::MatrixXd cov = hi * jm * hi;
            double tot = 0.0;
            for (Eigen::Index k = 0; k < m; ++k) se[static_cast<std::size_t>(k)] = std::sqrt(std::max(0.0, cov(k, k)));
            tot = cov.sum();
            se[nb - 1] = std::sqrt(std::max(0.0, tot));
        }
    }

    double params = static_cast<double>(nb - 1);
    for (std::size_t k = 0; k < nb; ++k) {
        auto& b = br[k];
        branch_estimate e;
        e.to = target_names[static_cast<std::size_t>(b.target)];
        e.stalled = b.stalled;
        e.probability = b.pi;
        e.se = se[k];
        for (std::size_t i = 0; i < n; ++i)
            if (v.target[i] >= 0) e.events += v.w[i] * r[i * nb + k];
        e.dwell = b.dwell;
        e.family = b.dwell ? std::string(to_string(b.dwell->family())) : "";
        e.aic = b.fit.aic;
        e.family_aic = b.family_aic;
        params += static_cast<double>(b.fit.parameters.size());
        e.fit = std::move(b.fit);
        out.branches.push_back(std::move(e));
    }
    out.aic = 2.0 * params - 2.0 * ll;
    std::string note;
    if (stall && br[ks].pi >= opt.max_stall_share - 1e-12)
        note += "stall share capped at " + std::to_string(opt.max_stall_share) + "; ";
    for (const auto& b : br)
        if (b.reduced) note += "branch to " + target_names[static_cast<std::size_t>(b.target)] + ": too few events, exponential only; ";
    out.note += note;
    return out;
}

/// The EM fit with a stalled branch when the stage's mixture AIC supports it: fitted with
/// and without, the stall kept if its AIC is lower (it costs two parameters, π and the
/// clean-up mean), so a pipeline without stalled deals gets none.
[[nodiscard]] inline branched_estimate fit_branched_em(const stage_visits& v, const std::vector<std::string>& target_names,
                                                       int stall_target, const fit_options& opt) {
    branched_estimate with = fit_branched_em_once(v, target_names, stall_target, opt);
    if (stall_target < 0) return with;
    branched_estimate without = fit_branched_em_once(v, target_names, -1, opt);
    const bool with_ok = with.status == fit_status::converged && std::isfinite(with.aic);
    const bool without_ok = without.status == fit_status::converged && std::isfinite(without.aic);
    if (without_ok && (!with_ok || without.aic <= with.aic)) {
        without.note += "no stalled branch: the AIC does not support one (" +
                        (with_ok ? message("AIC ", with.aic, " with, ", without.aic, " without") : std::string("its fit failed")) + "); ";
        without.iterations += with.iterations;
        return without;
    }
    with.iterations += without.iterations;
    return with;
}

} // namespace detail

namespace detail {

/// Fits every family, picks the least AIC among the converged ones.
/// Weights (recency) apply to the parametric fits; the Kaplan–Meier estimate is unweighted.
inline void fit_stage_dwell(stage_estimate& st, std::span<const double> exits, std::span<const double> censored,
                            const fit_options& opt, std::span<const double> exit_weights = {},
                            std::span<const double> censored_weights = {}) {
    const dwell_sample s(exits, censored, opt.min_dwell, exit_weights, censored_weights);
    st.fits = {fit_exponential(s), fit_gamma(s, opt.max_iterations), fit_lognormal(s, opt.max_iterations),
               fit_weibull(s, opt.max_iterations)};
    for (std::size_t k = 0; k < st.fits.size(); ++k)
        if (st.fits[k].ok() && (!st.best || st.fits[k].aic < st.fits[*st.best].aic)) st.best = k;
    st.km = fit_kaplan_meier(exits, censored);
    double sum = 0.0;
    for (double x : exits) sum += x;
    st.naive_mean = exits.empty() ? nan_v : sum / static_cast<double>(exits.size());

    const dwell_distribution* best = st.best ? &*st.fits[*st.best].dwell : nullptr;
    auto use_km = [&] {
        if (st.km.time.empty()) return;
        try {
            st.dwell = to_dwell(st.km, best ? opt.tail : km_tail::efron, best);
            st.dwell_source = "kaplan_meier";
        } catch (const model_error&) {
        }
    };
    auto use_family = [&](std::size_t k) {
        if (st.fits[k].ok()) {
            st.dwell = st.fits[k].dwell;
            st.dwell_source = std::string(to_string(st.fits[k].family));
        }
    };
    switch (opt.dwell) {
    case dwell_choice::aic:
        if (st.best) {
            st.dwell = best ? std::optional<dwell_distribution>(*best) : std::nullopt;
            st.dwell_source = "aic";
        } else {
            use_km(); // no parametric family converged: fall back to the empirical estimate
        }
        break;
    case dwell_choice::kaplan_meier: use_km(); break;
    case dwell_choice::exponential: use_family(0); break;
    case dwell_choice::gamma: use_family(1); break;
    case dwell_choice::lognormal: use_family(2); break;
    case dwell_choice::weibull: use_family(3); break;
    }
}

/// Month and year of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
inline void civil_from_days(long long z, long long& year, unsigned& month) noexcept {
    z += 719468;
    const long long era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = static_cast<long long>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

/// The shock period of time t (model time unit; a dated log counts days since 1970-01-01):
/// the calendar quarter, year · 4 + (quarter − 1), when `period` is NaN, else ⌊t / period⌋.
/// One rule for the overdispersion estimate and the nowcast (nowcast.hpp).
[[nodiscard]] inline long long shock_period_key(double t, double period, double days_unit) noexcept {
    if (!std::isnan(period)) return static_cast<long long>(std::floor(t / period));
    long long y;
    unsigned m;
    civil_from_days(static_cast<long long>(std::floor(t * days_unit)), y, m);
    return y * 4 + (m - 1) / 3;
}

/// The Aalen–Johansen estimate of one stage: per target, the increments of the cumulative
/// incidence F_j at the distinct exit times; leftover = S(τ) after the last exit time τ.
struct aalen_johansen {
    std::vector<std::vector<double>> time, mass; ///< per target
    double leftover = 1.0, last_event = 0.0;
};
[[nodiscard]] inline aalen_johansen fit_aalen_johansen(const stage_visits& v, std::size_t targets) {
    aalen_johansen aj;
    aj.time.resize(targets);
    aj.mass.resize(targets);
    std::vector<std::size_t> order(v.d.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v.d[a] < v.d[b]; });
    double at_risk = 0.0;
    for (double w : v.w) at_risk += w;
    double s = 1.0;
    std::vector<double> d(targets, 0.0);
    for (std::size_t i = 0; i < order.size();) {
        const double t = v.d[order[i]];
        std::fill(d.begin(), d.end(), 0.0);
        double events = 0.0, leaving = 0.0;
        std::size_t j = i;
        for (; j < order.size() && v.d[order[j]] == t; ++j) {
            const std::size_t o = order[j];
            leaving += v.w[o];
            if (v.target[o] >= 0) {
                d[static_cast<std::size_t>(v.target[o])] += v.w[o];
                events += v.w[o];
            }
        }
        if (events > 0.0 && at_risk > 0.0) {
            for (std::size_t k = 0; k < targets; ++k)
                if (d[k] > 0.0) {
                    aj.time[k].push_back(t);
                    aj.mass[k].push_back(s * d[k] / at_risk);
                }
            s *= std::max(0.0, 1.0 - events / at_risk);
            aj.last_event = t;
        }
        at_risk -= leaving;
        i = j;
    }
    aj.leftover = s;
    return aj;
}

/// Replaces the parametric branches of `est` by the Aalen–Johansen ones: per target π_j =
/// F_j(τ) and the empirical dwell of its increments; the leftover S(τ) goes to the stalled
/// branch, whose dwell is τ + the clean-up time (the EM's exponential, discretised at 64
/// quantiles), so that a deal older than every exit is a stalled one, never a sure win.
inline void use_aalen_johansen(branched_estimate& est, const stage_visits& v, const std::vector<std::string>& names,
                               const std::vector<char>& target_lost, int stall_target) {
    const aalen_johansen aj = fit_aalen_johansen(v, names.size());
    double w = 0.0, w2 = 0.0;
    for (double x : v.w) {
        w += x;
        w2 += x * x;
    }
    const double n_eff = w2 > 0.0 ? w * w / w2 : 0.0;
    double cleanup = aj.last_event > 0.0 ? aj.last_event : 1.0;
    for (const auto& b : est.branches)
        if (b.stalled && b.dwell) cleanup = b.dwell->mean();
    std::vector<branch_estimate> out;
    for (std::size_t j = 0; j < names.size(); ++j) {
        double f = 0.0;
        for (double m : aj.mass[j]) f += m;
        if (!(f > 0.0)) continue;
        branch_estimate b;
        b.to = names[j];
        b.probability = f;
        b.se = n_eff > 0.0 ? std::sqrt(f * (1.0 - f) / n_eff) : nan_v;
        for (std::size_t i = 0; i < v.d.size(); ++i)
            if (v.target[i] == static_cast<int>(j)) b.events += v.w[i];
        std::vector<double> t = aj.time[j], m = aj.mass[j];
        try {
            b.dwell = dwell_distribution::empirical(std::move(t), std::move(m));
        } catch (const model_error&) {
            return; // e.g. every exit at time 0: keep the parametric branches
        }
        b.family = "aalen_johansen";
        out.push_back(std::move(b));
    }
    if (aj.leftover > 0.0) {
        if (stall_target >= 0) {
            std::vector<double> t(64), m(64, 1.0 / 64.0);
            for (std::size_t k = 0; k < 64; ++k)
                t[k] = aj.last_event - cleanup * std::log1p(-(static_cast<double>(k) + 0.5) / 64.0);
            branch_estimate b;
            b.to = names[static_cast<std::size_t>(stall_target)];
            b.stalled = true;
            b.probability = aj.leftover;
            b.se = n_eff > 0.0 ? std::sqrt(aj.leftover * (1.0 - aj.leftover) / n_eff) : nan_v;
            b.dwell = dwell_distribution::empirical(std::move(t), std::move(m));
            b.family = "aalen_johansen";
            out.push_back(std::move(b));
        } else {
            // no stalled branch: the leftover leaves at τ by the largest losing branch
            std::size_t lose = out.size();
            for (std::size_t k = 0; k < out.size(); ++k) {
                const auto j = static_cast<std::size_t>(std::find(names.begin(), names.end(), out[k].to) - names.begin());
                if (target_lost[j] && (lose == out.size() || out[k].probability > out[lose].probability)) lose = k;
            }
            if (lose == out.size()) return;
            auto& b = out[lose];
            std::vector<double> t(b.dwell->values().begin(), b.dwell->values().end()), m(t.size());
            for (std::size_t k = 0; k < t.size(); ++k)
                m[k] = (b.dwell->cumulative()[k] - (k ? b.dwell->cumulative()[k - 1] : 0.0)) * b.probability;
            t.push_back(aj.last_event);
            m.push_back(aj.leftover);
            b.probability += aj.leftover;
            b.dwell = dwell_distribution::empirical(std::move(t), std::move(m));
        }
    }
    est.branches = std::move(out);
    est.note += "aalen_johansen branches; ";
}

/// Logit-scale method-of-moments overdispersion of the forward/lose decision of one stage
/// (docs/estimation.md §8.8): `target_won` flags the targets that count as going forward
/// (a win, or an open stage later in the funnel), `target_lost` the losing outcomes. For a branched stage, losses at time t count as decisions with
/// the probability that they are not stalled ones, and censored visits count by their
/// branch weights (an imputation; periods more than 10% imputed are left out).
inline std::optional<overdispersion_estimate> estimate_overdispersion(const stage_estimate& st, const stage_visits& v,
                                                                      const std::vector<double>& entered,
                                                                      const std::vector<std::string>& names,
                                                                      const std::vector<char>& target_won,
                                                                      const std::vector<char>& target_lost, double days_unit,
                                                                      double period, std::size_t min_periods = 3) {
    std::map<long long, std::array<double, 3>> q; // period -> {wins, losses, imputed}
    const auto* be = st.branched && st.branched->status != fit_status::failed ? &*st.branched : nullptr;
    for (std::size_t i = 0; i < v.d.size(); ++i) {
        auto& c = q[shock_period_key(entered[i], period, days_unit)];
        const int t = v.target[i];
        if (t >= 0) {
            const auto ut = static_cast<std::size_t>(t);
            if (target_won[ut]) {
                c[0] += 1.0;
            } else if (target_lost[ut]) {
                double p = 1.0; // P(a normal loss | lost after d)
                if (be) {
                    double ln = -std::numeric_limits<double>::infinity(), ls = ln;
                    for (const auto& b : be->branches) {
                        if (b.to != names[ut] || !b.dwell || !(b.probability > 0.0)) continue;
                        const double l = std::log(b.probability) + log_pdf(*b.dwell, std::max(v.d[i], 1e-6));
                        (b.stalled ? ls : ln) = std::max(b.stalled ? ls : ln, l);
                    }
                    p = ln == -std::numeric_limits<double>::infinity() ? 0.0 : 1.0 / (1.0 + std::exp(ls - ln));
                }
                c[1] += p;
            }
        } else if (be) {
            double tot = 0.0, win = 0.0, lose = 0.0;
            for (const auto& b : be->branches) {
                if (!b.dwell) continue;
                const double a = b.probability * std::exp(log_sf(*b.dwell, v.d[i]));
                tot += a;
                const auto j = static_cast<std::size_t>(std::find(names.begin(), names.end(), b.to) - names.begin());
                if (j < names.size() && target_won[j]) win += a;
                else if (j < names.size() && target_lost[j] && !b.stalled) lose += a;
            }
            if (tot > 0.0) {
                c[0] += win / tot;
                c[1] += lose / tot;
                c[2] += (win + lose) / tot;
            }
        }
    }
    std::vector<double> y, var;
    double share = 0.0;
    for (const auto& [key, c] : q) {
        const double n = c[0] + c[1];
        if (n < 20.0 || c[2] > 0.1 * n) continue;
        y.push_back(std::log((c[0] + 0.5) / (c[1] + 0.5)));
        var.push_back(1.0 / (c[0] + 0.5) + 1.0 / (c[1] + 0.5));
        share += c[0] / n;
    }
    if (y.size() < std::max<std::size_t>(min_periods, 2)) return std::nullopt;
    overdispersion_estimate o;
    o.stage = st.name;
    o.periods = y.size();
    o.mean_win_share = share / static_cast<double>(y.size());
    double mean = 0.0, vbar = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        mean += y[i];
        vbar += var[i];
    }
    mean /= static_cast<double>(y.size());
    vbar /= static_cast<double>(y.size());
    double ss = 0.0;
    for (double x : y) ss += (x - mean) * (x - mean);
    o.raw_variance = ss / static_cast<double>(y.size() - 1);
    o.binomial_variance = vbar;
    o.sigma = std::sqrt(std::max(0.0, o.raw_variance - vbar));
    o.period = std::isfinite(period) ? message(period) : "quarter";
    return o;
}

/// The open stages of the visits i with select(i) true in funnel order (stage codes of the
/// log): opt.stage_order when given (checked: open stages of the history, none of the visited
/// ones missing), else by the mean position of their visits in the deals' paths (position 0 at
/// a deal's first selected visit), ties by first appearance. The one rule for the funnel
/// order: fit_selected uses it, and fit_segments takes the whole history's order from it.
/// @throws argument_error on a bad stage_order or no visits.
template <class Select>
[[nodiscard]] std::vector<std::uint32_t> funnel_order(const visit_log& log, const fit_options& opt, Select&& select) {
    const std::size_t ns = log.stage_names.size();
    std::vector<double> pos_sum(ns, 0.0), pos_n(ns, 0.0);
    std::vector<std::size_t> first_seen(ns, std::numeric_limits<std::size_t>::max());
    std::uint32_t cur = no_stage;
    double position = 0.0;
    for (std::size_t i = 0; i < log.size(); ++i) {
        if (!select(i)) continue;
        if (log.deal[i] != cur) {
            cur = log.deal[i];
            position = 0.0;
        }
        const std::uint32_t s = log.stage[i];
        first_seen[s] = std::min(first_seen[s], i);
        pos_sum[s] += position;
        pos_n[s] += 1.0;
        position += 1.0;
    }
    std::vector<std::uint32_t> open;
    if (!opt.stage_order.empty()) {
        for (const auto& nm : opt.stage_order) {
            const auto code = log.find_stage(nm);
            if (!code || !log.stage_open[*code])
                throw argument_error(message("fit_history: stage_order names '", nm, "', not an open stage of the history"));
            open.push_back(*code);
        }
        for (std::uint32_t s = 0; s < ns; ++s)
            if (log.stage_open[s] && pos_n[s] > 0 && std::find(open.begin(), open.end(), s) == open.end())
                throw argument_error(message("fit_history: stage_order misses the open stage '", log.stage_names[s], "'"));
    } else {
        for (std::uint32_t s = 0; s < ns; ++s)
            if (log.stage_open[s] && pos_n[s] > 0) open.push_back(s);
        std::stable_sort(open.begin(), open.end(), [&](std::uint32_t a, std::uint32_t b) {
            const double pa = pos_sum[a] / pos_n[a], pb = pos_sum[b] / pos_n[b];
            return pa != pb ? pa < pb : first_seen[a] < first_seen[b];
        });
    }
    if (open.empty()) throw argument_error("fit_history: the history has no visits");
    return open;
}

/// The recency window of fit_options: visit i counts when it entered at or after end − window.
[[nodiscard]] inline bool in_window(const visit_log& log, const fit_options& opt, std::size_t i) noexcept {
    return !(log.entered[i] < log.end_time - opt.window);
}

/// Fits the visits i with select(i) true (visits of one deal are contiguous in the log).
template <class Select>
[[nodiscard]] history_fit fit_selected(const visit_log& log, const fit_options& opt, Select&& select_visit) {
    if (!(opt.prior_count >= 0.0 && std::isfinite(opt.prior_count)))
        throw argument_error(message("fit_history: prior_count must be finite and >= 0, got ", opt.prior_count));
    if (!(std::isfinite(opt.min_dwell) && opt.min_dwell > 0.0))
        throw argument_error(message("fit_history: min_dwell must be positive, got ", opt.min_dwell));
    if (!(opt.window > 0.0))
        throw argument_error(message("fit_history: window must be positive (infinity: all visits), got ", opt.window));
    if (!(opt.half_life > 0.0))
        throw argument_error(message("fit_history: half_life must be positive (infinity: equal weights), got ", opt.half_life));
    if (!(opt.max_stall_share >= 0.0 && opt.max_stall_share < 1.0))
        throw argument_error(message("fit_history: max_stall_share must be in [0, 1), got ", opt.max_stall_share));
    if (!(opt.min_branch_events >= 0.0 && std::isfinite(opt.min_branch_events)))
        throw argument_error(message("fit_history: min_branch_events must be finite and >= 0, got ", opt.min_branch_events));
    if (!(std::isnan(opt.overdispersion_period) || (opt.overdispersion_period > 0.0 && std::isfinite(opt.overdispersion_period))))
        throw argument_error(message("fit_history: overdispersion_period must be positive, got ", opt.overdispersion_period));
    const std::size_t ns = log.stage_names.size();
    history_fit out;
    out.kind = opt.kind;
    out.time_unit = opt.time_unit;
    out.end_time = log.end_time;
    // Recency: the window drops visits that entered before end − window; half-life weights.
    const double end = log.end_time;
    const bool weighted = std::isfinite(opt.half_life);
    auto select = [&](std::size_t i) { return select_visit(i) && in_window(log, opt, i); };
    auto weight = [&](std::size_t i) { return weighted ? std::exp2(-(end - log.entered[i]) / opt.half_life) : 1.0; };

    // One pass: counts, durations per stage.
    std::vector<std::size_t> n_exit(ns, 0), n_cens(ns, 0);
    std::vector<double> entry_count(ns, 0.0), entry_weight(ns, 0.0);
    std::vector<double> deal_amount, deal_weight;
    double start = std::numeric_limits<double>::infinity();
    std::size_t deals = 0, visits = 0;
    {
        std::uint32_t cur = no_stage;
        double amount = nan_v, amount_w = 1.0;
        auto close_deal = [&] {
            if (cur != no_stage && std::isfinite(amount) && amount > 0.0) {
                deal_amount.push_back(amount);
                deal_weight.push_back(amount_w);
            }
        };
        for (std::size_t i = 0; i < log.size(); ++i) {
            if (!select(i)) continue;
            ++visits;
            if (log.deal[i] != cur) {
                close_deal();
                cur = log.deal[i];
                amount = nan_v;
                ++deals;
                // an arrival only if this is the deal's first visit (not cut by the window)
                if (i == 0 || log.deal[i - 1] != log.deal[i]) {
                    entry_count[log.stage[i]] += 1.0;
                    entry_weight[log.stage[i]] += weight(i);
                }
            }
            const std::uint32_t s = log.stage[i];
            // one amount per deal: its last positive finite amount (a lost deal's 0 or blank is not its size)
            if (std::isfinite(log.amount[i]) && log.amount[i] > 0.0) {
                amount = log.amount[i];
                amount_w = weight(i);
            }
            start = std::min(start, log.entered[i]);
            if (log.censored(i)) ++n_cens[s];
            else ++n_exit[s];
        }
        close_deal();
    }
    out.visits = visits;
    out.deals = deals;
    out.start_time = std::isfinite(start) ? start : log.end_time;

    // Open stages in funnel order.
    const std::vector<std::uint32_t> open = funnel_order(log, opt, select);
    std::vector<std::size_t> slot(ns, std::numeric_limits<std::size_t>::max());
    for (std::size_t k = 0; k < open.size(); ++k) slot[open[k]] = k;

    // Outcomes (of the whole log, so that segment models share them): wins first.
    std::vector<std::uint32_t> outcome_codes;
    for (std::uint32_t s = 0; s < ns; ++s)
        if (!log.stage_open[s]) outcome_codes.push_back(s);
    auto is_won = [&](std::uint32_t s) {
        const std::string& nm = log.stage_names[s];
        if (!opt.won.empty()) return std::find(opt.won.begin(), opt.won.end(), nm) != opt.won.end();
        return looks_won(nm);
    };
    for (const auto& w : opt.won)
        if (!log.find_stage(w) || log.stage_open[*log.find_stage(w)])
            throw argument_error(message("fit_history: won names '", w, "', not an outcome of the history"));
    std::stable_partition(outcome_codes.begin(), outcome_codes.end(), is_won);
    for (auto s : outcome_codes) out.outcomes.push_back({log.stage_names[s], is_won(s)});

    // Durations, weights and counts per open stage.
    std::vector<std::vector<double>> exits(open.size()), cens(open.size()), exit_w(open.size()), cens_w(open.size());
    std::vector<stage_visits> sv(open.size());
    std::vector<std::vector<double>> sv_entered(open.size());
    for (std::size_t k = 0; k < open.size(); ++k) {
        exits[k].reserve(n_exit[open[k]]);
        cens[k].reserve(n_cens[open[k]]);
    }
    std::vector<std::vector<double>> counts(open.size(), std::vector<double>(ns, 0.0));
    for (std::size_t i = 0; i < log.size(); ++i) {
        if (!select(i)) continue;
        const std::size_t k = slot[log.stage[i]];
        const double d = log.duration(i);
        const double w = weight(i);
        if (log.censored(i)) {
            cens[k].push_back(d);
            cens_w[k].push_back(w);
        } else {
            exits[k].push_back(d);
            exit_w[k].push_back(w);
            counts[k][log.next[i]] += w;
        }
        if (opt.kind == model_kind::branched && !(log.censored(i) && opt.ignore_censored)) {
            sv[k].d.push_back(d);
            sv[k].target.push_back(log.censored(i) ? -1 : static_cast<int>(log.next[i]));
            sv[k].w.push_back(w);
            sv_entered[k].push_back(log.entered[i]);
        }
    }
    if (opt.ignore_censored)
        for (std::size_t k = 0; k < open.size(); ++k) {
            cens[k].clear();
            cens_w[k].clear();
        }

    // Target order of a stage's branches: open stages in funnel order, then the outcomes.
    std::vector<std::uint32_t> target_order(open);
    target_order.insert(target_order.end(), outcome_codes.begin(), outcome_codes.end());
    std::vector<std::string> target_names;
    std::vector<char> target_won, target_lost;
    std::vector<int> target_of(ns, -1);
    for (auto t : target_order) {
        target_of[t] = static_cast<int>(target_names.size());
        target_names.push_back(log.stage_names[t]);
        target_won.push_back(!log.stage_open[t] && is_won(t) ? 1 : 0);
        target_lost.push_back(!log.stage_open[t] && !is_won(t) ? 1 : 0);
    }

    out.stages.resize(open.size());
    for (std::size_t k = 0; k < open.size(); ++k) {
        stage_estimate& st = out.stages[k];
        const std::uint32_t s = open[k];
        st.name = log.stage_names[s];
        st.exits = exits[k].size();
        st.censored = opt.ignore_censored ? 0 : n_cens[s];
        st.visits = st.exits + st.censored;
        st.weight = 0.0;
        for (double w : exit_w[k]) st.weight += w;
        for (double w : cens_w[k]) st.weight += w;
        // Transition row: observed edges (in stage order: open stages, then outcomes), plus prior edges.
        std::vector<std::string> targets;
        std::vector<double> cnt, pri;
        const auto prior_row = opt.prior.find(st.name);
        auto add_target = [&](std::uint32_t t) {
            double p = counts[k][t] > 0.0 ? opt.prior_count : 0.0;
            if (prior_row != opt.prior.end()) {
                const auto e = prior_row->second.find(log.stage_names[t]);
                if (e != prior_row->second.end()) {
                    if (!(e->second >= 0.0 && std::isfinite(e->second)))
                        throw argument_error(message("fit_history: prior pseudo-count of '", st.name, "' -> '",
                                                     e->first, "' must be finite and >= 0, got ", e->second));
                    p += e->second;
                }
            }
            if (counts[k][t] > 0.0 || p > 0.0) {
                targets.push_back(log.stage_names[t]);
                cnt.push_back(counts[k][t]);
                pri.push_back(p);
            }
        };
        for (auto t : target_order) add_target(t);
        if (prior_row != opt.prior.end())
            for (const auto& [to, alpha] : prior_row->second)
                if (!log.find_stage(to))
                    throw argument_error(message("fit_history: prior names the unknown stage '", to, "'"));
        st.transitions = estimate_transitions(targets, cnt, pri, opt.credible_level);
        if (weighted) fit_stage_dwell(st, exits[k], cens[k], opt, exit_w[k], cens_w[k]);
        else fit_stage_dwell(st, exits[k], cens[k], opt);

        if (opt.kind == model_kind::branched) {
            stage_visits& v = sv[k];
            for (auto& t : v.target)
                if (t >= 0) t = target_of[static_cast<std::size_t>(t)];
            // The stalled branch closes to the losing outcome this stage loses most to
            // (the first losing outcome if it never loses).
            int stall_target = -1;
            if (opt.stall) {
                double most = -1.0;
                for (std::size_t j = 0; j < target_names.size(); ++j) {
                    if (!target_lost[j]) continue;
                    const double c = counts[k][target_order[j]];
                    if (c > most) {
                        most = c;
                        stall_target = static_cast<int>(j);
                    }
                }
            }
            branched_estimate be = fit_branched_em(v, target_names, stall_target, opt);
            if (opt.dwell == dwell_choice::kaplan_meier && be.status != fit_status::failed)
                use_aalen_johansen(be, v, target_names, target_lost, stall_target);
            st.branched = std::move(be);
        }
    }

    // Arrivals: deals per time unit created in each stage (the exposure is the window, or
    // the integral of the half-life weight over the log).
    const double span = std::min(opt.window, log.end_time - out.start_time);
    const double exposure = weighted ? opt.half_life / std::numbers::ln2 * (1.0 - std::exp2(-span / opt.half_life)) : span;
    for (std::uint32_t s = 0; s < ns; ++s)
        if (entry_count[s] > 0.0)
            out.arrivals.push_back({log.stage_names[s], entry_weight[s], exposure > 0.0 ? entry_weight[s] / exposure : nan_v});
    std::stable_sort(out.arrivals.begin(), out.arrivals.end(),
                     [](const arrival_estimate& a, const arrival_estimate& b) { return a.deals > b.deals; });
    const auto entry = static_cast<std::uint32_t>(std::max_element(entry_count.begin(), entry_count.end()) - entry_count.begin());
    out.entry_stage = log.stage_names[entry];
    if (weighted) {
        out.arrival_rate = exposure > 0.0 ? entry_weight[entry] / exposure : nan_v;
    } else {
        out.arrival_rate = span > 0.0 ? entry_count[entry] / span : nan_v;
    }
    // Deal sizes: one amount per deal; empirical (resampled) or lognormal by log-moments.
    out.deal_size_count = deal_amount.size();
    if (!opt.deal_size_lognormal && !deal_amount.empty()) {
        out.deal_size = deal_size_distribution::empirical(deal_amount, deal_weight);
    } else if (deal_amount.size() >= 2) {
        double m = 0.0, m2 = 0.0, wsum = 0.0;
        for (std::size_t i = 0; i < deal_amount.size(); ++i) {
            const double l = std::log(deal_amount[i]);
            m += deal_weight[i] * l;
            m2 += deal_weight[i] * (l * l);
            wsum += deal_weight[i];
        }
        const double n = static_cast<double>(deal_amount.size());
        m /= wsum;
        const double sg = std::sqrt(std::max(0.0, m2 / wsum - m * m) * n / (n - 1.0));
        out.deal_size = deal_size_distribution(std::exp(m), sg);
    }
    // Overdispersion of every stage's forward/lose decision; the model's main σ is the
    // deciding stage's (the most exits to a win).
    {
        std::size_t best = open.size();
        double most = 0.0;
        for (std::size_t k = 0; k < open.size(); ++k) {
            double wins = 0.0;
            for (auto t : outcome_codes)
                if (is_won(t)) wins += counts[k][t];
            if (wins > most) {
                most = wins;
                best = k;
            }
        }
        const double dpu = days_per_unit(opt.time_unit);
        const double period = std::isfinite(opt.overdispersion_period) ? opt.overdispersion_period
                              : log.dates                              ? nan_v
                                                                       : 365.2425 / 4.0 / dpu;
        for (std::size_t k = 0; k < open.size(); ++k) {
            stage_visits v;
            std::vector<double> entered;
            if (opt.kind == model_kind::branched) {
                v = sv[k];
                entered = sv_entered[k];
            } else {
                for (std::size_t i = 0; i < log.size(); ++i) {
                    if (!select(i) || slot[log.stage[i]] != k) continue;
                    v.d.push_back(log.duration(i));
                    v.target.push_back(log.censored(i) ? -1 : target_of[log.next[i]]);
                    v.w.push_back(1.0);
                    entered.push_back(log.entered[i]);
                }
            }
            // forward: a win, or an open stage later in the funnel
            std::vector<char> forward(target_names.size(), 0);
            for (std::size_t j = 0; j < target_names.size(); ++j) {
                const std::uint32_t t = target_order[j];
                forward[j] = target_won[j] || (log.stage_open[t] && slot[t] > k) ? 1 : 0;
            }
            auto e = estimate_overdispersion(out.stages[k], v, entered, target_names, forward, target_lost, dpu, period);
            overdispersion_estimate none;
            none.stage = out.stages[k].name;
            none.period = std::isfinite(period) ? message(period) : "quarter";
            out.stage_overdispersion.push_back(e ? *e : none);
            if (k == best) out.overdispersion = e;
        }
    }
    return out;
}

} // namespace detail

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
[[nodiscard]] inline history_fit fit_history(const visit_log& log, const fit_options& opt = {}) {
    return detail::fit_selected(log, opt, [](std::size_t) { return true; });
}

/// The dwell estimates of one stage from its durations, as fit_history makes them: the four
/// censored parametric fits, the least-AIC family, Kaplan–Meier, and the dwell opt.dwell
/// chooses (the fields of stage_estimate other than the name and transitions).
/// @throws argument_error on a negative or non-finite duration.
/// Example: `auto e = fit_dwell(exits, open_ages); auto d = *e.dwell;`
[[nodiscard]] inline stage_estimate fit_dwell(std::span<const double> exits, std::span<const double> censored,
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
[[nodiscard]] inline std::vector<segment_fit> fit_segments(const visit_log& log, std::string_view column,
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
[[nodiscard]] inline model to_model(const history_fit& fit, std::string name = "fitted") {
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
