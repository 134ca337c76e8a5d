// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast/results.hpp
/// @brief The forecasts' result types: the weighted, period and age-aware forecasts, by
/// stage, owner and category (forecast.hpp computes them).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------
// Result types
// ---------------------------------------------------------------------------------------

/// One open stage's line of a weighted forecast.
struct stage_forecast {
    std::string stage;            ///< open stage name
    std::size_t count = 0;        ///< deals in the stage
    double amount = 0.0;          ///< Σ amount
    double win_probability = 0.0; ///< the model's P(eventually won | stage)
    double weighted = 0.0;        ///< Σ amount × probability (the deal's override where it has one)
    std::size_t overridden = 0;   ///< deals whose override replaced win_probability
};

/// One group's line of a weighted forecast (an owner or a forecast category).
struct group_forecast {
    std::string key;            ///< owner or category; "" for deals without one
    std::size_t count = 0;      ///< deals in the group
    double amount = 0.0;        ///< Σ amount
    double weighted = 0.0;      ///< Σ amount × probability
    std::size_t overridden = 0; ///< deals using a probability override
};

/// The weighted forecast of a book: Σ amount × P(win), in total and broken down.
/// The by_stage, by_owner and by_category lines each sum to the totals.
struct weighted_forecast_result {
    std::size_t count = 0;       ///< deals in the book
    double total_amount = 0.0;   ///< Σ amount
    double weighted_total = 0.0; ///< Σ amount × probability
    std::size_t overridden = 0;  ///< deals using a probability override
    std::string currency;        ///< the book's currency ("" when the book names none)
    std::vector<stage_forecast> by_stage;    ///< every open stage, in funnel order (empty stages included)
    std::vector<group_forecast> by_owner;    ///< owners in order of first appearance in the book
    std::vector<group_forecast> by_category; ///< categories in order of first appearance in the book
};

/// How a period forecast was (or is to be) computed.
enum class period_method {
    automatic,    ///< options only: markov_exact when every dwell is exponential, else renewal
    markov_exact, ///< matrix exponential of the CTMC generator (exact; age is irrelevant)
    renewal       ///< renewal-equation table (first_passage.hpp) on an age lattice
};

/// Name of a period method ("automatic", "markov_exact", "renewal").
[[nodiscard]] constexpr std::string_view to_string(period_method m) noexcept {
    switch (m) {
    case period_method::automatic: return "automatic";
    case period_method::markov_exact: return "markov_exact";
    case period_method::renewal: return "renewal";
    }
    return "?";
}

/// Options of period_forecast.
struct period_forecast_options {
    /// Method; automatic picks markov_exact for all-exponential models.
    period_method method = period_method::automatic;
    /// Grid steps K of the renewal table over the horizon (0: automatic, see
    /// win_time_distribution). The step Δ = horizon / K is also the age lattice spacing.
    std::size_t steps = 0;
    /// Fill period_forecast_result::deal_probability.
    bool per_deal = false;
};

/// One open stage's line of a period forecast.
struct stage_period_forecast {
    std::string stage;     ///< open stage name
    std::size_t count = 0; ///< deals in the stage
    double amount = 0.0;   ///< Σ amount
    double expected = 0.0; ///< Σ amount × P(win within the horizon)
};

/// One group's line of a period forecast (an owner or a forecast category).
struct group_period_forecast {
    std::string key;       ///< owner or category; "" for deals without one
    std::size_t count = 0; ///< deals in the group
    double amount = 0.0;   ///< Σ amount
    double expected = 0.0; ///< Σ amount × P(win within the horizon)
};

/// The period forecast of a book: the value expected to be won within the horizon.
struct period_forecast_result {
    double horizon = 0.0;      ///< h, in the model's time unit
    period_method method = period_method::renewal; ///< markov_exact or renewal
    double step = 0.0;         ///< Δ of the renewal grid and age lattice; 0 for markov_exact
    std::size_t count = 0;     ///< deals in the book
    double total_amount = 0.0; ///< Σ amount
    double expected = 0.0;     ///< Σ amount × P(win within h)
    /// Estimated bound on |error| of `expected` due to the linear interpolation in the age
    /// (money; 0 for markov_exact). It does not include the renewal table's own O(Δ²)
    /// discretisation error (docs/forecast.md).
    double error_estimate = 0.0;
    /// The largest per-deal interpolation error estimate (probability units).
    double max_deal_error = 0.0;
    std::string currency;      ///< the book's currency ("" when the book names none)
    std::vector<stage_period_forecast> by_stage;    ///< every open stage, funnel order
    std::vector<group_period_forecast> by_owner;    ///< order of first appearance
    std::vector<group_period_forecast> by_category; ///< order of first appearance
    /// P(win within h) per deal, in book order (only with period_forecast_options::per_deal).
    std::vector<double> deal_probability;
};

/// Options of age_aware_forecast.
struct age_aware_options {
    /// A deal counts as likely stalled when P(stalled | stage, age) >= this, in (0, 1].
    double stalled_threshold = 0.5;
    /// Fill the per-deal vectors of the result.
    bool per_deal = false;
};

/// One open stage's line of the age-aware forecast, next to the CRM-style weighted line.
struct stage_age_forecast {
    std::string stage;               ///< open stage name
    std::size_t count = 0;           ///< deals in the stage
    double amount = 0.0;             ///< Σ amount
    double win_probability = 0.0;    ///< CRM-style P(win | stage): the stage's rate at entry (age 0)
    double weighted = 0.0;           ///< CRM-style Σ amount × P(win | stage) (override where given)
    double age_weighted = 0.0;       ///< age-aware Σ amount × P(win | stage, age) (override where given)
    double expected_stalled = 0.0;   ///< Σ P(stalled | stage, age): expected number of stalled deals
    double stalled_amount = 0.0;     ///< Σ amount × P(stalled | stage, age)
    std::size_t likely_stalled = 0;  ///< deals with P(stalled | stage, age) >= the threshold
    double likely_stalled_amount = 0.0; ///< their Σ amount
    std::size_t overridden = 0;      ///< deals using a probability override
};

/// One group's line of the age-aware forecast (an owner or a forecast category).
struct group_age_forecast {
    std::string key;                 ///< owner or category; "" for deals without one
    std::size_t count = 0;
    double amount = 0.0;
    double weighted = 0.0;           ///< CRM-style Σ amount × P(win | stage)
    double age_weighted = 0.0;       ///< age-aware Σ amount × P(win | stage, age)
    double expected_stalled = 0.0;   ///< Σ P(stalled | stage, age)
    std::size_t likely_stalled = 0;  ///< deals with P(stalled) >= the threshold
    double likely_stalled_amount = 0.0;
};

/// The age-aware weighted forecast Σ amount × P(win eventually | stage, age) of a book,
/// reported next to the CRM-style Σ amount × P(win | stage) (which ignores how long a deal
/// has sat in its stage), with the stalled deals the model sees. Lines sum to the totals.
/// For a model without branched stages both forecasts are equal and nothing is stalled.
struct age_aware_forecast_result {
    std::size_t count = 0;
    double total_amount = 0.0;
    double weighted_total = 0.0;        ///< CRM-style Σ amount × P(win | stage)
    double age_weighted_total = 0.0;    ///< age-aware Σ amount × P(win | stage, age)
    double expected_stalled = 0.0;      ///< Σ P(stalled | stage, age)
    double stalled_amount = 0.0;        ///< Σ amount × P(stalled | stage, age)
    std::size_t likely_stalled = 0;     ///< deals with P(stalled | stage, age) >= stalled_threshold
    double likely_stalled_amount = 0.0;
    double stalled_threshold = 0.5;
    std::size_t overridden = 0;
    std::string currency;
    std::vector<stage_age_forecast> by_stage;    ///< every open stage, funnel order
    std::vector<group_age_forecast> by_owner;    ///< order of first appearance
    std::vector<group_age_forecast> by_category; ///< order of first appearance
    std::vector<double> deal_win_probability;     ///< per deal P(win | stage, age) (override where given), with per_deal
    std::vector<double> deal_stalled_probability; ///< per deal P(stalled | stage, age), with per_deal
};

/// One week's position for the sales-progress measure.
struct week_position {
    double forecast = 0.0;   ///< the week's weighted forecast of the open book
    double closed_won = 0.0; ///< cumulative closed-won value in the period up to that week
};

/// Sales progress (销售进展) from last week to this week.
struct sales_progress_result {
    double last_week = 0.0;      ///< last week's forecast + closed-won
    double this_week = 0.0;      ///< this week's forecast + closed-won
    double progress = 0.0;       ///< this_week − last_week
    double quota = 0.0;          ///< the period quota
    double share_of_quota = 0.0; ///< progress / quota
    double steady_share = 0.0;   ///< 1 / weeks_in_period: the share a steady week adds (1/13 a quarter)
    double pace = 0.0;           ///< share_of_quota / steady_share (1 = on pace)
};

// ---------------------------------------------------------------------------------------
// Internals

} // namespace pipecast
