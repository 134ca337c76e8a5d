// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast.hpp
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

#include <pipecast/analytics.hpp>
#include <pipecast/book.hpp>
#include <pipecast/dwell.hpp>
#include <pipecast/error.hpp>
#include <pipecast/first_passage.hpp>
#include <pipecast/stage_graph.hpp>

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
[[nodiscard]] inline double select(bool cond, double a, double b) noexcept {
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
inline void require_compatible(std::string_view fn, const stage_graph& g, const book& b) {
    if (b.compatible_with(g)) return;
    std::string model_stages, book_stages;
    for (std::size_t i = 0; i < g.open_count(); ++i) model_stages += (i ? ", " : "") + g.name(i);
    for (std::size_t i = 0; i < b.stage_names().size(); ++i) book_stages += (i ? ", " : "") + b.stage_names()[i];
    throw argument_error(message(fn, ": the book was made for the open stages [", book_stages,
                                 "] but the model's open stages are [", model_stages, "]"));
}

/// The book's single currency ("" if none is named). @throws argument_error if the book
/// mixes currencies: their amounts cannot be added.
[[nodiscard]] inline std::string book_currency(std::string_view fn, const book& b) {
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
inline void require_win_probabilities(std::string_view fn, const stage_graph& g, std::span<const double> w) {
    if (w.size() != g.open_count())
        throw argument_error(message(fn, ": ", w.size(), " win probabilities for ", g.open_count(), " open stages"));
    for (std::size_t i = 0; i < w.size(); ++i)
        if (!(w[i] >= 0.0 && w[i] <= 1.0))
            throw argument_error(message(fn, ": win probability of stage '", g.name(i), "' must be in [0, 1], got ", w[i]));
}

/// Per-stage lists of deal indices (a counting sort of the stage column).
[[nodiscard]] inline std::vector<std::vector<std::size_t>> deals_by_stage(const book& b) {
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
inline void fill_lines(const book& b, const rollup_totals& t, std::span<const double> w, weighted_forecast_result& r) {
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
[[nodiscard]] inline weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b,
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
[[nodiscard]] inline weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b,
                                                                const Eigen::VectorXd& win_probability) {
    return weighted_forecast(g, b, std::span<const double>(win_probability.data(), static_cast<std::size_t>(win_probability.size())));
}

/// Weighted forecast reusing an absorption analysis of g (no O(m³) work).
/// @throws as the span overload.
[[nodiscard]] inline weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b,
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
[[nodiscard]] inline weighted_forecast_result weighted_forecast(const stage_graph& g, const book& b) {
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
[[nodiscard]] inline age_aware_forecast_result age_aware_forecast(const stage_graph& g, const book& b,
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
inline void fill_period(const book& b, std::span<const double> p, std::span<const double> err,
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
[[nodiscard]] inline double override_within(double o, double p_within, double w) noexcept {
    return w > 0.0 ? std::min(o, p_within * (o / w)) : 0.0;
}

/// P(eventually won | open stage s, age) of g from the latent win probabilities w_latent,
/// using `scratch` (>= latent_count(s) entries) for the branch weights: win_probability_at_age
/// without its allocation, for loops over deals.
[[nodiscard]] inline double win_at_age(const stage_graph& g, std::size_t s, double age, const Eigen::VectorXd& w_latent,
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
inline void apply_overrides(const stage_graph& g, const book& b, std::span<const double> w,
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

inline void require_horizon(std::string_view fn, double h) {
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
[[nodiscard]] inline period_forecast_result period_forecast(const stage_graph& g, const book& b, double horizon,
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
[[nodiscard]] inline period_forecast_result period_forecast(const stage_graph& g, const book& b, double horizon,
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
[[nodiscard]] inline sales_progress_result sales_progress(const week_position& last_week, const week_position& this_week,
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
[[nodiscard]] inline sales_progress_result sales_progress(const weighted_forecast_result& last_week,
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
[[nodiscard]] inline sales_progress_result sales_progress(const stage_graph& g, const book& last_week,
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
inline std::ostream& operator<<(std::ostream& os, const weighted_forecast_result& r) {
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
inline std::ostream& operator<<(std::ostream& os, const period_forecast_result& r) {
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
inline std::ostream& operator<<(std::ostream& os, const age_aware_forecast_result& r) {
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
inline std::ostream& operator<<(std::ostream& os, const sales_progress_result& r) {
    detail::forecast_printer pr(os);
    os << "sales progress: " << r.last_week << " -> " << r.this_week << " (" << std::showpos << r.progress
       << std::noshowpos << "), " << std::setprecision(1) << 100.0 * r.share_of_quota << "% of quota "
       << std::setprecision(2) << r.quota << " (steady " << std::setprecision(1) << 100.0 * r.steady_share
       << "%, pace " << std::setprecision(2) << r.pace << ")";
    return os;
}

} // namespace pipecast
