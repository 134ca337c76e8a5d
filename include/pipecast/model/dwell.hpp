// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model/dwell.hpp
/// @brief Dwell-time (time-in-stage) distributions and their residuals.
///
/// A dwell_distribution is an immutable value: exponential, gamma, lognormal, Weibull (all
/// parameterised by their mean plus a shape or standard deviation, as in the JSON model
/// format), a fixed time, or an empirical distribution (weighted support points, e.g. a
/// Kaplan–Meier estimate). Every function below is a free function, as in Boost.Math:
/// `pdf`, `cdf`, `survival`, `quantile`, `mean`, `variance`, and the same on
/// `residual(d, age)`, the distribution of the time still to spend in the stage given that
/// `age` has already been spent there.
///
/// Continuous families are computed with Boost.Math (double precision, no promotion to long
/// double). Times are in the model's time unit.

#include <pipecast/error.hpp>

#include <boost/math/distributions/exponential.hpp>
#include <boost/math/distributions/gamma.hpp>
#include <boost/math/distributions/lognormal.hpp>
#include <boost/math/distributions/weibull.hpp>
#include <boost/math/special_functions/gamma.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// The family of a dwell-time distribution.
enum class dwell_family { exponential, gamma, lognormal, weibull, fixed, empirical };

/// Name used in the JSON format ("exponential", "gamma", ...).
[[nodiscard]] constexpr std::string_view to_string(dwell_family f) noexcept {
    switch (f) {
    case dwell_family::exponential: return "exponential";
    case dwell_family::gamma: return "gamma";
    case dwell_family::lognormal: return "lognormal";
    case dwell_family::weibull: return "weibull";
    case dwell_family::fixed: return "fixed";
    case dwell_family::empirical: return "empirical";
    }
    return "?";
}

namespace detail {
/// Boost.Math policy: plain double arithmetic, +inf instead of an exception on overflow
/// (quantile(1) = inf). Domain errors still throw; the library validates before calling.
using boost_policy = boost::math::policies::policy<
    boost::math::policies::promote_double<false>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>>;

template <class = void>
void require_positive(std::string_view what, std::string_view name, double v) {
    if (!(std::isfinite(v) && v > 0.0))
        throw model_error(message(what, ": ", name, " must be positive and finite, got ", v));
}
} // namespace detail

/// An immutable dwell-time distribution. Build it with the named constructors.
class dwell_distribution {
public:
    /// Exponential with the given mean. @throws model_error unless mean > 0 and finite.
    static dwell_distribution exponential(double mean) {
        detail::require_positive("exponential dwell", "mean", mean);
        detail::require_positive("exponential dwell", "rate (1/mean)", 1.0 / mean);
        dwell_distribution d(dwell_family::exponential, mean);
        d.scale_ = mean;
        return checked(std::move(d), "exponential dwell");
    }
    /// Smallest and largest gamma shape accepted: coefficients of variation 1/√k from 1000
    /// down to 0.001. Outside, the quantiles, residuals and samplers lose their footing
    /// (shape 1e-300: the simulator's sampler never finished; 1e12: Boost's series gave up;
    /// 1e20: the funnel's residuals never finished); above, a fixed dwell is the same model.
    static constexpr double gamma_min_shape = 1e-6;
    static constexpr double gamma_max_shape = 1e6;
    /// Gamma with shape k and mean (scale = mean / k).
    /// @throws model_error on k, mean <= 0 or not finite, k outside [gamma_min_shape,
    ///   gamma_max_shape], or a scale that overflows.
    static dwell_distribution gamma(double shape, double mean) {
        detail::require_positive("gamma dwell", "shape", shape);
        detail::require_positive("gamma dwell", "mean", mean);
        dwell_distribution d(dwell_family::gamma, mean);
        d.shape_ = shape;
        d.scale_ = mean / shape;
        detail::require_positive("gamma dwell", "scale (mean/shape)", d.scale_);
        if (!(shape >= gamma_min_shape && shape <= gamma_max_shape))
            throw model_error(detail::message("gamma dwell: shape ", shape, " is outside [", gamma_min_shape, ", ",
                                              gamma_max_shape, "] (a coefficient of variation from 1000 to 0.001)",
                                              shape > gamma_max_shape ? "; use a fixed dwell" : ""));
        return checked(std::move(d), "gamma dwell");
    }
    /// Lognormal with the given mean and standard deviation (of the time, not its log).
    /// Any positive finite pair whose ratio sd/mean is not below the smallest double is valid:
    /// σ² = log(1 + (sd/mean)²) is computed without overflow when the ratio is huge (sd 1e300,
    /// or mean 1e-300) and without underflow when it is tiny, so σ stays finite and positive.
    /// @throws model_error unless mean and sd are positive and finite and σ > 0.
    static dwell_distribution lognormal(double mean, double sd) {
        detail::require_positive("lognormal dwell", "mean", mean);
        detail::require_positive("lognormal dwell", "sd", sd);
        dwell_distribution d(dwell_family::lognormal, mean);
        d.sd_ = sd;
        // σ = sqrt(log1p(r²)), r = sd/mean, without overflow or underflow of r²: σ = r to double
        // precision for r < 1e-8, and log1p(r²) = 2 log(sd/mean) (r may overflow) for r > 1e150
        const double ratio = sd / mean;
        if (ratio < 1e-8) {
            d.log_sigma_ = ratio;
            d.log_mu_ = std::log(mean) - 0.5 * ratio * ratio;
        } else {
            const double s2 = ratio < 1e150 ? std::log1p(ratio * ratio) : 2.0 * (std::log(sd) - std::log(mean));
            d.log_sigma_ = std::sqrt(s2);
            d.log_mu_ = std::log(mean) - 0.5 * s2;
        }
        if (!(std::isfinite(d.log_mu_) && std::isfinite(d.log_sigma_) && d.log_sigma_ > 0.0))
            throw model_error(detail::message("lognormal dwell: mean ", mean, " and sd ", sd,
                                              " give no finite positive log-scale parameters (mu ", d.log_mu_,
                                              ", sigma ", d.log_sigma_, ")"));
        return checked(std::move(d), "lognormal dwell");
    }
    /// Lognormal from the parameters of the log (mu, sigma).
    /// @throws model_error unless mu is finite, sigma positive and finite, and the mean
    ///   e^{μ+σ²/2} and sd are finite (mu 800 or sigma 40 overflow).
    static dwell_distribution lognormal_log(double mu, double sigma) {
        detail::require_positive("lognormal dwell", "sigma", sigma);
        if (!std::isfinite(mu))
            throw model_error(detail::message("lognormal dwell: mu must be finite, got ", mu));
        const double mean = std::exp(mu + 0.5 * sigma * sigma);
        const double sd = mean * std::sqrt(std::expm1(sigma * sigma));
        if (!(std::isfinite(sd) && mean > 0.0 && sd > 0.0))
            throw model_error(detail::message("lognormal dwell: mu ", mu, " and sigma ", sigma,
                                              " give a mean ", mean, " and sd ", sd, " out of the range of a double"));
        dwell_distribution d = lognormal(mean, sd);
        d.log_mu_ = mu;
        d.log_sigma_ = sigma;
        return d;
    }
    /// Weibull with shape k and mean (scale = mean / Γ(1 + 1/k)).
    static dwell_distribution weibull(double shape, double mean) {
        detail::require_positive("weibull dwell", "shape", shape);
        detail::require_positive("weibull dwell", "mean", mean);
        dwell_distribution d(dwell_family::weibull, mean);
        d.shape_ = shape;
        d.scale_ = mean / std::tgamma(1.0 + 1.0 / shape);
        if (!(std::isfinite(d.scale_) && d.scale_ > 0.0))
            throw model_error(detail::message("weibull dwell: shape ", shape, " with mean ", mean,
                                              " gives no finite scale"));
        return checked(std::move(d), "weibull dwell");
    }
    /// A fixed time: every deal stays exactly `value`.
    static dwell_distribution fixed(double value) {
        detail::require_positive("fixed dwell", "value", value);
        return dwell_distribution(dwell_family::fixed, value);
    }
    /// Empirical distribution putting equal mass on each sample.
    static dwell_distribution empirical(std::vector<double> samples) {
        std::vector<double> w(samples.size(), 1.0);
        return empirical(std::move(samples), std::move(w));
    }
    /// Empirical distribution with mass weights[i] at values[i] (normalised to sum 1).
    /// @throws model_error on empty input, size mismatch, negative or non-finite entries.
    static dwell_distribution empirical(std::vector<double> values, std::vector<double> weights) {
        if (values.empty()) throw model_error("empirical dwell: no samples");
        if (values.size() != weights.size())
            throw model_error(detail::message("empirical dwell: ", values.size(), " values but ",
                                              weights.size(), " weights"));
        std::vector<std::size_t> order(values.size());
        std::iota(order.begin(), order.end(), std::size_t{0});
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (!(std::isfinite(values[i]) && values[i] >= 0.0))
                throw model_error(detail::message("empirical dwell: sample ", i,
                                                  " must be finite and >= 0, got ", values[i]));
            if (!(std::isfinite(weights[i]) && weights[i] >= 0.0))
                throw model_error(detail::message("empirical dwell: weight ", i,
                                                  " must be finite and >= 0, got ", weights[i]));
        }
        std::sort(order.begin(), order.end(),
                  [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
        dwell_distribution d(dwell_family::empirical, 0.0);
        double total = 0.0;
        for (std::size_t i : order) {
            if (weights[i] == 0.0) continue;
            if (!d.values_.empty() && d.values_.back() == values[i]) {
                d.cumulative_.back() += weights[i];
            } else {
                d.values_.push_back(values[i]);
                d.cumulative_.push_back(weights[i]);
            }
            total += weights[i];
        }
        if (!(total > 0.0)) throw model_error("empirical dwell: weights sum to zero");
        double acc = 0.0, m = 0.0;
        for (std::size_t i = 0; i < d.values_.size(); ++i) {
            const double p = d.cumulative_[i] / total;
            acc += p;
            d.cumulative_[i] = acc;
            m += p * d.values_[i];
        }
        // Rounding can carry the running sum past 1 before the last point (fuzz finding 4):
        // the cumulative weights stay non-decreasing and end at exactly 1, so the weights
        // written back (their differences) are >= 0; a point past 1 keeps weight 0.
        for (double& c : d.cumulative_) c = std::min(c, 1.0);
        d.cumulative_.back() = 1.0;
        if (!(m > 0.0)) throw model_error("empirical dwell: mean must be positive (all samples are 0)");
        double v = 0.0; // second pass: no cancellation for values far from 0 with a small spread
        for (std::size_t i = 0; i < d.values_.size(); ++i)
            v += (d.cumulative_[i] - (i == 0 ? 0.0 : d.cumulative_[i - 1])) * (d.values_[i] - m) * (d.values_[i] - m);
        d.mean_ = m;
        d.sd_ = std::sqrt(v);
        return checked(std::move(d), "empirical dwell");
    }

private:
    /// Every family's variance sd² must be finite (sd below about 1.3e154): forecasts, funnels
    /// and fits square it. @throws model_error naming the family, mean and sd.
    static dwell_distribution checked(dwell_distribution d, std::string_view what) {
        const double s = d.sd();
        if (!std::isfinite(s * s))
            throw model_error(detail::message(what, ": mean ", d.mean(), " with sd ", s,
                                              " is too spread: the variance (sd squared) overflows a double"));
        return d;
    }

public:
    [[nodiscard]] dwell_family family() const noexcept { return family_; }
    /// The mean dwell time.
    [[nodiscard]] double mean() const noexcept { return mean_; }
    /// Shape parameter (gamma, Weibull); NaN for the other families.
    [[nodiscard]] double shape() const noexcept { return shape_; }
    /// Scale parameter (exponential: mean; gamma: mean/k; Weibull: λ); NaN otherwise.
    [[nodiscard]] double scale() const noexcept { return scale_; }
    /// Standard deviation of the time (every family).
    [[nodiscard]] double sd() const noexcept {
        switch (family_) {
        case dwell_family::exponential: return mean_;
        case dwell_family::gamma: return mean_ / std::sqrt(shape_);
        case dwell_family::weibull: {
            const double g1 = std::tgamma(1.0 + 1.0 / shape_);
            const double g2 = std::tgamma(1.0 + 2.0 / shape_);
            return scale_ * std::sqrt(std::max(0.0, g2 - g1 * g1));
        }
        case dwell_family::fixed: return 0.0;
        case dwell_family::lognormal:
        case dwell_family::empirical: return sd_;
        }
        return sd_;
    }
    /// Location and scale of log T (lognormal only; NaN otherwise).
    [[nodiscard]] double log_mu() const noexcept { return log_mu_; }
    [[nodiscard]] double log_sigma() const noexcept { return log_sigma_; }
    /// Support points (sorted, distinct) and cumulative probabilities (empirical only).
    [[nodiscard]] std::span<const double> values() const noexcept { return values_; }
    [[nodiscard]] std::span<const double> cumulative() const noexcept { return cumulative_; }

    /// Same family and parameters (parameters a family does not use, stored as NaN, compare
    /// equal to each other).
    friend bool operator==(const dwell_distribution& a, const dwell_distribution& b) noexcept {
        auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
        return a.family_ == b.family_ && same(a.mean_, b.mean_) && same(a.shape_, b.shape_) &&
               same(a.scale_, b.scale_) && same(a.sd_, b.sd_) && same(a.log_mu_, b.log_mu_) &&
               same(a.log_sigma_, b.log_sigma_) && a.values_ == b.values_ && a.cumulative_ == b.cumulative_;
    }

private:
    dwell_distribution(dwell_family f, double mean) : family_(f), mean_(mean) {}

    static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    dwell_family family_;
    double mean_;
    double shape_ = nan;
    double scale_ = nan;
    double sd_ = nan;
    double log_mu_ = nan;
    double log_sigma_ = nan;
    std::vector<double> values_;
    std::vector<double> cumulative_;
};

namespace detail {

/// Calls f with the Boost.Math distribution object of a continuous family.
template <class F>
decltype(auto) with_boost(const dwell_distribution& d, F&& f) {
    switch (d.family()) {
    case dwell_family::exponential:
        return f(boost::math::exponential_distribution<double, boost_policy>(1.0 / d.mean()));
    case dwell_family::gamma:
        return f(boost::math::gamma_distribution<double, boost_policy>(d.shape(), d.scale()));
    case dwell_family::lognormal:
        return f(boost::math::lognormal_distribution<double, boost_policy>(d.log_mu(), d.log_sigma()));
    case dwell_family::weibull:
    default:
        PIPECAST_ASSERT(d.family() == dwell_family::weibull);
        return f(boost::math::weibull_distribution<double, boost_policy>(d.shape(), d.scale()));
    }
}

template <class = void>
[[nodiscard]] bool is_continuous(const dwell_distribution& d) noexcept {
    return d.family() != dwell_family::fixed && d.family() != dwell_family::empirical;
}

template <class = void>
void require_probability(std::string_view fn, double p) {
    if (!(p >= 0.0 && p <= 1.0))
        throw argument_error(message(fn, ": probability must be in [0, 1], got ", p));
}

template <class = void>
void require_time(std::string_view fn, std::string_view what, double t) {
    if (std::isnan(t)) throw argument_error(message(fn, ": ", what, " is NaN"));
}

/// e^x Γ(s, x), the scaled upper incomplete gamma function, without overflow or underflow
/// at large x: Boost.Math below x = max(40, 2s + 10), else the continued fraction
/// Γ(s, x) = e^{-x} x^s / (x + 1 - s - 1(1 - s)/(x + 3 - s - 2(2 - s)/(x + 5 - s - ...)))
/// evaluated by the modified Lentz method (it converges fast for x > s + 1).
template <class = void>
[[nodiscard]] double upper_gamma_fraction(double s, double x);

template <class = void>
[[nodiscard]] double scaled_upper_gamma(double s, double x) {
    if (x < std::max(40.0, 2.0 * s + 10.0))
        return std::exp(x) * boost::math::tgamma(s, x, boost_policy{});
    return std::pow(x, s) * upper_gamma_fraction(s, x);
}

/// The continued fraction h(s, x) = 1/(x + 1 - s - 1(1 - s)/(x + 3 - s - ...)) with
/// Γ(s, x) = e^{-x} x^s h(s, x) (modified Lentz; fast for x > s + 1).
template <class>
[[nodiscard]] double upper_gamma_fraction(double s, double x) {
    constexpr double tiny = 1e-300, eps = 1e-16;
    double b = x + 1.0 - s, c = 1.0 / tiny, d = 1.0 / b, h = d;
    for (int i = 1; i < 1000; ++i) {
        const double an = -i * (i - s);
        b += 2.0;
        d = an * d + b;
        if (std::abs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double del = d * c;
        h *= del;
        if (std::abs(del - 1.0) < eps) break;
    }
    return h;
}

/// log Q(s, x) = log(Γ(s, x)/Γ(s)), finite where Q underflows: Boost.Math while
/// Q >= 1e-280, else −x + s log x + log h(s, x) − log Γ(s) (Q that small needs x > s + 1,
/// where the continued fraction converges fast).
template <class = void>
[[nodiscard]] double log_gamma_q(double s, double x) {
    const double q = boost::math::gamma_q(s, x, boost_policy{});
    if (q >= 1e-280) return std::log(q);
    return -x + s * std::log(x) + std::log(upper_gamma_fraction(s, x)) - boost::math::lgamma(s, boost_policy{});
}

/// log(erfc(y)/2) = log P(N(0,1) > y √2), finite at any y: std::erfc while y <= 26 (erfc
/// >= 1e-296), beyond it the asymptotic series
/// erfc(y) = e^{-y²}/(y √π) · (1 − 1/(2y²) + 1·3/(2y²)² − ...), whose terms fall below
/// 1e-17 within ten at y > 26.
template <class = void>
[[nodiscard]] double log_half_erfc(double y) {
    if (y <= 26.0) return std::log(0.5 * std::erfc(y));
    const double r = 1.0 / (2.0 * y * y);
    double term = 1.0, sum = 1.0;
    for (int n = 1; n <= 12; ++n) {
        term *= -(2.0 * n - 1.0) * r;
        sum += term;
    }
    return -y * y - std::log(2.0 * y * std::sqrt(3.141592653589793)) + std::log(sum);
}

/// E[T − a | T > a] / θ for a gamma(k, θ) at x = a/θ > k + 1: 1 + (k − 1)/D₁ with
/// D_i = x + 2i + 1 − k − (i + 1)(i + 1 − k)/D_{i+1} (the tail of the continued fraction
/// of Γ(k, x); no cancellation at large x, where it tends to 1: the exponential limit).
template <class = void>
[[nodiscard]] double gamma_residual_mean_ratio(double k, double x) {
    double dd = x + 2.0 * 400.0 + 1.0 - k;
    for (int i = 399; i >= 1; --i) dd = x + 2.0 * i + 1.0 - k - (i + 1.0) * (i + 1.0 - k) / dd;
    return 1.0 + (k - 1.0) / dd;
}

/// Index of the first support point > t (empirical).
template <class = void>
[[nodiscard]] std::size_t first_above(const dwell_distribution& d, double t) noexcept {
    const auto v = d.values();
    return static_cast<std::size_t>(std::upper_bound(v.begin(), v.end(), t) - v.begin());
}

} // namespace detail

/// P(T <= t). @throws argument_error if t is NaN.
template <class = void>
[[nodiscard]] double cdf(const dwell_distribution& d, double t) {
    detail::require_time("cdf", "t", t);
    if (t <= 0.0) return d.family() == dwell_family::empirical && t == 0.0 && d.values()[0] == 0.0
                             ? d.cumulative()[0]
                             : 0.0;
    if (std::isinf(t)) return 1.0;
    switch (d.family()) {
    case dwell_family::fixed: return t >= d.mean() ? 1.0 : 0.0;
    case dwell_family::empirical: {
        const std::size_t i = detail::first_above(d, t);
        return i == 0 ? 0.0 : d.cumulative()[i - 1];
    }
    default: return detail::with_boost(d, [t](const auto& b) { return boost::math::cdf(b, t); });
    }
}

/// P(T > t). The parametric families compute it directly (Boost's complement, not 1 − cdf), to
/// keep the far tail accurate; fixed and empirical distributions (finite support, atoms of at
/// least 1/n) take 1 − cdf, which loses nothing there.
template <class = void>
[[nodiscard]] double survival(const dwell_distribution& d, double t) {
    detail::require_time("survival", "t", t);
    if (t < 0.0) return 1.0;
    if (std::isinf(t)) return 0.0;
    switch (d.family()) {
    case dwell_family::fixed: return t >= d.mean() ? 0.0 : 1.0;
    case dwell_family::empirical: return 1.0 - cdf(d, t);
    default:
        if (t == 0.0) return 1.0;
        return detail::with_boost(
            d, [t](const auto& b) { return boost::math::cdf(boost::math::complement(b, t)); });
    }
}

/// Density at t (for fixed and empirical: the probability mass at exactly t).
template <class = void>
[[nodiscard]] double pdf(const dwell_distribution& d, double t) {
    detail::require_time("pdf", "t", t);
    if (t < 0.0 || std::isinf(t)) return 0.0;
    switch (d.family()) {
    case dwell_family::fixed: return t == d.mean() ? 1.0 : 0.0;
    case dwell_family::empirical: {
        const auto v = d.values();
        const auto it = std::lower_bound(v.begin(), v.end(), t);
        if (it == v.end() || *it != t) return 0.0;
        const auto i = static_cast<std::size_t>(it - v.begin());
        return d.cumulative()[i] - (i == 0 ? 0.0 : d.cumulative()[i - 1]);
    }
    default: return detail::with_boost(d, [t](const auto& b) { return boost::math::pdf(b, t); });
    }
}

/// The smallest t with P(T <= t) >= p. quantile(d, 1) is +inf for unbounded families.
/// @throws argument_error unless 0 <= p <= 1.
template <class = void>
[[nodiscard]] double quantile(const dwell_distribution& d, double p) {
    detail::require_probability("quantile", p);
    switch (d.family()) {
    case dwell_family::fixed: return d.mean();
    case dwell_family::empirical: {
        const auto c = d.cumulative();
        const auto it = std::lower_bound(c.begin(), c.end(), p);
        return d.values()[std::min(static_cast<std::size_t>(it - c.begin()), c.size() - 1)];
    }
    default:
        if (p == 1.0) return std::numeric_limits<double>::infinity();
        return detail::with_boost(d, [p](const auto& b) { return boost::math::quantile(b, p); });
    }
}

/// The t with P(T > t) = q (the complement quantile, accurate for small q).
template <class = void>
[[nodiscard]] double survival_quantile(const dwell_distribution& d, double q) {
    detail::require_probability("survival_quantile", q);
    if (!detail::is_continuous(d)) return quantile(d, 1.0 - q);
    if (q == 0.0) return std::numeric_limits<double>::infinity();
    return detail::with_boost(
        d, [q](const auto& b) { return boost::math::quantile(boost::math::complement(b, q)); });
}

template <class = void>
[[nodiscard]] double mean(const dwell_distribution& d) noexcept { return d.mean(); }
template <class = void>
[[nodiscard]] double variance(const dwell_distribution& d) noexcept { return d.sd() * d.sd(); }

/// log P(T > u), finite wherever T > u is possible: exact for the exponential and Weibull
/// families, in log space for the gamma (Legendre's continued fraction of Γ(k, x)) and
/// lognormal (the asymptotic series of erfc) families where the survival underflows;
/// −inf past the end of a bounded support (fixed, empirical); 0 for u <= 0.
template <class = void>
[[nodiscard]] double log_survival(const dwell_distribution& d, double u) {
    if (!(u > 0.0)) return 0.0;
    switch (d.family()) {
    case dwell_family::exponential: return -u / d.mean();
    case dwell_family::weibull: return -std::pow(u / d.scale(), d.shape());
    case dwell_family::gamma:
        if (std::isinf(u)) return -std::numeric_limits<double>::infinity();
        return detail::log_gamma_q(d.shape(), u / d.scale());
    case dwell_family::lognormal:
        if (std::isinf(u)) return -std::numeric_limits<double>::infinity();
        return detail::log_half_erfc((std::log(u) - d.log_mu()) / (d.log_sigma() * 1.4142135623730951));
    default: {
        const double s = survival(d, u);
        return s > 0.0 ? std::log(s) : -std::numeric_limits<double>::infinity();
    }
    }
}

namespace detail {
/// log of the density of a gamma or lognormal at u > 0 (finite where the density underflows).
template <class = void>
[[nodiscard]] double log_pdf_far(const dwell_distribution& d, double u) {
    if (d.family() == dwell_family::gamma) {
        const double k = d.shape(), th = d.scale(), x = u / th;
        return (k - 1.0) * std::log(x) - x - boost::math::lgamma(k, boost_policy{}) - std::log(th);
    }
    PIPECAST_ASSERT(d.family() == dwell_family::lognormal);
    const double z = (std::log(u) - d.log_mu()) / d.log_sigma();
    return -0.5 * z * z - std::log(u * d.log_sigma() * 2.5066282746310002);
}

/// The hazard f(u)/S(u) of a gamma or lognormal in its far tail (S(u) < 1e-200). Gamma:
/// 1/(θ x h(k, x)), x = u/θ (Γ(k, x) = e^{-x} x^k h(k, x): no cancellation of the two
/// e^{-x}, which would lose every digit at x ~ 1e19); lognormal: the log-density minus the
/// log-survival (both about −z²/2, moderate at any double age).
template <class = void>
[[nodiscard]] double far_hazard(const dwell_distribution& d, double u) {
    if (d.family() == dwell_family::gamma) {
        const double x = u / d.scale();
        return 1.0 / (d.scale() * x * upper_gamma_fraction(d.shape(), x));
    }
    return std::exp(log_pdf_far(d, u) - log_survival(d, u));
}

/// log S(a + t) − log S(a) of a gamma or lognormal in its far tail, without cancellation
/// for the gamma: −u + k log1p(u/x) + log(h(k, x + u)/h(k, x)), x = a/θ, u = t/θ.
template <class = void>
[[nodiscard]] double far_log_ratio(const dwell_distribution& d, double a, double t, double log_s_a) {
    if (d.family() == dwell_family::gamma) {
        const double th = d.scale(), k = d.shape(), x = a / th, u = t / th;
        if (std::isinf(u)) return -std::numeric_limits<double>::infinity();
        return -u + k * std::log1p(u / x) + std::log(upper_gamma_fraction(k, x + u) / upper_gamma_fraction(k, x));
    }
    return log_survival(d, a + t) - log_s_a;
}
} // namespace detail

/// The distribution of the remaining dwell T - a given T > a, for a deal of age a.
///
/// Ages at or beyond the end of the support (survival(d, a) == 0 for a fixed or empirical
/// dwell already exceeded) give a residual that is 0 with certainty: the deal is overdue
/// and leaves at once. Unbounded families are never overdue: the exponential residual is
/// the distribution itself (memoryless), the Weibull residual has a closed form valid at
/// any age, and a gamma or lognormal deal whose survival is below 1e-200 (the far tail,
/// e.g. a gamma(2, mean 3) at age 2000, where S(a) underflows) is computed in log space:
/// log_survival differences, a safeguarded Newton solve for the quantile, and the tail
/// forms of the mean (a gamma residual tends to the exponential of mean θ).
///
/// Holds a pointer to `d`: the distribution must outlive the residual, so temporaries are
/// refused at compile time (the rvalue overloads are deleted).
class residual_dwell {
public:
    /// @throws argument_error if age is negative or not finite.
    template <class = void>
    residual_dwell(const dwell_distribution& d, double age) : d_(&d), age_(age) {
        if (!(std::isfinite(age) && age >= 0.0))
            throw argument_error(detail::message("residual: age must be finite and >= 0, got ", age));
        surv_age_ = age == 0.0 ? 1.0 : survival(d, age);
        far_ = surv_age_ < 1e-200 && (d.family() == dwell_family::gamma || d.family() == dwell_family::lognormal);
        log_surv_age_ = far_ ? log_survival(d, age) : std::log(surv_age_);
    }
    /// A residual of a temporary would dangle: refused.
    residual_dwell(const dwell_distribution&& d, double age) = delete;
    [[nodiscard]] const dwell_distribution& base() const noexcept { return *d_; }
    [[nodiscard]] double age() const noexcept { return age_; }
    /// P(T > age) under the base distribution (0 where it underflows; see log_survival_at_age).
    [[nodiscard]] double survival_at_age() const noexcept { return surv_age_; }
    /// log P(T > age), finite in the far tail of the gamma and lognormal families.
    [[nodiscard]] double log_survival_at_age() const noexcept { return log_surv_age_; }
    /// True for a gamma or lognormal age whose survival is below 1e-200: computed in log space.
    [[nodiscard]] bool far_tail() const noexcept { return far_; }
    /// True when the age is past the support of a bounded (fixed or empirical) dwell: the
    /// residual is 0.
    [[nodiscard]] bool overdue() const noexcept {
        return surv_age_ <= 0.0 && (d_->family() == dwell_family::fixed || d_->family() == dwell_family::empirical);
    }

private:
    const dwell_distribution* d_;
    double age_;
    double surv_age_;
    double log_surv_age_ = 0.0;
    bool far_ = false;
};

/// Residual distribution of `d` at `age` (keeps a reference to d, which must outlive it).
template <class = void>
[[nodiscard]] residual_dwell residual(const dwell_distribution& d, double age) {
    return residual_dwell(d, age);
}
/// Refused: the residual would keep a pointer to the temporary.
residual_dwell residual(const dwell_distribution&& d, double age) = delete;

/// P(T - a > t | T > a).
template <class = void>
[[nodiscard]] double survival(const residual_dwell& r, double t) {
    detail::require_time("survival(residual)", "t", t);
    if (t < 0.0) return 1.0;
    const auto& d = r.base();
    if (d.family() == dwell_family::exponential) return survival(d, t);
    if (r.overdue()) return 0.0;
    if (d.family() == dwell_family::weibull) {
        // exp(x_a - x_{a+t}) with x_u = (u/λ)^k. For t <= a the difference cancels: write it
        // as x_a ((1 + t/a)^k - 1); for t > a, x_{a+t} >= 2^k x_a and the plain form is exact.
        const double k = d.shape(), lam = d.scale(), a = r.age();
        if (t > a) return std::exp(std::pow(a / lam, k) - std::pow((a + t) / lam, k));
        return std::exp(-std::pow(a / lam, k) * std::expm1(k * std::log1p(t / a)));
    }
    if (r.far_tail()) return std::min(1.0, std::exp(detail::far_log_ratio(d, r.age(), t, r.log_survival_at_age())));
    return std::min(1.0, survival(d, r.age() + t) / r.survival_at_age());
}

/// P(T - a <= t | T > a).
template <class = void>
[[nodiscard]] double cdf(const residual_dwell& r, double t) {
    return t < 0.0 ? 0.0 : 1.0 - survival(r, t);
}

/// Residual density (mass for the discrete families).
template <class = void>
[[nodiscard]] double pdf(const residual_dwell& r, double t) {
    detail::require_time("pdf(residual)", "t", t);
    const auto& d = r.base();
    if (d.family() == dwell_family::exponential) return pdf(d, t);
    if (r.overdue()) return t == 0.0 ? 1.0 : 0.0;
    if (t < 0.0) return 0.0;
    if (d.family() == dwell_family::weibull && r.age() > 0.0) {
        // hazard at a + t times the residual survival (no 0/0 at large ages)
        const double k = d.shape(), lam = d.scale();
        return k / lam * std::pow((r.age() + t) / lam, k - 1.0) * survival(r, t);
    }
    if (r.far_tail()) {
        if (std::isinf(t)) return 0.0;
        return detail::far_hazard(d, r.age() + t) * survival(r, t);
    }
    return pdf(d, r.age() + t) / r.survival_at_age();
}

namespace detail {
/// The far-tail residual quantile: t >= 0 with log S(a + t) = log S(a) + log(1 − p), by
/// Newton steps on the log survival (slope −hazard) inside a bracket kept by bisection.
template <class = void>
[[nodiscard]] double far_residual_quantile(const residual_dwell& r, double p) {
    const auto& d = r.base();
    const double a = r.age(), target = std::log1p(-p), ls = r.log_survival_at_age();
    auto f = [&](double t) { return far_log_ratio(d, a, t, ls) - target; }; // decreasing in t
    auto hazard = [&](double t) { return far_hazard(d, a + t); };
    double lo = 0.0, hi = -std::log1p(-p) / hazard(0.0); // the exponential guess
    if (!(hi > 0.0)) return 0.0;
    for (int i = 0; i < 2000 && f(hi) > 0.0; ++i) {
        lo = hi;
        hi *= 2.0;
    }
    double t = 0.5 * (lo + hi);
    for (int i = 0; i < 200 && hi - lo > 4e-16 * hi; ++i) {
        const double v = f(t);
        if (v == 0.0) return t;
        if (v > 0.0) lo = t;
        else hi = t;
        double next = t + v / hazard(t);
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        if (std::abs(next - t) <= 1e-15 * t) return next;
        t = next;
    }
    return t;
}
} // namespace detail

/// Quantile of the residual dwell: closed form for the exponential and Weibull families,
/// the base distribution's complement quantile otherwise (no root finding of our own),
/// except in the far tail of a gamma or lognormal (a log-space Newton solve).
template <class = void>
[[nodiscard]] double quantile(const residual_dwell& r, double p) {
    detail::require_probability("quantile(residual)", p);
    const auto& d = r.base();
    if (d.family() == dwell_family::exponential) return quantile(d, p);
    if (r.overdue()) return 0.0;
    const double a = r.age();
    switch (d.family()) {
    case dwell_family::weibull: {
        // x_{a+t} = x_a + c with c = -log(1 - p): t = λ (x_a + c)^{1/k} - a, which cancels
        // when x_a >> c; then t = a ((1 + c/x_a)^{1/k} - 1) is computed with expm1/log1p.
        const double k = d.shape(), lam = d.scale();
        if (p == 1.0) return std::numeric_limits<double>::infinity();
        const double c = -std::log1p(-p), x = std::pow(a / lam, k);
        if (x <= c) return std::max(0.0, lam * std::pow(x + c, 1.0 / k) - a);
        return a * std::expm1(std::log1p(c / x) / k);
    }
    case dwell_family::fixed: return d.mean() - a;
    case dwell_family::empirical: {
        if (a == 0.0) return quantile(d, p); // age 0 is the distribution itself, mass at 0 included
        const auto c = d.cumulative();
        const double below = cdf(d, a); // mass at or below the age
        const double target = below + p * (1.0 - below);
        const std::size_t first = detail::first_above(d, a);
        const auto it = std::lower_bound(c.begin() + static_cast<std::ptrdiff_t>(first), c.end(),
                                         target - 1e-15);
        const std::size_t i = std::min(static_cast<std::size_t>(it - c.begin()), c.size() - 1);
        return d.values()[i] - a;
    }
    default:
        if (a == 0.0) return quantile(d, p);
        if (r.far_tail()) {
            if (p == 1.0) return std::numeric_limits<double>::infinity();
            if (p == 0.0) return 0.0;
            return detail::far_residual_quantile(r, p);
        }
        return std::max(0.0, survival_quantile(d, r.survival_at_age() * (1.0 - p)) - a);
    }
}

/// Mean remaining dwell E[T - a | T > a]. Closed forms (incomplete gamma, normal tail) for
/// every family; in the far tail of a gamma, the continued fraction of Γ(k, x) (the mean
/// tends to θ), of a lognormal, the ratio of the normal tails in log space.
template <class = void>
[[nodiscard]] double mean(const residual_dwell& r) {
    const auto& d = r.base();
    const double a = r.age();
    if (d.family() == dwell_family::exponential || a == 0.0) return d.mean();
    if (r.overdue()) return 0.0;
    const double s = r.survival_at_age();
    switch (d.family()) {
    case dwell_family::gamma: {
        // E[T 1{T>a}] = k θ Q(k+1, a/θ)
        const double k = d.shape(), th = d.scale();
        if (r.far_tail()) return th * detail::gamma_residual_mean_ratio(k, a / th); // no cancellation
        const double q1 = boost::math::gamma_q(k + 1.0, a / th, detail::boost_policy{});
        return k * th * q1 / s - a;
    }
    case dwell_family::lognormal: {
        // E[T 1{T>a}] = e^{μ+σ²/2} Φ((μ + σ² − ln a)/σ)
        const double mu = d.log_mu(), sg = d.log_sigma();
        const double z = (mu + sg * sg - std::log(a)) / sg;
        if (r.far_tail()) { // the ratio of the two normal tails in log space
            const double l = std::log(d.mean()) + detail::log_half_erfc(-z / std::sqrt(2.0)) - r.log_survival_at_age();
            return std::max(0.0, std::exp(l) - a);
        }
        return d.mean() * 0.5 * std::erfc(-z / std::sqrt(2.0)) / s - a;
    }
    case dwell_family::weibull: {
        // E[T − a | T > a] = λ e^{x} Γ(1 + 1/k, x) − a = (λ/k) e^{x} Γ(1/k, x), x = (a/λ)^k;
        // the second form has no cancellation and stays finite at any age.
        const double k = d.shape(), lam = d.scale();
        const double x = std::pow(a / lam, k);
        return lam / k * detail::scaled_upper_gamma(1.0 / k, x);
    }
    case dwell_family::fixed: return d.mean() - a;
    case dwell_family::empirical:
    default: {
        const auto v = d.values();
        const auto c = d.cumulative();
        double acc = 0.0;
        for (std::size_t i = detail::first_above(d, a); i < v.size(); ++i)
            acc += (c[i] - (i == 0 ? 0.0 : c[i - 1])) * (v[i] - a);
        return acc / s;
    }
    }
}

} // namespace pipecast
