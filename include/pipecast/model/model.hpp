// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model/model.hpp
/// @brief A whole pipeline model: the stage graph plus deal sizes, arrivals and metadata.

#include <pipecast/error.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <boost/math/distributions/lognormal.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// The distribution of deal amounts: lognormal (a median and the sigma of log(amount)) or
/// empirical (observed amounts with weights, resampled: the default of a model fitted from
/// history, since real amounts come from a price list with discounts, not a lognormal).
/// Both forms answer mean() and quantile(p); a simulator draws an amount as quantile(u) for
/// u uniform in [0, 1) (for the empirical form: value i with probability weights()[i]).
class deal_size_distribution {
public:
    /// The largest amount a deal size may give (lognormal: at 6.5 sigma, beyond the simulator's
    /// largest uniform 1 − 2⁻³³): sums of amounts over a run's deal-paths, and their squares,
    /// stay finite (a median of 1e300 gave an infinite sd of the won value).
    static constexpr double max_amount = 1e100;
    /// Lognormal. @throws model_error unless median > 0 and sigma >= 0, both finite, and
    ///   median · e^(6.5 sigma) <= max_amount.
    deal_size_distribution(double median, double sigma) : median_(median), sigma_(sigma) {
        if (!(std::isfinite(median) && median > 0.0))
            throw model_error(detail::message("deal_size: median must be positive and finite, got ", median));
        if (!(std::isfinite(sigma) && sigma >= 0.0))
            throw model_error(detail::message("deal_size: sigma must be finite and >= 0, got ", sigma));
        if (!std::isfinite(median * std::exp(0.5 * sigma * sigma)))
            throw model_error(detail::message("deal_size: median ", median, " with sigma ", sigma,
                                              " gives an infinite mean"));
        if (!(std::log(median) + 6.5 * sigma <= std::log(max_amount)))
            throw model_error(detail::message("deal_size: median ", median, " with sigma ", sigma,
                                              " gives amounts (at 6.5 sigma) above ", max_amount));
    }
    /// Lognormal (the constructor, named).
    static deal_size_distribution lognormal(double median, double sigma) { return {median, sigma}; }
    /// Empirical: amount values[i] with probability weights[i] / Σ weights. Equal values are
    /// merged; the values are kept sorted. Weights summing to 1 within 1e-12 are kept as
    /// given (so a model written and read back compares equal), else normalised.
    /// @throws model_error on empty input, a size mismatch, a value not positive and finite,
    ///   a weight negative or not finite, or weights summing to 0.
    /// Example: `deal_size_distribution::empirical({1200, 3500, 8000}, {0.5, 0.3, 0.2})`.
    template <class = void>
    static deal_size_distribution empirical(std::vector<double> values, std::vector<double> weights) {
        if (values.empty()) throw model_error("deal_size: an empirical distribution needs at least one value");
        if (values.size() != weights.size())
            throw model_error(detail::message("deal_size: ", values.size(), " values but ", weights.size(), " weights"));
        std::vector<std::size_t> order(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) {
            order[i] = i;
            if (!(std::isfinite(values[i]) && values[i] > 0.0 && values[i] <= max_amount))
                throw model_error(detail::message("deal_size: value ", i, " must be positive and at most ", max_amount,
                                                  ", got ", values[i]));
            if (!(std::isfinite(weights[i]) && weights[i] >= 0.0))
                throw model_error(detail::message("deal_size: weight ", i, " must be finite and >= 0, got ", weights[i]));
        }
        std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return values[x] < values[y]; });
        deal_size_distribution d(1.0, 0.0);
        double total = 0.0;
        for (std::size_t i : order) {
            if (weights[i] == 0.0) continue;
            if (!d.values_.empty() && d.values_.back() == values[i]) {
                d.weights_.back() += weights[i];
            } else {
                d.values_.push_back(values[i]);
                d.weights_.push_back(weights[i]);
            }
            total += weights[i];
        }
        if (!(total > 0.0 && std::isfinite(total))) throw model_error("deal_size: the weights sum to zero");
        if (std::abs(total - 1.0) > 1e-12)
            for (double& w : d.weights_) w /= total;
        d.cumulative_.resize(d.weights_.size());
        double acc = 0.0, m = 0.0, lm = 0.0;
        for (std::size_t i = 0; i < d.weights_.size(); ++i) {
            acc += d.weights_[i];
            d.cumulative_[i] = acc;
            m += d.weights_[i] * d.values_[i];
            lm += d.weights_[i] * std::log(d.values_[i]);
        }
        acc = 0.0;
        for (std::size_t i = 0; i < d.weights_.size(); ++i) {
            const double u = std::log(d.values_[i]) - lm;
            acc += d.weights_[i] * u * u;
        }
        d.mean_ = m;
        d.median_ = d.quantile(0.5);
        d.sigma_ = std::sqrt(acc);
        return d;
    }

    /// True for the empirical form.
    [[nodiscard]] bool is_empirical() const noexcept { return !values_.empty(); }
    /// Empirical form: the distinct amounts, increasing (empty for the lognormal form).
    [[nodiscard]] std::span<const double> values() const noexcept { return values_; }
    /// Empirical form: the probability of each value (summing to 1).
    [[nodiscard]] std::span<const double> weights() const noexcept { return weights_; }
    /// The median amount (lognormal: the parameter; empirical: quantile(0.5)).
    [[nodiscard]] double median() const noexcept { return median_; }
    /// Sigma of log(amount) (lognormal: the parameter; empirical: the weighted standard
    /// deviation of the log values, a lognormal summary).
    [[nodiscard]] double sigma() const noexcept { return sigma_; }
    /// The mu of log(amount): log(median) for the lognormal form, the weighted mean of the log
    /// values for the empirical form.
    [[nodiscard]] double log_mu() const noexcept {
        if (!is_empirical()) return std::log(median_);
        double lm = 0.0;
        for (std::size_t i = 0; i < values_.size(); ++i) lm += weights_[i] * std::log(values_[i]);
        return lm;
    }
    /// E[amount]: median · exp(sigma² / 2) (lognormal) or Σ w_i v_i (empirical).
    [[nodiscard]] double mean() const noexcept { return is_empirical() ? mean_ : median_ * std::exp(0.5 * sigma_ * sigma_); }
    /// The amount at cumulative probability p: the lognormal quantile, or for the empirical
    /// form the value i with cumulative_{i-1} <= p < cumulative_i (so quantile(u) for u
    /// uniform in [0, 1) resamples the values with their weights).
    /// @throws argument_error unless 0 <= p < 1.
    template <class = void>
    [[nodiscard]] double quantile(double p) const {
        if (!(p >= 0.0 && p < 1.0))
            throw argument_error(detail::message("deal_size quantile: p must be in [0, 1), got ", p));
        if (is_empirical()) {
            const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), p);
            return values_[std::min(static_cast<std::size_t>(it - cumulative_.begin()), values_.size() - 1)];
        }
        if (sigma_ == 0.0 || p == 0.0) return p == 0.0 && sigma_ > 0.0 ? 0.0 : median_;
        return boost::math::quantile(boost::math::lognormal_distribution<double, detail::boost_policy>(log_mu(), sigma_), p);
    }
    friend bool operator==(const deal_size_distribution&, const deal_size_distribution&) = default;

private:
    double median_;
    double sigma_;
    double mean_ = 0.0;              ///< empirical only
    std::vector<double> values_;     ///< empirical only: sorted distinct amounts
    std::vector<double> weights_;    ///< empirical only: their probabilities
    std::vector<double> cumulative_; ///< empirical only: running sums of weights_
};

/// New deals entering `stage` as a Poisson process. The rate is `rate` deals per time unit,
/// or, when `period_rates` is not empty, period_rates[k % size] during the k-th period of
/// length `period` (seasonality).
struct arrival_process {
    std::size_t stage = 0;
    double rate = 0.0;
    double period = 0.0;
    std::vector<double> period_rates;

    /// Arrival rate at time t (the seasonal pattern repeats in both directions of time).
    [[nodiscard]] double rate_at(double t) const noexcept {
        if (period_rates.empty()) return rate;
        const auto n = static_cast<long long>(period_rates.size());
        const auto k = static_cast<long long>(std::floor(t / period));
        return period_rates[static_cast<std::size_t>(((k % n) + n) % n)];
    }
    /// Expected number of arrivals in [0, t].
    /// O(min(t / period, periods)): beyond a million periods the whole cycles of the pattern
    /// are summed in closed form (a tiny period or a huge t must not loop t / period times).
    [[nodiscard]] double expected_count(double t) const noexcept {
        if (period_rates.empty()) return rate * t;
        double n = 0.0, s = 0.0;
        if (!(t / period <= 1e6)) { // whole cycles at the mean rate, then the last partial cycle
            double total = 0.0;
            for (double r : period_rates) total += r;
            const double cycle = period * static_cast<double>(period_rates.size());
            if (!std::isfinite(t) || !std::isfinite(cycle)) return total > 0.0 && t > 0.0 ? t : 0.0;
            s = t - std::fmod(t, cycle);
            n = s * (total / static_cast<double>(period_rates.size()));
            for (std::size_t k = 0; k < period_rates.size() && s < t; ++k, s += period)
                n += period_rates[k] * (std::min(t, s + period) - s);
            return n;
        }
        for (std::size_t k = 0; s < t; ++k, s += period) // NOLINT(cert-flp30-c): at most 1e6 periods
            n += period_rates[k % period_rates.size()] * (std::min(t, s + period) - s);
        return n;
    }
    /// @throws model_error on a negative or non-finite rate, or seasonality without a period.
    void validate(const stage_graph& g) const {
        if (!g.is_open(stage)) throw model_error("arrivals: the entry stage must be an open stage");
        if (!period_rates.empty() && !(std::isfinite(period) && period > 0.0))
            throw model_error(detail::message("arrivals: seasonal rates need a positive period, got ", period));
        for (std::size_t k = 0; k < period_rates.size(); ++k) // before `rate`, often their average
            if (!(std::isfinite(period_rates[k]) && period_rates[k] >= 0.0))
                throw model_error(detail::message("arrivals: rate of period ", k, " must be finite and >= 0, got ",
                                                  period_rates[k]));
        if (!(std::isfinite(rate) && rate >= 0.0))
            throw model_error(detail::message("arrivals: rate must be finite and >= 0, got ", rate));
    }
    friend bool operator==(const arrival_process&, const arrival_process&) = default;
};

/// Length of one model time unit in days ("day", "week", "month", "quarter", "year", "hour").
/// @throws model_error for another unit.
template <class = void>
[[nodiscard]] double days_per_unit(std::string_view unit) {
    if (unit == "day" || unit == "days") return 1.0;
    if (unit == "week" || unit == "weeks") return 7.0;
    if (unit == "month" || unit == "months") return 365.2425 / 12.0;
    if (unit == "quarter" || unit == "quarters") return 365.2425 / 4.0;
    if (unit == "year" || unit == "years") return 365.2425;
    if (unit == "hour" || unit == "hours") return 1.0 / 24.0;
    throw model_error(detail::message("unknown time_unit '", unit, "' (day, week, month, quarter, year, hour)"));
}

/// A complete pipeline model. Aggregate of validated parts; treat as immutable once built.
struct model {
    stage_graph graph;
    std::optional<deal_size_distribution> deal_size;
    std::optional<arrival_process> arrivals;
    std::string name;
    std::string description;
    std::string time_unit = "day";
    std::string currency;
    /// σ of the per-period log-odds shock on forward conversion (overdispersion: how much
    /// period-level win rates vary beyond independent deals). Estimated by fit; simulate
    /// uses it by default for models that carry it. 0 = independent deals.
    double overdispersion = 0.0;
    /// Per open stage (funnel order), σ_i of the same per-period shock on stage i's forward
    /// conversion: one market shock Z moves stage i's log-odds by σ_i Z. Empty: every stage
    /// uses `overdispersion`. fit estimates it stage by stage (a stage whose decisions vary
    /// no more than binomially gets 0), so a shock on one stage's win/lose split is not
    /// applied to the whole funnel.
    std::vector<double> stage_overdispersion = {};

    /// σ of the shock for every open stage: stage_overdispersion, or `overdispersion` for all.
    [[nodiscard]] std::vector<double> overdispersion_by_stage() const {
        if (!stage_overdispersion.empty()) return stage_overdispersion;
        return std::vector<double>(graph.open_count(), overdispersion);
    }
    /// True if the model carries any shock.
    [[nodiscard]] bool overdispersed() const noexcept {
        if (overdispersion > 0.0) return true;
        for (double s : stage_overdispersion)
            if (s > 0.0) return true;
        return false;
    }

    friend bool operator==(const model&, const model&) = default;
};

} // namespace pipecast
