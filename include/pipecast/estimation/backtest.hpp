// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation/backtest.hpp
/// @brief Backtesting a forecast on a deal history: at each cut time, refit from the history
/// known then, forecast the deals open at the cut, and compare with what they actually did
/// within the horizon.
///
/// At a cut c with horizon h:
///  1. the history known at c: as_of(log, c) (visits after c censored at it, later deals
///     dropped), cleaned as asked (click-through visits merged, after-the-fact bookings
///     left out: history_view.hpp);
///  2. a model fitted from it (fit_history with the given options, then to_model), or, with
///     backtest_method::landmark, also a landmark table of P(won within h | stage, age);
///  3. the book of the deals open at c (book_at), forecast: per-deal P(won within h | stage,
///     age) (the model's period forecast, or the landmark table) and the distribution of the
///     won value and count (model: `simulate` with the model's estimated overdispersion as
///     its correlation shock; landmark: independent Bernoulli draws of the per-deal
///     probabilities under the same logit-normal per-path shock);
///  4. the actual: the deals of the book won within (c, c + h], from the full log, valued at
///     their amount at the cut (the quantity forecast).
/// Two baselines get the same errors: `crm_weighted`, the CRM weighted forecast
/// Σ amount × P(win | stage) of the fitted model (eventual wins, ignoring age and horizon),
/// and `roll_rate`, last period's win share by stage and age bucket (the deals open at
/// c − h and whether each was won by c) applied to the deals at the cut.
/// Overall: the mean absolute percentage error of the value, the share of cuts whose actual
/// lies in [P10, P90], the Brier score of the per-deal probabilities and a calibration table
/// (ten probability bins). See docs/backtest.md.

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/data/history_view.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/forecast/landmark.hpp>
#include <pipecast/forecast/nowcast.hpp>
#include <pipecast/kpi.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/simulation/detail/philox.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// How the backtest forecasts P(won within h | stage, age).
enum class backtest_method {
    model,   ///< the fitted model's period forecast and simulation
    landmark ///< the landmark table (landmark.hpp) fitted from the same cleaned history
};

[[nodiscard]] constexpr std::string_view to_string(backtest_method m) noexcept {
    return m == backtest_method::landmark ? "landmark" : "model";
}

/// Options of backtest().
struct backtest_options {
    std::vector<double> cuts;   ///< cut times in the log's time unit (see quarter_end_cuts)
    double horizon = 90.0;      ///< h > 0
    backtest_method method = backtest_method::model;
    std::optional<double> min_dwell;     ///< merge click-through visits shorter than this
    std::optional<double> after_the_fact; ///< leave out deals created and won within this
    fit_options fit;            ///< how each cut refits (model kind, window, half-life, ...)
    landmark_options landmark;  ///< the landmark method's options (horizon and won set by the backtest)
    std::size_t paths = 4000;   ///< simulated paths per cut (>= 1)
    std::uint64_t seed = 1;
    unsigned threads = 0;       ///< simulation threads (0: all cores); results do not depend on it
    bool per_deal = false;      ///< keep every open deal's prediction and outcome (backtest_cut::per_deal)
    /// Nowcast the current periods' shocks from the outcomes seen by the cut (nowcast.hpp)
    /// where the refit estimated overdispersion: the deals of a cohort that has started to
    /// decide get the posterior's P(won within h) (both methods); the model method's simulated
    /// distribution is shifted by the change of the expected value and count.
    bool nowcast = true;
    /// Age buckets (lower edges) of the roll-rate baseline.
    std::vector<double> roll_rate_edges = {0, 15, 30, 60, 90, 180, 365};
    /// Called after each cut with (cuts done, cuts in all).
    std::function<void(std::size_t, std::size_t)> progress;
};

/// A forecast distribution: mean and P10/P90.
struct backtest_interval {
    double mean = 0.0, p10 = 0.0, p90 = 0.0;
};

/// One open deal of a cut: what the method predicted for it and what it did.
struct backtest_deal {
    std::string id;      ///< the deal's id in the log
    std::string stage;   ///< its stage at the cut
    double age = 0.0;    ///< time in that stage at the cut
    double amount = 0.0;
    double p_win_within = 0.0; ///< the method's P(won within h | stage, age)
    bool won = false;          ///< won within h of the cut (from the full log)
};

/// One cut of a backtest.
struct backtest_cut {
    double cut = 0.0;
    std::size_t deals = 0;             ///< deals open at the cut (in stages the model knows)
    std::size_t skipped_deals = 0;     ///< open deals in stages the cut's model does not know
    backtest_interval predicted;       ///< won value within h
    backtest_interval predicted_count; ///< deals won within h
    double expected = 0.0;             ///< Σ amount × P(won within h) (exact; predicted.mean is simulated)
    double actual = 0.0;               ///< value of the book's deals won within h
    std::size_t actual_count = 0;
    double error = 0.0;                ///< predicted.mean − actual
    double relative_error = std::numeric_limits<double>::quiet_NaN(); ///< error / actual
    double crm_weighted = 0.0;         ///< the CRM weighted forecast of the book
    double roll_rate = std::numeric_limits<double>::quiet_NaN(); ///< the roll-rate forecast (NaN: no earlier period)
    double overdispersion = 0.0;       ///< σ of the shock the cut's model carried
    std::size_t merged_visits = 0;     ///< click-through visits merged (history known at the cut)
    std::size_t dropped_deals = 0;     ///< after-the-fact bookings left out
    double brier = 0.0;                ///< of the book's per-deal probabilities
    std::vector<backtest_deal> per_deal; ///< every open deal (filled when backtest_options::per_deal)
};

/// One bin of a calibration table.
struct calibration_bin {
    double lower = 0.0, upper = 0.0; ///< predicted probability in [lower, upper)
    std::size_t deals = 0;           ///< deal-cuts in the bin
    double mean_predicted = std::numeric_limits<double>::quiet_NaN();
    double observed = std::numeric_limits<double>::quiet_NaN(); ///< share won within h
    /// Standard error of `observed` were the deals independent and the predictions true:
    /// √(Σ p(1 − p)) / n. A gap of two or three of these is sampling noise, not miscalibration
    /// (deals of one quarter share its market conditions, so the real noise is larger).
    double standard_error = std::numeric_limits<double>::quiet_NaN();
};

/// Errors of one forecast over all cuts.
struct backtest_errors {
    double mape = std::numeric_limits<double>::quiet_NaN();       ///< mean |predicted − actual| / actual, value
    double count_mape = std::numeric_limits<double>::quiet_NaN(); ///< the same for the count
    double bias = std::numeric_limits<double>::quiet_NaN();       ///< mean (predicted − actual) / actual
    double brier = std::numeric_limits<double>::quiet_NaN();      ///< mean (p − won)² over deal-cuts
    std::size_t cuts = 0;                                         ///< cuts with an actual > 0 (in the MAPE)
    std::vector<calibration_bin> calibration;         ///< ten equal-width bins of the predicted probability
    std::vector<calibration_bin> calibration_deciles; ///< ten equal-count groups (deciles of risk)
};

/// A whole backtest.
struct backtest_result {
    backtest_method method = backtest_method::model;
    bool nowcast = false; ///< the cohorts' shocks were nowcast (backtest_options::nowcast)
    double horizon = 0.0;
    std::vector<backtest_cut> cuts;
    backtest_errors summary;      ///< the method's errors
    double coverage = std::numeric_limits<double>::quiet_NaN();       ///< share of cuts with P10 <= actual <= P90
    double count_coverage = std::numeric_limits<double>::quiet_NaN(); ///< the same for the count
    backtest_errors crm_weighted; ///< the CRM weighted forecast's errors
    backtest_errors roll_rate;    ///< the roll-rate baseline's errors (cuts with an earlier period)
    double elapsed_seconds = 0.0;
    bool dates = false;           ///< the log's times are dates (cuts print as dates)
    double days_per_unit = 1.0;
};

namespace detail {

/// Uniform in (0, 1) from a Philox word pair.
template <class = void>
[[nodiscard]] double unit_uniform(std::uint32_t a, std::uint32_t b) noexcept {
    const std::uint64_t x = (std::uint64_t{a} << 21) ^ (std::uint64_t{b} >> 11);
    return (static_cast<double>(x & ((std::uint64_t{1} << 53) - 1)) + 0.5) * 0x1p-53;
}

/// Won value and count over paths of independent Bernoulli(p_i) deals under a per-path
/// logit shock σ·Z: deal i is won in path k when U_ik < logistic(logit p_i + σ Z_k).
/// Philox streams keyed by the seed, counters (path, deal, stream).
template <class = void>
void bernoulli_paths(std::span<const double> p, std::span<const double> amount, double sigma, std::size_t paths,
                     std::uint64_t seed, std::uint32_t stream, std::vector<double>& value,
                     std::vector<double>& count) {
    const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    value.assign(paths, 0.0);
    count.assign(paths, 0.0);
    std::vector<double> logit(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
        const double q = std::clamp(p[i], 1e-12, 1.0 - 1e-12);
        logit[i] = std::log(q / (1.0 - q));
    }
    std::uint32_t r[4];
    for (std::size_t k = 0; k < paths; ++k) {
        double z = 0.0;
        if (sigma > 0.0) {
            philox4x32_10(static_cast<std::uint32_t>(k), 0xFFFFFFFFu, stream, 1, k0, k1, r);
            const double u1 = unit_uniform(r[0], r[1]), u2 = unit_uniform(r[2], r[3]);
            z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
        }
        for (std::size_t i = 0; i < p.size(); ++i) {
            if (p[i] <= 0.0) continue;
            philox4x32_10(static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(i), stream, 0, k0, k1, r);
            const double u = unit_uniform(r[0], r[1]);
            const double q = p[i] >= 1.0 ? 1.0 : 1.0 / (1.0 + std::exp(-(logit[i] + sigma * z)));
            if (u < q) {
                value[k] += amount[i];
                count[k] += 1.0;
            }
        }
    }
}

/// Calibration table of (p, y) pairs in ten equal probability bins.
template <class = void>
[[nodiscard]] std::vector<calibration_bin> calibration_table(const std::vector<double>& p, const std::vector<char>& y) {
    std::vector<calibration_bin> bins(10);
    std::vector<double> sp(10, 0.0), sy(10, 0.0), sv(10, 0.0);
    for (std::size_t b = 0; b < 10; ++b) {
        bins[b].lower = 0.1 * static_cast<double>(b);
        bins[b].upper = b == 9 ? 1.0 : 0.1 * static_cast<double>(b + 1);
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
        const std::size_t b = std::min<std::size_t>(9, static_cast<std::size_t>(std::max(0.0, p[i]) * 10.0));
        ++bins[b].deals;
        sp[b] += p[i];
        sy[b] += y[i] ? 1.0 : 0.0;
        sv[b] += p[i] * (1.0 - p[i]);
    }
    for (std::size_t b = 0; b < 10; ++b)
        if (bins[b].deals > 0) {
            const auto n = static_cast<double>(bins[b].deals);
            bins[b].mean_predicted = sp[b] / n;
            bins[b].observed = sy[b] / n;
            bins[b].standard_error = std::sqrt(sv[b]) / n;
        }
    return bins;
}

/// Calibration table of (p, y) pairs in deciles of risk: the pairs sorted by p and cut into
/// ten groups of (nearly) equal count, as in the Hosmer–Lemeshow test; a bin's lower and
/// upper are its smallest and largest p. Fewer than ten pairs give one group a pair.
/// Complexity: O(n log n).
template <class = void>
[[nodiscard]] std::vector<calibration_bin> calibration_deciles(const std::vector<double>& p,
                                                               const std::vector<char>& y) {
    std::vector<std::size_t> order(p.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
    const std::size_t groups = std::min<std::size_t>(10, p.size());
    std::vector<calibration_bin> bins(groups);
    for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t i0 = p.size() * g / groups, i1 = p.size() * (g + 1) / groups;
        calibration_bin& b = bins[g];
        double sp = 0.0, sy = 0.0, sv = 0.0;
        for (std::size_t i = i0; i < i1; ++i) {
            sp += p[order[i]];
            sy += y[order[i]] ? 1.0 : 0.0;
            sv += p[order[i]] * (1.0 - p[order[i]]);
        }
        b.deals = i1 - i0;
        b.lower = p[order[i0]];
        b.upper = p[order[i1 - 1]];
        const auto n = static_cast<double>(b.deals);
        b.mean_predicted = sp / n;
        b.observed = sy / n;
        b.standard_error = std::sqrt(sv) / n;
    }
    return bins;
}

/// Errors of one forecast from per-cut predictions and per-deal probabilities.
template <class = void>
[[nodiscard]] backtest_errors errors_of(const std::vector<double>& pred, const std::vector<double>& pred_count,
                                        const std::vector<backtest_cut>& cuts, const std::vector<double>& p,
                                        const std::vector<char>& y) {
    backtest_errors e;
    double ape = 0.0, cape = 0.0, bias = 0.0;
    std::size_t n = 0, nc = 0;
    for (std::size_t c = 0; c < cuts.size(); ++c) {
        if (std::isnan(pred[c])) continue;
        if (cuts[c].actual > 0.0) {
            ape += std::abs(pred[c] - cuts[c].actual) / cuts[c].actual;
            bias += (pred[c] - cuts[c].actual) / cuts[c].actual;
            ++n;
        }
        if (cuts[c].actual_count > 0 && !std::isnan(pred_count[c])) {
            cape += std::abs(pred_count[c] - static_cast<double>(cuts[c].actual_count)) /
                    static_cast<double>(cuts[c].actual_count);
            ++nc;
        }
    }
    e.cuts = n;
    if (n > 0) {
        e.mape = ape / static_cast<double>(n);
        e.bias = bias / static_cast<double>(n);
    }
    if (nc > 0) e.count_mape = cape / static_cast<double>(nc);
    if (!p.empty()) {
        double b = 0.0;
        for (std::size_t i = 0; i < p.size(); ++i) b += (p[i] - (y[i] ? 1.0 : 0.0)) * (p[i] - (y[i] ? 1.0 : 0.0));
        e.brier = b / static_cast<double>(p.size());
    }
    e.calibration = calibration_table(p, y);
    e.calibration_deciles = calibration_deciles(p, y);
    return e;
}

/// Rethrows an error of one cut's refit with the cut in front.
template <class F>
auto at_cut(const visit_log& log, double cut, double days_per_unit, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const model_error& e) {
        throw model_error(message("cut ", format_time(cut, log.dates, days_per_unit), " (", log.source, "): ", e.what()));
    } catch (const argument_error& e) {
        throw argument_error(message("cut ", format_time(cut, log.dates, days_per_unit), " (", log.source, "): ", e.what()));
    }
}

} // namespace detail

/// Cuts at period ends: for a dated log, the calendar ends of periods of `months` months
/// (3: the quarter ends Mar 31, Jun 30, Sep 30, Dec 31; 1: every month end), at 00:00 UTC
/// as `--cuts 2024-03-31` reads them, from one year after the log's first entry to one
/// horizon before its end; for a log of plain numbers, every months/12 of a year
/// (365.2425 days) from one year after the first entry.
/// @param months period length in months: 1, 2, 3, 4, 6 or 12
/// @param days_per_unit length of the log's time unit in days
/// @throws argument_error if the horizon is not positive, months is not one of those, or
///   no cut fits.
/// Example: `auto cuts = calendar_cuts(log, 90.0, 3);`
template <class = void>
[[nodiscard]] std::vector<double> calendar_cuts(const visit_log& log, double horizon, unsigned months,
                                                double days_per_unit = 1.0) {
    if (!(std::isfinite(horizon) && horizon > 0.0))
        throw argument_error(detail::message("backtest: horizon must be positive and finite, got ", horizon));
    if (months == 0 || 12 % months != 0)
        throw argument_error(detail::message("backtest: a period of ", months, " months does not divide the year"));
    const double start = detail::first_entry(log);
    const double year_length = 365.2425 / days_per_unit;
    const double from = start + year_length, to = log.end_time - horizon;
    std::vector<double> cuts;
    if (log.dates) {
        namespace chr = std::chrono;
        const chr::year_month_day ymd{chr::sys_days{chr::days{static_cast<long>(std::floor(from * days_per_unit))}}};
        int y = static_cast<int>(ymd.year());
        unsigned k = (static_cast<unsigned>(ymd.month()) - 1) / months; // period of the year containing `from`
        for (int guard = 0; guard < 100000; ++guard) {
            const unsigned last_month = months * k + months;
            const chr::year_month_day_last end{chr::year{y} / chr::month{last_month} / chr::last};
            const double t = static_cast<double>(chr::sys_days{end}.time_since_epoch().count()) / days_per_unit;
            if (t > to + 1e-9) break;
            if (t >= from) cuts.push_back(t);
            if (++k == 12 / months) {
                k = 0;
                ++y;
            }
        }
    } else {
        const double step = year_length * months / 12.0;
        for (double t = from; t <= to + 1e-9; t += step) cuts.push_back(t);
    }
    if (cuts.empty())
        throw argument_error(detail::message("backtest: ", log.source, ": no period end between one year after the start (",
                                             format_time(from, log.dates, days_per_unit), ") and one horizon before the end (",
                                             format_time(to, log.dates, days_per_unit), ")"));
    return cuts;
}

/// The default cuts of a backtest: the quarter ends (calendar_cuts with 3 months).
template <class = void>
[[nodiscard]] std::vector<double> quarter_end_cuts(const visit_log& log, double horizon, double days_per_unit = 1.0) {
    return calendar_cuts(log, horizon, 3, days_per_unit);
}

/// Parses a cut: an ISO-8601 date for a dated log (converted to the time unit), else a number.
/// @throws argument_error naming the text when it is neither.
template <class = void>
[[nodiscard]] double parse_cut(std::string_view text, const visit_log& log, double days_per_unit = 1.0) {
    const std::string_view s = detail::trim(text);
    if (log.dates) {
        const auto d = detail::parse_iso8601(s);
        if (!d)
            throw argument_error(detail::message("backtest: cut '", s, "' is not an ISO-8601 date (the history ", log.source,
                                                 " has dates)"));
        return *d / days_per_unit;
    }
    try {
        return *detail::parse_number(s, "cut", 0, 0, "cut");
    } catch (const parse_error&) {
        throw argument_error(detail::message("backtest: cut '", s, "' is not a number (the history ", log.source,
                                             " has numeric times)"));
    } catch (const std::bad_optional_access&) {
        throw argument_error("backtest: empty cut");
    }
}

namespace detail {
/// The per-deal P(won within h) `p` of the deals open at `cut` (the book of `m`), moved by the
/// nowcast of the cohorts' shocks from the history `known` at the cut (nowcast.hpp): p as it
/// is where the model carries no overdispersion or has no branched stage.
template <class = void>
[[nodiscard]] std::vector<double> nowcast_at_cut(const visit_log& log, const visit_log& known, double cut, double h,
                                                 const model& m, const fit_options& fit, const book& b,
                                                 std::vector<double> p) {
    if (!m.overdispersed() || !m.graph.has_branches()) return p;
    nowcast_options no;
    no.period = fit.overdispersion_period;
    return at_cut(log, cut, days_per_unit(fit.time_unit), [&] {
        const shock_nowcast ns = nowcast_shocks(m, known, no);
        return nowcast_within(m, b, cut, h, ns, win_time_distribution(m.graph, h), p);
    });
}
} // namespace detail

/// Runs a backtest (see the file comment).
/// @param log the full history (the truth the forecasts are compared with)
/// @throws argument_error naming the cut and the log for a cut outside the log or whose
///   horizon runs past the log's end, no cuts, horizon <= 0, paths 0; model_error or
///   argument_error naming the cut when its refit fails (e.g. a stage without exits yet).
/// Complexity: per cut a fit of the history known then, a period forecast (or landmark
///   table) and paths × deals simulation steps.
/// Example: `backtest_options o; o.cuts = quarter_end_cuts(log, 90); auto r = backtest(log, o);`
template <class = void>
[[nodiscard]] backtest_result backtest(const visit_log& log, const backtest_options& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    const double h = opt.horizon;
    if (!(std::isfinite(h) && h > 0.0))
        throw argument_error(detail::message("backtest: horizon must be positive and finite, got ", h));
    if (opt.cuts.empty()) throw argument_error("backtest: no cuts");
    if (opt.paths == 0) throw argument_error("backtest: paths must be >= 1");
    const double dpu = days_per_unit(opt.fit.time_unit);
    const double start = detail::first_entry(log);
    for (double c : opt.cuts) {
        if (!std::isfinite(c) || log.empty() || c < start || c > log.end_time)
            throw argument_error(detail::message("backtest: cut ", format_time(c, log.dates, dpu), " is outside the log ",
                                                 log.source, " [", format_time(start, log.dates, dpu), ", ",
                                                 format_time(log.end_time, log.dates, dpu), "]"));
        if (c + h > log.end_time * (1.0 + 1e-15) + 1e-9)
            throw argument_error(detail::message("backtest: cut ", format_time(c, log.dates, dpu), " plus the horizon ", h,
                                                 " runs past the end of the log ", log.source, " (",
                                                 format_time(log.end_time, log.dates, dpu), "): its actual is unknown"));
    }
    backtest_result res;
    res.method = opt.method;
    res.nowcast = opt.nowcast;
    res.horizon = h;
    res.dates = log.dates;
    res.days_per_unit = dpu;
    const std::vector<char> is_won = detail::won_stages(log, opt.fit.won);

    std::vector<double> p_all, crm_all, roll_all;
    std::vector<char> y_all, y_roll;
    std::vector<double> pred, pred_n, crm, crm_n, roll, roll_n;
    std::size_t covered = 0, covered_n = 0;
    for (std::size_t ci = 0; ci < opt.cuts.size(); ++ci) {
        const double cut = opt.cuts[ci];
        backtest_cut bc;
        bc.cut = cut;
        // 1. The history known at the cut, cleaned.
        visit_log known = as_of(log, cut).log;
        if (opt.min_dwell) {
            auto m = detail::at_cut(log, cut, dpu, [&] { return merge_click_throughs(known, *opt.min_dwell); });
            bc.merged_visits = m.merged + m.dropped_first;
            known = std::move(m.log);
        }
        if (opt.after_the_fact) {
            auto f = detail::at_cut(log, cut, dpu, [&] { return drop_after_the_fact(known, *opt.after_the_fact, opt.fit.won); });
            bc.dropped_deals = f.deals_dropped;
            known = std::move(f.log);
        }
        // 2. The refit.
        const model m = detail::at_cut(log, cut, dpu, [&] { return to_model(fit_history(known, opt.fit)); });
        bc.overdispersion = m.overdispersion;
        // 3. The book and its forecast.
        book_view bv = book_at(log, m.graph, cut);
        bc.deals = bv.deals.size();
        bc.skipped_deals = bv.skipped;
        const auto amounts = bv.deals.amounts();
        std::vector<double> p;
        if (opt.method == backtest_method::model) {
            period_forecast_options po;
            po.per_deal = true;
            const auto pf = period_forecast(m.graph, bv.deals, h, po);
            p = pf.deal_probability;
            bc.expected = pf.expected;
            const double marginal = bc.expected, marginal_count = std::accumulate(p.begin(), p.end(), 0.0);
            if (opt.nowcast) p = detail::nowcast_at_cut(log, known, cut, h, m, opt.fit, bv.deals, p);
            bc.expected = 0.0;
            for (std::size_t i = 0; i < p.size(); ++i) bc.expected += amounts[i] * p[i];
            simulation_options so;
            so.horizon = h;
            so.paths = opt.paths;
            so.seed = opt.seed + ci;
            so.threads = opt.threads;
            so.stage_correlation = m.overdispersion_by_stage(); // σ_i per stage, one shock per path
            so.histogram_bins = 1;
            const auto sim = simulate(m, bv.deals, so);
            // The nowcast moves the expectation; the spread stays the model's (a shift).
            const double dv = bc.expected - marginal, dn = std::accumulate(p.begin(), p.end(), 0.0) - marginal_count;
            bc.predicted = {sim.won_value.mean + dv, sim.won_value.quantiles[0] + dv, sim.won_value.quantiles[2] + dv};
            bc.predicted_count = {sim.won_count.mean + dn, sim.won_count.quantiles[0] + dn, sim.won_count.quantiles[2] + dn};
        } else {
            landmark_options lo = opt.landmark;
            lo.horizon = h;
            lo.won = opt.fit.won;
            const auto tab = detail::at_cut(log, cut, dpu, [&] { return fit_landmarks(known, lo); });
            const auto lf = landmark_forecast(tab, bv.deals);
            p = lf.deal_probability;
            if (opt.nowcast) p = detail::nowcast_at_cut(log, known, cut, h, m, opt.fit, bv.deals, p);
            bc.expected = 0.0;
            for (std::size_t i = 0; i < p.size(); ++i) bc.expected += amounts[i] * p[i];
            std::vector<double> value, count;
            detail::bernoulli_paths(p, amounts, m.overdispersion, opt.paths, opt.seed + ci, static_cast<std::uint32_t>(ci),
                                    value, count);
            double sv = 0.0, sn = 0.0;
            for (std::size_t k = 0; k < value.size(); ++k) {
                sv += value[k];
                sn += count[k];
            }
            std::sort(value.begin(), value.end());
            std::sort(count.begin(), count.end());
            const double np = static_cast<double>(value.size());
            bc.predicted = {sv / np, detail::sorted_quantile(value, 0.1), detail::sorted_quantile(value, 0.9)};
            bc.predicted_count = {sn / np, detail::sorted_quantile(count, 0.1), detail::sorted_quantile(count, 0.9)};
        }
        // 4. The actual, from the full log.
        std::vector<char> y(bv.deals.size(), 0);
        for (std::size_t i = 0; i < bv.deals.size(); ++i) {
            const std::size_t fin = detail::deal_end(log, bv.visit[i]) - 1;
            const bool won = !log.censored(fin) && is_won[log.next[fin]] && log.exited[fin] > cut && log.exited[fin] <= cut + h;
            y[i] = won ? 1 : 0;
            if (won) {
                bc.actual += amounts[i];
                ++bc.actual_count;
            }
        }
        bc.error = bc.predicted.mean - bc.actual;
        if (bc.actual > 0.0) bc.relative_error = bc.error / bc.actual;
        if (bc.actual >= bc.predicted.p10 && bc.actual <= bc.predicted.p90) ++covered;
        const auto ac = static_cast<double>(bc.actual_count);
        if (ac >= bc.predicted_count.p10 && ac <= bc.predicted_count.p90) ++covered_n;
        double brier = 0.0;
        for (std::size_t i = 0; i < p.size(); ++i) {
            brier += (p[i] - y[i]) * (p[i] - y[i]);
            p_all.push_back(p[i]);
            y_all.push_back(y[i]);
        }
        bc.brier = p.empty() ? 0.0 : brier / static_cast<double>(p.size());
        if (opt.per_deal) {
            const auto ids = bv.deals.ids();
            const auto ages = bv.deals.ages();
            const auto st = bv.deals.stages();
            bc.per_deal.reserve(p.size());
            for (std::size_t i = 0; i < p.size(); ++i)
                bc.per_deal.push_back({std::string(ids[i]), m.graph.stages()[st[i]].name, ages[i], amounts[i], p[i], y[i] != 0});
        }
        pred.push_back(bc.predicted.mean);
        pred_n.push_back(bc.predicted_count.mean);

        // Baselines: the CRM weighted forecast of the model, and last period's roll rates.
        const absorption_analysis an = analyse(m.graph);
        double cv = 0.0, cn = 0.0;
        const auto stages = bv.deals.stages();
        for (std::size_t i = 0; i < bv.deals.size(); ++i) {
            const double w = an.win_probability(static_cast<Eigen::Index>(stages[i]));
            cv += amounts[i] * w;
            cn += w;
            crm_all.push_back(w);
        }
        bc.crm_weighted = cv;
        crm.push_back(cv);
        crm_n.push_back(cn);
        const double prev = cut - h;
        if (prev >= start + opt.landmark.spacing) {
            landmark_options ro;
            ro.horizon = h;
            ro.spacing = opt.landmark.spacing;
            ro.window = h + 0.5 * opt.landmark.spacing; // the single landmark c − h
            ro.age_edges = opt.roll_rate_edges;
            ro.prior_strength = 1.0;
            ro.monotone = false;
            ro.won = opt.fit.won;
            const auto tab = detail::at_cut(log, cut, dpu, [&] { return fit_landmarks(known, ro); });
            const auto rf = landmark_forecast(tab, bv.deals);
            bc.roll_rate = rf.expected;
            roll.push_back(rf.expected);
            roll_n.push_back(rf.expected_count);
            roll_all.insert(roll_all.end(), rf.deal_probability.begin(), rf.deal_probability.end());
            y_roll.insert(y_roll.end(), y.begin(), y.end());
        } else {
            roll.push_back(std::numeric_limits<double>::quiet_NaN());
            roll_n.push_back(std::numeric_limits<double>::quiet_NaN());
        }
        res.cuts.push_back(bc);
        if (opt.progress) opt.progress(ci + 1, opt.cuts.size());
    }
    const auto nc = static_cast<double>(res.cuts.size());
    res.coverage = static_cast<double>(covered) / nc;
    res.count_coverage = static_cast<double>(covered_n) / nc;
    res.summary = detail::errors_of(pred, pred_n, res.cuts, p_all, y_all);
    res.crm_weighted = detail::errors_of(crm, crm_n, res.cuts, crm_all, y_all);
    res.roll_rate = detail::errors_of(roll, roll_n, res.cuts, roll_all, y_roll);
    res.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

namespace detail {
template <class = void>
[[nodiscard]] nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
} // namespace detail

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const backtest_interval& v) {
    j = {{"mean", detail::json_number(v.mean)}, {"p10", detail::json_number(v.p10)}, {"p90", detail::json_number(v.p90)}};
}

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const calibration_bin& b) {
    j = {{"lower", b.lower},
         {"upper", b.upper},
         {"deals", b.deals},
         {"mean_predicted", detail::json_number(b.mean_predicted)},
         {"observed", detail::json_number(b.observed)},
         {"abs_gap", detail::json_number(std::abs(b.observed - b.mean_predicted))},
         {"standard_error", detail::json_number(b.standard_error)}};
}

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const backtest_errors& e) {
    j = {{"mape", detail::json_number(e.mape)},
         {"count_mape", detail::json_number(e.count_mape)},
         {"bias", detail::json_number(e.bias)},
         {"brier", detail::json_number(e.brier)},
         {"cuts", e.cuts},
         {"calibration", e.calibration},
         {"calibration_deciles", e.calibration_deciles}};
}

/// The backtest as JSON: `cuts` (each with `cut`, `predicted` {mean, p10, p90}, `actual`,
/// `predicted_count` {...}, `actual_count`, ...), `summary` (`mape`, `coverage`, `brier`,
/// ...), `baselines` (`crm_weighted`, `roll_rate`, each with `mape`, `brier`, ...),
/// `calibration`, `method`, `horizon`. Any nlohmann JSON type: nlohmann::ordered_json keeps
/// the keys in this order (the CLI's --json).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const backtest_result& r) {
    Json cuts = Json::array();
    for (const auto& c : r.cuts)
        cuts.push_back({{"cut", format_time(c.cut, r.dates, r.days_per_unit)},
                        {"time", c.cut},
                        {"deals", c.deals},
                        {"skipped_deals", c.skipped_deals},
                        {"predicted", c.predicted},
                        {"predicted_count", c.predicted_count},
                        {"expected", c.expected},
                        {"actual", c.actual},
                        {"actual_count", c.actual_count},
                        {"error", c.error},
                        {"relative_error", detail::json_number(c.relative_error)},
                        {"crm_weighted", c.crm_weighted},
                        {"roll_rate", detail::json_number(c.roll_rate)},
                        {"overdispersion", c.overdispersion},
                        {"merged_visits", c.merged_visits},
                        {"dropped_deals", c.dropped_deals},
                        {"brier", c.brier}});
    Json summary = r.summary;
    summary.erase("calibration");
    summary.erase("calibration_deciles");
    summary["coverage"] = detail::json_number(r.coverage);
    summary["count_coverage"] = detail::json_number(r.count_coverage);
    auto base = [](const backtest_errors& e) {
        Json b = e;
        return b;
    };
    j = {{"method", std::string(to_string(r.method))},
         {"horizon", r.horizon},
         {"cuts", cuts},
         {"summary", summary},
         {"calibration", r.summary.calibration},
         {"calibration_deciles", r.summary.calibration_deciles},
         {"baselines", {{"crm_weighted", base(r.crm_weighted)}, {"roll_rate", base(r.roll_rate)}}},
         {"nowcast", r.nowcast},
         {"elapsed_seconds", r.elapsed_seconds}};
}

} // namespace pipecast
