// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model.hpp
/// @brief A whole pipeline model: the stage graph plus deal sizes, arrivals and metadata.

#include <pipecast/error.hpp>
#include <pipecast/stage_graph.hpp>

#include <boost/math/distributions/lognormal.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// Lognormal deal-size distribution given by its median and the sigma of log(amount).
class deal_size_distribution {
public:
    /// @throws model_error unless median > 0 and sigma >= 0, both finite.
    deal_size_distribution(double median, double sigma) : median_(median), sigma_(sigma) {
        if (!(std::isfinite(median) && median > 0.0))
            throw model_error(detail::message("deal_size: median must be positive and finite, got ", median));
        if (!(std::isfinite(sigma) && sigma >= 0.0))
            throw model_error(detail::message("deal_size: sigma must be finite and >= 0, got ", sigma));
    }
    [[nodiscard]] double median() const noexcept { return median_; }
    [[nodiscard]] double sigma() const noexcept { return sigma_; }
    /// log(median): the mu of log(amount).
    [[nodiscard]] double log_mu() const noexcept { return std::log(median_); }
    /// E[amount] = median · exp(sigma² / 2).
    [[nodiscard]] double mean() const noexcept { return median_ * std::exp(0.5 * sigma_ * sigma_); }
    /// The amount at cumulative probability p. @throws argument_error unless 0 <= p < 1.
    [[nodiscard]] double quantile(double p) const {
        if (!(p >= 0.0 && p < 1.0))
            throw argument_error(detail::message("deal_size quantile: p must be in [0, 1), got ", p));
        if (sigma_ == 0.0 || p == 0.0) return p == 0.0 && sigma_ > 0.0 ? 0.0 : median_;
        return boost::math::quantile(boost::math::lognormal_distribution<double, detail::boost_policy>(log_mu(), sigma_), p);
    }
    friend bool operator==(const deal_size_distribution&, const deal_size_distribution&) = default;

private:
    double median_;
    double sigma_;
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
    [[nodiscard]] double expected_count(double t) const noexcept {
        if (period_rates.empty()) return rate * t;
        double n = 0.0, s = 0.0;
        for (std::size_t k = 0; s < t; ++k, s += period)
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
[[nodiscard]] inline double days_per_unit(std::string_view unit) {
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

    friend bool operator==(const model&, const model&) = default;
};

} // namespace pipecast
