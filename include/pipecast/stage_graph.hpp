// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file stage_graph.hpp
/// @brief The stage graph: open stages with dwell times, absorbing outcomes, transitions.
///
/// Stages are indexed 0..size()-1: the open stages first (0..open_count()-1, in funnel
/// order), then the outcomes. The transition matrix has one row per open stage and one
/// column per stage: entry (i, j) is the probability that a deal leaving open stage i goes
/// to stage j (the embedded jump chain). A stage_graph validates everything in its
/// constructor and is immutable afterwards, so one graph is safely shared across threads.

#include <pipecast/dwell.hpp>
#include <pipecast/error.hpp>

#include <Eigen/Core>

#include <cmath>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pipecast {

/// An open (non-absorbing) stage: a name and its dwell-time distribution.
struct open_stage {
    std::string name;
    dwell_distribution dwell;
};

/// An absorbing outcome stage, counted as a win or not (won, lost, disqualified, ...).
struct outcome_stage {
    std::string name;
    bool win = false;
};

/// Transition rows by name: from-stage -> (to-stage -> probability). Missing entries are 0.
using transition_rows = std::map<std::string, std::map<std::string, double>>;

/// The validated, immutable stage graph.
class stage_graph {
public:
    /// Rows must sum to 1 within this tolerance; they are then renormalised exactly.
    static constexpr double row_tolerance = 1e-6;
    /// Rows summing to 1 within this (rounding) tolerance are kept exactly as given, so that
    /// renormalisation is idempotent and a model written and read back compares equal.
    static constexpr double row_rounding = 1e-12;

    /// @param stages open stages in funnel order (at least one)
    /// @param outcomes absorbing outcomes (at least one win and one non-win)
    /// @param transitions open_count() x size() matrix; columns follow stages then outcomes
    /// @throws model_error naming the stage and the problem: empty or duplicate names,
    ///   a probability outside [0,1] or not finite, a row not summing to 1, a stage from
    ///   which no outcome can be reached (closed loop), a missing win or non-win outcome.
    stage_graph(std::vector<open_stage> stages, std::vector<outcome_stage> outcomes,
                Eigen::MatrixXd transitions)
        : stages_(std::move(stages)), outcomes_(std::move(outcomes)), p_(std::move(transitions)) {
        validate();
    }

    /// Builds a graph from named transition rows (the JSON form).
    /// @throws model_error for an unknown stage name or any problem of the main constructor.
    static stage_graph from_rows(std::vector<open_stage> stages, std::vector<outcome_stage> outcomes,
                                 const transition_rows& rows) {
        const std::size_t m = stages.size(), n = m + outcomes.size();
        std::unordered_map<std::string_view, std::size_t> index;
        for (std::size_t i = 0; i < m; ++i) index.emplace(stages[i].name, i);
        for (std::size_t k = 0; k < outcomes.size(); ++k) index.emplace(outcomes[k].name, m + k);
        Eigen::MatrixXd p = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(n));
        for (const auto& [from, row] : rows) {
            const auto f = index.find(from);
            if (f == index.end())
                throw model_error(detail::message("transitions: unknown stage '", from, "'"));
            if (f->second >= m)
                throw model_error(detail::message("transitions: stage '", from,
                                                  "' is an outcome and cannot have a transition row"));
            for (const auto& [to, prob] : row) {
                const auto t = index.find(to);
                if (t == index.end())
                    throw model_error(detail::message("transitions of stage '", from,
                                                      "': unknown target stage '", to, "'"));
                p(static_cast<Eigen::Index>(f->second), static_cast<Eigen::Index>(t->second)) = prob;
            }
        }
        for (std::size_t i = 0; i < m; ++i)
            if (!rows.contains(stages[i].name))
                throw model_error(detail::message("stage '", stages[i].name, "' has no transition row"));
        return stage_graph(std::move(stages), std::move(outcomes), std::move(p));
    }

    /// Number of open stages.
    [[nodiscard]] std::size_t open_count() const noexcept { return stages_.size(); }
    /// Number of outcome stages.
    [[nodiscard]] std::size_t outcome_count() const noexcept { return outcomes_.size(); }
    /// All stages (open + outcomes).
    [[nodiscard]] std::size_t size() const noexcept { return stages_.size() + outcomes_.size(); }

    [[nodiscard]] bool is_open(std::size_t s) const noexcept { return s < stages_.size(); }
    [[nodiscard]] bool is_outcome(std::size_t s) const noexcept { return s >= stages_.size() && s < size(); }
    /// True for an outcome that counts as a win.
    [[nodiscard]] bool is_win(std::size_t s) const noexcept {
        return is_outcome(s) && outcomes_[s - stages_.size()].win;
    }

    /// Name of stage s (open or outcome).
    [[nodiscard]] const std::string& name(std::size_t s) const {
        PIPECAST_ASSERT(s < size());
        return s < stages_.size() ? stages_[s].name : outcomes_[s - stages_.size()].name;
    }
    /// Index of a stage by name, if any.
    [[nodiscard]] std::optional<std::size_t> find(std::string_view stage_name) const {
        const auto it = index_.find(std::string(stage_name));
        if (it == index_.end()) return std::nullopt;
        return it->second;
    }
    /// Index of a stage by name. @throws model_error naming the unknown stage.
    [[nodiscard]] std::size_t index_of(std::string_view stage_name) const {
        if (auto i = find(stage_name)) return *i;
        throw model_error(detail::message("unknown stage '", stage_name, "'"));
    }

    /// Dwell distribution of open stage s.
    [[nodiscard]] const dwell_distribution& dwell(std::size_t s) const {
        PIPECAST_ASSERT(is_open(s));
        return stages_[s].dwell;
    }
    [[nodiscard]] std::span<const open_stage> stages() const noexcept { return stages_; }
    [[nodiscard]] std::span<const outcome_stage> outcomes() const noexcept { return outcomes_; }

    /// The jump-chain matrix, open_count() x size(), rows summing to 1.
    [[nodiscard]] const Eigen::MatrixXd& transitions() const noexcept { return p_; }
    /// P(next = to | leaving from), from open.
    [[nodiscard]] double transition(std::size_t from, std::size_t to) const {
        PIPECAST_ASSERT(is_open(from) && to < size());
        return p_(static_cast<Eigen::Index>(from), static_cast<Eigen::Index>(to));
    }
    /// Open-to-open block Q (open_count() x open_count()).
    [[nodiscard]] auto transient_block() const { return p_.leftCols(static_cast<Eigen::Index>(open_count())); }
    /// Open-to-outcome block R (open_count() x outcome_count()).
    [[nodiscard]] auto absorbing_block() const { return p_.rightCols(static_cast<Eigen::Index>(outcome_count())); }

    friend bool operator==(const stage_graph& a, const stage_graph& b) {
        auto same_outcomes = [&] {
            for (std::size_t k = 0; k < a.outcomes_.size(); ++k)
                if (a.outcomes_[k].name != b.outcomes_[k].name || a.outcomes_[k].win != b.outcomes_[k].win)
                    return false;
            return true;
        };
        auto same_stages = [&] {
            for (std::size_t i = 0; i < a.stages_.size(); ++i)
                if (a.stages_[i].name != b.stages_[i].name || !(a.stages_[i].dwell == b.stages_[i].dwell))
                    return false;
            return true;
        };
        return a.stages_.size() == b.stages_.size() && a.outcomes_.size() == b.outcomes_.size() &&
               same_stages() && same_outcomes() && a.p_ == b.p_;
    }

private:
    void validate() {
        const std::size_t m = stages_.size(), n = size();
        if (m == 0) throw model_error("stage graph: no open stages");
        bool any_win = false, any_loss = false;
        for (const auto& o : outcomes_) (o.win ? any_win : any_loss) = true;
        if (!any_win) throw model_error("stage graph: no winning outcome (need at least one, e.g. 'Won')");
        if (!any_loss) throw model_error("stage graph: no losing outcome (need at least one, e.g. 'Lost')");
        for (std::size_t s = 0; s < n; ++s) {
            const std::string& nm = name(s);
            if (nm.empty()) throw model_error(detail::message("stage graph: stage ", s, " has an empty name"));
            if (!index_.emplace(nm, s).second)
                throw model_error(detail::message("stage graph: duplicate stage name '", nm, "'"));
        }
        if (p_.rows() != static_cast<Eigen::Index>(m) || p_.cols() != static_cast<Eigen::Index>(n))
            throw model_error(detail::message("stage graph: transition matrix is ", p_.rows(), "x", p_.cols(),
                                              ", expected ", m, "x", n, " (open stages x all stages)"));
        for (std::size_t i = 0; i < m; ++i) {
            const auto r = static_cast<Eigen::Index>(i);
            double sum = 0.0;
            for (std::size_t j = 0; j < n; ++j) {
                const double v = p_(r, static_cast<Eigen::Index>(j));
                if (!(std::isfinite(v) && v >= 0.0 && v <= 1.0))
                    throw model_error(detail::message("stage '", name(i), "': transition probability to '",
                                                      name(j), "' must be in [0, 1], got ", v));
                sum += v;
            }
            if (!(std::abs(sum - 1.0) <= row_tolerance))
                throw model_error(detail::message("stage '", name(i), "': transition probabilities sum to ", sum,
                                                  ", expected 1 (tolerance ", row_tolerance, ")"));
            if (std::abs(sum - 1.0) > row_rounding) p_.row(r) /= sum;
        }
        // Every open stage must reach an outcome: backward search from the outcomes.
        std::vector<char> reaches(m, 0);
        for (bool changed = true; changed;) {
            changed = false;
            for (std::size_t i = 0; i < m; ++i) {
                if (reaches[i]) continue;
                for (std::size_t j = 0; j < n && !reaches[i]; ++j)
                    if (p_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) > 0.0 &&
                        (j >= m || reaches[j]))
                        reaches[i] = changed = true;
            }
        }
        for (std::size_t i = 0; i < m; ++i)
            if (!reaches[i])
                throw model_error(detail::message("stage '", name(i),
                                                  "': no outcome can be reached from it (closed loop of open stages)"));
    }

    std::vector<open_stage> stages_;
    std::vector<outcome_stage> outcomes_;
    Eigen::MatrixXd p_;
    std::unordered_map<std::string, std::size_t> index_;
};

// ---------------------------------------------------------------------------------------
// Linear funnels
// ---------------------------------------------------------------------------------------

/// How the rates of a linear funnel are given.
enum class funnel_rates {
    cumulative_win, ///< P(eventually won | in stage i), e.g. 20%, 40%, 50%, 80%, 100%
    conversion      ///< P(stage i -> stage i+1), the last stage's being P(-> Won)
};

/// Stage-to-stage conversions from cumulative win rates: c_i = w_i / w_{i+1}, c_last = w_last.
/// @throws model_error if a rate is outside [0,1] or the rates decrease along the funnel.
[[nodiscard]] inline std::vector<double> win_rates_to_conversions(std::span<const double> w) {
    std::vector<double> c(w.size());
    for (std::size_t i = 0; i < w.size(); ++i)
        if (!(std::isfinite(w[i]) && w[i] >= 0.0 && w[i] <= 1.0))
            throw model_error(detail::message("linear funnel: win rate of stage ", i, " must be in [0, 1], got ", w[i]));
    for (std::size_t i = 0; i < w.size(); ++i) {
        if (i + 1 == w.size()) {
            c[i] = w[i];
        } else if (w[i + 1] == 0.0) {
            if (w[i] != 0.0)
                throw model_error(detail::message("linear funnel: stage ", i, " has win rate ", w[i],
                                                  " but the next stage has 0"));
            c[i] = 0.0;
        } else {
            c[i] = w[i] / w[i + 1];
            if (c[i] > 1.0 + 1e-12)
                throw model_error(detail::message("linear funnel: win rates must not decrease along the funnel (stage ",
                                                  i, ": ", w[i], " > stage ", i + 1, ": ", w[i + 1], ")"));
            c[i] = std::min(c[i], 1.0);
        }
    }
    return c;
}

/// Cumulative win rates from stage-to-stage conversions: w_i = Π_{j>=i} c_j.
/// @throws model_error if a conversion is outside [0,1].
[[nodiscard]] inline std::vector<double> conversions_to_win_rates(std::span<const double> c) {
    std::vector<double> w(c.size());
    double acc = 1.0;
    for (std::size_t k = c.size(); k-- > 0;) {
        if (!(std::isfinite(c[k]) && c[k] >= 0.0 && c[k] <= 1.0))
            throw model_error(detail::message("linear funnel: conversion of stage ", k, " must be in [0, 1], got ", c[k]));
        acc *= c[k];
        w[k] = acc;
    }
    return w;
}

/// A straight-chain funnel: stage i converts to stage i+1 (the last to `won`) or is lost.
/// @param names the open stages in order
/// @param rates cumulative win rates or conversions, one per stage (see `kind`)
/// @param dwells one dwell distribution per stage
/// @throws model_error on mismatched lengths or invalid rates.
/// Example: `linear_funnel({"Lead","Demo","Proposal"}, {0.2, 0.5, 0.8}, {d1, d2, d3})`.
[[nodiscard]] inline stage_graph linear_funnel(std::vector<std::string> names, std::vector<double> rates,
                                               std::vector<dwell_distribution> dwells,
                                               funnel_rates kind = funnel_rates::cumulative_win,
                                               std::string won = "Won", std::string lost = "Lost") {
    const std::size_t m = names.size();
    if (rates.size() != m || dwells.size() != m)
        throw model_error(detail::message("linear funnel: ", m, " stages but ", rates.size(), " rates and ",
                                          dwells.size(), " dwell distributions"));
    std::vector<double> c;
    if (kind == funnel_rates::cumulative_win) {
        c = win_rates_to_conversions(rates);
    } else {
        (void)conversions_to_win_rates(rates); // validates the conversions
        c = std::move(rates);
    }
    Eigen::MatrixXd p = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m + 2));
    for (std::size_t i = 0; i < m; ++i) {
        const auto r = static_cast<Eigen::Index>(i);
        p(r, static_cast<Eigen::Index>(i + 1)) = c[i]; // next stage, or Won for the last
        p(r, static_cast<Eigen::Index>(m + 1)) = 1.0 - c[i];
    }
    std::vector<open_stage> stages;
    stages.reserve(m);
    for (std::size_t i = 0; i < m; ++i) stages.push_back({std::move(names[i]), std::move(dwells[i])});
    return stage_graph(std::move(stages), {{std::move(won), true}, {std::move(lost), false}}, std::move(p));
}

/// A straight-chain funnel with exponential dwell times of the given means (one line).
[[nodiscard]] inline stage_graph linear_funnel(std::vector<std::string> names, std::vector<double> rates,
                                               const std::vector<double>& mean_durations,
                                               funnel_rates kind = funnel_rates::cumulative_win) {
    std::vector<dwell_distribution> d;
    d.reserve(mean_durations.size());
    for (std::size_t i = 0; i < mean_durations.size(); ++i) {
        if (!(std::isfinite(mean_durations[i]) && mean_durations[i] > 0.0))
            throw model_error(detail::message("linear funnel: stage ", i < names.size() ? names[i] : std::to_string(i),
                                              ": mean duration must be positive and finite, got ", mean_durations[i]));
        d.push_back(dwell_distribution::exponential(mean_durations[i]));
    }
    return linear_funnel(std::move(names), std::move(rates), std::move(d), kind);
}

} // namespace pipecast
