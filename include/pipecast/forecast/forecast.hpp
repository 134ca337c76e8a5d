// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast/forecast.hpp
/// @brief The weighted forecast, the period (within-horizon) forecast and weekly sales
/// progress of a book of open deals.
///
/// - **Weighted forecast** (销售预计): Σ amount × P(win | stage), a deal's probability
///   override replacing P(win | stage) where it has one, with totals by stage, owner and
///   forecast category. One streaming pass over the book's columns (stage, amount,
///   override, owner, category: 28 bytes a deal) into a small table of accumulators:
///   memory-bandwidth bound (figures in docs/performance.md).
/// - **Period forecast**: Σ amount × P(win within h | stage, age). Exact (matrix
///   exponential) when every dwell is exponential; otherwise the renewal-equation table of
///   first_passage.hpp, evaluated on a per-stage lattice of ages and interpolated linearly in
///   the age, with an a-posteriori error estimate in the result (docs/forecast.md).
/// - **Sales progress** (销售进展), week over week: (this week's forecast + closed-won) −
///   (last week's forecast + closed-won), and that as a share of the period's quota.

#include <pipecast/forecast/detail/rollup.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <ios>
#include <limits>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------
// Weighted forecast
// ---------------------------------------------------------------------------------------

/// Weighted forecast with given per-stage win probabilities (e.g. from a previous
/// analyse(g)): Σ amount × w[stage], or × the deal's override where it has one.
///
/// @param g the stage graph the book was made for
/// @param b the book of open deals
/// @param win_probability P(win | stage) for each open stage, in [0, 1]
/// @returns totals, and lines by stage (all open stages), owner and category that each sum
///   to the totals
/// @throws argument_error if the book does not match g's open stages, a probability is
///   outside [0, 1] or the count is wrong, or the book mixes currencies.
/// Complexity: one pass over 28 bytes a deal, O(n + stages × owners × categories).
/// Example: `auto a = analyse(g); auto f = weighted_forecast(g, b, a.win_probability);`
template <class = void>
[[nodiscard]] weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b,
                                                         std::span<const double> win_probability) {
    detail::require_compatible("weighted_forecast", g, b);
    detail::require_win_probabilities("weighted_forecast", g, win_probability);
    weighted_forecast_result r;
    r.currency = detail::book_currency("weighted_forecast", b);
    const double* w = win_probability.data();
    const auto t = detail::rollup(b, [w](std::size_t, std::uint32_t s, double o) { return detail::select(o == o, o, w[s]); });
    detail::fill_lines(b, t, win_probability, r);
    return r;
}

/// Weighted forecast with win probabilities as an Eigen vector (absorption_analysis::win_probability).
/// @throws as the span overload.
template <class = void>
[[nodiscard]] weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b,
                                                         const Eigen::VectorXd& win_probability) {
    return weighted_forecast(g, b, std::span<const double>(win_probability.data(), static_cast<std::size_t>(win_probability.size())));
}

/// Weighted forecast reusing an absorption analysis of g (no O(m³) work).
/// @throws as the span overload.
template <class = void>
[[nodiscard]] weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b,
                                                         const absorption_analysis& a) {
    return weighted_forecast(g, b, a.win_probability);
}

/// Weighted forecast (销售预计): Σ amount × P(win | stage) over the book, the deal's
/// probability override replacing P(win | stage) where it has one.
///
/// @throws argument_error if the book was made for other open stages or mixes currencies.
/// Complexity: O(m³) for the analysis of m open stages, then one memory-bound pass.
/// Example:
/// @code
///   const auto m = pipecast::load_model("saas.json");
///   const auto b = pipecast::load_book_csv("deals.csv", m.graph);
///   std::cout << pipecast::weighted_forecast(m.graph, b).weighted_total;
/// @endcode
template <class = void>
[[nodiscard]] weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b) {
    detail::require_compatible("weighted_forecast", g, b);
    return weighted_forecast(g, b, win_probabilities(g));
}

// ---------------------------------------------------------------------------------------
// Age-aware weighted forecast
// ---------------------------------------------------------------------------------------

/// The age-aware weighted forecast: Σ amount × P(win eventually | stage, age) (the deal's
/// override where it has one), next to the CRM-style Σ amount × P(win | stage), with the
/// stalled deals the model sees: Σ P(stalled | stage, age), and the deals whose
/// P(stalled | stage, age) reaches `opt.stalled_threshold`, by stage, owner and category.
///
/// P(win | stage, age) = Σ_k P(branch k | age) · P(win | target of branch k) and
/// P(stalled | stage, age) = Σ over stalled branches of P(branch k | age) (analytics.hpp:
/// win_probability_at_age, stalled_probability); for a classic stage the first is P(win |
/// stage) at every age and the second 0. A deal's override replaces the model's P(win) in
/// both forecasts; P(stalled) stays the model's (a diagnostic of the deal's age).
///
/// @throws argument_error if the book was made for other open stages or mixes currencies,
///   or stalled_threshold is outside (0, 1].
/// Complexity: O(m³) analyses, then O(branches) per deal (one log-survival per branch).
/// Example: `auto f = age_aware_forecast(m.graph, b); f.age_weighted_total; f.likely_stalled;`
template <class = void>
[[nodiscard]] age_aware_forecast_result age_aware_forecast(const stage_graph& g, const book& b,
                                                           const age_aware_options& opt = {}) {
    detail::require_compatible("age_aware_forecast", g, b);
    if (!(opt.stalled_threshold > 0.0 && opt.stalled_threshold <= 1.0))
        throw argument_error(detail::message("age_aware_forecast: stalled_threshold must be in (0, 1], got ",
                                             opt.stalled_threshold));
    age_aware_forecast_result r;
    r.currency = detail::book_currency("age_aware_forecast", b);
    r.stalled_threshold = opt.stalled_threshold;
    const Eigen::VectorXd w = win_probabilities(g);
    const Eigen::VectorXd w_latent = g.has_branches() ? win_probabilities(g.latent()) : w;
    struct cell {
        double count = 0, amount = 0, weighted = 0, age_weighted = 0, stalled = 0, stalled_amount = 0, likely = 0,
               likely_amount = 0, overridden = 0;
        void add(double a, double p_crm, double p_age, double p_stall, bool likely_stalled, bool ov) {
            count += 1.0;
            amount += a;
            weighted += a * p_crm;
            age_weighted += a * p_age;
            stalled += p_stall;
            stalled_amount += a * p_stall;
            likely += likely_stalled ? 1.0 : 0.0;
            likely_amount += likely_stalled ? a : 0.0;
            overridden += ov ? 1.0 : 0.0;
        }
    };
    std::vector<cell> cs(g.open_count()), co(b.owner_names().size()), cc(b.category_names().size());
    cell total;
    const auto st = b.stages();
    const auto am = b.amounts();
    const auto ag = b.ages();
    const auto ov = b.probability_overrides();
    const auto ow = b.owners();
    const auto ca = b.categories();
    if (opt.per_deal) {
        r.deal_win_probability.resize(b.size());
        r.deal_stalled_probability.resize(b.size());
    }
    std::size_t widest = 1;
    for (std::size_t s = 0; s < g.open_count(); ++s) widest = std::max(widest, g.latent_count(s));
    std::vector<double> wt(widest);
    for (std::size_t i = 0; i < b.size(); ++i) {
        const std::size_t s = st[i];
        const double o = ov[i];
        const bool has_override = o == o;
        const double p_crm = has_override ? o : w(static_cast<Eigen::Index>(s));
        double p_age = p_crm, p_stall = 0.0;
        if (g.branched(s)) {
            const std::size_t first = g.branch_weights(s, ag[i], wt);
            double pw = 0.0;
            for (std::size_t k = 0; k < g.latent_count(s); ++k) {
                pw += wt[k] * w_latent(static_cast<Eigen::Index>(first + k));
                if (g.latent_stalled(first + k)) p_stall += wt[k];
            }
            if (!has_override) p_age = std::clamp(pw, 0.0, 1.0);
        }
        const bool likely = p_stall >= opt.stalled_threshold;
        cs[s].add(am[i], p_crm, p_age, p_stall, likely, has_override);
        co[ow[i]].add(am[i], p_crm, p_age, p_stall, likely, has_override);
        cc[ca[i]].add(am[i], p_crm, p_age, p_stall, likely, has_override);
        if (opt.per_deal) {
            r.deal_win_probability[i] = p_age;
            r.deal_stalled_probability[i] = p_stall;
        }
    }
    auto n = [](double x) { return static_cast<std::size_t>(x); };
    for (std::size_t s = 0; s < cs.size(); ++s) {
        const cell& c = cs[s];
        r.by_stage.push_back({g.name(s), n(c.count), c.amount, w(static_cast<Eigen::Index>(s)), c.weighted,
                              c.age_weighted, c.stalled, c.stalled_amount, n(c.likely), c.likely_amount,
                              n(c.overridden)});
        total.count += c.count;
        total.amount += c.amount;
        total.weighted += c.weighted;
        total.age_weighted += c.age_weighted;
        total.stalled += c.stalled;
        total.stalled_amount += c.stalled_amount;
        total.likely += c.likely;
        total.likely_amount += c.likely_amount;
        total.overridden += c.overridden;
    }
    auto groups = [&](const std::vector<cell>& cells, const std::vector<std::string>& names) {
        std::vector<group_age_forecast> out;
        out.reserve(cells.size());
        for (std::size_t k = 0; k < cells.size(); ++k)
            out.push_back({names[k], n(cells[k].count), cells[k].amount, cells[k].weighted, cells[k].age_weighted,
                           cells[k].stalled, n(cells[k].likely), cells[k].likely_amount});
        return out;
    };
    r.by_owner = groups(co, b.owner_names());
    r.by_category = groups(cc, b.category_names());
    r.count = n(total.count);
    r.total_amount = total.amount;
    r.weighted_total = total.weighted;
    r.age_weighted_total = total.age_weighted;
    r.expected_stalled = total.stalled;
    r.stalled_amount = total.stalled_amount;
    r.likely_stalled = n(total.likely);
    r.likely_stalled_amount = total.likely_amount;
    r.overridden = n(total.overridden);
    return r;
}

// ---------------------------------------------------------------------------------------
// Period forecast
// ---------------------------------------------------------------------------------------

namespace detail {

/// Rolls per-deal within-horizon probabilities up into a period_forecast_result.
template <class = void>
void fill_period(const book& b, std::span<const double> p, std::span<const double> err,
                 period_forecast_result& r, bool per_deal) {
    const double* pp = p.data();
    const auto t = rollup(b, [pp](std::size_t i, std::uint32_t, double) { return pp[i]; });
    r.count = static_cast<std::size_t>(t.total.count);
    r.total_amount = t.total.amount;
    r.expected = t.total.weighted;
    for (std::size_t s = 0; s < t.stage.size(); ++s)
        r.by_stage.push_back({b.stage_names()[s], static_cast<std::size_t>(t.stage[s].count), t.stage[s].amount,
                              t.stage[s].weighted});
    auto groups = [](const std::vector<forecast_cell>& cells, const std::vector<std::string>& names) {
        std::vector<group_period_forecast> out;
        out.reserve(cells.size());
        for (std::size_t k = 0; k < cells.size(); ++k)
            out.push_back({names[k], static_cast<std::size_t>(cells[k].count), cells[k].amount, cells[k].weighted});
        return out;
    };
    r.by_owner = groups(t.owner, b.owner_names());
    r.by_category = groups(t.category, b.category_names());
    const auto am = b.amounts();
    for (std::size_t i = 0; i < err.size(); ++i) {
        r.error_estimate += am[i] * err[i];
        r.max_deal_error = std::max(r.max_deal_error, err[i]);
    }
    if (per_deal) r.deal_probability.assign(p.begin(), p.end());
}

/// The probability-override rule of the period forecast (one function: the forecast and the
/// funnel call it). A deal whose own probability o replaces the model's P(win | stage, age) = w
/// keeps the model's timing: it is won within h with o · p_within / w (p_within the model's
/// P(win within h | stage, age)), capped at o; 0 where the model says the deal can never win.
template <class = void>
[[nodiscard]] double override_within(double o, double p_within, double w) noexcept {
    return w > 0.0 ? std::min(o, p_within * (o / w)) : 0.0;
}

/// P(eventually won | open stage s, age) of g from the latent win probabilities w_latent,
/// using `scratch` (>= latent_count(s) entries) for the branch weights: win_probability_at_age
/// without its allocation, for loops over deals.
template <class = void>
[[nodiscard]] double win_at_age(const stage_graph& g, std::size_t s, double age, const Eigen::VectorXd& w_latent,
                                std::span<double> scratch) {
    const std::size_t first = g.branch_weights(s, age, scratch);
    double p = 0.0;
    for (std::size_t k = 0; k < g.latent_count(s); ++k) p += scratch[k] * w_latent(static_cast<Eigen::Index>(first + k));
    return std::clamp(p, 0.0, 1.0);
}

/// Applies the probability overrides (override_within): a deal with override o in stage s
/// of age a gets o × P(win within h | s, a) / P(win | s, a), at most o. For a classic stage
/// P(win | s, a) = P(win | s) = w[s]; for a branched stage it depends on the age and comes
/// from the latent win probabilities `w_latent` (needed only when g has branches).
template <class = void>
void apply_overrides(const stage_graph& g, const book& b, std::span<const double> w,
                     const Eigen::VectorXd* w_latent, std::span<double> p, std::span<double> err) {
    const auto ov = b.probability_overrides();
    const auto st = b.stages();
    const auto ages = b.ages();
    std::vector<double> scratch;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const double o = ov[i];
        if (o != o) continue;
        double ws = w[st[i]];
        if (g.branched(st[i])) {
            PIPECAST_ASSERT(w_latent != nullptr);
            scratch.resize(g.latent_count(st[i]));
            ws = win_at_age(g, st[i], ages[i], *w_latent, scratch);
        }
        const double scale = ws > 0.0 ? o / ws : 0.0;
        p[i] = override_within(o, p[i], ws);
        err[i] *= scale;
    }
}

template <class = void>
void require_horizon(std::string_view fn, double h) {
    if (!(std::isfinite(h) && h >= 0.0))
        throw argument_error(message(fn, ": horizon must be finite and >= 0, got ", h));
}

} // namespace detail

/// Period forecast on a precomputed renewal table: Σ amount × P(win within h | stage, age)
/// by the renewal method, for repeated forecasts of books on one model.
///
/// @param g the stage graph; @param b the book (made for g)
/// @param horizon h >= 0, at most the table's horizon
/// @param tab win_time_distribution(g, H, K) for some H >= h (for a branched g, the table of
///   g.latent(), which is what win_time_distribution builds); the age lattice spacing is
///   h / ⌈h / Δ⌉ (Δ when H = h)
/// @param a analyse(g) (for the overrides' win probabilities)
/// @param per_deal fill deal_probability
/// @throws argument_error on an incompatible book, a negative, non-finite or too long horizon,
///   a table of the wrong width, or a book that mixes currencies.
/// Complexity: O(lattice ages · K) table lookups, then one pass over the book.
template <class = void>
[[nodiscard]] period_forecast_result period_forecast(const stage_graph& g, const book& b, double horizon,
                                                     const win_time_table& tab, const absorption_analysis& a,
                                                     bool per_deal = false) {
    detail::require_compatible("period_forecast", g, b);
    detail::require_horizon("period_forecast", horizon);
    const std::size_t columns = g.latent().open_count();
    if (tab.won_by.cols() != static_cast<Eigen::Index>(columns) || tab.after_exit.cols() != tab.won_by.cols() ||
        !(tab.step > 0.0))
        throw argument_error(detail::message("period_forecast: the win-time table has ", tab.won_by.cols(),
                                             " columns for ", columns, g.has_branches() ? " latent" : "",
                                             " open stages"));
    if (horizon > tab.horizon() * (1.0 + 1e-12))
        throw argument_error(detail::message("period_forecast: horizon ", horizon, " exceeds the table's horizon ",
                                             tab.horizon()));
    std::span<const double> w(a.win_probability.data(), static_cast<std::size_t>(a.win_probability.size()));
    detail::require_win_probabilities("period_forecast", g, w);
    period_forecast_result r;
    r.horizon = horizon;
    r.method = period_method::renewal;
    r.currency = detail::book_currency("period_forecast", b);
    std::vector<double> p(b.size(), 0.0), err(b.size(), 0.0);
    if (horizon > 0.0) {
        const auto by_stage = detail::deals_by_stage(b);
        for (std::size_t s = 0; s < g.open_count(); ++s) {
            if (g.branched(s)) {
                const detail::branched_period_evaluator ev(g, tab, s, horizon);
                r.step = ev.spacing();
                ev.evaluate(by_stage[s], b.ages(), p, err);
            } else {
                const detail::stage_period_evaluator ev(g.latent(), tab, g.latent_first(s), horizon);
                r.step = ev.spacing();
                ev.evaluate(by_stage[s], b.ages(), p, err);
            }
        }
        std::optional<Eigen::VectorXd> w_latent;
        if (g.has_branches()) w_latent = win_probabilities(g.latent());
        detail::apply_overrides(g, b, w, w_latent ? &*w_latent : nullptr, p, err);
    }
    detail::fill_period(b, p, err, r, per_deal);
    return r;
}

/// Period forecast: the value expected to be won within `horizon`,
/// Σ amount × P(win within h | stage, age), with the same breakdowns as the weighted
/// forecast. A deal's override o scales the model's timing:
/// min(o, o × P(win within h | s, a) / P(win | s, a)) (detail::override_within); for a
/// classic stage P(win | s, a) = P(win | s).
///
/// Method: markov_exact (matrix exponential, age irrelevant) when every dwell is
/// exponential, otherwise the renewal-equation table (first_passage.hpp) with step Δ and a
/// per-stage lattice of ages at spacing Δ, linearly interpolated; the result's
/// error_estimate bounds the interpolation's contribution (docs/forecast.md). A branched
/// stage (stage_graph::branched) mixes its latent states by the age-dependent branch weights,
/// Σ_k P(branch k | age) · P(win within h | branch k, age), on the same lattice.
///
/// @param horizon h >= 0 in the model's time unit (h = 0 forecasts 0)
/// @throws argument_error on an incompatible book, a negative or non-finite horizon,
///   markov_exact requested for a non-Markov model, or a book that mixes currencies.
/// Complexity: renewal: O(K² m) for the table (K <= 8000 steps), O(ages on the lattice · K)
///   for the lattice, O(n) for the book. Markov: O(m³) + O(n).
/// Example: `auto q = period_forecast(m.graph, b, 90.0); std::cout << q.expected;`
template <class = void>
[[nodiscard]] period_forecast_result period_forecast(const stage_graph& g, const book& b, double horizon,
                                                     const period_forecast_options& opt = {}) {
    detail::require_compatible("period_forecast", g, b);
    detail::require_horizon("period_forecast", horizon);
    const bool markov = is_markov(g);
    if (opt.method == period_method::markov_exact && !markov)
        throw argument_error("period_forecast: markov_exact needs every dwell to be exponential");
    const bool exact = opt.method == period_method::markov_exact || (opt.method == period_method::automatic && markov);
    const absorption_analysis a = analyse(g);
    if (!exact) {
        if (horizon == 0.0) {
            period_forecast_result r;
            r.method = period_method::renewal;
            r.currency = detail::book_currency("period_forecast", b);
            std::vector<double> zero(b.size(), 0.0);
            detail::fill_period(b, zero, zero, r, opt.per_deal);
            return r;
        }
        return period_forecast(g, b, horizon, win_time_distribution(g, horizon, opt.steps), a, opt.per_deal);
    }
    period_forecast_result r;
    r.horizon = horizon;
    r.method = period_method::markov_exact;
    r.currency = detail::book_currency("period_forecast", b);
    const Eigen::VectorXd within = won_by_exact(g, horizon);
    std::vector<double> p(b.size()), err(b.size(), 0.0);
    const auto st = b.stages();
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = within(static_cast<Eigen::Index>(st[i]));
    detail::apply_overrides(g, b, std::span<const double>(a.win_probability.data(), g.open_count()), nullptr, p, err);
    detail::fill_period(b, p, err, r, opt.per_deal);
    return r;
}

// ---------------------------------------------------------------------------------------
// Sales progress
// ---------------------------------------------------------------------------------------

/// Sales progress (销售进展) week over week: (this week's forecast + cumulative closed-won)
/// − (last week's forecast + cumulative closed-won), and that as a share of the period
/// quota. With 13 weeks in a quarter, a steady week adds about 1/13 of the quota.
///
/// @param last_week last week's forecast and cumulative closed-won
/// @param this_week this week's forecast and cumulative closed-won
/// @param quota the period quota, > 0
/// @param weeks_in_period weeks in the quota period (13 for a quarter), > 0
/// @throws argument_error naming the value: a quota or week count not positive and finite,
///   a forecast or closed-won amount negative or not finite.
/// Example: `sales_progress({900'000, 200'000}, {950'000, 350'000}, 3'000'000)` gives
///   progress 200,000 and share_of_quota 1/15.
template <class = void>
[[nodiscard]] sales_progress_result sales_progress(const week_position& last_week, const week_position& this_week,
                                                   double quota, double weeks_in_period = 13.0) {
    if (!(std::isfinite(quota) && quota > 0.0))
        throw argument_error(detail::message("sales_progress: quota must be positive and finite, got ", quota));
    if (!(std::isfinite(weeks_in_period) && weeks_in_period > 0.0))
        throw argument_error(detail::message("sales_progress: weeks_in_period must be positive and finite, got ",
                                             weeks_in_period));
    auto check = [](const char* what, double v) {
        if (!(std::isfinite(v) && v >= 0.0))
            throw argument_error(detail::message("sales_progress: ", what, " must be finite and >= 0, got ", v));
    };
    check("last week's forecast", last_week.forecast);
    check("last week's closed-won", last_week.closed_won);
    check("this week's forecast", this_week.forecast);
    check("this week's closed-won", this_week.closed_won);
    sales_progress_result r;
    r.last_week = last_week.forecast + last_week.closed_won;
    r.this_week = this_week.forecast + this_week.closed_won;
    r.progress = r.this_week - r.last_week;
    r.quota = quota;
    r.share_of_quota = r.progress / quota;
    r.steady_share = 1.0 / weeks_in_period;
    r.pace = r.share_of_quota / r.steady_share;
    return r;
}

/// Sales progress from two weighted forecasts and the cumulative closed-won amounts.
/// @throws as the week_position overload.
template <class = void>
[[nodiscard]] sales_progress_result sales_progress(const weighted_forecast_result& last_week,
                                                   double closed_won_last_week,
                                                   const weighted_forecast_result& this_week,
                                                   double closed_won_this_week, double quota,
                                                   double weeks_in_period = 13.0) {
    return sales_progress({last_week.weighted_total, closed_won_last_week},
                          {this_week.weighted_total, closed_won_this_week}, quota, weeks_in_period);
}

/// Sales progress from last week's and this week's books on one model (each forecast with
/// weighted_forecast) and the cumulative closed-won amounts.
/// @throws argument_error as weighted_forecast and the week_position overload.
template <class = void>
[[nodiscard]] sales_progress_result sales_progress(const stage_graph& g, const book& last_week,
                                                   double closed_won_last_week, const book& this_week,
                                                   double closed_won_this_week, double quota,
                                                   double weeks_in_period = 13.0) {
    const absorption_analysis a = analyse(g);
    return sales_progress(weighted_forecast(g, last_week, a), closed_won_last_week, weighted_forecast(g, this_week, a),
                          closed_won_this_week, quota, weeks_in_period);
}

// ---------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------

namespace detail {
/// Writes "label  count  amount  [p]  value" rows with fixed decimals (stream state restored).
class forecast_printer {
public:
    explicit forecast_printer(std::ostream& os) : os_(os), flags_(os.flags()), precision_(os.precision()) {
        os_ << std::fixed << std::setprecision(2);
    }
    ~forecast_printer() {
        os_.flags(flags_);
        os_.precision(precision_);
    }
    forecast_printer(const forecast_printer&) = delete;
    forecast_printer& operator=(const forecast_printer&) = delete;

    /// One line; `p` (a probability, 4 decimals) is printed when not NaN.
    void row(std::string_view label, std::size_t count, double amount, double value,
             double p = std::numeric_limits<double>::quiet_NaN()) {
        os_ << "    " << std::left << std::setw(20) << (label.empty() ? std::string_view("(none)") : label)
            << std::right << std::setw(8) << count << std::setw(18) << amount << std::setw(18) << value;
        if (p == p) os_ << std::setprecision(4) << std::setw(10) << p << std::setprecision(2);
        os_ << '\n';
    }

private:
    std::ostream& os_;
    std::ios_base::fmtflags flags_;
    std::streamsize precision_;
};
} // namespace detail

/// Prints the weighted forecast as plain text: totals, then lines by stage, owner, category.
template <class = void>
std::ostream& operator<<(std::ostream& os, const weighted_forecast_result& r) {
    detail::forecast_printer pr(os);
    os << "weighted forecast: " << r.count << " deals, amount " << r.total_amount << ", weighted " << r.weighted_total;
    if (!r.currency.empty()) os << ' ' << r.currency;
    if (r.overridden) os << " (" << r.overridden << " overrides)";
    os << "\n  by stage (count, amount, weighted; P(win)):\n";
    for (const auto& s : r.by_stage) pr.row(s.stage, s.count, s.amount, s.weighted, s.win_probability);
    os << "  by owner:\n";
    for (const auto& g : r.by_owner) pr.row(g.key, g.count, g.amount, g.weighted);
    os << "  by category:\n";
    for (const auto& g : r.by_category) pr.row(g.key, g.count, g.amount, g.weighted);
    return os;
}

/// Prints the period forecast as plain text: totals, method, then lines by stage, owner, category.
template <class = void>
std::ostream& operator<<(std::ostream& os, const period_forecast_result& r) {
    detail::forecast_printer pr(os);
    os << "period forecast within " << r.horizon << ": " << r.count << " deals, amount " << r.total_amount
       << ", expected won " << r.expected;
    if (!r.currency.empty()) os << ' ' << r.currency;
    os << " (" << to_string(r.method);
    if (r.method == period_method::renewal) os << ", step " << std::setprecision(4) << r.step << std::setprecision(2)
                                               << ", interpolation error <= " << r.error_estimate;
    os << ")\n  by stage (count, amount, expected):\n";
    for (const auto& s : r.by_stage) pr.row(s.stage, s.count, s.amount, s.expected);
    os << "  by owner:\n";
    for (const auto& g : r.by_owner) pr.row(g.key, g.count, g.amount, g.expected);
    os << "  by category:\n";
    for (const auto& g : r.by_category) pr.row(g.key, g.count, g.amount, g.expected);
    return os;
}

/// Prints the age-aware forecast as plain text: totals (CRM-style and age-aware side by side,
/// stalled deals), then lines by stage, owner, category.
template <class = void>
std::ostream& operator<<(std::ostream& os, const age_aware_forecast_result& r) {
    detail::forecast_printer pr(os);
    os << "age-aware forecast: " << r.count << " deals, amount " << r.total_amount << ", CRM-style weighted "
       << r.weighted_total << ", age-aware weighted " << r.age_weighted_total;
    if (!r.currency.empty()) os << ' ' << r.currency;
    os << "; expected stalled " << r.expected_stalled << ", likely stalled (P >= " << r.stalled_threshold << ") "
       << r.likely_stalled << " deals, amount " << r.likely_stalled_amount;
    os << "\n  by stage (count, amount, age-aware weighted; CRM P(win)):\n";
    for (const auto& s : r.by_stage) pr.row(s.stage, s.count, s.amount, s.age_weighted, s.win_probability);
    os << "  by owner:\n";
    for (const auto& g : r.by_owner) pr.row(g.key, g.count, g.amount, g.age_weighted);
    os << "  by category:\n";
    for (const auto& g : r.by_category) pr.row(g.key, g.count, g.amount, g.age_weighted);
    return os;
}

/// Prints sales progress as one line.
template <class = void>
std::ostream& operator<<(std::ostream& os, const sales_progress_result& r) {
    detail::forecast_printer pr(os);
    os << "sales progress: " << r.last_week << " -> " << r.this_week << " (" << std::showpos << r.progress
       << std::noshowpos << "), " << std::setprecision(1) << 100.0 * r.share_of_quota << "% of quota "
       << std::setprecision(2) << r.quota << " (steady " << std::setprecision(1) << 100.0 * r.steady_share
       << "%, pace " << std::setprecision(2) << r.pace << ")";
    return os;
}

} // namespace pipecast
