// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/exact_distribution.hpp
/// @brief The distribution of the value won within a horizon, computed without Monte Carlo
/// noise: the open book (and Poisson arrivals) as a sum of independent Bernoulli amounts on a
/// value lattice, by one FFT; the correlation shock by Gauss–Hermite quadrature. The same
/// answers as simulate() (quantiles, P(quota), histogram, sub-periods, per stage), with a
/// stated discretisation error instead of a standard error. See docs/exact.md.
///
/// **Model.** Deal i is won within h with probability p_i = P(won within h | stage, age)
/// (period_forecast's per-deal value, overrides included); deals are independent, so the won
/// value is S = Σ a_i B_i, B_i ~ Bernoulli(p_i). Arrivals won within h are a compound Poisson
/// sum: count ~ Poisson(Λ), Λ = ∫₀ʰ λ(t) P(won within h − t | entry stage, age 0) dt, amounts
/// from the deal-size distribution. With the correlation shock (simulation_options::
/// correlation / stage_correlation), deals are independent given the path's Z ~ N(0, 1): the
/// graph is shocked exactly as the simulator shocks it (stage i's forward log-odds + σ_i Z,
/// branch shares π likewise, overridden deals unshocked), the per-deal probabilities are
/// recomputed on that graph at each Gauss–Hermite node (moments: the rule's weighted sums), and
/// the distribution is integrated over Z by interpolating between neighbouring nodes
/// (detail::mix_shock_interval: no comb of node peaks when the value given Z is narrow).
///
/// **Method.** Amounts are rounded to a lattice of step Δ (Δ = 1 when every amount is an
/// integer and the range fits the grid: then the lattice is exact). On the ring Z_G that
/// covers the window [μ − t, μ + t] (t from Bernstein's inequality, so the mass outside is
/// below 1e-14 a side), the log characteristic function of each deal is the series
/// log(1 − p) + Σ_m (−1)^{m+1} r^m z^{mk} / m, r = p / (1 − p) (after writing a deal with
/// p > ½ as its amount minus a deal won with 1 − p, so r <= 1): all deals' series are scattered
/// into one real array whose FFT is the log characteristic function of the sum (one FFT for
/// the whole book). Deals with r > 1 − 10⁻⁵ (p within 2.5·10⁻⁶ of ½, where the series is slow)
/// are multiplied in directly, frequency by frequency (O(G) each). An inverse FFT gives the probabilities of the lattice
/// cells. Cost: O(Σ_i m_i + G log G) with m_i = log ε / log r_i terms a deal (ε = 1e-17; 10 terms at p = 0.02,
/// 90 at p = 0.3, 37,000 at r = 0.999; grouped by lattice cell, so a term is one
/// multiply-add).

#include <pipecast/data/book.hpp>
#include <pipecast/detail/gauss_hermite.hpp>
#include <pipecast/error.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/first_passage.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <Eigen/Eigenvalues>
#include <boost/math/distributions/lognormal.hpp>
#include <unsupported/Eigen/FFT>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pipecast {

/// How simulate-style questions are answered: by the exact lattice method or Monte Carlo.
enum class distribution_method {
    automatic,   ///< exact where the model and options allow (finite horizon), else Monte Carlo
    exact,       ///< exact_distribution()
    monte_carlo  ///< simulate()
};

/// Name of a method ("auto", "exact", "mc").
[[nodiscard]] constexpr std::string_view to_string(distribution_method m) noexcept {
    switch (m) {
    case distribution_method::automatic: return "auto";
    case distribution_method::exact: return "exact";
    case distribution_method::monte_carlo: return "mc";
    }
    return "?";
}

/// Parses "auto", "exact" or "mc" (also "monte_carlo"). @throws argument_error otherwise.
template <class = void>
[[nodiscard]] distribution_method parse_distribution_method(std::string_view s) {
    if (s == "auto" || s == "automatic") return distribution_method::automatic;
    if (s == "exact") return distribution_method::exact;
    if (s == "mc" || s == "monte_carlo" || s == "monte-carlo") return distribution_method::monte_carlo;
    throw argument_error(detail::message("method must be exact, mc or auto, got '", s, "'"));
}

/// True when exact_distribution() can answer these options: a finite horizon (the per-deal
/// probabilities are P(won within h)).
template <class = void>
[[nodiscard]] bool exact_applicable(const simulation_options& o) noexcept { return std::isfinite(o.horizon); }

/// Tuning of exact_distribution (the defaults suit books from 1 to 10⁷ deals).
struct exact_options {
    /// Lattice cells G (a power of two, 2^8 .. 2^24); 0 = automatic: Δ about 1/256 of the mean
    /// amount, G between 2^12 and 2^20.
    std::size_t grid_cells = 0;
    /// Gauss–Hermite nodes over the shock Z (used only with a shock), 2..200; 0 = 24.
    std::size_t quadrature_nodes = 0;
    /// Renewal-table steps of the per-deal probabilities (period_forecast_options::steps).
    std::size_t period_steps = 0;
};

/// A distribution summary with the same fields as simulate()'s outcome_summary, from the
/// exact lattice probabilities.
struct exact_summary {
    double mean = 0.0;                  ///< E[value] (from the unrounded amounts)
    double sd = 0.0;                    ///< sd of the value (from the unrounded amounts)
    double min = 0.0, max = 0.0;        ///< lowest and highest lattice value of probability > 1e-15
    std::vector<double> quantile_levels;
    std::vector<double> quantiles;      ///< min{v : P(value <= v) >= level} on the lattice
    std::vector<double> quotas;
    std::vector<double> p_quota;        ///< P(value >= quotas[i])
    double hist_lower = 0.0;            ///< histogram: left edge of bin 0
    double hist_width = 0.0;            ///< histogram: bin width (0 if the value is certain)
    std::vector<double> histogram;      ///< probability of each bin over [min, max]
};

/// Result of exact_distribution().
struct exact_result {
    std::string method = "exact";       ///< "exact"
    std::string detail;                 ///< the lattice and quadrature used, in words
    double horizon = 0.0;
    std::size_t deals = 0;
    std::size_t overridden = 0;
    exact_summary won_value;            ///< value won within the horizon
    exact_summary won_count;            ///< deals (and arrivals) won within the horizon
    std::vector<double> sub_period_ends;
    std::vector<exact_summary> sub_period_value; ///< value won by the end of each sub-period
    std::vector<double> deal_win_probability;    ///< per deal P(won within h) (shock averaged)
    std::vector<double> stage_expected_wins;     ///< per open stage
    std::vector<double> stage_expected_value;    ///< per open stage
    double arrivals_expected_count = 0.0;
    double arrivals_expected_wins = 0.0;
    double arrivals_expected_value = 0.0;

    double step = 0.0;                  ///< lattice step Δ of the won value (money)
    std::size_t cells = 0;              ///< lattice cells G
    std::size_t quadrature_nodes = 0;   ///< Gauss–Hermite nodes (0: no shock)
    /// Bound on |reported quantile − true quantile| from the lattice (money): Δ plus the
    /// rounding of amounts to the lattice, |Σ e_i p_i| + 4 sd(Σ e_i B_i) (e_i: a deal's
    /// rounding error; sizes of arrivals likewise); 0 rounding error on an exact integer
    /// lattice. With a shock, plus the largest mean correction of the interpolation between
    /// quadrature nodes (an estimate of its error). The largest over the won value and the
    /// sub-periods.
    double error_bound = 0.0;
    /// Bound on the probability lost to the window, the series and the deal-size truncation,
    /// and, with a shock, the quantile-level merge of wide node distributions (affects P(quota)
    /// and the histogram).
    double probability_error = 0.0;
    /// The period forecast's own interpolation error estimate of the expected value (money;
    /// 0 for Markov models): the per-deal probabilities' error, not the lattice's.
    double forecast_error = 0.0;
    double elapsed_seconds = 0.0;
};

namespace detail {

/// One independent-sum problem on the lattice: known amounts with win probabilities, deals
/// whose amount comes from `size` (NaN amount) and a compound Poisson count of mean `lambda`
/// with amounts from `size`. `unit_size`: sizes are exactly 1 (won counts).
struct exact_terms {
    std::span<const double> amount, prob; ///< known amounts (NaN: from `size`) and probabilities (not owned)
    double lambda = 0.0;
    bool unit_size = false;
};

/// A deal-size distribution discretised on the lattice (nearest cell), truncated where the
/// mass above is below 1e-13: cell probabilities, the truncated mass, moments and the
/// rounding error moments.
struct lattice_size {
    std::vector<double> pmf;  ///< by cell 0..
    double dropped = 0.0;     ///< mass above the last cell
    double mean = 0.0, second = 0.0, max = 0.0;    ///< of the true amount (untruncated mean)
    double err_mean = 0.0, err_second = 0.0;       ///< E[e], E[e²] of the rounding error
};

template <class = void>
[[nodiscard]] lattice_size discretise_size(const deal_size_distribution& d, double step, bool unit) {
    lattice_size s;
    if (unit) {
        const auto c = static_cast<std::size_t>(std::llround(1.0 / step));
        s.pmf.assign(c + 1, 0.0);
        s.pmf[c] = 1.0;
        s.mean = s.second = s.max = 1.0;
        s.err_mean = 1.0 - static_cast<double>(c) * step;
        s.err_second = s.err_mean * s.err_mean;
        return s;
    }
    if (d.is_empirical()) {
        const auto v = d.values();
        const auto w = d.weights();
        s.pmf.assign(static_cast<std::size_t>(std::llround(v.back() / step)) + 1, 0.0);
        for (std::size_t i = 0; i < v.size(); ++i) {
            const auto c = static_cast<std::size_t>(std::llround(v[i] / step));
            s.pmf[c] += w[i];
            const double e = v[i] - static_cast<double>(c) * step;
            s.mean += w[i] * v[i];
            s.second += w[i] * v[i] * v[i];
            s.err_mean += w[i] * e;
            s.err_second += w[i] * e * e;
        }
        s.max = v.back();
        return s;
    }
    const boost::math::lognormal_distribution<double, boost_policy> ln(d.log_mu(), d.sigma());
    const double sig = d.sigma();
    s.mean = d.mean();
    s.second = std::exp(2.0 * d.log_mu() + 2.0 * sig * sig);
    if (sig == 0.0) {
        const auto c = static_cast<std::size_t>(std::llround(d.median() / step));
        s.pmf.assign(c + 1, 0.0);
        s.pmf[c] = 1.0;
        s.max = d.median();
        s.err_mean = d.median() - static_cast<double>(c) * step;
        s.err_second = s.err_mean * s.err_mean;
        return s;
    }
    const double top = boost::math::quantile(complement(ln, 1e-13));
    s.max = top;
    const auto cells = static_cast<std::size_t>(std::ceil(top / step + 0.5)) + 1;
    s.pmf.assign(cells, 0.0);
    double prev = 0.0;
    for (std::size_t c = 0; c < cells; ++c) {
        const double edge = (static_cast<double>(c) + 0.5) * step;
        const double f = boost::math::cdf(ln, edge);
        s.pmf[c] = f - prev;
        prev = f;
    }
    s.dropped = std::max(0.0, 1.0 - prev);
    // Rounding error moments: e = a − cΔ lies in [−Δ/2, Δ/2); bounded by the worst case.
    s.err_mean = 0.0;
    s.err_second = step * step / 4.0;
    return s;
}

/// The lattice: value of ring cell c is (origin + ((c − origin) mod G)) · Δ with origin the
/// window's first cell.
struct lattice {
    double step = 1.0;
    std::int64_t origin = 0; ///< first cell of the window (in units of Δ)
    std::size_t cells = 0;   ///< G, a power of two
    [[nodiscard]] double value(std::size_t i) const noexcept {
        return (static_cast<double>(origin) + static_cast<double>(i)) * step;
    }
};

/// The lattice of a window [lo, hi]: Δ = 1 when `integers` and the window fits the largest
/// grid, else Δ about unit / 256 (coarser when the window needs more than the largest grid);
/// G a power of two (eo.grid_cells, or 2^12 .. 2^20), the window centred in the ring.
template <class = void>
[[nodiscard]] lattice make_lattice(double lo, double hi, double unit, bool integers, const exact_options& eo) {
    const std::size_t gmax = eo.grid_cells ? eo.grid_cells : std::size_t{1} << 20;
    const std::size_t gmin = eo.grid_cells ? eo.grid_cells : std::size_t{1} << 12;
    const double width = std::max(hi - lo, 0.0);
    lattice lat;
    if (integers && width + 2.0 <= static_cast<double>(gmax)) {
        lat.step = 1.0;
        lat.cells = std::max(gmin, std::bit_ceil(static_cast<std::size_t>(width) + 2));
    } else if (width == 0.0) {
        lat.step = unit > 0.0 ? unit : 1.0;
        lat.cells = gmin;
    } else {
        const double target = unit > 0.0 ? unit / 256.0 : width / static_cast<double>(gmin);
        const double want = width / target + 2.0;
        lat.cells = want >= static_cast<double>(gmax) ? gmax : std::max(gmin, std::bit_ceil(static_cast<std::size_t>(want)));
        lat.step = width / static_cast<double>(lat.cells - 2);
        if (static_cast<double>(lat.cells) > want) lat.step = std::max(target, lat.step);
    }
    const double used = std::min(width / lat.step, static_cast<double>(lat.cells));
    const auto slack = static_cast<std::int64_t>((static_cast<double>(lat.cells) - used) / 2.0);
    lat.origin = static_cast<std::int64_t>(std::floor(lo / lat.step)) - slack;
    return lat;
}

/// Checks the options exact results read: quantile levels, quotas, histogram bins.
template <class = void>
void validate_summary_options(const simulation_options& o, const char* where) {
    for (double q : o.quantiles)
        if (!(q >= 0.0 && q <= 1.0))
            throw argument_error(message(where, ": quantile level must be in [0, 1], got ", q));
    for (double q : o.quotas)
        if (!(std::isfinite(q) && q >= 0.0))
            throw argument_error(message(where, ": quota must be finite and >= 0, got ", q));
    if (o.histogram_bins == 0) throw argument_error(message(where, ": histogram_bins must be >= 1, got 0"));
}

/// Moments and bounds of one exact_terms on its own (unrounded amounts).
struct terms_moments {
    double mean = 0.0, var = 0.0, bound = 0.0, lo = 0.0, hi = 0.0;
    double sum_amount_pos = 0.0; ///< Σ known amounts with p > 0 (upper end without sizes)
    bool unbounded = false;      ///< sizes enter (no finite upper end)
};

template <class = void>
[[nodiscard]] terms_moments moments_of(const exact_terms& t, const lattice_size* size) {
    terms_moments m;
    double sure = 0.0;
    for (std::size_t i = 0; i < t.prob.size(); ++i) {
        const double p = t.prob[i], a = t.amount[i];
        if (std::isnan(a)) {
            m.mean += p * size->mean;
            m.var += p * size->second - p * p * size->mean * size->mean;
            m.bound = std::max(m.bound, size->max);
            m.unbounded = true;
        } else {
            m.mean += p * a;
            m.var += a * a * p * (1.0 - p);
            if (p > 0.0) {
                m.bound = std::max(m.bound, a);
                m.sum_amount_pos += a;
            }
            if (p >= 1.0) sure += a;
        }
    }
    if (t.lambda > 0.0) {
        m.mean += t.lambda * size->mean;
        m.var += t.lambda * size->second;
        m.bound = std::max(m.bound, size->max);
        m.unbounded = true;
    }
    // Bernstein: P(|S − μ| >= x) <= 2 exp(−x² / (2(σ² + b x / 3))) <= 2e-14 at
    // x = b L / 3 + sqrt((b L / 3)² + 2 σ² L), L = log(1e14).
    const double L = std::log(1e14), bl = m.bound * L / 3.0;
    const double x = bl + std::sqrt(bl * bl + 2.0 * std::max(m.var, 0.0) * L);
    m.lo = std::max(sure, m.mean - x);
    m.hi = m.unbounded ? m.mean + x : std::min(m.sum_amount_pos, m.mean + x);
    m.lo = std::min(m.lo, m.hi);
    return m;
}

/// Runs f(0), ..., f(n − 1) on up to `threads` threads (indices handed out in turn; f writes
/// only its own slots, so the result does not depend on the thread count). The first
/// exception thrown by f is rethrown here after every thread has stopped.
template <class F>
void parallel_for(std::size_t n, unsigned threads, F&& f) {
    const std::size_t nt = std::min<std::size_t>(std::max(1u, threads), n);
    if (nt <= 1) {
        for (std::size_t i = 0; i < n; ++i) f(i);
        return;
    }
    std::atomic<std::size_t> next{0};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    {
        std::vector<std::jthread> pool;
        pool.reserve(nt);
        for (std::size_t t = 0; t < nt; ++t)
            pool.emplace_back([&] {
                for (std::size_t i; (i = next.fetch_add(1)) < n;) {
                    try {
                        f(i);
                    } catch (...) {
                        const std::lock_guard<std::mutex> lock(failure_mutex);
                        if (!failure) failure = std::current_exception();
                        next.store(n);
                    }
                }
            });
    }
    if (failure) std::rethrow_exception(failure);
}

/// A deal of the log-CF series: its lattice cell k mod G and r = p / (1 − p) (r < 1).
struct series_deal {
    std::uint32_t cell;
    double r;
};

/// Deals grouped by cell (a stable counting sort). Returns the deals in that order.
template <class = void>
[[nodiscard]] std::vector<series_deal> series_cells(const std::vector<series_deal>& deals, std::size_t G) {
    std::vector<std::uint32_t> start(G + 1, 0);
    for (const auto& x : deals) ++start[x.cell + 1];
    for (std::size_t c = 0; c < G; ++c) start[c + 1] += start[c];
    std::vector<series_deal> out(deals.size());
    for (const auto& x : deals) out[start[x.cell]++] = x;
    return out;
}

/// A run of r values reordered by the length of their series (classes of −ilogb(r) below ½
/// and of −ilogb(1 − r) above, a stable counting sort): deals side by side then need series
/// of similar length.
template <class = void>
void sort_by_series_length(std::span<const series_deal> run, std::vector<double>& out) {
    constexpr unsigned classes = 64;
    auto cls = [](double r) -> unsigned {
        if (r < 0.5) return static_cast<unsigned>(std::min(r > 0.0 ? -std::ilogb(r) : 31, 31));
        return 32u + static_cast<unsigned>(std::min(-std::ilogb(1.0 - r), 31));
    };
    std::uint32_t start[classes + 1] = {};
    for (const auto& x : run) ++start[cls(x.r) + 1];
    for (unsigned c = 0; c < classes; ++c) start[c + 1] += start[c];
    out.resize(run.size());
    for (const auto& x : run) out[start[cls(x.r)]++] = x.r;
}

/// Power sums of a run of deals of one cell in a fixed chunk: `records` name the cell
/// and where its sums Σ r^{m+1}, m = 0..length−1, lie in `sums`.
struct series_cell_sums {
    struct record {
        std::uint64_t cell;
        std::size_t offset, length;
    };
    std::vector<record> records;
    std::vector<double> sums;
    double log1p_r = 0.0; ///< Σ log(1 + r) of the chunk's deals (= −Σ log(1 − p))
};

/// The power sums Σ_i r_i^m of each cell's deals (sorted by cell, as series_cells returns them),
/// m = 1.. until r_i^{m+1} / ((m+1)(1 − r_i)) < 1e-17 for every deal of the cell. Deals are cut
/// into fixed chunks of 8,192 (a cell may span two), processed by up to `threads` threads, each
/// chunk's sums in a fixed order: the result does not depend on the thread count. Eight deals
/// at a time (independent multiply chains the compiler vectorises), checked every eight terms.
template <class = void>
[[nodiscard]] std::vector<series_cell_sums> series_power_sums(const std::vector<series_deal>& deals,
                                                              unsigned threads) {
    constexpr std::size_t chunk = 8192, L = 8, unroll = 8;
    constexpr double eps = 1e-17;
    const std::size_t n = deals.size(), nchunks = (n + chunk - 1) / chunk;
    std::vector<series_cell_sums> out(nchunks);
    auto work = [&](std::size_t ci) {
        series_cell_sums& res = out[ci];
        const std::size_t b = ci * chunk, e = std::min(n, b + chunk);
        std::vector<double> acc, rs; // acc: [term][lane]
        std::size_t i = b;
        while (i < e) {
            const std::uint32_t cell = deals[i].cell;
            std::size_t j = i;
            while (j < e && deals[j].cell == cell) res.log1p_r += std::log1p(deals[j++].r);
            sort_by_series_length(std::span<const series_deal>(deals).subspan(i, j - i), rs);
            std::size_t used = 0; // terms written (at most acc.size() / L)
            for (std::size_t s = 0; s < rs.size(); s += L) {
                double rv[L], rm[L], stop[L];
                for (std::size_t l = 0; l < L; ++l) {
                    rv[l] = s + l < rs.size() ? rs[s + l] : 0.0;
                    rm[l] = rv[l];
                    stop[l] = eps * (1.0 - rv[l]);
                }
                for (std::size_t m = 0;; m += unroll) {
                    if (acc.size() < (m + unroll) * L) acc.resize((m + unroll) * L, 0.0);
                    double* a = acc.data() + m * L;
                    for (std::size_t u = 0; u < unroll; ++u)
                        for (std::size_t l = 0; l < L; ++l) {
                            a[u * L + l] += rm[l];
                            rm[l] *= rv[l];
                        }
                    used = std::max(used, m + unroll);
                    // rm = r^{m+9}: the tail after power m + 8 is below eps for every lane?
                    bool done = true;
                    for (std::size_t l = 0; l < L; ++l) {
                        done = done && rm[l] < stop[l] * static_cast<double>(m + unroll + 1);
                        rm[l] = rm[l] < 1e-200 ? 0.0 : rm[l]; // no subnormal slow path
                    }
                    if (done) break;
                }
            }
            // Trailing powers that underflowed add nothing: drop them.
            while (used > 0) {
                double t = 0.0;
                for (std::size_t l = 0; l < L; ++l) t += acc[(used - 1) * L + l];
                if (t != 0.0) break;
                --used;
            }
            const std::size_t off = res.sums.size();
            for (std::size_t m = 0; m < used; ++m) {
                double t = 0.0;
                for (std::size_t l = 0; l < L; ++l) t += acc[m * L + l];
                res.sums.push_back(t);
            }
            std::fill(acc.begin(), acc.end(), 0.0);
            res.records.push_back({cell, off, used});
            i = j;
        }
    };
    parallel_for(nchunks, threads, work);
    return out;
}

/// The lattice probabilities of one exact_terms on `lat`; returns the probability lost to
/// the series truncation (added to the caller's probability error).
template <class = void>
double lattice_pmf(const exact_terms& t, const lattice& lat, const lattice_size* size, std::vector<double>& pmf,
                   unsigned threads = 1) {
    const std::size_t G = lat.cells, H = G / 2 + 1;
    const std::uint64_t mask = G - 1;
    constexpr double r_series = 1.0 - 1e-5; // above: direct product (the series needs > 3.7 million terms)
    const double eps = 1e-17;          // series truncation per deal (in the log)
    std::vector<series_deal> series;
    std::vector<double> C(G, 0.0);
    std::vector<std::complex<double>> direct;
    // w^j = e^{−2πi j k / G} for j = 0..H−1 by rotation, re-anchored every 256 steps
    // (sequential: a table gather would miss the cache on every frequency).
    auto powers = [G, H, mask](std::uint64_t k, auto&& f) {
        const double two_pi_g = 6.283185307179586 / static_cast<double>(G);
        const double sr = std::cos(two_pi_g * static_cast<double>(k & mask)), si = -std::sin(two_pi_g * static_cast<double>(k & mask));
        for (std::size_t j0 = 0; j0 < H; j0 += 256) {
            const auto e = static_cast<double>((static_cast<std::uint64_t>(j0) * k) & mask);
            double wr = std::cos(two_pi_g * e), wi = -std::sin(two_pi_g * e);
            const std::size_t j1 = std::min(H, j0 + 256);
            for (std::size_t j = j0; j < j1; ++j) {
                f(j, wr, wi);
                const double nr = wr * sr - wi * si;
                wi = wr * si + wi * sr;
                wr = nr;
            }
        }
    };
    double log_const = 0.0;
    std::int64_t shift = 0; // lattice units, the sure part of the sum
    std::vector<double> unknown; // probabilities of deals whose amount comes from `size`
    double lost = 0.0;
    for (std::size_t i = 0; i < t.prob.size(); ++i) {
        double p = t.prob[i];
        const double a = t.amount[i];
        if (std::isnan(a)) {
            if (p > 0.0) unknown.push_back(p);
            continue;
        }
        auto k = static_cast<std::int64_t>(std::llround(a / lat.step));
        if (p <= 0.0 || k == 0) continue;
        if (p >= 1.0) {
            shift += k;
            continue;
        }
        if (p > 0.5) { // a B = a − a (1 − B): the sure amount, minus a deal won with 1 − p
            shift += k;
            k = -k;
            p = 1.0 - p;
        }
        const double r = p / (1.0 - p);
        const auto step = static_cast<std::uint64_t>(k) & mask; // k mod G (two's complement)
        if (r > r_series) {
            if (direct.empty()) direct.assign(H, {1.0, 0.0});
            // (1 − p + p w) · d, written out (std::complex's operator* checks for NaN: 10× slower).
            const double q = 1.0 - p;
            powers(step, [&](std::size_t j, double wr, double wi) {
                const double fr = q + p * wr, fi = p * wi;
                const double dr = direct[j].real(), di = direct[j].imag();
                direct[j] = {fr * dr - fi * di, fr * di + fi * dr};
            });
            continue;
        }
        series.push_back({static_cast<std::uint32_t>(step), r});
        lost += eps;
    }
    // The series, cell by cell: the power sums Σ_i r_i^m of a cell's deals over m = 1..M (M:
    // r^{M+1} / ((M+1)(1 − r)) < eps for each deal), then one scatter of M terms a cell
    // instead of one a deal (series_power_sums: parallel over fixed chunks of deals,
    // bit-identical at any thread count).
    if (!series.empty()) {
        const std::vector<series_cell_sums> chunks = series_power_sums(series_cells(series, G), threads);
        for (const auto& ch : chunks) log_const -= ch.log1p_r; // log(1 − p) = −log(1 + r)
        for (const auto& ch : chunks)
            for (const auto& rec : ch.records) {
                std::uint64_t idx = rec.cell;
                double sign = 1.0;
                for (std::size_t m = 0; m < rec.length; ++m, idx = (idx + rec.cell) & mask, sign = -sign)
                    C[idx] += sign * ch.sums[rec.offset + m] / static_cast<double>(m + 1);
            }
    }
    Eigen::FFT<double> fft;
    fft.SetFlag(Eigen::FFT<double>::HalfSpectrum);
    std::vector<std::complex<double>> F;
    fft.fwd(F, C);
    // The size distribution's transform (unknown-amount deals and arrivals).
    std::vector<std::complex<double>> Fs;
    if (!unknown.empty() || t.lambda > 0.0) {
        std::vector<double> sp(G, 0.0);
        for (std::size_t c = 0; c < size->pmf.size(); ++c) sp[c & mask] += size->pmf[c];
        fft.fwd(Fs, sp);
    }
    // Unknown-amount deals: the count N is Poisson-binomial (exact DP), E[F^N] by Horner.
    std::vector<double> count_pmf;
    if (!unknown.empty()) {
        count_pmf.assign(1, 1.0);
        for (double p : unknown) {
            count_pmf.push_back(0.0);
            for (std::size_t n = count_pmf.size() - 1; n > 0; --n)
                count_pmf[n] = count_pmf[n] * (1.0 - p) + count_pmf[n - 1] * p;
            count_pmf[0] *= 1.0 - p;
        }
    }
    // The sum's transform, written over F (no second array of H).
    const std::int64_t off = shift - lat.origin;
    const auto off_mod = static_cast<std::uint64_t>(off) & mask;
    powers(off_mod, [&](std::size_t j, double wr, double wi) {
        std::complex<double> v = std::exp(F[j] + log_const) * std::complex<double>(wr, wi);
        if (!direct.empty()) v *= direct[j];
        if (!count_pmf.empty()) {
            std::complex<double> h = 0.0;
            for (std::size_t n = count_pmf.size(); n-- > 0;) h = h * Fs[j] + count_pmf[n];
            v *= h;
        }
        if (t.lambda > 0.0) v *= std::exp(t.lambda * (Fs[j] - 1.0));
        F[j] = v;
    });
    fft.inv(pmf, F);
    pmf.resize(G);
    // Rounding noise of the transforms (about 1e-15) is cleared: cells below 1e-13 are 0 (at
    // most G · 1e-13 of probability, counted in the returned loss).
    for (double& x : pmf) x = x > 1e-13 ? x : 0.0;
    lost += static_cast<double>(G) * 1e-13;
    return lost;
}

/// The lattice rounding error of one exact_terms: |Σ e_i p_i| + 4 sd(Σ e_i B_i) (+ sizes).
template <class = void>
[[nodiscard]] double rounding_error(const exact_terms& t, double step, const lattice_size* size) {
    double mean = 0.0, var = 0.0;
    for (std::size_t i = 0; i < t.prob.size(); ++i) {
        const double p = t.prob[i], a = t.amount[i];
        if (std::isnan(a)) {
            mean += p * size->err_mean;
            var += p * size->err_second;
            continue;
        }
        const double e = a - static_cast<double>(std::llround(a / step)) * step;
        mean += e * p;
        var += e * e * p * (1.0 - p);
    }
    if (t.lambda > 0.0) {
        mean += t.lambda * size->err_mean;
        var += t.lambda * size->err_second;
    }
    return std::abs(mean) + 4.0 * std::sqrt(std::max(var, 0.0));
}

/// Summary of a lattice distribution.
template <class = void>
[[nodiscard]] exact_summary summarise_lattice(std::span<const double> pmf, const lattice& lat, double mean,
                                              double var, const simulation_options& o) {
    exact_summary s;
    s.mean = mean;
    s.sd = std::sqrt(std::max(var, 0.0));
    s.quantile_levels = o.quantiles;
    s.quotas = o.quotas;
    const std::size_t G = pmf.size();
    double total = 0.0;
    for (double x : pmf) total += x;
    std::size_t first = 0, last = G - 1;
    while (first < last && pmf[first] / total <= 1e-15) ++first;
    while (last > first && pmf[last] / total <= 1e-15) --last;
    s.min = lat.value(first);
    s.max = lat.value(last);
    for (double q : o.quantiles) {
        double acc = 0.0;
        std::size_t c = 0;
        const double target = q * total;
        for (c = 0; c < G; ++c) {
            acc += pmf[c];
            if (acc >= target * (1.0 - 1e-12) && pmf[c] > 0.0) break;
        }
        c = std::clamp(c, first, last);
        s.quantiles.push_back(lat.value(c));
    }
    for (double q : o.quotas) {
        double acc = 0.0;
        for (std::size_t c = 0; c < G; ++c)
            if (lat.value(c) >= q - 1e-9 * lat.step) acc += pmf[c];
        s.p_quota.push_back(std::clamp(acc / total, 0.0, 1.0));
    }
    const std::size_t bins = o.histogram_bins;
    s.hist_lower = s.min;
    s.hist_width = (s.max - s.min) / static_cast<double>(bins);
    s.histogram.assign(bins, 0.0);
    for (std::size_t c = first; c <= last; ++c) {
        const std::size_t b = s.hist_width > 0.0
                                  ? static_cast<std::size_t>((lat.value(c) - s.min) / s.hist_width)
                                  : 0;
        s.histogram[std::min(b, bins - 1)] += pmf[c] / total;
    }
    return s;
}

/// The graph shocked as the simulator shocks a path with e^{σ_i Z} = mult[i]: stage i's
/// forward conversion (edges or branches to a winning outcome or a later open stage) gets
/// odds × mult[i], f′ = f m / (1 − f + f m), forward entries scaled by f′/f, the others by
/// (1 − f′)/(1 − f) (simulation.hpp, sim_engine::shock_row and apply_shock).
template <class = void>
[[nodiscard]] stage_graph shocked_graph(const stage_graph& g, std::span<const double> mult) {
    const std::size_t m = g.open_count();
    std::vector<open_stage> st(g.stages().begin(), g.stages().end());
    Eigen::MatrixXd t = g.transitions();
    auto shifted = [](double f, double mu) {
        if (!(f > 0.0 && f < 1.0)) return f;
        const double odds = f / (1.0 - f) * mu;
        return odds / (1.0 + odds);
    };
    for (std::size_t s = 0; s < m; ++s) {
        auto forward = [&](std::size_t j) { return g.is_outcome(j) ? g.is_win(j) : j > s; };
        if (g.branched(s)) {
            double f = 0.0;
            for (std::size_t k = 0; k < st[s].branches.size(); ++k)
                if (forward(g.branch_target(s, k))) f += st[s].branches[k].probability;
            if (!(f > 0.0 && f < 1.0)) continue;
            const double nf = shifted(f, mult[s]);
            for (std::size_t k = 0; k < st[s].branches.size(); ++k)
                st[s].branches[k].probability *= forward(g.branch_target(s, k)) ? nf / f : (1.0 - nf) / (1.0 - f);
        } else {
            const auto r = static_cast<Eigen::Index>(s);
            double f = 0.0;
            for (std::size_t j = 0; j < g.size(); ++j)
                if (forward(j)) f += t(r, static_cast<Eigen::Index>(j));
            if (!(f > 0.0 && f < 1.0)) continue;
            const double nf = shifted(f, mult[s]);
            for (std::size_t j = 0; j < g.size(); ++j)
                t(r, static_cast<Eigen::Index>(j)) *= forward(j) ? nf / f : (1.0 - nf) / (1.0 - f);
        }
    }
    return stage_graph(std::move(st), {g.outcomes().begin(), g.outcomes().end()}, std::move(t));
}

/// Φ(x), the standard normal distribution function (erfc: accurate in both tails).
template <class = void>
[[nodiscard]] double normal_cdf(double x) noexcept { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// mix += w · pmf.
template <class = void>
void add_scaled(std::vector<double>& mix, const std::vector<double>& pmf, double w) {
    for (std::size_t c = 0; c < mix.size(); ++c) mix[c] += w * pmf[c];
}

/// Adds to `mix` the shock interval [z_k, z_{k+1}]'s share of the mixture ∫ φ(z) P(value | z) dz.
/// Given Z the value is often far narrower than the spread of its mean over Z (b2b6, σ = 0.5:
/// sd 1 M given Z, 17 M over Z), so mixing the quadrature nodes' distributions with their
/// weights gives a comb of peaks and quantiles off by up to half the gap between neighbouring
/// nodes. Instead the interval is cut into S sub-intervals (S such that the mean moves by at
/// most a quarter of the conditional sd from one to the next, 2..256), each of probability
/// Φ(b) − Φ(a), whose distribution at its midpoint is the displacement interpolation of the
/// two nodes' distributions (quantile functions mixed linearly, t = (z − z_k)/(z_{k+1} − z_k):
/// exact for a location-scale family), shifted so that its mean follows the cubic through the
/// node means at z_{k−1} .. z_{k+2} instead of the chord. Atoms between lattice cells are split
/// between the two (mean kept). When the two supports are wide (more than 2^22 atoms in all),
/// the quantile functions are taken at U = 2^22 / S levels (q + ½)/U instead of merged cell by
/// cell: the probability of a value range is then off by at most 1/U. Returns the largest
/// shift applied to a sub-interval of probability > 1e-6 (money: an estimate of the
/// interpolation's error, reported in error_bound) and that 1/U (0 when merged exactly).
struct shock_mix_error {
    double shift = 0.0, probability = 0.0;
};
template <class = void>
shock_mix_error mix_shock_interval(const std::vector<double>& a, const std::vector<double>& b, std::size_t k,
                          std::span<const double> zs, std::span<const double> node_mean,
                          std::span<const double> node_sd, double step, std::vector<double>& mix) {
    const std::size_t G = mix.size(), n = zs.size();
    const double z0 = zs[k], z1 = zs[k + 1], h = z1 - z0;
    const double sd = std::max(std::min(node_sd[k], node_sd[k + 1]), step);
    const double moves = std::abs(node_mean[k + 1] - node_mean[k]) / (0.25 * sd);
    const auto S = static_cast<std::size_t>(std::clamp(std::ceil(moves), 2.0, 256.0));
    // The cubic (or quadratic at an end) through the node means around the interval.
    const std::size_t first = k > 0 ? k - 1 : 0, last = std::min(n - 1, k + 2);
    auto cubic = [&](double z) {
        double v = 0.0;
        for (std::size_t i = first; i <= last; ++i) {
            double l = 1.0;
            for (std::size_t j = first; j <= last; ++j)
                if (j != i) l *= (z - zs[j]) / (zs[i] - zs[j]);
            v += l * node_mean[i];
        }
        return v;
    };
    std::vector<double> t(S), w(S), shift(S);
    shock_mix_error err;
    double& largest = err.shift;
    for (std::size_t s = 0; s < S; ++s) {
        const double lo = z0 + h * static_cast<double>(s) / static_cast<double>(S);
        const double hi = z0 + h * static_cast<double>(s + 1) / static_cast<double>(S);
        t[s] = (static_cast<double>(s) + 0.5) / static_cast<double>(S);
        w[s] = normal_cdf(hi) - normal_cdf(lo);
        const double chord = (1.0 - t[s]) * node_mean[k] + t[s] * node_mean[k + 1];
        const double d = cubic(z0 + t[s] * h) - chord;
        shift[s] = d / step; // in cells
        if (w[s] > 1e-6) largest = std::max(largest, std::abs(d));
    }
    auto deposit = [&](double x, double m) {
        x = std::clamp(x, 0.0, static_cast<double>(G - 1));
        const auto c = static_cast<std::size_t>(x);
        const double f = x - static_cast<double>(c);
        mix[c] += m * (1.0 - f);
        if (c + 1 < G) mix[c + 1] += m * f;
        else mix[c] += m * f;
    };
    std::size_t atoms = 0;
    for (std::size_t c = 0; c < G; ++c) atoms += (a[c] > 0.0 ? 1 : 0) + (b[c] > 0.0 ? 1 : 0);
    constexpr std::size_t most = std::size_t{1} << 22;
    if (atoms * S > most) {
        const std::size_t U = std::max<std::size_t>(most / S, 1024);
        err.probability = 1.0 / static_cast<double>(U);
        // Quantile functions (cell indices) at the levels (q + ½)/U of each distribution.
        auto levels = [U, G](const std::vector<double>& f) {
            std::vector<double> x(U);
            double total = 0.0;
            for (double v : f) total += v;
            double acc = 0.0;
            std::size_t c = 0;
            for (std::size_t q = 0; q < U; ++q) {
                const double level = (static_cast<double>(q) + 0.5) / static_cast<double>(U) * total;
                while (c + 1 < G && acc + f[c] < level) acc += f[c++];
                x[q] = static_cast<double>(c);
            }
            return x;
        };
        const std::vector<double> xa = levels(a), xb = levels(b);
        const double m = 1.0 / static_cast<double>(U);
        for (std::size_t q = 0; q < U; ++q)
            for (std::size_t s = 0; s < S; ++s) deposit((1.0 - t[s]) * xa[q] + t[s] * xb[q] + shift[s], m * w[s]);
        return err;
    }
    // Merge the two distribution functions: each run of u over which both quantile functions
    // are constant (cells i of a, j of b) is one atom per sub-interval.
    std::size_t i = 0, j = 0;
    while (i < G && a[i] <= 0.0) ++i;
    while (j < G && b[j] <= 0.0) ++j;
    double ra = i < G ? a[i] : 0.0, rb = j < G ? b[j] : 0.0;
    while (i < G && j < G) {
        const double m = std::min(ra, rb);
        const auto xi = static_cast<double>(i), xj = static_cast<double>(j);
        for (std::size_t s = 0; s < S; ++s) deposit((1.0 - t[s]) * xi + t[s] * xj + shift[s], m * w[s]);
        ra -= m;
        rb -= m;
        if (ra <= 0.0)
            for (++i; i < G && a[i] <= 0.0; ++i) {}
        if (rb <= 0.0)
            for (++j; j < G && b[j] <= 0.0; ++j) {}
        if (i < G && ra <= 0.0) ra = a[i];
        if (j < G && rb <= 0.0) rb = b[j];
    }
    return err;
}

/// Per-deal P(won within each end) on one graph, overrides replaced by `fixed` where given,
/// and the arrivals' expected wins Λ(end); the period forecast's error estimate (money, at the
/// last end).
struct node_probabilities {
    std::vector<std::vector<double>> p; ///< [end][deal]
    std::vector<double> lambda;         ///< [end] expected arrivals won by the end
    std::vector<double> arrivals;       ///< [end] expected arrivals by the end
    double forecast_error = 0.0;
};

template <class = void>
[[nodiscard]] node_probabilities probabilities_on(const stage_graph& g, const book& b,
                                                  std::span<const double> ends, const simulation_options& o,
                                                  const exact_options& eo) {
    node_probabilities r;
    const double H = ends.back();
    const bool markov = is_markov(g);
    std::optional<win_time_table> tab;
    if (!markov || o.arrivals) tab = win_time_distribution(g, H, eo.period_steps);
    std::optional<absorption_analysis> an;
    if (!markov) an = analyse(g);
    for (double e : ends) {
        period_forecast_result f;
        if (markov) {
            period_forecast_options po;
            po.per_deal = true;
            f = period_forecast(g, b, e, po);
        } else {
            f = period_forecast(g, b, e, *tab, *an, true);
        }
        r.forecast_error = f.error_estimate;
        r.p.push_back(std::move(f.deal_probability));
        if (o.arrivals) {
            // Λ(e) = ∫₀ᵉ λ(t) q(e − t) dt, q(s) = P(won by s | entered the entry stage);
            // two-point Gauss on each cell of the table grid, split at the seasonal breaks.
            const arrival_process& a = *o.arrivals;
            std::vector<double> cuts;
            for (double t = 0.0; t < e; t += tab->step) cuts.push_back(t);
            if (!a.period_rates.empty())
                for (double t = a.period; t < e; t += a.period) cuts.push_back(t);
            cuts.push_back(e);
            std::sort(cuts.begin(), cuts.end());
            double lam = 0.0;
            const double gq = 0.5 / std::sqrt(3.0);
            for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
                const double t0 = cuts[i], t1 = cuts[i + 1], mid = 0.5 * (t0 + t1), half = t1 - t0;
                if (!(half > 0.0)) continue;
                for (double u : {mid - gq * half, mid + gq * half})
                    lam += 0.5 * half * a.rate_at(u) * won_by(g, *tab, a.stage, e - u);
            }
            r.lambda.push_back(lam);
            r.arrivals.push_back(a.expected_count(e));
        } else {
            r.lambda.push_back(0.0);
            r.arrivals.push_back(0.0);
        }
    }
    return r;
}

} // namespace detail

/// The exact distribution of the value (and count) won within `o.horizon` by the open book
/// and, with `o.arrivals`, new deals: the answers of simulate() (quantiles, P(quota),
/// histogram, sub-periods, per stage) without Monte Carlo noise, plus a discretisation error
/// bound. Reads from `o`: horizon (finite), quantiles, quotas, sub_period_ends,
/// histogram_bins, arrivals, correlation / stage_correlation, threads (the series' worker threads, 0 =
/// all cores; the result is bit-identical at any count); ignores paths and seed.
///
/// @param g the stage graph (classic or branched)
/// @param b the open book (amounts, stages, ages, probability overrides)
/// @param o the simulation's options
/// @param deal_size amounts of arrivals (needed with o.arrivals)
/// @param eo lattice and quadrature settings
/// @throws argument_error on an infinite horizon, bad options (as simulate()), a book of
///   another graph, grid_cells not a power of two in [2^8, 2^24], or quadrature_nodes > 200.
/// Complexity: O((n + G log G) · nodes · (1 + sub-periods)) plus the per-deal probabilities;
///   memory O(n · nodes · (1 + sub-periods) + G).
/// Example: `simulation_options o; o.horizon = 90; o.quotas = {1e6};
///           auto r = exact_distribution(m.graph, bk, o); r.won_value.p_quota[0];`
template <class = void>
[[nodiscard]] exact_result exact_distribution(const stage_graph& g, const book& b, const simulation_options& o,
                                              const std::optional<deal_size_distribution>& deal_size,
                                              const exact_options& eo = {}) {
    const auto t_start = std::chrono::steady_clock::now();
    if (!std::isfinite(o.horizon))
        throw argument_error(detail::message("exact_distribution: the horizon must be finite (the exact method needs "
                                             "P(won within h)), got ",
                                             o.horizon));
    simulation_options vo = o;
    vo.paths = 1;
    detail::validate_options(vo, g, deal_size.has_value());
    if (!b.compatible_with(g))
        throw argument_error("exact_distribution: the book was made for a model with other open stages");
    if (eo.grid_cells != 0 && (!std::has_single_bit(eo.grid_cells) || eo.grid_cells < (1u << 8) ||
                               eo.grid_cells > (std::size_t{1} << 24)))
        throw argument_error(detail::message("exact_distribution: grid_cells must be a power of two in [256, 2^24], got ",
                                             eo.grid_cells));
    if (eo.quadrature_nodes > 200 || eo.quadrature_nodes == 1)
        throw argument_error(detail::message("exact_distribution: quadrature_nodes must be 0 (automatic) or in [2, 200], got ",
                                             eo.quadrature_nodes));

    const unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    exact_result r;
    r.horizon = o.horizon;
    r.deals = b.size();
    const auto ov = b.probability_overrides();
    for (double x : ov) r.overridden += std::isnan(x) ? 0 : 1;
    r.sub_period_ends = o.sub_period_ends;
    std::vector<double> ends = o.sub_period_ends;
    if (ends.empty() || ends.back() != o.horizon) ends.push_back(o.horizon);

    // The shock: one node (Z = 0) without one.
    std::vector<double> sigma(g.open_count(), o.correlation);
    if (!o.stage_correlation.empty()) sigma = o.stage_correlation;
    const bool shocked = std::any_of(sigma.begin(), sigma.end(), [](double s) { return s > 0.0; });
    std::vector<double> zs{0.0}, ws{1.0};
    if (shocked) {
        detail::gauss_hermite(eo.quadrature_nodes ? eo.quadrature_nodes : 24, zs, ws);
        r.quadrature_nodes = zs.size();
    }
    // Per node: the probabilities; overridden deals keep the unshocked ones (the simulator
    // does not shock them).
    // (Nodes in parallel, each written to its own slot.)
    std::vector<detail::node_probabilities> nodes(zs.size());
    detail::node_probabilities base = detail::probabilities_on(g, b, ends, o, eo);
    r.forecast_error = base.forecast_error;
    if (!shocked) {
        nodes[0] = std::move(base);
    } else {
        detail::parallel_for(zs.size(), threads, [&](std::size_t k) {
            std::vector<double> mult(g.open_count());
            for (std::size_t i = 0; i < mult.size(); ++i) mult[i] = std::exp(sigma[i] * zs[k]);
            detail::node_probabilities np = detail::probabilities_on(detail::shocked_graph(g, mult), b, ends, o, eo);
            for (std::size_t e = 0; e < ends.size(); ++e)
                for (std::size_t d = 0; d < b.size(); ++d)
                    if (!std::isnan(ov[d])) np.p[e][d] = base.p[e][d];
            nodes[k] = std::move(np);
        });
    }

    const std::span<const double> amounts = b.amounts();
    const std::vector<double> ones(b.size(), 1.0);
    double mean_amount = 0.0;
    std::size_t positive = 0;
    bool integers = true;
    for (double a : amounts)
        if (a > 0.0) {
            mean_amount += a;
            ++positive;
            integers = integers && a == std::floor(a) && a < 1e15;
        }
    mean_amount = positive ? mean_amount / static_cast<double>(positive) : 0.0;
    if (o.arrivals) {
        mean_amount = positive ? mean_amount : deal_size->mean();
        integers = integers && deal_size->is_empirical() &&
                   std::all_of(deal_size->values().begin(), deal_size->values().end(),
                               [](double v) { return v == std::floor(v); });
    }

    // One distribution (value or count) at one end, mixed over the shock.
    struct solved {
        exact_summary summary;
        double error_bound = 0.0, probability_error = 0.0, step = 0.0;
        std::size_t cells = 0;
    };
    auto solve = [&](std::size_t e, bool count) {
        solved out;
        const std::size_t n = nodes.size();
        std::vector<detail::exact_terms> terms(n);
        const double unit_mean = count ? 1.0 : mean_amount;
        // Moments per node, then one window for all of them.
        std::optional<detail::lattice_size> probe;
        if (o.arrivals && !count) probe = detail::discretise_size(*deal_size, deal_size->mean() / 64.0, false);
        if (o.arrivals && count) probe = detail::discretise_size(*deal_size, 1.0, true);
        double lo = std::numeric_limits<double>::infinity(), hi = -lo, mean = 0.0, second = 0.0;
        std::vector<detail::terms_moments> mom(n);
        std::vector<double> node_mean(n), node_sd(n);
        for (std::size_t k = 0; k < n; ++k) {
            terms[k].amount = count ? std::span<const double>(ones) : amounts;
            terms[k].prob = nodes[k].p[e];
            terms[k].lambda = nodes[k].lambda[e];
            terms[k].unit_size = count;
            mom[k] = detail::moments_of(terms[k], probe ? &*probe : nullptr);
            lo = std::min(lo, mom[k].lo);
            hi = std::max(hi, mom[k].hi);
            mean += ws[k] * mom[k].mean;
            second += ws[k] * (mom[k].var + mom[k].mean * mom[k].mean);
            node_mean[k] = mom[k].mean;
            node_sd[k] = std::sqrt(std::max(mom[k].var, 0.0));
        }
        const detail::lattice lat = detail::make_lattice(lo, hi, unit_mean, count || integers, eo);
        std::optional<detail::lattice_size> size;
        if (o.arrivals) size = detail::discretise_size(*deal_size, lat.step, count);
        std::vector<double> mix(lat.cells, 0.0), pmf, prev;
        double lost = 0.0, rounding = 0.0, interpolation = 0.0, coarse = 0.0;
        // Node by node (two conditional distributions kept): without a shock the one node's
        // distribution; with one, the mixture over Z by detail::mix_shock_interval.
        for (std::size_t k = 0; k < n; ++k) {
            lost += ws[k] * (detail::lattice_pmf(terms[k], lat, size ? &*size : nullptr, pmf, threads) +
                             (size ? size->dropped * (terms[k].lambda) : 0.0));
            rounding = std::max(rounding, detail::rounding_error(terms[k], lat.step, size ? &*size : nullptr));
            if (n == 1) {
                mix.swap(pmf);
                break;
            }
            if (k == 0) detail::add_scaled(mix, pmf, detail::normal_cdf(zs[0]));
            else {
                const detail::shock_mix_error me =
                    detail::mix_shock_interval(prev, pmf, k - 1, zs, node_mean, node_sd, lat.step, mix);
                interpolation = std::max(interpolation, me.shift);
                coarse = std::max(coarse, me.probability);
            }
            if (k + 1 == n) detail::add_scaled(mix, pmf, detail::normal_cdf(-zs[n - 1]));
            prev.swap(pmf);
        }
        out.summary = detail::summarise_lattice(mix, lat, mean, second - mean * mean, o);
        out.error_bound = lat.step + rounding + interpolation;
        out.probability_error = lost + 2e-14 * 2.0 + coarse;
        out.step = lat.step;
        out.cells = lat.cells;
        return out;
    };

    // The value and the count at the horizon side by side (each also parallel inside), then
    // the sub-period ends.
    solved value, won_count;
    if (threads > 1) {
        std::exception_ptr failure;
        {
            std::jthread side([&] {
                try {
                    won_count = solve(ends.size() - 1, true);
                } catch (...) {
                    failure = std::current_exception();
                }
            });
            value = solve(ends.size() - 1, false);
        }
        if (failure) std::rethrow_exception(failure);
    } else {
        value = solve(ends.size() - 1, false);
        won_count = solve(ends.size() - 1, true);
    }
    r.won_value = std::move(value.summary);
    r.won_count = std::move(won_count.summary);
    r.error_bound = value.error_bound;
    r.probability_error = std::max(value.probability_error, won_count.probability_error);
    r.step = value.step;
    r.cells = value.cells;
    for (std::size_t e = 0; e < o.sub_period_ends.size(); ++e) {
        solved sp = solve(e, false);
        r.error_bound = std::max(r.error_bound, sp.error_bound);
        r.probability_error = std::max(r.probability_error, sp.probability_error);
        r.sub_period_value.push_back(std::move(sp.summary));
    }

    // Per deal, per stage and arrivals: the node averages.
    const std::size_t last = ends.size() - 1;
    r.deal_win_probability.assign(b.size(), 0.0);
    for (std::size_t k = 0; k < nodes.size(); ++k)
        for (std::size_t d = 0; d < b.size(); ++d) r.deal_win_probability[d] += ws[k] * nodes[k].p[last][d];
    r.stage_expected_wins.assign(g.open_count(), 0.0);
    r.stage_expected_value.assign(g.open_count(), 0.0);
    const auto st = b.stages();
    for (std::size_t d = 0; d < b.size(); ++d) {
        r.stage_expected_wins[st[d]] += r.deal_win_probability[d];
        r.stage_expected_value[st[d]] += r.deal_win_probability[d] * amounts[d];
    }
    if (o.arrivals) {
        for (std::size_t k = 0; k < nodes.size(); ++k) {
            r.arrivals_expected_count += ws[k] * nodes[k].arrivals[last];
            r.arrivals_expected_wins += ws[k] * nodes[k].lambda[last];
        }
        r.arrivals_expected_value = r.arrivals_expected_wins * deal_size->mean();
    }
    r.detail = detail::message("lattice of ", r.cells, " cells, step ", r.step,
                               shocked ? detail::message(", Gauss-Hermite ", r.quadrature_nodes, " nodes over the shock")
                                       : std::string(", no shock"));
    r.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return r;
}

/// exact_distribution on a model: arrival amounts from the model's deal size and, with
/// options.model_arrivals, the model's own arrival process (as simulate(model, ...)).
/// @throws as the stage-graph overload.
template <class = void>
[[nodiscard]] exact_result exact_distribution(const model& m, const book& b, const simulation_options& o,
                                              const exact_options& eo = {}) {
    const simulation_options oo = detail::with_model_arrivals(m, o);
    return exact_distribution(m.graph, b, oo, oo.arrival_deal_size, eo);
}

/// The exact distribution of Σ a_i B_i for independent B_i ~ Bernoulli(p_i) (no model): the
/// lattice method on its own, for books whose probabilities come from elsewhere. A NaN amount
/// is drawn from `deal_size` (needed then). Reads quantiles, quotas and histogram_bins of `o`.
/// @throws argument_error on sizes that differ, an amount negative or infinite, a
///   probability outside [0, 1], a NaN amount without deal_size, or bad grid_cells.
/// Example: `exact_sum({100, 250}, {0.5, 0.2}, o).quantiles`.
template <class = void>
[[nodiscard]] exact_summary exact_sum(std::span<const double> amounts, std::span<const double> probabilities,
                                      const simulation_options& o = {},
                                      const std::optional<deal_size_distribution>& deal_size = std::nullopt,
                                      const exact_options& eo = {}, double* error_bound = nullptr) {
    if (amounts.size() != probabilities.size())
        throw argument_error(detail::message("exact_sum: ", amounts.size(), " amounts but ", probabilities.size(),
                                             " probabilities"));
    bool integers = true, unknown = false;
    double mean_amount = 0.0;
    std::size_t positive = 0;
    for (std::size_t i = 0; i < amounts.size(); ++i) {
        const double a = amounts[i], p = probabilities[i];
        if (!(p >= 0.0 && p <= 1.0))
            throw argument_error(detail::message("exact_sum: probability of deal ", i, " must be in [0, 1], got ", p));
        if (std::isnan(a)) {
            if (!deal_size)
                throw argument_error(detail::message("exact_sum: deal ", i, " has no amount and no deal-size distribution is given"));
            unknown = true;
            continue;
        }
        if (!(std::isfinite(a) && a >= 0.0))
            throw argument_error(detail::message("exact_sum: amount of deal ", i, " must be finite and >= 0, got ", a));
        if (a > 0.0) {
            mean_amount += a;
            ++positive;
            integers = integers && a == std::floor(a) && a < 1e15;
        }
    }
    if (eo.grid_cells != 0 && (!std::has_single_bit(eo.grid_cells) || eo.grid_cells < (1u << 8) ||
                               eo.grid_cells > (std::size_t{1} << 24)))
        throw argument_error(detail::message("exact_sum: grid_cells must be a power of two in [256, 2^24], got ",
                                             eo.grid_cells));
    detail::validate_summary_options(o, "exact_sum");
    if (unknown) {
        integers = false;
        if (positive == 0) mean_amount = deal_size->mean();
    }
    mean_amount = positive ? mean_amount / static_cast<double>(positive) : mean_amount;
    detail::exact_terms t;
    t.amount = amounts;
    t.prob = probabilities;
    std::optional<detail::lattice_size> probe;
    if (unknown) probe = detail::discretise_size(*deal_size, deal_size->mean() / 64.0, false);
    const detail::terms_moments m = detail::moments_of(t, probe ? &*probe : nullptr);
    const detail::lattice lat = detail::make_lattice(m.lo, m.hi, mean_amount, integers, eo);
    std::optional<detail::lattice_size> size;
    if (unknown) size = detail::discretise_size(*deal_size, lat.step, false);
    std::vector<double> pmf;
    (void)detail::lattice_pmf(t, lat, size ? &*size : nullptr, pmf,
                              o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency()));
    if (error_bound) *error_bound = lat.step + detail::rounding_error(t, lat.step, size ? &*size : nullptr);
    return detail::summarise_lattice(pmf, lat, m.mean, m.var, o);
}

} // namespace pipecast
