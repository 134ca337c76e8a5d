// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast/landmark.hpp
/// @brief Landmarking: a direct estimate of P(won within h | stage, age) from past
/// snapshots of the open deals, without a model of the stages.
///
/// At landmark times L (every `spacing` from the end of the usable history backwards: the
/// last landmark is end − h, so that every outcome within h after a landmark is observed,
/// and none is censored), every deal open at L contributes one row (stage at L, age in the
/// stage at L, won within (L, L + h]?). A row may carry a recency weight
/// 2^{−(end − h − L)/half_life}, and landmarks older than `window` before the end are left
/// out (drift). The rows are summed into cells by stage × age bucket. Cells are shrunk:
///
///  1. the stage's pooled rate p_s (weighted wins / weighted rows);
///  2. a neighbourhood rate for cell j: the pooled rows of cells j−1, j, j+1, with a
///     Beta prior of mean p_s and strength k (`prior_strength`, in rows);
///  3. the cell: (won_j + k·q_j) / (rows_j + k) with q_j the neighbourhood rate;
///  4. optionally (`monotone`, default) a weighted isotonic (non-increasing in age) fit by
///     pool-adjacent-violators: a deal that has waited longer is not more likely to win
///     within h (true of every stage of the crm4 truths; turn it off for processes where a
///     deal must mature first).
///
/// P(won within h | stage, age) is then the cells' values interpolated linearly in age
/// between the cells' mean ages (constant beyond the first and last). A deal's rows at
/// successive landmarks are correlated, so k counts rows, not deals: with weekly landmarks
/// a deal that stays 5 weeks in a stage gives 5 rows. See docs/backtest.md (model vs
/// landmark).

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/data/history_view.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/estimation.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// Options of fit_landmarks.
struct landmark_options {
    double horizon = 90.0; ///< h > 0, in the log's time unit
    double spacing = 7.0;  ///< time between landmarks, > 0
    /// Lower edges of the age buckets, increasing from 0; the last bucket is open-ended.
    std::vector<double> age_edges = {0, 5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 75, 90, 120, 150, 180, 240, 365};
    /// Only landmarks at or after end − window (+inf: all). Must exceed the horizon.
    double window = std::numeric_limits<double>::infinity();
    /// Recency weighting: a landmark's rows weigh 2^{−(end − h − L)/half_life} (+inf: 1).
    double half_life = std::numeric_limits<double>::infinity();
    /// Strength (in rows) of the Beta priors of the shrinkage, >= 0.
    double prior_strength = 20.0;
    /// Fit non-increasing in age (pool-adjacent-violators) after the shrinkage.
    bool monotone = true;
    /// Outcomes that count as wins (empty: by name, as fit_history decides).
    std::vector<std::string> won;
};

/// One stage × age-bucket cell of a landmark table.
struct landmark_cell {
    double age_lower = 0.0;  ///< bucket [age_lower, age_upper)
    double age_upper = std::numeric_limits<double>::infinity();
    std::size_t rows = 0;    ///< landmark rows in the cell
    double weight = 0.0;     ///< Σ recency weights of its rows
    double won = 0.0;        ///< Σ weights of the rows won within h
    double mean_age = 0.0;   ///< weighted mean age of its rows (the bucket middle when empty)
    double raw = std::numeric_limits<double>::quiet_NaN(); ///< won / weight (NaN when empty)
    double probability = 0.0; ///< the shrunk (and monotone) estimate
};

/// The cells of one open stage, in age order.
struct landmark_stage {
    std::string name;
    std::vector<landmark_cell> cells;
    std::size_t rows = 0;
    double weight = 0.0, won = 0.0;
    double pooled = 0.0; ///< the stage's pooled rate (shrunk to the overall rate)
};

/// A fitted landmark table: P(won within `horizon` | stage, age).
struct landmark_table {
    double horizon = 0.0;
    std::vector<double> landmarks;      ///< the landmark times used, increasing
    std::vector<landmark_stage> stages; ///< open stages in order of first appearance in the log
    std::size_t rows = 0;
    double overall = 0.0; ///< the overall weighted win-within-h rate

    /// Index of a stage by name, if the table has it.
    [[nodiscard]] std::optional<std::size_t> find(std::string_view stage) const {
        for (std::size_t s = 0; s < stages.size(); ++s)
            if (stages[s].name == stage) return s;
        return std::nullopt;
    }
    /// P(won within horizon | stage s, age): the cells interpolated linearly in age.
    template <class = void>
    [[nodiscard]] double probability(std::size_t s, double age) const {
        const auto& c = stages.at(s).cells;
        if (c.empty()) return overall;
        if (age <= c.front().mean_age) return c.front().probability;
        for (std::size_t j = 1; j < c.size(); ++j) {
            if (age <= c[j].mean_age) {
                const double span = c[j].mean_age - c[j - 1].mean_age;
                const double u = span > 0.0 ? (age - c[j - 1].mean_age) / span : 1.0;
                return c[j - 1].probability + u * (c[j].probability - c[j - 1].probability);
            }
        }
        return c.back().probability;
    }
    /// P(won within horizon | stage by name, age). @throws argument_error for an unknown stage.
    template <class = void>
    [[nodiscard]] double probability(std::string_view stage, double age) const {
        const auto s = find(stage);
        if (!s) throw argument_error(detail::message("landmark_table: no stage '", stage, "'"));
        return probability(*s, age);
    }
};

namespace detail {

/// Non-increasing weighted isotonic regression (pool-adjacent-violators), in place.
template <class = void>
void isotonic_non_increasing(std::vector<double>& y, const std::vector<double>& w) {
    struct block {
        double sum_wy, sum_w;
        std::size_t n;
    };
    std::vector<block> b;
    for (std::size_t i = 0; i < y.size(); ++i) {
        const double wi = std::max(w[i], 1e-12);
        b.push_back({wi * y[i], wi, 1});
        while (b.size() >= 2 && b[b.size() - 2].sum_wy / b[b.size() - 2].sum_w < b.back().sum_wy / b.back().sum_w) {
            const block top = b.back();
            b.pop_back();
            b.back().sum_wy += top.sum_wy;
            b.back().sum_w += top.sum_w;
            b.back().n += top.n;
        }
    }
    std::size_t i = 0;
    for (const auto& bl : b)
        for (std::size_t k = 0; k < bl.n; ++k) y[i++] = bl.sum_wy / bl.sum_w;
}

template <class = void>
void validate(const landmark_options& o) {
    if (!(std::isfinite(o.horizon) && o.horizon > 0.0))
        throw argument_error(message("landmarks: horizon must be positive and finite, got ", o.horizon));
    if (!(std::isfinite(o.spacing) && o.spacing > 0.0))
        throw argument_error(message("landmarks: spacing must be positive and finite, got ", o.spacing));
    if (o.age_edges.empty() || o.age_edges.front() != 0.0)
        throw argument_error("landmarks: age_edges must start at 0");
    for (std::size_t j = 1; j < o.age_edges.size(); ++j)
        if (!(std::isfinite(o.age_edges[j]) && o.age_edges[j] > o.age_edges[j - 1]))
            throw argument_error(message("landmarks: age_edges must be finite and increasing, got ", o.age_edges[j],
                                         " after ", o.age_edges[j - 1]));
    if (!(o.window > o.horizon))
        throw argument_error(message("landmarks: window ", o.window, " must exceed the horizon ", o.horizon));
    if (!(o.half_life > 0.0))
        throw argument_error(message("landmarks: half_life must be positive, got ", o.half_life));
    if (!(std::isfinite(o.prior_strength) && o.prior_strength >= 0.0))
        throw argument_error(message("landmarks: prior_strength must be finite and >= 0, got ", o.prior_strength));
}

} // namespace detail

/// Fits a landmark table from a history (see the file comment).
/// @param log a finished visit log; its end_time is the end of the known history
/// @throws argument_error on bad options (horizon, spacing, age edges, window <= horizon,
///   half_life, prior_strength), when the log is shorter than one spacing plus the
///   horizon (no landmark), or when the spacing gives more than 100,000 landmarks.
/// Complexity: O(n + rows) for n visits.
/// Example: `landmark_options o; o.horizon = 90; auto t = fit_landmarks(log, o);
///           t.probability("Negotiation", 20.0);`
template <class = void>
[[nodiscard]] landmark_table fit_landmarks(const visit_log& log, const landmark_options& opt = {}) {
    detail::validate(opt);
    const double start = detail::first_entry(log);
    const double last = log.end_time - opt.horizon;
    const double earliest = std::max(start + opt.spacing, log.end_time - opt.window);
    landmark_table t;
    t.horizon = opt.horizon;
    // L_k = last − k·spacing (not a running difference: a spacing below the times' resolution
    // would never move L), at most max_landmarks of them.
    constexpr double max_landmarks = 100000.0;
    if ((last - earliest) / opt.spacing >= max_landmarks)
        throw argument_error(detail::message("fit_landmarks: ", log.source, ": spacing ", opt.spacing, " over [", earliest,
                                             ", ", last, "] gives more than ", max_landmarks, " landmarks"));
    for (double k = 0.0;; k += 1.0) {
        const double L = last - k * opt.spacing;
        if (!(L >= earliest - 1e-9 * std::max(1.0, std::abs(L)))) break;
        t.landmarks.push_back(L);
    }
    if (log.empty() || !std::isfinite(start) || t.landmarks.empty())
        throw argument_error(detail::message("fit_landmarks: ", log.source, ": no landmark: the history [", start, ", ",
                                             log.end_time, "] is shorter than a spacing (", opt.spacing,
                                             ") plus the horizon (", opt.horizon, ") within the window"));
    std::reverse(t.landmarks.begin(), t.landmarks.end());
    auto weight_of = [&](std::size_t l) {
        return std::isfinite(opt.half_life) ? std::exp2(-(last - t.landmarks[l]) / opt.half_life) : 1.0;
    };
    const std::vector<char> is_won = detail::won_stages(log, opt.won);

    // Stage slots in order of first appearance.
    std::vector<std::size_t> slot(log.stage_names.size(), std::numeric_limits<std::size_t>::max());
    const std::size_t nb = opt.age_edges.size();
    auto stage_slot = [&](std::uint32_t s) {
        if (slot[s] == std::numeric_limits<std::size_t>::max()) {
            slot[s] = t.stages.size();
            landmark_stage st;
            st.name = log.stage_names[s];
            st.cells.resize(nb);
            for (std::size_t j = 0; j < nb; ++j) {
                st.cells[j].age_lower = opt.age_edges[j];
                st.cells[j].age_upper = j + 1 < nb ? opt.age_edges[j + 1] : std::numeric_limits<double>::infinity();
            }
            t.stages.push_back(std::move(st));
        }
        return slot[s];
    };
    for (auto s : log.stage) (void)stage_slot(s);

    std::vector<double> age_sum(t.stages.size() * nb, 0.0);
    for (std::size_t first = 0; first < log.size();) {
        const std::size_t end = detail::deal_end(log, first);
        const std::size_t fin = end - 1;
        const double won_at = !log.censored(fin) && is_won[log.next[fin]] ? log.exited[fin]
                                                                          : std::numeric_limits<double>::infinity();
        for (std::size_t i = first; i < end; ++i) {
            const double exit = log.censored(i) ? std::numeric_limits<double>::infinity() : log.exited[i];
            // Landmarks L with entered <= L < exit.
            const auto lo = std::lower_bound(t.landmarks.begin(), t.landmarks.end(), log.entered[i]);
            const auto hi = std::lower_bound(lo, t.landmarks.end(), exit);
            if (lo == hi) continue;
            landmark_stage& st = t.stages[slot[log.stage[i]]];
            for (auto it = lo; it != hi; ++it) {
                const double L = *it;
                const double age = L - log.entered[i];
                const std::size_t j =
                    static_cast<std::size_t>(std::upper_bound(opt.age_edges.begin(), opt.age_edges.end(), age) -
                                             opt.age_edges.begin()) - 1;
                const double w = weight_of(static_cast<std::size_t>(it - t.landmarks.begin()));
                const bool y = won_at > L && won_at <= L + opt.horizon;
                landmark_cell& c = st.cells[j];
                ++c.rows;
                c.weight += w;
                c.won += y ? w : 0.0;
                age_sum[slot[log.stage[i]] * nb + j] += w * age;
            }
        }
        first = end;
    }

    // Shrinkage: overall -> stage -> neighbourhood -> cell, then isotonic.
    double all_w = 0.0, all_won = 0.0;
    for (auto& st : t.stages)
        for (auto& c : st.cells) {
            st.rows += c.rows;
            st.weight += c.weight;
            st.won += c.won;
            all_w += c.weight;
            all_won += c.won;
        }
    t.overall = all_w > 0.0 ? all_won / all_w : 0.0;
    const double k = opt.prior_strength;
    auto shrink = [k](double won, double w, double prior) { return w + k > 0.0 ? (won + k * prior) / (w + k) : prior; };
    for (std::size_t s = 0; s < t.stages.size(); ++s) {
        auto& st = t.stages[s];
        t.rows += st.rows;
        st.pooled = shrink(st.won, st.weight, t.overall);
        std::vector<double> p(nb), w(nb);
        for (std::size_t j = 0; j < nb; ++j) {
            auto& c = st.cells[j];
            c.raw = c.weight > 0.0 ? c.won / c.weight : std::numeric_limits<double>::quiet_NaN();
            c.mean_age = c.weight > 0.0 ? age_sum[s * nb + j] / c.weight
                                        : (std::isfinite(c.age_upper) ? 0.5 * (c.age_lower + c.age_upper) : c.age_lower);
            double nw = 0.0, nwon = 0.0;
            for (std::size_t m = j > 0 ? j - 1 : 0; m <= std::min(j + 1, nb - 1); ++m) {
                nw += st.cells[m].weight;
                nwon += st.cells[m].won;
            }
            const double q = shrink(nwon, nw, st.pooled);
            p[j] = shrink(c.won, c.weight, q);
            w[j] = c.weight + k;
        }
        if (opt.monotone) detail::isotonic_non_increasing(p, w);
        for (std::size_t j = 0; j < nb; ++j) st.cells[j].probability = std::clamp(p[j], 0.0, 1.0);
        // Empty cells take no part in the interpolation.
        std::erase_if(st.cells, [](const landmark_cell& c) { return c.rows == 0; });
    }
    return t;
}

/// Per-deal and total forecast of a book by a landmark table.
struct landmark_forecast_result {
    double horizon = 0.0;
    std::size_t count = 0;          ///< deals in the book
    double total_amount = 0.0;      ///< Σ amount
    double expected = 0.0;          ///< Σ amount × P(won within h | stage, age)
    double expected_count = 0.0;    ///< Σ P(won within h | stage, age)
    std::size_t unknown_stage = 0;  ///< deals in stages the table has no rows for (given the overall rate)
    std::vector<double> deal_probability; ///< per deal, book order
};

/// Forecasts a book with a landmark table: each deal gets P(won within h | its stage, its
/// age) from the table (by stage name; a stage the table has no rows for gets the
/// overall rate and is counted). The book's probability overrides (P(win) eventually) are
/// not used: the table has no P(win eventually) to scale them by.
/// @throws nothing beyond allocation.
/// Complexity: O(n · cells per stage).
/// Example: `auto f = landmark_forecast(t, bk); f.expected;`
template <class = void>
[[nodiscard]] landmark_forecast_result landmark_forecast(const landmark_table& t, const book& b) {
    landmark_forecast_result r;
    r.horizon = t.horizon;
    r.count = b.size();
    std::vector<std::optional<std::size_t>> index(b.stage_names().size());
    for (std::size_t s = 0; s < index.size(); ++s) index[s] = t.find(b.stage_names()[s]);
    r.deal_probability.resize(b.size());
    const auto st = b.stages();
    const auto amt = b.amounts();
    const auto age = b.ages();
    for (std::size_t i = 0; i < b.size(); ++i) {
        double p = t.overall;
        if (index[st[i]]) p = t.probability(*index[st[i]], age[i]);
        else ++r.unknown_stage;
        r.deal_probability[i] = p;
        r.total_amount += amt[i];
        r.expected += amt[i] * p;
        r.expected_count += p;
    }
    return r;
}

} // namespace pipecast
