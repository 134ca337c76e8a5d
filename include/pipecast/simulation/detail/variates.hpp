// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/detail/variates.hpp
/// @brief Fast random variates for the simulator: counter-based uniforms (Philox4x32-10),
/// tabulated inverse-transform dwell samplers, and transition-row samplers.
///
/// **Uniforms.** Every random number is a 32-bit word of a Philox4x32-10 block (Random123)
/// keyed by the 64-bit seed, with a 128-bit counter naming what it is for (path, deal, draw
/// block; see simulation.hpp). A word k maps to the open interval (0, 1) as
/// v = (k + ½)·2⁻³², and its complement 1 − v = (2³² − 1 − k + ½)·2⁻³² exactly, so both tails
/// are available without cancellation (the smallest v is 2⁻³³).
///
/// **Dwell times by table.** A dwell_sampler inverts the distribution function without a
/// root finder or a special function per draw. It holds two tables of the quantile:
/// the lower tail t = F⁻¹(q) for q ∈ [2⁻³⁴, ½] and the upper tail t = S⁻¹(p) (S = 1 − F) for
/// p ∈ [2^upper_min_exponent, ½]. Nodes are 2^sub_bits = 16 per binary octave of the
/// probability, placed linearly inside each octave, so the cell index and the position in
/// the cell are read straight from the bits of the double (exponent and top mantissa bits):
/// one shift, one subtraction, one 32-byte load of the cell's four coefficients and three
/// multiply-adds. Inside a cell the quantile is the cubic Hermite interpolant (in the
/// probability) of the exact values and derivatives dT/dp = ∓1/f(T) at the cell ends.
///
/// A deal of age a needs T | T > a: with S₀ = S(a), F₀ = F(a) and a uniform v, the total
/// dwell is the quantile T = F⁻¹(F₀ + S₀ v), read from the lower table when F₀ + S₀ v ≤ ½
/// and otherwise as T = S⁻¹(S₀ (1 − v)) from the upper table (no cancellation in either
/// tail); the remaining dwell is T − a. A fresh draw is the case S₀ = 1, F₀ = 0, a = 0.
/// T increases with v, as the library's quantile(residual(d, a), v) does.
///
/// **Error.** Node values come from Boost.Math (quantile / complement quantile, pdf). In a
/// cell of relative width h = 2⁻⁴ the cubic Hermite error is about h⁴/384·|p⁴T''''/T|,
/// below 1e-6 for the families of b2b6 and any lognormal, gamma or Weibull shape >= 0.2;
/// max_relative_error() measures it at the quarter points of every cell, and
/// tests/unit_variates.cpp checks it against Boost.Math on a dense grid: the stated bound
/// is 1e-5 relative to the total dwell T (the remaining dwell T − a of an aged deal
/// inherits the absolute error 1e-5·T).
/// Exponential and fixed dwells use the same table (fixed: constant, exact); empirical
/// dwells are sampled exactly by binary search of their cumulative weights.

#include <pipecast/error.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Random123/philox.h>
#include <Random123/uniform.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------
// Uniforms
// ---------------------------------------------------------------------------------------

/// A 128-bit Philox counter: four 32-bit words.
using philox_counter = std::array<std::uint32_t, 4>;
/// One Philox4x32-10 output block: four independent 32-bit words.
using philox_block = std::array<std::uint32_t, 4>;

/// Forces inlining of the few-instruction samplers into the simulator's hot loops (GCC's
/// heuristics otherwise stop inlining them once the loops have several instantiations).
#if defined(__GNUC__)
#define PIPECAST_HOT_INLINE [[gnu::always_inline]]
#else
#define PIPECAST_HOT_INLINE
#endif

/// Philox4x32-10 (Random123) of `counter` under the key made of the two halves of `seed`
/// (low word first). Pure function: the same arguments give the same block on any machine.
/// Example: `philox_draw(0, {0, 0, 0, 0})` is {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
/// the Random123 known-answer vector.
PIPECAST_HOT_INLINE [[nodiscard]] inline philox_block philox_draw(std::uint64_t seed, const philox_counter& counter) noexcept {
    const r123::Philox4x32::ctr_type c = {{counter[0], counter[1], counter[2], counter[3]}};
    const r123::Philox4x32::key_type k = {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
    const auto r = r123::Philox4x32{}(c, k);
    return {r[0], r[1], r[2], r[3]};
}

/// The uniform (k + ½)·2⁻³² in (0, 1) of a 32-bit word: Random123's u01<double>, which
/// computes k·2⁻³² + 2⁻³³, exact in double (33 significant bits), so never 0 or 1.
PIPECAST_HOT_INLINE [[nodiscard]] inline double uniform_open(std::uint32_t k) noexcept { return r123::u01<double>(k); }
/// 1 − uniform_open(k), exactly: uniform_open of the complementary word 2³² − 1 − k.
PIPECAST_HOT_INLINE [[nodiscard]] inline double uniform_open_complement(std::uint32_t k) noexcept {
    return r123::u01<double>(0xFFFFFFFFu - k);
}

// ---------------------------------------------------------------------------------------
// Dwell-time sampler
// ---------------------------------------------------------------------------------------

/// Inverse-transform sampler of one dwell distribution by tables indexed with the bits of
/// the probability (see the file comment). Immutable after construction; cheap to copy.
class dwell_sampler {
public:
    /// log2 of the number of table cells per binary octave of probability.
    static constexpr int sub_bits = 4;
    /// The lower-tail table covers q >= 2^lower_min_exponent (a 32-bit uniform gives >= 2⁻³³).
    static constexpr int lower_min_exponent = -34;
    /// Default depth of the upper-tail table: fresh draws need 2⁻³⁴; a deal of age a needs
    /// S(a)·2⁻³⁴. -74 serves every age with S(a) >= 2⁻⁴⁰ ≈ 1e-12.
    static constexpr int default_upper_min_exponent = -74;
    /// The deepest table allowed (normal doubles only).
    static constexpr int deepest_exponent = -1000;

    /// Tabulates `d`. @param upper_min_exponent depth of the upper-tail table, in
    /// [deepest_exponent, -35]; ages with S(a)·2⁻³⁴ below 2^upper_min_exponent are clamped
    /// to the deepest cell (use upper_exponent_for() to size the table for a book).
    /// @throws argument_error if upper_min_exponent is out of range.
    /// Cost: (33 + |upper_min_exponent|)·16 Boost.Math quantile and pdf evaluations.
    template <class = void>
    explicit dwell_sampler(const dwell_distribution& d, int upper_min_exponent = default_upper_min_exponent)
        : family_(d.family()), upper_min_exponent_(upper_min_exponent) {
        if (upper_min_exponent < deepest_exponent || upper_min_exponent > -35)
            throw argument_error(detail::message("dwell_sampler: upper_min_exponent must be in [", deepest_exponent,
                                                 ", -35], got ", upper_min_exponent));
        if (family_ == dwell_family::empirical) {
            values_.assign(d.values().begin(), d.values().end());
            cumulative_.assign(d.cumulative().begin(), d.cumulative().end());
            return;
        }
        const bool fixed = family_ == dwell_family::fixed;
        // dT/dq = 1/f(T) in the lower tail, dT/dp = -1/f(T) in the upper tail.
        // One array: the lower-tail cells, then the upper-tail cells.
        table_ = build(lower_min_exponent, [&](double q) { return pipecast::quantile(d, q); },
                       [&](double t) { return fixed ? 0.0 : 1.0 / pipecast::pdf(d, t); });
        const auto lower_cells = static_cast<std::int64_t>(table_.size() / 4);
        const std::vector<double> upper = build(
            upper_min_exponent, [&](double p) { return pipecast::survival_quantile(d, p); },
            [&](double t) { return fixed ? 0.0 : -1.0 / pipecast::pdf(d, t); });
        table_.insert(table_.end(), upper.begin(), upper.end());
        view_.table = table_.data();
        view_.bias[0] = (static_cast<std::int64_t>(lower_min_exponent) + 1023) << sub_bits;
        view_.bias[1] = ((static_cast<std::int64_t>(upper_min_exponent) + 1023) << sub_bits) - lower_cells;
        view_.upper_floor = std::ldexp(1.0, upper_min_exponent);
    }

    dwell_sampler(const dwell_sampler& o) : dwell_sampler(o, copy_tag{}) {}
    dwell_sampler(dwell_sampler&& o) noexcept : dwell_sampler(std::move(o), copy_tag{}) {}
    dwell_sampler& operator=(dwell_sampler o) noexcept {
        swap(o);
        return *this;
    }
    ~dwell_sampler() = default;

    /// The table depth that serves a deal whose survival at its age is `survival_at_age`.
    [[nodiscard]] static int upper_exponent_for(double survival_at_age) noexcept {
        if (!(survival_at_age > 0.0)) return deepest_exponent;
        const int e = std::ilogb(survival_at_age) - 35;
        return std::clamp(e, deepest_exponent, default_upper_min_exponent);
    }

    [[nodiscard]] dwell_family family() const noexcept { return family_; }
    /// False for empirical distributions (sampled exactly, without a table).
    [[nodiscard]] bool tabulated() const noexcept { return family_ != dwell_family::empirical; }
    [[nodiscard]] int upper_min_exponent() const noexcept { return upper_min_exponent_; }
    /// Number of table cells (both tails).
    [[nodiscard]] std::size_t table_size() const noexcept { return table_.size() / 4; }

    /// A probability's cell: its exponent and top sub_bits fraction bits (bits >> frac_bits);
    /// the position in the cell: the remaining fraction bits, scaled to [0, 1).
    static constexpr int frac_bits = 52 - sub_bits;
    static constexpr std::uint64_t frac_mask = (std::uint64_t{1} << frac_bits) - 1;
    static constexpr double frac_scale = 1.0 / static_cast<double>(std::uint64_t{1} << frac_bits);

    /// The raw tables for a hot loop: cell i of tail `up` (0 lower, 1 upper) for a
    /// probability x is table[4 (bits(x) >> 48 − bias[up])].
    struct table_view {
        const double* table = nullptr;
        std::int64_t bias[2] = {0, 0};
        double upper_floor = 0.0;

        /// A fresh dwell T = F⁻¹(v) from the word k (no branch: the tail is picked by the
        /// top bit of k, i.e. v > ½).
        PIPECAST_HOT_INLINE [[nodiscard]] double sample(std::uint32_t k) const noexcept {
            const std::uint32_t up = k >> 31;                   // 1 when v > ½
            const std::uint32_t kk = k ^ (0u - up);             // v, or 1 − v in the upper tail
            return lookup(table, bias[up], uniform_open(kk));
        }
        /// T = F⁻¹(F₀ + S₀ v), i.e. T | T > a, from the word k and F₀ = F(a), S₀ = S(a)
        /// (no branch).
        PIPECAST_HOT_INLINE [[nodiscard]] double total_time(std::uint32_t k, double f0, double s0) const noexcept {
            const double v = uniform_open(k);
            const double p = std::max(s0 * (1.0 - v), upper_floor); // 1 − v is exact
            const double q = std::min(f0 + s0 * v, 0.5);
            const std::uint64_t up = p <= 0.5 ? 1 : 0;
            const std::uint64_t mask = 0 - up;
            const std::uint64_t xb = (std::bit_cast<std::uint64_t>(p) & mask) | (std::bit_cast<std::uint64_t>(q) & ~mask);
            return lookup(table, bias[up], std::bit_cast<double>(xb));
        }
    };
    /// The raw view (tabulated families only); valid while the sampler lives.
    [[nodiscard]] const table_view& view() const noexcept { return view_; }

    /// The total dwell T drawn from the distribution conditioned on T > a, given the 32-bit
    /// word k and F₀ = F(a), S₀ = S(a) (fresh draw: F₀ = 0, S₀ = 1). O(1), no branches for
    /// tabulated families. The caller subtracts a.
    [[nodiscard]] double total_time(std::uint32_t k, double cdf_at_age, double survival_at_age) const noexcept {
        if (!tabulated()) return empirical_draw(uniform_open(k), cdf_at_age, survival_at_age);
        return view_.total_time(k, cdf_at_age, survival_at_age);
    }
    /// A fresh dwell time from the word k.
    [[nodiscard]] double sample(std::uint32_t k) const noexcept {
        if (!tabulated()) return empirical_draw(uniform_open(k), 0.0, 1.0);
        return view_.sample(k);
    }

    /// The tabulated F⁻¹(q), 2^lower_min_exponent <= q <= ½ (tabulated families only).
    [[nodiscard]] double lower_quantile(double q) const noexcept {
        PIPECAST_ASSERT(tabulated());
        return lookup(view_.table, view_.bias[0], std::clamp(q, std::ldexp(1.0, lower_min_exponent), 0.5));
    }
    /// The tabulated S⁻¹(p), 2^upper_min_exponent <= p <= ½ (tabulated families only).
    [[nodiscard]] double upper_quantile(double p) const noexcept {
        PIPECAST_ASSERT(tabulated());
        return lookup(view_.table, view_.bias[1], std::clamp(p, view_.upper_floor, 0.5));
    }

    /// Largest relative error |T_table − T_exact| / T_exact at the quarter points of every
    /// table cell, against Boost.Math. 0 for empirical. Cost: three Boost.Math quantiles
    /// per cell.
    template <class = void>
    [[nodiscard]] double max_relative_error(const dwell_distribution& d) const {
        if (!tabulated()) return 0.0;
        double worst = 0.0;
        auto scan = [&](int min_exp, auto&& table_fn, auto&& exact_fn) {
            const std::size_t cells = static_cast<std::size_t>(-1 - min_exp) << sub_bits;
            for (std::size_t i = 0; i < cells; ++i)
                for (double f : {0.25, 0.5, 0.75}) {
                    const double x = node(min_exp, i) + f * (node(min_exp, i + 1) - node(min_exp, i));
                    const double exact = exact_fn(x);
                    if (exact > 0.0) worst = std::max(worst, std::abs(table_fn(x) - exact) / exact);
                }
        };
        scan(lower_min_exponent, [&](double q) { return lower_quantile(q); },
             [&](double q) { return pipecast::quantile(d, q); });
        scan(upper_min_exponent_, [&](double p) { return upper_quantile(p); },
             [&](double p) { return pipecast::survival_quantile(d, p); });
        return worst;
    }

private:

    /// The probability at node i of a table starting at octave min_exp.
    static double node(int min_exp, std::size_t i) noexcept {
        const int e = min_exp + static_cast<int>(i >> sub_bits);
        const double j = static_cast<double>(i & ((std::size_t{1} << sub_bits) - 1));
        return std::ldexp(1.0 + j / static_cast<double>(1 << sub_bits), e);
    }

    /// Cubic Hermite coefficients (c0..c3 in the cell coordinate f ∈ [0, 1]) of every cell
    /// from 2^min_exp to ½, from the exact values and derivatives at the nodes, plus a final
    /// constant cell T(½). A non-finite derivative (density 0) falls back to the secant.
    template <class F, class D>
    static std::vector<double> build(int min_exp, F&& value, D&& derivative) {
        const std::size_t cells = static_cast<std::size_t>(-1 - min_exp) << sub_bits;
        std::vector<double> x(cells + 1), t(cells + 1), dt(cells + 1);
        for (std::size_t i = 0; i <= cells; ++i) {
            x[i] = node(min_exp, i);
            t[i] = value(x[i]);
            dt[i] = derivative(t[i]);
        }
        std::vector<double> c(4 * (cells + 1), 0.0);
        for (std::size_t i = 0; i < cells; ++i) {
            const double h = x[i + 1] - x[i], secant = t[i + 1] - t[i];
            const double d0 = std::isfinite(dt[i]) ? h * dt[i] : secant;
            const double d1 = std::isfinite(dt[i + 1]) ? h * dt[i + 1] : secant;
            c[4 * i] = t[i];
            c[4 * i + 1] = d0;
            c[4 * i + 2] = 3.0 * secant - 2.0 * d0 - d1;
            c[4 * i + 3] = -2.0 * secant + d0 + d1;
        }
        c[4 * cells] = t[cells];
        return c;
    }

    PIPECAST_HOT_INLINE static double lookup(const double* table, std::int64_t bias, double x) noexcept {
        const auto bits = std::bit_cast<std::uint64_t>(x);
        const auto i = static_cast<std::int64_t>(bits >> frac_bits) - bias;
        const double f = static_cast<double>(bits & frac_mask) * frac_scale;
        const double* c = table + 4 * i;
        return c[0] + f * (c[1] + f * (c[2] + f * c[3]));
    }

    [[nodiscard]] double empirical_draw(double v, double cdf_at_age, double survival_at_age) const noexcept {
        // Smallest support point whose cumulative weight reaches F₀ + S₀ v.
        const double target = cdf_at_age + survival_at_age * v;
        const auto it = std::lower_bound(cumulative_.begin(), cumulative_.end(), target);
        const auto i = std::min(static_cast<std::size_t>(it - cumulative_.begin()), cumulative_.size() - 1);
        return values_[i];
    }

    struct copy_tag {};
    template <class Other>
    dwell_sampler(Other&& o, copy_tag)
        : family_(o.family_), upper_min_exponent_(o.upper_min_exponent_), table_(std::forward<Other>(o).table_),
          view_(o.view_), values_(std::forward<Other>(o).values_), cumulative_(std::forward<Other>(o).cumulative_) {
        view_.table = table_.data();
    }
    void swap(dwell_sampler& o) noexcept {
        std::swap(family_, o.family_);
        std::swap(upper_min_exponent_, o.upper_min_exponent_);
        table_.swap(o.table_);
        std::swap(view_, o.view_);
        values_.swap(o.values_);
        cumulative_.swap(o.cumulative_);
    }

    dwell_family family_;
    int upper_min_exponent_;
    std::vector<double> table_;
    table_view view_;
    std::vector<double> values_, cumulative_;
};

// ---------------------------------------------------------------------------------------
// Transition rows
// ---------------------------------------------------------------------------------------

/// Samplers of the next stage for every open stage: the positive entries of each row with
/// cumulative thresholds on the 2³² scale; the next stage for a word k is the first entry
/// whose threshold exceeds k (probabilities are quantised to 2⁻³², error ≤ 2.3e-10 each).
class transition_sampler {
public:
    transition_sampler() = default;
    /// Rows of `g` as given.
    explicit transition_sampler(const stage_graph& g) {
        const std::size_t m = g.open_count();
        std::vector<std::vector<double>> probs(m, std::vector<double>(g.size()));
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < g.size(); ++j) probs[i][j] = g.transition(i, j);
        init(probs);
    }
    /// Rows given as dense probability vectors (each summing to 1).
    explicit transition_sampler(const std::vector<std::vector<double>>& rows) { init(rows); }

    /// Replaces the probabilities of the existing entries of row i (same support, same order
    /// as entries(i)); used for per-path shocks. `p` must sum to 1.
    void set_row(std::size_t i, std::span<const double> p) noexcept {
        PIPECAST_ASSERT(p.size() == count_[i]);
        double acc = 0.0;
        for (std::size_t e = 0; e < count_[i]; ++e) {
            acc += p[e];
            thresholds_[i * width_ + e] =
                e + 1 == count_[i] ? (std::uint64_t{1} << 32) : to_threshold(acc);
        }
        // The guide: bucket b is one target when the targets of its first and last word
        // (search() at b·2²⁴ and b·2²⁴ + 2²⁴ − 1) agree (next() is monotone in k). search(k)
        // picks entry #{c < width − 1 : k >= threshold c}; both counts only grow with b, so
        // one merge over the sorted thresholds finds them (O(256 + width), not 512 searches:
        // a shocked run redoes this for every row and path).
        const std::uint64_t* t = thresholds_.data() + i * width_;
        const std::uint32_t* target = targets_.data() + i * width_;
        std::size_t lo = 0, hi = 0;
        for (std::uint32_t b = 0; b < 256; ++b) {
            const std::uint64_t first_word = std::uint64_t{b} << 24, last_word = first_word | 0xFFFFFFu;
            while (lo + 1 < width_ && first_word >= t[lo]) ++lo;
            while (hi + 1 < width_ && last_word >= t[hi]) ++hi;
            guide_[(i << 8) | b] = target[lo] == target[hi] ? static_cast<std::int32_t>(target[lo]) : -1;
        }
    }

    /// The next stage for word k leaving open stage i.
    [[nodiscard]] std::uint32_t next(std::size_t i, std::uint32_t k) const noexcept { return view().next(i, k); }

    /// Raw rows for a hot loop: `width` entries a row, padded with never-reached entries,
    /// and a guide table: for each of the 256 buckets of the top 8 bits of k, the target
    /// when the whole bucket maps to one target (nearly always), else -1 (search the row).
    struct row_view {
        const std::uint64_t* thresholds = nullptr;
        const std::uint32_t* targets = nullptr;
        const std::int32_t* guide = nullptr;
        std::size_t width = 0;
        /// The next stage; W = width when known at compile time (0: read `width`).
        template <std::size_t W = 0>
        [[nodiscard]] std::uint32_t next(std::size_t i, std::uint32_t k) const noexcept {
            const std::int32_t g = guide[(i << 8) | (k >> 24)];
            if (g >= 0) [[likely]]
                return static_cast<std::uint32_t>(g);
            return search<W>(i, k);
        }
        /// The next stage by comparing k with the row's thresholds.
        template <std::size_t W = 0>
        [[nodiscard]] std::uint32_t search(std::size_t i, std::uint32_t k) const noexcept {
            const std::size_t w = W ? W : width;
            const std::uint64_t* t = thresholds + i * w;
            std::size_t e = 0; // same trip count for every row (padding thresholds are 2^32)
            for (std::size_t c = 0; c + 1 < w; ++c) e += (k >= t[c]) ? 1 : 0;
            return targets[i * w + e];
        }
    };
    [[nodiscard]] row_view view() const noexcept {
        return {thresholds_.data(), targets_.data(), guide_.data(), width_};
    }
    /// Entries per row (padded to at least 4).
    [[nodiscard]] std::size_t width() const noexcept { return width_; }
    /// Targets (stage indices) of the positive entries of row i.
    [[nodiscard]] std::span<const std::uint32_t> entries(std::size_t i) const noexcept {
        return {targets_.data() + i * width_, count_[i]};
    }
    [[nodiscard]] std::size_t rows() const noexcept { return count_.size(); }

private:
    /// cum · 2³² clamped to [0, 2³²]; a NaN (which a valid row never gives) maps to 0, not
    /// to an undefined conversion.
    static std::uint64_t to_threshold(double cum) noexcept {
        return cum > 0.0 ? static_cast<std::uint64_t>(std::min(std::ldexp(cum, 32), 0x1p32)) : 0;
    }
    void init(const std::vector<std::vector<double>>& rows) {
        width_ = 4; // rows of up to 4 entries share one unrolled code path
        for (const auto& r : rows)
            width_ = std::max<std::size_t>(width_, static_cast<std::size_t>(std::count_if(
                                                       r.begin(), r.end(), [](double x) { return x > 0.0; })));
        count_.assign(rows.size(), 0);
        guide_.assign(rows.size() << 8, -1);
        thresholds_.assign(rows.size() * width_, std::uint64_t{1} << 32);
        targets_.assign(rows.size() * width_, 0);
        std::vector<double> p;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            p.clear();
            for (std::size_t j = 0; j < rows[i].size(); ++j)
                if (rows[i][j] > 0.0) {
                    targets_[i * width_ + p.size()] = static_cast<std::uint32_t>(j);
                    p.push_back(rows[i][j]);
                }
            PIPECAST_ASSERT(!p.empty());
            count_[i] = p.size();
            set_row(i, p);
        }
    }

    std::size_t width_ = 1;
    std::vector<std::size_t> count_;
    std::vector<std::uint64_t> thresholds_;
    std::vector<std::uint32_t> targets_;
    std::vector<std::int32_t> guide_;
};

} // namespace pipecast
