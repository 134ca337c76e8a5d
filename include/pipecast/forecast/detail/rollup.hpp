// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast/detail/rollup.hpp
/// @brief The forecasts' kernels (internal): the one-pass rollup of a book's columns by
/// stage, owner and category, the book checks, and the age lattice of the period forecast.

#include <pipecast/data/book.hpp>
#include <pipecast/error.hpp>
#include <pipecast/forecast/results.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/first_passage.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Eigen/Core>

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

namespace detail {

/// Totals of one group: deals, Σ amount, Σ amount × probability, deals with an override.
struct forecast_cell {
    double count = 0.0;
    double amount = 0.0;
    double weighted = 0.0;
    double overridden = 0.0;

    forecast_cell& operator+=(const forecast_cell& o) noexcept {
        count += o.count;
        amount += o.amount;
        weighted += o.weighted;
        overridden += o.overridden;
        return *this;
    }
};

/// The accumulator of the hot loop (24 bytes): both deal counts share one 64-bit word, the
/// deal count in the low 32 bits and the override count in the high 32 bits, so a deal costs
/// three read-modify-writes instead of four. Blocks of fewer than 2^32 deals cannot overflow.
struct packed_cell {
    double amount = 0.0;
    double weighted = 0.0;
    std::uint64_t counts = 0;

    static constexpr std::uint64_t one_deal = 1;
    static constexpr std::uint64_t one_override = std::uint64_t{1} << 32;

    void add(double a, double p, bool overridden) noexcept {
        amount += a;
        weighted += a * p;
        counts += one_deal + one_override * static_cast<std::uint64_t>(overridden);
    }
    [[nodiscard]] forecast_cell unpack() const noexcept {
        return {static_cast<double>(counts & 0xffffffffu), amount, weighted, static_cast<double>(counts >> 32)};
    }
};

/// cond ? a : b without a branch (a mispredicted branch on the 5% of deals with an override
/// costs more than the whole update): both operands are evaluated.
template <class = void>
[[nodiscard]] double select(bool cond, double a, double b) noexcept {
    const std::uint64_t mask = std::uint64_t{0} - static_cast<std::uint64_t>(cond);
    return std::bit_cast<double>((std::bit_cast<std::uint64_t>(a) & mask) | (std::bit_cast<std::uint64_t>(b) & ~mask));
}

/// Totals of a book by stage, owner and category.
struct rollup_totals {
    std::vector<forecast_cell> stage, owner, category;
    forecast_cell total;
};

/// A joint (owner, category, stage) table is used up to this many cells (384 KiB, within
/// L2): one accumulator update a deal instead of three. Larger books of owners fall back to
/// three tables.
inline constexpr std::size_t joint_cell_limit = std::size_t{1} << 14;
/// Tables this small get four interleaved copies, so deals that hit the same cell one after
/// another do not wait on each other's store (a store-to-load dependency chain).
inline constexpr std::size_t small_table_cells = 64;
/// Deals per block: the packed counts of a block never overflow 32 bits.
inline constexpr std::size_t rollup_block = std::size_t{1} << 31;

/// Rolls deals [begin, end) into a joint table with `lanes` interleaved copies a cell.
template <std::size_t lanes, class Prob>
void rollup_joint(const book& b, Prob& prob, std::size_t begin, std::size_t end, std::vector<packed_cell>& joint) {
    const std::size_t ns = b.stage_names().size(), nc = b.category_names().size();
    const std::uint32_t* st = b.stages().data();
    const double* am = b.amounts().data();
    const double* ov = b.probability_overrides().data();
    const std::uint32_t* ow = b.owners().data();
    const std::uint32_t* ca = b.categories().data();
    packed_cell* jt = joint.data();
    auto one = [&](std::size_t i, std::size_t lane) {
        const std::uint32_t s = st[i];
        const double o = ov[i];
        const std::size_t cell = (static_cast<std::size_t>(ow[i]) * nc + ca[i]) * ns + s;
        jt[cell * lanes + lane].add(am[i], prob(i, s, o), o == o);
    };
    std::size_t i = begin;
    if constexpr (lanes > 1)
        for (; i + lanes <= end; i += lanes)
            for (std::size_t l = 0; l < lanes; ++l) one(i + l, l);
    for (; i < end; ++i) one(i, 0);
}

/// Rolls a book up by stage, owner and category in one pass over its columns. prob(i,
/// stage, override) returns deal i's probability; a deal counts as overridden when its
/// override is not NaN.
template <class Prob>
[[nodiscard]] rollup_totals rollup(const book& b, Prob prob) {
    const std::size_t ns = b.stage_names().size(), no = b.owner_names().size(),
                      nc = b.category_names().size(), n = b.size();
    rollup_totals t{std::vector<forecast_cell>(ns), std::vector<forecast_cell>(no), std::vector<forecast_cell>(nc), {}};
    const std::size_t cells = ns * no * nc;
    for (std::size_t begin = 0; begin < n; begin += rollup_block) {
        const std::size_t end = std::min(n, begin + rollup_block);
        if (cells <= joint_cell_limit) {
            const std::size_t lanes = cells <= small_table_cells ? 4 : 1;
            std::vector<packed_cell> joint(cells * lanes);
            if (lanes == 4) rollup_joint<4>(b, prob, begin, end, joint);
            else rollup_joint<1>(b, prob, begin, end, joint);
            for (std::size_t o = 0; o < no; ++o)
                for (std::size_t c = 0; c < nc; ++c)
                    for (std::size_t s = 0; s < ns; ++s) {
                        const std::size_t cell = (o * nc + c) * ns + s;
                        forecast_cell x;
                        for (std::size_t l = 0; l < lanes; ++l) x += joint[cell * lanes + l].unpack();
                        t.stage[s] += x;
                        t.owner[o] += x;
                        t.category[c] += x;
                    }
        } else {
            std::vector<packed_cell> ts(ns), to(no), tc(nc);
            const auto st = b.stages();
            const auto am = b.amounts();
            const auto ov = b.probability_overrides();
            const auto ow = b.owners();
            const auto ca = b.categories();
            for (std::size_t i = begin; i < end; ++i) {
                const std::uint32_t s = st[i];
                const double o = ov[i], a = am[i];
                const double p = prob(i, s, o);
                ts[s].add(a, p, o == o);
                to[ow[i]].add(a, p, o == o);
                tc[ca[i]].add(a, p, o == o);
            }
            for (std::size_t k = 0; k < ns; ++k) t.stage[k] += ts[k].unpack();
            for (std::size_t k = 0; k < no; ++k) t.owner[k] += to[k].unpack();
            for (std::size_t k = 0; k < nc; ++k) t.category[k] += tc[k].unpack();
        }
    }
    for (const auto& x : t.stage) t.total += x;
    return t;
}

/// @throws argument_error unless the book was made for the graph's open stages.
template <class = void>
void require_compatible(std::string_view fn, const stage_graph& g, const book& b) {
    if (b.compatible_with(g)) return;
    std::string model_stages, book_stages;
    for (std::size_t i = 0; i < g.open_count(); ++i) model_stages += (i ? ", " : "") + g.name(i);
    for (std::size_t i = 0; i < b.stage_names().size(); ++i) book_stages += (i ? ", " : "") + b.stage_names()[i];
    throw argument_error(message(fn, ": the book was made for the open stages [", book_stages,
                                 "] but the model's open stages are [", model_stages, "]"));
}

/// The book's single currency ("" if none is named). @throws argument_error if the book
/// mixes currencies: their amounts cannot be added.
template <class = void>
[[nodiscard]] std::string book_currency(std::string_view fn, const book& b) {
    std::string found;
    for (const auto& c : b.currency_names()) {
        if (c.empty()) continue;
        if (found.empty()) found = c;
        else
            throw argument_error(message(fn, ": the book mixes currencies '", found, "' and '", c,
                                         "'; convert the amounts to one currency first"));
    }
    return found;
}

/// Validates a vector of per-stage win probabilities for a graph.
template <class = void>
void require_win_probabilities(std::string_view fn, const stage_graph& g, std::span<const double> w) {
    if (w.size() != g.open_count())
        throw argument_error(message(fn, ": ", w.size(), " win probabilities for ", g.open_count(), " open stages"));
    for (std::size_t i = 0; i < w.size(); ++i)
        if (!(w[i] >= 0.0 && w[i] <= 1.0))
            throw argument_error(message(fn, ": win probability of stage '", g.name(i), "' must be in [0, 1], got ", w[i]));
}

/// Per-stage lists of deal indices (a counting sort of the stage column).
template <class = void>
[[nodiscard]] std::vector<std::vector<std::size_t>> deals_by_stage(const book& b) {
    std::vector<std::size_t> counts(b.stage_names().size(), 0);
    for (auto s : b.stages()) ++counts[s];
    std::vector<std::vector<std::size_t>> out(counts.size());
    for (std::size_t s = 0; s < counts.size(); ++s) out[s].reserve(counts[s]);
    const auto st = b.stages();
    for (std::size_t i = 0; i < st.size(); ++i) out[st[i]].push_back(i);
    return out;
}

/// Evaluates a smooth function of the age, P(a), for the deals `idx` by linear interpolation
/// between lattice nodes a = j d: node_values(sorted node indices) gives P at those nodes,
/// far_value(a) P at an age too large for a lattice index (a / d >= 10^15: no interpolation).
/// err[i] = f(1−f)·max(|ΔΔP| at j, at j+1), twice the leading term ½ f(1−f) d² |P''| of the
/// interpolation error (docs/forecast.md). Nodes j−1..j+2 are needed around every age: a dense
/// index when the ages span few cells, else a sorted list.
template <class NodeValues, class FarValue>
void interpolate_on_lattice(double d, std::span<const std::size_t> idx, std::span<const double> ages,
                            std::span<double> prob, std::span<double> err, NodeValues&& node_values,
                            FarValue&& far_value) {
    constexpr double far = 1e15;
    std::vector<std::size_t> nodes;
    nodes.reserve(4 * idx.size());
    std::size_t j_max = 0;
    for (auto i : idx) {
        const double x = ages[i] / d;
        if (x >= far) continue;
        j_max = std::max(j_max, static_cast<std::size_t>(x));
    }
    const std::size_t dense_limit = std::max<std::size_t>(std::size_t{1} << 20, 8 * idx.size());
    const bool dense = j_max + 3 <= dense_limit;
    if (dense) {
        std::vector<char> need(j_max + 3, 0);
        for (auto i : idx) {
            const double x = ages[i] / d;
            if (x >= far) continue;
            const auto j = static_cast<std::size_t>(x);
            if (j > 0) need[j - 1] = 1;
            need[j] = need[j + 1] = need[j + 2] = 1;
        }
        for (std::size_t j = 0; j < need.size(); ++j)
            if (need[j]) nodes.push_back(j);
    } else {
        for (auto i : idx) {
            const double x = ages[i] / d;
            if (x >= far) continue;
            const auto j = static_cast<std::size_t>(x);
            if (j > 0) nodes.push_back(j - 1);
            nodes.insert(nodes.end(), {j, j + 1, j + 2});
        }
        std::sort(nodes.begin(), nodes.end());
        nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    }
    const std::vector<double> values = nodes.empty() ? std::vector<double>{} : node_values(nodes);
    std::vector<std::size_t> position; // dense: lattice index -> node position
    if (dense) {
        position.assign(j_max + 3, 0);
        for (std::size_t c = 0; c < nodes.size(); ++c) position[nodes[c]] = c;
    }
    auto at = [&](std::size_t j) {
        if (dense) return values[position[j]];
        return values[static_cast<std::size_t>(std::lower_bound(nodes.begin(), nodes.end(), j) - nodes.begin())];
    };
    for (auto i : idx) {
        const double x = ages[i] / d;
        if (x >= far) {
            prob[i] = far_value(ages[i]);
            err[i] = 0.0;
            continue;
        }
        const auto j = static_cast<std::size_t>(x);
        const double f = x - static_cast<double>(j);
        const double p0 = at(j), p1 = at(j + 1), p2 = at(j + 2);
        prob[i] = (1.0 - f) * p0 + f * p1;
        double curv = std::abs(p2 - 2.0 * p1 + p0);
        if (j > 0) curv = std::max(curv, std::abs(p1 - 2.0 * p0 + at(j - 1)));
        err[i] = f * (1.0 - f) * curv; // 2 × the leading term ½ f(1−f) d² |P''|
    }
}

/// P(win within h | stage, age) for the deals of one stage, from a renewal table.
///
/// With d = h / K (K = ⌈h / table step⌉) and Ȳ_k = ½ (Y(h − (k−1)d) + Y(h − kd)) the
/// trapezoid average of the after-exit probability over cell k, a deal of age a = jd on the
/// lattice has, exactly as won_within computes it,
///     P_j = Σ_k E_{k−1} η_{j+k} Ȳ_k,   E_k = Π_{l≤k} (1 − η_{j+l}),
/// where η_u = 1 − S(ud) / S((u−1)d) is the discrete hazard of lattice cell u (computed
/// once per lattice cell from log-survivals, so the residual survival E never loses
/// precision in the tail). Other ages are interpolated linearly between P_j and P_{j+1};
/// the interpolation error f(1−f)·(d²/2)|P''| is estimated from the second differences at
/// j and j+1 (with a safety factor of 2). Exponential stages are memoryless (P_0 for every
/// age); fixed and empirical dwells are summed exactly over their atoms.
/// `g` is a classic graph (a branched graph's latent()) and `stage` one of its open stages.
class stage_period_evaluator {
public:
    template <class = void>
    stage_period_evaluator(const stage_graph& g, const win_time_table& tab, std::size_t stage, double h)
        : dwell_(g.dwell(stage)), h_(h) {
        cells_ = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(h / tab.step - 1e-9)));
        d_ = h / static_cast<double>(cells_);
        step_ = tab.step;
        col_ = static_cast<Eigen::Index>(stage);
        after_exit_ = &tab.after_exit;
        ybar_.assign(cells_ + 1, 0.0);
        double y_prev = detail::interpolate(tab.after_exit, tab.step, col_, h);
        y_h_ = y_prev;
        for (std::size_t k = 1; k <= cells_; ++k) {
            const double y = detail::interpolate(tab.after_exit, tab.step, col_, h - static_cast<double>(k) * d_);
            ybar_[k] = 0.5 * (y + y_prev);
            y_prev = y;
        }
    }

    /// Lattice spacing d.
    [[nodiscard]] double spacing() const noexcept { return d_; }

    /// Fills prob[i] and err[i] for the deals `idx` (their ages in `ages`).
    template <class = void>
    void evaluate(std::span<const std::size_t> idx, std::span<const double> ages, std::span<double> prob,
                  std::span<double> err) const {
        if (idx.empty()) return;
        switch (dwell_.family()) {
        case dwell_family::exponential: {
            std::vector<double> lattice;
            const double p0 = node_values(std::vector<std::size_t>{0}, lattice)[0];
            for (auto i : idx) prob[i] = p0, err[i] = 0.0;
            return;
        }
        case dwell_family::fixed:
        case dwell_family::empirical: {
            std::unordered_map<double, double> cache;
            for (auto i : idx) {
                const auto [it, fresh] = cache.try_emplace(ages[i], 0.0);
                if (fresh) it->second = discrete_value(ages[i]);
                prob[i] = it->second;
                err[i] = 0.0;
            }
            return;
        }
        default: interpolate_ages(idx, ages, prob, err); return;
        }
    }

    /// True for a memoryless (exponential) dwell: P does not depend on the age.
    [[nodiscard]] bool memoryless() const noexcept { return dwell_.family() == dwell_family::exponential; }
    /// True for a continuous dwell (lattice interpolation applies); false for fixed and empirical ones.
    [[nodiscard]] bool continuous() const noexcept { return detail::is_continuous(dwell_); }

    /// P_j = P(win within h | age j d) for sorted lattice indices `nodes`; `lattice` is scratch space.
    template <class = void>
    [[nodiscard]] std::vector<double> node_values(const std::vector<std::size_t>& nodes, std::vector<double>& lattice) const {
        std::vector<double> out(nodes.size());
        const double neg_inf = -std::numeric_limits<double>::infinity();
        std::size_t c0 = 0;
        while (c0 < nodes.size()) {
            std::size_t c1 = c0; // cluster [c0, c1]: consecutive nodes closer than K share a lattice
            while (c1 + 1 < nodes.size() && nodes[c1 + 1] - nodes[c1] <= cells_) ++c1;
            const std::size_t lo = nodes[c0], hi = nodes[c1] + cells_;
            // lattice[u - lo] = η_u for u in (lo, hi]; alive_at[u - lo]: S(u d) has not underflowed.
            lattice.assign(hi - lo + 1, 0.0);
            double l_prev = log_survival(dwell_, static_cast<double>(lo) * d_);
            std::vector<char> alive_at(hi - lo + 1, 0);
            alive_at[0] = l_prev > neg_inf;
            for (std::size_t u = lo + 1; u <= hi; ++u) {
                const double l = log_survival(dwell_, static_cast<double>(u) * d_);
                alive_at[u - lo] = l > neg_inf;
                lattice[u - lo] = l_prev == neg_inf ? 1.0 : (l == neg_inf ? 1.0 : -std::expm1(l - l_prev));
                l_prev = l;
            }
            for (std::size_t c = c0; c <= c1; ++c) {
                const std::size_t j = nodes[c];
                if (!alive_at[j - lo]) { // survival underflowed: overdue, leaves at once
                    out[c] = y_h_;
                    continue;
                }
                const double* eta = lattice.data() + (j - lo);
                double e = 1.0, acc = 0.0;
                for (std::size_t k = 1; k <= cells_; ++k) {
                    const double hk = eta[k];
                    acc += e * hk * ybar_[k];
                    e *= 1.0 - hk;
                    if (e <= 0.0) break;
                }
                out[c] = std::clamp(acc, 0.0, 1.0);
            }
            c0 = c1 + 1;
        }
        return out;
    }

private:
    /// The after-exit probability Y(t), interpolated from the table.
    [[nodiscard]] double y(double t) const { return detail::interpolate(*after_exit_, step_, col_, t); }

    /// Fixed or empirical dwell: the residual is a set of atoms, summed exactly.
    template <class = void>
    [[nodiscard]] double discrete_value(double a) const {
        if (dwell_.family() == dwell_family::fixed) {
            const double v = dwell_.mean();
            if (a >= v) return y_h_; // overdue: leaves at once
            const double r = v - a;
            return r <= h_ ? y(h_ - r) : 0.0;
        }
        const auto v = dwell_.values();
        const auto c = dwell_.cumulative();
        const std::size_t first = detail::first_above(dwell_, a);
        if (first == v.size()) return y_h_; // overdue
        const double below = first == 0 ? 0.0 : c[first - 1];
        const double surv = 1.0 - below;
        if (!(surv > 0.0)) return y_h_;
        double acc = 0.0;
        for (std::size_t l = first; l < v.size() && v[l] - a <= h_; ++l)
            acc += (c[l] - (l == 0 ? 0.0 : c[l - 1])) * y(h_ - (v[l] - a));
        return std::clamp(acc / surv, 0.0, 1.0);
    }

    /// Continuous non-exponential dwell: lattice nodes around every age, then linear
    /// interpolation with an error estimate.
    template <class = void>
    void interpolate_ages(std::span<const std::size_t> idx, std::span<const double> ages, std::span<double> prob,
                          std::span<double> err) const {
        std::vector<double> lattice;
        interpolate_on_lattice(
            d_, idx, ages, prob, err, [&](const std::vector<std::size_t>& nodes) { return node_values(nodes, lattice); },
            [&](double a) { return value_at_offset(a); });
    }

public:
    /// P at an arbitrary age a, on the lattice a + k d (used for ages beyond 10^15 cells,
    /// where a + k d would round to a). log S(a + t) − log S(a) is taken in a form that keeps
    /// t ≪ a: for the Weibull, −(a/λ)^k · expm1(k · log1p(t/a)); for the gamma and lognormal
    /// (whose log survival stays finite, dwell.hpp) −t · hazard(a), exact to O(t/a) < 1e-15.
    template <class = void>
    [[nodiscard]] double value_at_offset(double a) const {
        const double neg_inf = -std::numeric_limits<double>::infinity();
        const double la = log_survival(dwell_, a);
        const bool far = dwell_.family() == dwell_family::gamma || dwell_.family() == dwell_family::lognormal;
        const double hazard = far && la > neg_inf ? detail::far_hazard(dwell_, a) : 0.0;
        auto log_residual = [&](double t) {
            if (dwell_.family() == dwell_family::weibull)
                return -std::pow(a / dwell_.scale(), dwell_.shape()) * std::expm1(dwell_.shape() * std::log1p(t / a));
            if (far) return -t * hazard;
            return la == neg_inf ? neg_inf : log_survival(dwell_, a + t) - la;
        };
        if (dwell_.family() != dwell_family::weibull && log_survival(dwell_, a) == neg_inf) return y_h_; // overdue
        double e = 1.0, acc = 0.0, l_prev = 0.0;
        for (std::size_t k = 1; k <= cells_; ++k) {
            const double l = log_residual(static_cast<double>(k) * d_);
            const double hk = l == neg_inf ? 1.0 : -std::expm1(l - l_prev);
            acc += e * hk * ybar_[k];
            e *= 1.0 - hk;
            l_prev = l;
            if (e <= 0.0) break;
        }
        return std::clamp(acc, 0.0, 1.0);
    }

private:
    const dwell_distribution& dwell_;
    double h_;
    std::size_t cells_ = 1;
    double d_ = 0.0;
    double step_ = 0.0;
    Eigen::Index col_ = 0;
    const Eigen::MatrixXd* after_exit_ = nullptr;
    std::vector<double> ybar_;
    double y_h_ = 0.0;
};

/// P(win within h | stage, age) for the deals of one branched stage s: the mixture
///     P(a) = Σ_k w_k(a) · P_k(a),   w_k(a) = P(branch k | T > a) (stage_graph::branch_weights),
/// P_k the latent state's within-h probability (stage_period_evaluator on g.latent()).
/// The deals of a stage share w(a), so when every branch's dwell is continuous the mixed P is
/// evaluated on the stage's age lattice (nodes a = j d, both factors exact there) and
/// interpolated linearly in the age with its own error estimate, exactly as a classic stage.
/// With a fixed or empirical branch (P_k jumps at its atoms) every deal is mixed at its own
/// age: each P_k as its evaluator gives it, the weights exactly; err = Σ_k w_k err_k.
class branched_period_evaluator {
public:
    template <class = void>
    branched_period_evaluator(const stage_graph& g, const win_time_table& tab, std::size_t stage, double h)
        : g_(g), stage_(stage), first_(g.latent_first(stage)) {
        const stage_graph& lg = g.latent();
        parts_.reserve(g.latent_count(stage));
        for (std::size_t k = 0; k < g.latent_count(stage); ++k) {
            parts_.emplace_back(lg, tab, first_ + k, h);
            continuous_ = continuous_ && parts_.back().continuous();
        }
    }

    /// Lattice spacing d (the same for every branch: one table, one horizon).
    [[nodiscard]] double spacing() const noexcept { return parts_.front().spacing(); }

    /// Fills prob[i] and err[i] for the deals `idx` (their ages in `ages`).
    template <class = void>
    void evaluate(std::span<const std::size_t> idx, std::span<const double> ages, std::span<double> prob,
                  std::span<double> err) const {
        if (idx.empty()) return;
        const std::size_t nk = parts_.size();
        std::vector<double> w(nk);
        if (continuous_) {
            // Memoryless branches: one value for every age.
            std::vector<double> constant(nk, std::numeric_limits<double>::quiet_NaN());
            std::vector<double> lattice;
            for (std::size_t k = 0; k < nk; ++k)
                if (parts_[k].memoryless()) constant[k] = parts_[k].node_values({0}, lattice)[0];
            const double d = spacing();
            auto nodes_fn = [&](const std::vector<std::size_t>& nodes) {
                std::vector<double> out(nodes.size(), 0.0);
                std::vector<std::vector<double>> vals(nk);
                for (std::size_t k = 0; k < nk; ++k)
                    if (!parts_[k].memoryless()) vals[k] = parts_[k].node_values(nodes, lattice);
                for (std::size_t c = 0; c < nodes.size(); ++c) {
                    (void)g_.branch_weights(stage_, static_cast<double>(nodes[c]) * d, w);
                    double acc = 0.0;
                    for (std::size_t k = 0; k < nk; ++k)
                        if (w[k] > 0.0) acc += w[k] * (parts_[k].memoryless() ? constant[k] : vals[k][c]);
                    out[c] = std::clamp(acc, 0.0, 1.0);
                }
                return out;
            };
            auto far_fn = [&](double a) {
                (void)g_.branch_weights(stage_, a, w);
                double acc = 0.0;
                for (std::size_t k = 0; k < nk; ++k)
                    if (w[k] > 0.0) acc += w[k] * (parts_[k].memoryless() ? constant[k] : parts_[k].value_at_offset(a));
                return std::clamp(acc, 0.0, 1.0);
            };
            interpolate_on_lattice(d, idx, ages, prob, err, nodes_fn, far_fn);
            return;
        }
        // Some branch is discrete: every deal at its own age (compact local indices).
        const std::size_t n = idx.size();
        std::vector<std::size_t> local(n);
        std::vector<double> local_age(n);
        for (std::size_t j = 0; j < n; ++j) local[j] = j, local_age[j] = ages[idx[j]];
        std::vector<std::vector<double>> pk(nk, std::vector<double>(n)), ek(nk, std::vector<double>(n));
        for (std::size_t k = 0; k < nk; ++k) parts_[k].evaluate(local, local_age, pk[k], ek[k]);
        for (std::size_t j = 0; j < n; ++j) {
            (void)g_.branch_weights(stage_, local_age[j], w);
            double acc = 0.0, e = 0.0;
            for (std::size_t k = 0; k < nk; ++k)
                if (w[k] > 0.0) acc += w[k] * pk[k][j], e += w[k] * ek[k][j];
            prob[idx[j]] = std::clamp(acc, 0.0, 1.0);
            err[idx[j]] = e;
        }
    }

private:
    const stage_graph& g_;
    std::size_t stage_;
    std::size_t first_;
    std::vector<stage_period_evaluator> parts_;
    bool continuous_ = true;
};

/// Fills a weighted_forecast_result from rollup totals.
template <class = void>
void fill_lines(const book& b, const rollup_totals& t, std::span<const double> w, weighted_forecast_result& r) {
    r.count = static_cast<std::size_t>(t.total.count);
    r.total_amount = t.total.amount;
    r.weighted_total = t.total.weighted;
    r.overridden = static_cast<std::size_t>(t.total.overridden);
    r.by_stage.reserve(t.stage.size());
    for (std::size_t s = 0; s < t.stage.size(); ++s) {
        const auto& c = t.stage[s];
        r.by_stage.push_back({b.stage_names()[s], static_cast<std::size_t>(c.count), c.amount, w[s], c.weighted,
                              static_cast<std::size_t>(c.overridden)});
    }
    auto groups = [](const std::vector<forecast_cell>& cells, const std::vector<std::string>& names) {
        std::vector<group_forecast> out;
        out.reserve(cells.size());
        for (std::size_t k = 0; k < cells.size(); ++k)
            out.push_back({names[k], static_cast<std::size_t>(cells[k].count), cells[k].amount, cells[k].weighted,
                           static_cast<std::size_t>(cells[k].overridden)});
        return out;
    };
    r.by_owner = groups(t.owner, b.owner_names());
    r.by_category = groups(t.category, b.category_names());
}

} // namespace detail

} // namespace pipecast
