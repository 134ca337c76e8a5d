// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model/stage_graph.hpp
/// @brief The stage graph: open stages with dwell times, absorbing outcomes, transitions.
///
/// Stages are indexed 0..size()-1: the open stages first (0..open_count()-1, in funnel
/// order), then the outcomes. The transition matrix has one row per open stage and one
/// column per stage: entry (i, j) is the probability that a deal leaving open stage i goes
/// to stage j (the embedded jump chain). A stage_graph validates everything in its
/// constructor and is immutable afterwards, so one graph is safely shared across threads.

#include <pipecast/error.hpp>
#include <pipecast/model/dwell.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pipecast {

/// One way out of a branched open stage: a share `probability` of the deals that enter the
/// stage leave it for stage `to`, after a time in stage drawn from `dwell`. A `stalled`
/// branch is the no-decision share: deals that never move on their own and are closed
/// (lost) by a clean-up after `dwell`; it must lead to a losing outcome.
struct stage_branch {
    std::string to;
    double probability = 0.0;
    dwell_distribution dwell;
    bool stalled = false;
    friend bool operator==(const stage_branch&, const stage_branch&) = default;
};

/// An open (non-absorbing) stage: a name and its dwell-time distribution.
///
/// A **classic** stage (no branches) has one dwell for every exit: the next stage is drawn
/// from the transition row independently of the time in stage (a semi-Markov stage).
/// A **branched** stage lists its exits as branches, each with its own dwell: the time in
/// stage and the destination are jointly distributed (competing risks written as a
/// mixture), so wins can come early and losses late, and a stalled share can be expressed.
/// Its transition row is the sum of the branch probabilities per target, and `dwell` is
/// then only a summary: an exponential with the stage's mean time (Σ π_k E[T_k]); every
/// time-dependent computation uses the latent graph (stage_graph::latent()) instead.
struct open_stage {
    std::string name;
    dwell_distribution dwell;
    std::vector<stage_branch> branches = {};
};

/// An absorbing outcome stage, counted as a win or not (won, lost, disqualified, ...).
struct outcome_stage {
    std::string name;
    bool win = false;
};

/// One positive entry of a transition row: the target stage and the probability.
struct transition_edge {
    std::size_t to = 0;
    double probability = 0.0;
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
        for (std::size_t i = 0; i < m; ++i) {
            const bool has_row = rows.contains(stages[i].name);
            if (!has_row && stages[i].branches.empty())
                throw model_error(detail::message("stage '", stages[i].name, "' has no transition row"));
            if (has_row && !stages[i].branches.empty())
                throw model_error(detail::message("stage '", stages[i].name,
                                                  "' has both branches and a transition row: give one or the other"));
        }
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

    /// Which open stages can still reach an outcome that `target(k)` accepts (k the outcome's
    /// stage index, size() > k >= open_count()) along edges of positive probability: 1 for
    /// such a stage, 0 otherwise, one entry per open stage. The one rule for "can this stage
    /// still win / close": the constructor requires every stage to reach some outcome, the
    /// simulator's override winners use the stages that can reach a win
    /// (`can_reach([&](std::size_t k) { return g.is_win(k); })`). A breadth-first search
    /// backwards over the reversed edges, O(m + edges).
    template <class Target>
    [[nodiscard]] std::vector<char> can_reach(Target&& target) const {
        const std::size_t m = stages_.size();
        std::vector<std::size_t> in_start(m + 1, 0);
        for (const auto& e : edges_)
            if (e.to < m) ++in_start[e.to + 1];
        for (std::size_t i = 0; i < m; ++i) in_start[i + 1] += in_start[i];
        std::vector<std::size_t> from(in_start[m]), next(in_start.begin(), in_start.end() - 1);
        std::vector<char> reaches(m, 0);
        std::vector<std::size_t> queue;
        queue.reserve(m);
        for (std::size_t i = 0; i < m; ++i) {
            for (const auto& e : edges(i)) {
                if (e.to < m) {
                    from[next[e.to]++] = i;
                } else if (!reaches[i] && target(e.to)) {
                    reaches[i] = 1;
                    queue.push_back(i);
                }
            }
        }
        for (std::size_t head = 0; head < queue.size(); ++head)
            for (std::size_t k = in_start[queue[head]]; k < in_start[queue[head] + 1]; ++k)
                if (!reaches[from[k]]) {
                    reaches[from[k]] = 1;
                    queue.push_back(from[k]);
                }
        return reaches;
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

    /// Dwell distribution of open stage s (for a branched stage: the exponential summary
    /// with the stage's mean time; see open_stage).
    [[nodiscard]] const dwell_distribution& dwell(std::size_t s) const {
        PIPECAST_ASSERT(is_open(s));
        return stages_[s].dwell;
    }
    /// E[time in open stage s] (Σ π_k E[T_k] for a branched stage).
    [[nodiscard]] double mean_dwell(std::size_t s) const {
        PIPECAST_ASSERT(is_open(s));
        return stages_[s].dwell.mean();
    }

    // ---- Branched stages and the latent graph -------------------------------------------

    /// True if open stage s lists its exits as branches.
    [[nodiscard]] bool branched(std::size_t s) const noexcept { return is_open(s) && !stages_[s].branches.empty(); }
    /// True if any open stage is branched (then time-dependent results use latent()).
    [[nodiscard]] bool has_branches() const noexcept { return latent_ != nullptr; }
    /// The branches of open stage s (empty for a classic stage).
    [[nodiscard]] std::span<const stage_branch> branches(std::size_t s) const {
        PIPECAST_ASSERT(is_open(s));
        return stages_[s].branches;
    }
    /// Stage index of the target of branch k of stage s.
    [[nodiscard]] std::size_t branch_target(std::size_t s, std::size_t k) const {
        PIPECAST_ASSERT(branched(s) && k < branch_target_[s].size());
        return branch_target_[s][k];
    }

    /// The classic semi-Markov graph with one latent state per branch (a branched stage's
    /// deal sits in the latent state of the branch it will leave by), or this graph when no
    /// stage is branched. Latent open states are grouped by stage in funnel order
    /// (latent_first), then come the same outcomes as here. Entering a branched stage is
    /// entering branch k with probability π_k; a latent state leaves only to its target.
    [[nodiscard]] const stage_graph& latent() const noexcept { return latent_ ? *latent_ : *this; }
    /// First latent open state of open stage s; its states are [latent_first(s), latent_first(s+1)).
    [[nodiscard]] std::size_t latent_first(std::size_t s) const noexcept {
        return latent_ ? latent_first_[s] : std::min(s, open_count());
    }
    /// Number of latent states of open stage s (its branch count, 1 for a classic stage).
    [[nodiscard]] std::size_t latent_count(std::size_t s) const noexcept {
        return latent_ ? latent_first_[s + 1] - latent_first_[s] : 1;
    }
    /// The open stage that latent open state l belongs to.
    [[nodiscard]] std::size_t stage_of_latent(std::size_t l) const noexcept {
        return latent_ ? latent_stage_[l] : l;
    }
    /// The latent index of outcome s (the outcomes follow the latent open states).
    [[nodiscard]] std::size_t latent_outcome(std::size_t s) const noexcept {
        PIPECAST_ASSERT(is_outcome(s));
        return latent().open_count() + (s - open_count());
    }
    /// True if latent open state l is a stalled branch.
    [[nodiscard]] bool latent_stalled(std::size_t l) const noexcept { return latent_ && latent_is_stalled_[l] != 0; }

    /// Which branch a deal of stage s that has been there for `age` will leave by: writes
    /// P(branch k | T > age) = π_k S_k(age) / Σ_l π_l S_l(age) into out[0..latent_count(s)) and
    /// returns latent_first(s). A classic stage gets weight 1. Past the support of every
    /// branch (all S_k(age) = 0, only possible for bounded dwells such as empirical ones)
    /// the deal is treated as stalled: the weight goes to the stalled branches (by π), or, with
    /// none, to the branches with a losing target; the oldest deals never become sure wins.
    /// @throws argument_error for a negative or non-finite age.
    template <class = void>
    std::size_t branch_weights(std::size_t s, double age, std::span<double> out) const {
        PIPECAST_ASSERT(is_open(s) && out.size() >= latent_count(s));
        if (!(std::isfinite(age) && age >= 0.0))
            throw argument_error(detail::message("stage '", name(s), "': age must be finite and >= 0, got ", age));
        if (!branched(s)) {
            out[0] = 1.0;
            return latent_first(s);
        }
        const auto& br = stages_[s].branches;
        double top = -std::numeric_limits<double>::infinity();
        for (std::size_t k = 0; k < br.size(); ++k) {
            out[k] = br[k].probability > 0.0 ? std::log(br[k].probability) + log_survival(br[k].dwell, age)
                                             : -std::numeric_limits<double>::infinity();
            top = std::max(top, out[k]);
        }
        double sum = 0.0;
        if (top == -std::numeric_limits<double>::infinity()) {
            bool any_stalled = false;
            for (const auto& b : br) any_stalled = any_stalled || (b.stalled && b.probability > 0.0);
            for (std::size_t k = 0; k < br.size(); ++k) {
                const bool take = any_stalled ? br[k].stalled : !is_win(branch_target_[s][k]) && is_outcome(branch_target_[s][k]);
                out[k] = take ? std::max(br[k].probability, 1e-300) : 0.0;
                sum += out[k];
            }
            if (!(sum > 0.0)) { // only open or winning targets: spread by π
                for (std::size_t k = 0; k < br.size(); ++k) sum += (out[k] = br[k].probability);
            }
        } else {
            for (std::size_t k = 0; k < br.size(); ++k) sum += (out[k] = std::exp(out[k] - top));
        }
        for (std::size_t k = 0; k < br.size(); ++k) out[k] /= sum;
        return latent_first(s);
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
    /// The positive entries of open stage s's row, by increasing target: the sparse form of
    /// transitions().row(s) that graph searches and sparse solvers use (O(edges), not O(m n)).
    [[nodiscard]] std::span<const transition_edge> edges(std::size_t s) const {
        PIPECAST_ASSERT(is_open(s));
        return std::span<const transition_edge>(edges_).subspan(edge_start_[s], edge_start_[s + 1] - edge_start_[s]);
    }
    /// Number of positive transition entries over all open stages.
    [[nodiscard]] std::size_t edge_count() const noexcept { return edges_.size(); }
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
                if (a.stages_[i].name != b.stages_[i].name || !(a.stages_[i].dwell == b.stages_[i].dwell) ||
                    !(a.stages_[i].branches == b.stages_[i].branches))
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
        validate_branches();
        // Row sums and the range check in one pass down the (column-major) columns, summing
        // each row in column order as a row-wise loop would; on a bad entry the row-wise loop
        // below names the first one in row order.
        std::vector<double> sums(m, 0.0);
        bool in_range = true;
        for (std::size_t j = 0; j < n; ++j) {
            const double* col = p_.col(static_cast<Eigen::Index>(j)).data();
            for (std::size_t i = 0; i < m; ++i) {
                const double v = col[i];
                in_range = in_range && std::isfinite(v) && v >= 0.0 && v <= 1.0;
                sums[i] += v;
            }
        }
        for (std::size_t i = 0; i < m; ++i) {
            const auto r = static_cast<Eigen::Index>(i);
            if (!in_range) {
                for (std::size_t j = 0; j < n; ++j) {
                    const double v = p_(r, static_cast<Eigen::Index>(j));
                    if (!(std::isfinite(v) && v >= 0.0 && v <= 1.0))
                        throw model_error(detail::message("stage '", name(i), "': transition probability to '",
                                                          name(j), "' must be in [0, 1], got ", v));
                }
            }
            const double sum = sums[i];
            if (!(std::abs(sum - 1.0) <= row_tolerance))
                throw model_error(detail::message("stage '", name(i), "': transition probabilities sum to ", sum,
                                                  ", expected 1 (tolerance ", row_tolerance, ")"));
            if (std::abs(sum - 1.0) > row_rounding) p_.row(r) /= sum;
        }
        build_edges();
        check_outcome_reachable();
        if (!branch_target_.empty()) build_latent();
    }

    /// The positive entries of every row (CSR, targets increasing), from one pass over p_.
    void build_edges() {
        const std::size_t m = stages_.size(), n = size();
        edge_start_.assign(m + 1, 0);
        for (std::size_t j = 0; j < n; ++j) {
            const double* col = p_.col(static_cast<Eigen::Index>(j)).data();
            for (std::size_t i = 0; i < m; ++i) edge_start_[i + 1] += col[i] > 0.0 ? 1 : 0;
        }
        for (std::size_t i = 0; i < m; ++i) edge_start_[i + 1] += edge_start_[i];
        edges_.resize(edge_start_[m]);
        std::vector<std::size_t> next(edge_start_.begin(), edge_start_.end() - 1);
        for (std::size_t j = 0; j < n; ++j) {
            const double* col = p_.col(static_cast<Eigen::Index>(j)).data();
            for (std::size_t i = 0; i < m; ++i)
                if (col[i] > 0.0) edges_[next[i]++] = {j, col[i]};
        }
    }

    /// Every open stage must reach an outcome (can_reach). The first stage (in index order)
    /// left unreached is named: it lies on, or leads only into, a closed loop of open stages.
    void check_outcome_reachable() const {
        const std::vector<char> reaches = can_reach([](std::size_t) { return true; });
        for (std::size_t i = 0; i < reaches.size(); ++i)
            if (!reaches[i])
                throw model_error(detail::message("stage '", name(i),
                                                  "': no outcome can be reached from it (closed loop of open stages)"));
    }

    /// Branched stages: targets known, probabilities in [0, 1] summing to 1, stalled
    /// branches to a losing outcome; the row becomes the branch sums and `dwell` the summary.
    void validate_branches() {
        const std::size_t m = stages_.size(), n = size();
        bool any = false;
        for (const auto& st : stages_) any = any || !st.branches.empty();
        if (!any) return;
        branch_target_.assign(m, {});
        for (std::size_t i = 0; i < m; ++i) {
            auto& st = stages_[i];
            if (st.branches.empty()) continue;
            const auto r = static_cast<Eigen::Index>(i);
            p_.row(r).setZero();
            double sum = 0.0, mean = 0.0;
            for (std::size_t k = 0; k < st.branches.size(); ++k) {
                const auto& b = st.branches[k];
                const auto it = index_.find(b.to);
                if (it == index_.end())
                    throw model_error(detail::message("stage '", st.name, "': branch ", k, " leads to unknown stage '",
                                                      b.to, "'"));
                const std::size_t j = it->second;
                if (!(std::isfinite(b.probability) && b.probability >= 0.0 && b.probability <= 1.0))
                    throw model_error(detail::message("stage '", st.name, "': probability of branch ", k, " (to '",
                                                      b.to, "') must be in [0, 1], got ", b.probability));
                if (b.stalled && !(is_outcome(j) && !is_win(j)))
                    throw model_error(detail::message("stage '", st.name, "': the stalled branch ", k,
                                                      " must lead to a losing outcome, not '", b.to, "'"));
                branch_target_[i].push_back(j);
                p_(r, static_cast<Eigen::Index>(j)) += b.probability;
                sum += b.probability;
                mean += b.probability * b.dwell.mean();
            }
            if (!(std::abs(sum - 1.0) <= row_tolerance))
                throw model_error(detail::message("stage '", st.name, "': branch probabilities sum to ", sum,
                                                  ", expected 1 (tolerance ", row_tolerance, ")"));
            if (std::abs(sum - 1.0) > row_rounding) {
                for (auto& b : st.branches) b.probability /= sum;
                p_.row(r) /= sum;
                mean /= sum;
            }
            // Several branches to one target add up in the row: their sum may come out one
            // rounding above 1 (0.2854004421771191 + 0.7145995578228811 gives
            // 1.0000000000000002), which the range check below would refuse. A model that
            // write_model wrote (its branch probabilities as normalised here) must load back.
            p_.row(r) = p_.row(r).cwiseMin(1.0);
            st.dwell = dwell_distribution::exponential(mean);
        }
        (void)n;
    }

    /// The latent (classic) graph: one state per branch; entries into a branched stage split by π.
    void build_latent() {
        const std::size_t m = stages_.size();
        latent_first_.assign(m + 1, 0);
        std::vector<open_stage> ls;
        std::map<std::string, int> used;
        auto unique = [&](const std::string& nm) {
            if (index_.contains(nm) && !used.contains(nm)) used[nm] = 0; // never clash with a stage of this graph
            const int k = used[nm]++;
            return k == 0 ? nm : nm + " #" + std::to_string(k + 1);
        };
        for (std::size_t i = 0; i < m; ++i) {
            latent_first_[i] = ls.size();
            if (stages_[i].branches.empty()) {
                used[stages_[i].name] = 1;
                ls.push_back({stages_[i].name, stages_[i].dwell});
                latent_stage_.push_back(i);
                latent_is_stalled_.push_back(0);
                continue;
            }
            for (const auto& b : stages_[i].branches) {
                ls.push_back({unique(stages_[i].name + " -> " + b.to + (b.stalled ? " (stalled)" : "")), b.dwell});
                latent_stage_.push_back(i);
                latent_is_stalled_.push_back(b.stalled ? 1 : 0);
            }
        }
        latent_first_[m] = ls.size();
        const std::size_t lm = ls.size(), ln = lm + outcomes_.size();
        Eigen::MatrixXd lp = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(lm), static_cast<Eigen::Index>(ln));
        // Entering stage j with probability p: its latent states by π (or its one state).
        auto enter = [&](Eigen::Index row, std::size_t j, double p) {
            if (is_outcome(j)) {
                lp(row, static_cast<Eigen::Index>(lm + (j - m))) += p;
            } else if (stages_[j].branches.empty()) {
                lp(row, static_cast<Eigen::Index>(latent_first_[j])) += p;
            } else {
                for (std::size_t k = 0; k < stages_[j].branches.size(); ++k)
                    lp(row, static_cast<Eigen::Index>(latent_first_[j] + k)) += p * stages_[j].branches[k].probability;
            }
        };
        for (std::size_t i = 0; i < m; ++i) {
            if (stages_[i].branches.empty()) {
                const auto row = static_cast<Eigen::Index>(latent_first_[i]);
                for (const auto& e : edges(i)) enter(row, e.to, e.probability);
            } else {
                for (std::size_t k = 0; k < stages_[i].branches.size(); ++k)
                    enter(static_cast<Eigen::Index>(latent_first_[i] + k), branch_target_[i][k], 1.0);
            }
        }
        // Rounding: each row sums to 1 within a few ulps; the latent graph renormalises.
        latent_ = std::make_shared<const stage_graph>(std::move(ls), outcomes_, std::move(lp));
    }

    std::vector<open_stage> stages_;
    std::vector<outcome_stage> outcomes_;
    Eigen::MatrixXd p_;
    std::unordered_map<std::string, std::size_t> index_;
    std::vector<std::size_t> edge_start_;   ///< per open stage (+ end): its first entry in edges_
    std::vector<transition_edge> edges_;    ///< the positive entries of p_, row by row
    // Branched graphs only (all empty / null for a classic graph):
    std::vector<std::vector<std::size_t>> branch_target_; ///< per open stage, per branch
    std::shared_ptr<const stage_graph> latent_;           ///< the latent classic graph
    std::vector<std::size_t> latent_first_;               ///< per open stage (+ end)
    std::vector<std::size_t> latent_stage_;               ///< per latent open state
    std::vector<char> latent_is_stalled_;                 ///< per latent open state
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
template <class = void>
[[nodiscard]] std::vector<double> win_rates_to_conversions(std::span<const double> w) {
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
template <class = void>
[[nodiscard]] std::vector<double> conversions_to_win_rates(std::span<const double> c) {
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
template <class = void>
[[nodiscard]] stage_graph linear_funnel(std::vector<std::string> names, std::vector<double> rates,
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
template <class = void>
[[nodiscard]] stage_graph linear_funnel(std::vector<std::string> names, std::vector<double> rates,
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
