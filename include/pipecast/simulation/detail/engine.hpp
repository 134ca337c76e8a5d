// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/detail/engine.hpp
/// @brief The simulator's engine (internal): the per-run state, the thread pool, the
/// scalar and vector sweeps of deal-paths, arrivals, the shock and the reductions; used by
/// simulation_engine (simulation.hpp).

#include <pipecast/data/book.hpp>
#include <pipecast/detail/quantile.hpp>
#include <pipecast/error.hpp>
#include <pipecast/model/analytics.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>
#include <pipecast/simulation/detail/philox.hpp>
#include <pipecast/simulation/detail/variates.hpp>
#include <pipecast/simulation/estimate.hpp>

#include <Eigen/SparseCore>
#include <Eigen/SparseLU>
#include <boost/math/special_functions/erf.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace pipecast {

namespace detail {

/// Refuses a run whose estimate exceeds the limits of `o` (argument_error naming the sizes).
template <class = void>
void check_estimate(const simulation_estimate& e, const simulation_options& o, std::size_t deals) {
    if (e.memory_bytes > o.max_memory_bytes)
        throw argument_error(detail::message(
            "simulate: the run needs about ", static_cast<double>(e.memory_bytes) / 1e9, " GB of memory (", o.paths,
            " paths, ", o.sub_period_ends.size(), " sub-periods, ", o.histogram_bins,
            " histogram bins), more than max_memory_bytes = ", static_cast<double>(o.max_memory_bytes) / 1e9,
            " GB; use fewer paths, sub-periods or histogram bins"));
    if (!(e.stage_visits <= o.max_stage_visits))
        throw argument_error(detail::message(
            "simulate: the run needs about ", e.stage_visits, " stage visits (", o.paths, " paths × ",
            e.visits_per_path, " a path: ", deals, " deals", o.arrivals ? detail::message(" and ", e.arrivals_per_path, " arrivals") : std::string(),
            "), more than max_stage_visits = ", o.max_stage_visits,
            "; use fewer paths, a shorter horizon or fewer arrivals, or check the model for near-certain loops"));
}

/// Summary of a per-path vector (sorted copy for the quantiles).
template <class = void>
[[nodiscard]] outcome_summary summarise(std::span<const double> x, const simulation_options& o) {
    outcome_summary s;
    const std::size_t n = x.size();
    s.quantile_levels = o.quantiles;
    s.quotas = o.quotas;
    if (n == 0) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        s.mean = s.standard_error = s.sd = s.min = s.max = nan;
        s.quantiles.assign(o.quantiles.size(), nan);
        s.p_quota.assign(o.quotas.size(), nan);
        return s;
    }
    double sum = 0.0;
    for (double v : x) sum += v;
    s.mean = sum / static_cast<double>(n);
    double ss = 0.0;
    for (double v : x) ss += (v - s.mean) * (v - s.mean);
    s.sd = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;
    s.standard_error = s.sd / std::sqrt(static_cast<double>(n));
    std::vector<double> sorted(x.begin(), x.end());
    std::sort(sorted.begin(), sorted.end());
    s.min = sorted.front();
    s.max = sorted.back();
    for (double q : o.quantiles) s.quantiles.push_back(detail::sorted_quantile(sorted, q));
    for (double q : o.quotas) {
        const auto it = std::lower_bound(sorted.begin(), sorted.end(), q);
        s.p_quota.push_back(static_cast<double>(sorted.end() - it) / static_cast<double>(n));
    }
    s.histogram.lower = s.min;
    s.histogram.counts.assign(o.histogram_bins, 0);
    s.histogram.width = (s.max - s.min) / static_cast<double>(o.histogram_bins);
    for (double v : sorted) {
        std::size_t b = s.histogram.width > 0.0
                            ? static_cast<std::size_t>((v - s.min) / s.histogram.width)
                            : 0;
        ++s.histogram.counts[std::min(b, o.histogram_bins - 1)];
    }
    return s;
}

/// The prepared simulation of one (graph, book): dwell tables, transition rows, per-deal
/// start data, branch-choice records, the override rows and the shock's row maps. Built
/// once, immutable after construction; run() is const and may run on several threads at
/// once (each call has its own run_state and worker scratch).
template <class = void>
class basic_sim_engine {
public:
    using path_outputs = simulation_paths;

    /// One run's settings: the options and what is derived from them (the Philox key and
    /// kernel, the shock's σ per stage, the arrivals' intensity segments and amounts). Cheap
    /// to build (no table); the engine's tables are not touched.
    struct run_state {
        run_state(const basic_sim_engine& e, const simulation_options& opt, std::optional<deal_size_distribution> ds)
            : o(opt), key(opt.seed), isa(detail::philox_resolve(opt.philox_kernel)), horizon(opt.horizon),
              max_visits(static_cast<std::uint32_t>(opt.max_path_visits)), nsub(opt.sub_period_ends.size()),
              deal_size(std::move(ds)) {
            sigma.assign(e.g_.open_count(), opt.correlation);
            if (!opt.stage_correlation.empty()) sigma = opt.stage_correlation;
            shocked = std::any_of(sigma.begin(), sigma.end(), [](double x) { return x > 0.0; });
            if (opt.arrivals) prepare_arrivals();
        }
        const simulation_options& o;
        philox_schedule key;
        philox_isa isa;
        double horizon;
        std::uint32_t max_visits; ///< options.max_path_visits
        std::size_t nsub;
        std::optional<deal_size_distribution> deal_size;
        std::vector<double> sigma; ///< σ of the shock per open stage (observable graph)
        bool shocked = false;      ///< any σ_i > 0
        // arrivals
        double arrival_total = 0.0;
        std::size_t expected_arrivals = 0, entry = 0;
        std::vector<double> seg_t, seg_cum, seg_rate;
        double deal_mu = 0.0, deal_sigma = 0.0;
        bool deal_lognormal = true;

    private:
        void prepare_arrivals() {
            const arrival_process& a = *o.arrivals;
            arrival_total = a.expected_count(horizon);
            expected_arrivals = static_cast<std::size_t>(arrival_total);
            // Piecewise-constant intensity: segment starts, cumulative intensity, rate.
            if (a.period_rates.empty()) {
                seg_t = {0.0};
                seg_cum = {0.0};
                seg_rate = {a.rate};
            } else {
                double t = 0.0, cum = 0.0;
                for (std::size_t k = 0; t < horizon; ++k, t += a.period) {
                    const double r = a.period_rates[k % a.period_rates.size()];
                    seg_t.push_back(t);
                    seg_cum.push_back(cum);
                    seg_rate.push_back(r);
                    cum += r * (std::min(horizon, t + a.period) - t);
                }
            }
            entry = a.stage;
            // Amounts: the lognormal form by its closed-form quantile (as before the empirical
            // form existed: same numbers), any other form through deal_size_distribution::quantile.
            deal_lognormal = !deal_size->is_empirical();
            deal_mu = deal_size->log_mu();
            deal_sigma = deal_size->sigma();
        }
    };

    /// Prepares the tables; `threads` (0 = all cores) share the per-deal start data.
    basic_sim_engine(const stage_graph& g, const book& b, unsigned threads) : g_(g), lg_(g.latent()), b_(b) {
        if (!b.compatible_with(g))
            throw argument_error("simulate: the book was made for a model with other open stages");
        // The engine runs on the latent graph: one state per branch of a branched stage (the
        // graph itself when no stage is branched).
        m_ = lg_.open_count();
        branched_ = g.has_branches();
        code_.assign(lg_.size(), 1);
        for (std::size_t s = m_; s < lg_.size(); ++s) code_[s] = lg_.is_win(s) ? 2 : 0;
        code32_.assign(code_.begin(), code_.end());
        if (branched_) prepare_branch_flags();
        prepare_deals(threads ? threads : std::max(1u, std::thread::hardware_concurrency()));
        rows_ = transition_sampler(lg_);
        prepare_overrides();
        if (branched_) prepare_choice_records();
        prepare_shock(); // the row maps (cheap); used by runs with σ > 0
        prepare_columns();
    }

    /// Runs the paths [out.first, out.last) of run R; false if cancelled. Fills `out`.
    bool run(const run_state& R, path_outputs& out) const {
        const simulation_options& o = R.o;
        const std::size_t first = out.first, paths = out.last - out.first, n = b_.size();
        out.value.assign(paths, 0.0);
        out.count.assign(paths, 0.0);
        out.sub_value.assign(paths * R.nsub, 0.0);
        if (o.arrivals) {
            out.arrivals.assign(paths, 0.0);
            out.arrival_wins.assign(paths, 0.0);
            out.arrival_value.assign(paths, 0.0);
        }
        unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
        std::size_t chunk = o.chunk_paths;
        if (chunk == 0) {
            const std::size_t work = std::max<std::size_t>(n + R.expected_arrivals, 1);
            chunk = std::max<std::size_t>(1, (std::size_t{1} << 21) / work);
            chunk = std::min(chunk, std::max<std::size_t>(1, paths / (8 * threads)));
        }
        const std::size_t chunks = (paths + chunk - 1) / chunk;
        threads = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(threads, chunks)));
        out.done.assign(chunks, 0);
        out.capped.assign(chunks, 0);
        out.chunk = chunk;

        struct local {
            std::vector<std::uint64_t> wins, time;
        };
        std::vector<local> locals(threads);
        std::atomic<std::size_t> next{0}, done{0};
        std::atomic<bool> cancel{false};
        std::mutex mu;
        std::condition_variable cv;
        std::size_t finished_threads = 0;
        // The first exception of a worker or of the progress callback: the run stops (the
        // workers leave at their next path) and it is rethrown once every worker has joined.
        std::exception_ptr failure;
        {
            std::vector<std::jthread> pool;
            pool.reserve(threads);
            for (unsigned t = 0; t < threads; ++t)
                pool.emplace_back([&, t] {
                    try {
                        local& L = locals[t];
                        L.wins.assign(n, 0);
                        L.time.assign(n, 0);
                        worker_state ws(*this, R);
                        for (;;) {
                            if (cancel.load(std::memory_order_relaxed) || o.stop.stop_requested()) break;
                            const std::size_t c = next.fetch_add(1);
                            if (c >= chunks) break;
                            const std::size_t p0 = first + c * chunk, p1 = std::min(out.last, p0 + chunk);
                            ws.capped = 0;
                            run_chunk(ws, p0, p1, out, L.wins, L.time);
                            out.capped[c] = ws.capped;
                            out.done[c] = 1;
                            done.fetch_add(p1 - p0);
                        }
                    } catch (...) {
                        std::lock_guard lk(mu);
                        if (!failure) failure = std::current_exception();
                        cancel.store(true);
                    }
                    std::lock_guard lk(mu);
                    ++finished_threads;
                    cv.notify_all();
                });
            std::unique_lock lk(mu);
            // NOLINTNEXTLINE(bugprone-infinite-loop): the workers above count finished_threads up under mu; clang-tidy 14 does not see the lambdas' writes in the class template's instantiation
            while (finished_threads < threads) {
                cv.wait_for(lk, std::chrono::milliseconds(50));
                if (finished_threads == threads) break;
                if (cancel.load()) continue; // cancelled: wait for the workers, report nothing more
                lk.unlock();
                bool stop = o.stop.stop_requested();
                try {
                    if (o.progress && !stop)
                        stop = !o.progress(static_cast<double>(done.load()) / static_cast<double>(paths));
                } catch (...) { // stop the workers now, rethrow once they have joined
                    lk.lock();
                    if (!failure) failure = std::current_exception();
                    lk.unlock();
                    stop = true;
                }
                if (stop) cancel.store(true);
                lk.lock();
            }
        }
        if (failure) std::rethrow_exception(failure);
        out.deal_wins.assign(n, 0);
        out.deal_time_sums.assign(n, 0);
        for (const auto& L : locals)
            for (std::size_t d = 0; d < n; ++d) {
                out.deal_wins[d] += L.wins[d];
                out.deal_time_sums[d] += L.time[d];
            }
        const bool cancelled = done.load() < paths;
        out.completed = !cancelled;
        if (!cancelled && o.progress) (void)o.progress(1.0);
        return !cancelled;
    }

    [[nodiscard]] const stage_graph& graph() const noexcept { return g_; }
    [[nodiscard]] const book& deals() const noexcept { return b_; }

private:
    /// Start data of a deal, packed for the hot loop.
    struct deal_start {
        double cdf_at_age;      ///< F(a)
        double survival_at_age; ///< S(a)
        double age;             ///< a (+inf: overdue, leaves at once)
        double amount;
        std::uint32_t stage;
        std::uint32_t exact;    ///< 1: first dwell by the exact residual quantile (far tail)
    };

    /// deal_start by columns, for the AVX-512 sweep's loads (built only where it runs).
    struct deal_columns {
        std::vector<double> cdf_at_age, survival_at_age, age;
        std::vector<std::uint32_t> stage, exact;
    };

    /// The residual start data of one branch of a deal's first stage (branched stages).
    struct branch_start {
        double cdf_at_age, survival_at_age, age;
        std::uint32_t exact;
    };
    static constexpr std::uint32_t no_choice = 0xFFFFFFFFu;

    /// A deal with a probability override: it is won with probability `probability` (if
    /// its stage can win at all), and a winner follows the win-conditioned chain.
    struct override_deal {
        std::uint32_t deal;  ///< index in the book
        std::uint32_t can_win; ///< 1 if a winning outcome is reachable from its stage
        double probability;  ///< the override o
    };

    /// Per-thread scratch: the transition rows of the current path (with the shock).
    struct worker_state {
        worker_state(const basic_sim_engine& e, const run_state& r)
            : run(r), rows(e.rows_), stage_mult(e.g_.open_count(), 1.0), lmult(e.m_, 1.0), lmult_off(e.m_, 1.0),
              pi(e.pi_) {
            for (auto* v : {&lanes.lane, &lanes.stage, &lanes.w0, &lanes.w1, &lanes.w2, &lanes.w3, &lanes.c2, &lanes.c3,
                            &lanes.won_lane})
                v->assign(batch + philox_lane_padding, 0);
            lanes.time.assign(batch + philox_lane_padding, 0.0);
            lanes.won_time.assign(batch + philox_lane_padding, 0.0);
            if (r.shocked) {
                tile_rows.assign(tile, e.rows_);
                tile_lmult.assign(tile, std::vector<double>(e.m_, 1.0));
            }
        }
        const run_state& run;               ///< the run's settings
        transition_sampler rows;
        std::vector<double> stage_mult;     ///< e^{σ_i Z} of the current path per open stage
        std::vector<double> lmult, lmult_off; ///< the same per latent state; all 1 (no shock)
        std::vector<std::vector<double>> pi; ///< per open stage: the (shocked) branch shares
        std::vector<double> scratch, row;
        std::vector<std::uint8_t> fwd_scratch;
        std::vector<std::uint32_t> winners; ///< overridden deals that win in the current path
        std::uint64_t capped = 0;           ///< deal-paths stopped at max_path_visits (current work unit)
        /// Per path of a tile (shocked runs only): its rows and per-latent-state multipliers.
        std::vector<transition_sampler> tile_rows;
        std::vector<std::vector<double>> tile_lmult;
        struct {
            std::vector<std::uint32_t> lane, stage, w0, w1, w2, w3, c2, c3, won_lane;
            std::vector<double> time, won_time;
        } lanes;
    };
    /// Lanes per batch (deals, or arrivals, simulated in lock step).
    static constexpr std::size_t batch = 1024;
    /// Paths per tile (run_chunk: a batch of deals runs for each path of a tile in turn).
    static constexpr std::size_t tile = 8;

    /// Start data of every deal (F(a), S(a) by Boost.Math: the one per-deal special-function
    /// cost of a run, spread over the threads; each deal is independent, so the result does
    /// not depend on the split) and the table depth each latent state needs. A deal of a
    /// branched stage gets a choice (index = the deal's) with one weight and one start record
    /// per branch: P(branch | age) and the residual start data of that branch's dwell.
    /// The deal columns of the AVX-512 sweep, where the CPU and the model allow it.
    void prepare_columns() {
        avx512_sweep_ = all_tabulated_ && !branched_ && philox_isa_available(philox_isa::avx512);
        if (!avx512_sweep_) return;
        const std::size_t n = deals_.size();
        columns_.cdf_at_age.resize(n);
        columns_.survival_at_age.resize(n);
        columns_.age.resize(n);
        columns_.stage.resize(n);
        columns_.exact.resize(n);
        for (std::size_t d = 0; d < n; ++d) {
            const deal_start& e = deals_[d];
            columns_.cdf_at_age[d] = e.cdf_at_age;
            columns_.survival_at_age[d] = e.survival_at_age;
            columns_.age[d] = e.age;
            columns_.stage[d] = e.stage;
            columns_.exact[d] = e.exact;
        }
    }

    void prepare_deals(unsigned hw) {
        const std::size_t n = b_.size();
        deals_.resize(n);
        if (branched_) {
            // Choice j of deal d (or of a fresh entry into stage s, index n + s): weight
            // bweight_[j·W + k] = P(branch k | age), start data bstart_[j·W + k], k < W (the
            // largest branch count; zero weights pad the smaller stages, so every lane's
            // choice loop has the same trip count).
            const std::size_t m = g_.open_count();
            width_ = 1;
            for (std::size_t s = 0; s < m; ++s) width_ = std::max(width_, g_.latent_count(s));
            choice_.assign(n, no_choice);
            const auto st = b_.stages();
            for (std::size_t d = 0; d < n; ++d)
                if (g_.branched(st[d])) choice_[d] = static_cast<std::uint32_t>(d);
            bweight_.assign((n + m) * width_, 0.0);
            bstart_.assign((n + m) * width_, branch_start{0.0, 1.0, 0.0, 0});
            for (std::size_t s = 0; s < m; ++s) // fresh entries (arrivals): P(branch) = π
                if (g_.branched(s))
                    for (std::size_t k = 0; k < g_.latent_count(s); ++k)
                        bweight_[(n + s) * width_ + k] = g_.branches(s)[k].probability;
        }
        const auto parts = static_cast<unsigned>(std::min<std::size_t>(hw, n / 16384 + 1));
        std::vector<std::vector<int>> depth(parts, std::vector<int>(m_, dwell_sampler::default_upper_min_exponent));
        {
            std::vector<std::jthread> pool;
            for (unsigned t = 1; t < parts; ++t)
                pool.emplace_back([&, t] { prepare_range(n * t / parts, n * (t + 1) / parts, depth[t]); });
            prepare_range(0, n / parts, depth[0]);
        }
        for (unsigned t = 1; t < parts; ++t)
            for (std::size_t s = 0; s < m_; ++s) depth[0][s] = std::min(depth[0][s], depth[t][s]);
        build_samplers(depth[0]);
    }

    /// F(a), S(a) of dwell `dw` at age a into (cdf, surv, age, exact), as the hot loop
    /// wants them; updates the table depth `depth` the deal needs.
    static void start_data(const dwell_distribution& dw, double a, double& cdf_at_age, double& survival_at_age,
                           double& age, std::uint32_t& exact, int& depth) {
        exact = 0;
        if (a == 0.0 || dw.family() == dwell_family::exponential) {
            cdf_at_age = 0.0;
            survival_at_age = 1.0;
            age = 0.0;
            return;
        }
        age = a;
        survival_at_age = survival(dw, a);
        cdf_at_age = std::min(1.0, cdf(dw, a));
        if (!(survival_at_age > 0.0)) {
            if (dw.family() != dwell_family::fixed && dw.family() != dwell_family::empirical) {
                exact = 1; // unbounded: the exact residual (closed form, or log space) at any age
            } else {
                age = std::numeric_limits<double>::infinity(); // overdue: leaves at once
                survival_at_age = 1.0;
                cdf_at_age = 0.0;
            }
            return;
        }
        const int e = dwell_sampler::upper_exponent_for(survival_at_age);
        if (survival_at_age < 0x1p-960) exact = 1;
        else depth = std::min(depth, e);
    }

    void prepare_range(std::size_t d0, std::size_t d1, std::vector<int>& depth) {
        const auto st = b_.stages();
        const auto am = b_.amounts();
        const auto ag = b_.ages();
        std::vector<double> w;
        for (std::size_t d = d0; d < d1; ++d) {
            const std::size_t s = st[d];
            deal_start& x = deals_[d];
            x.stage = static_cast<std::uint32_t>(g_.latent_first(s));
            x.amount = am[d];
            if (branched_ && g_.branched(s)) {
                // P(branch k | T > a) and each branch's residual start data.
                const std::size_t count = g_.latent_count(s), first = g_.latent_first(s);
                w.resize(count);
                (void)g_.branch_weights(s, ag[d], w);
                for (std::size_t k = 0; k < count; ++k) {
                    branch_start& r = bstart_[d * width_ + k];
                    bweight_[d * width_ + k] = w[k];
                    int e = dwell_sampler::default_upper_min_exponent;
                    start_data(lg_.dwell(first + k), ag[d], r.cdf_at_age, r.survival_at_age, r.age, r.exact, e);
                    if (w[k] > 0.0) depth[first + k] = std::min(depth[first + k], e);
                }
                const branch_start& r0 = bstart_[d * width_];
                x.cdf_at_age = r0.cdf_at_age;
                x.survival_at_age = r0.survival_at_age;
                x.age = r0.age;
                x.exact = r0.exact;
                continue;
            }
            start_data(lg_.dwell(x.stage), ag[d], x.cdf_at_age, x.survival_at_age, x.age, x.exact, depth[x.stage]);
        }
    }

    void build_samplers(const std::vector<int>& depth) {
        // One table per distinct dwell (the stalled branches of a branched model often share
        // one cleanup distribution): fewer tables, a smaller cache footprint. A shared table
        // is as deep as its deepest user; its cells do not depend on the depth.
        std::vector<int> need(m_);
        sampler_of_.assign(m_, 0);
        std::vector<std::size_t> owner; // state that first uses each table
        for (std::size_t s = 0; s < m_; ++s) {
            std::size_t t = 0;
            while (t < owner.size() && !(lg_.dwell(owner[t]) == lg_.dwell(s))) ++t;
            if (t == owner.size()) {
                owner.push_back(s);
                need[t] = depth[s];
            }
            need[t] = std::min(need[t], depth[s]);
            sampler_of_[s] = t;
        }
        samplers_.reserve(owner.size());
        for (std::size_t t = 0; t < owner.size(); ++t) samplers_.emplace_back(lg_.dwell(owner[t]), need[t]);
        all_tabulated_ = true;
        for (std::size_t s = 0; s < m_; ++s) {
            views_.push_back(samplers_[sampler_of_[s]].view());
            all_tabulated_ = all_tabulated_ && samplers_[sampler_of_[s]].tabulated();
        }
    }

    /// Per latent state of a branched stage s: 1 if its branch is a forward one (to a winning
    /// outcome or to a later open stage than s), the branches the shock shifts; and the base
    /// branch shares π of every branched stage.
    void prepare_branch_flags() {
        std::size_t pad = 1;
        for (std::size_t s = 0; s < g_.open_count(); ++s) pad = std::max(pad, g_.latent_count(s));
        forward_branch_.assign(m_ + pad, 0.0); // padded: the choice loop reads W entries from a stage's first
        pi_.assign(g_.open_count(), {});
        for (std::size_t s = 0; s < g_.open_count(); ++s) {
            if (!g_.branched(s)) continue;
            for (std::size_t k = 0; k < g_.latent_count(s); ++k) {
                const std::size_t j = g_.branch_target(s, k);
                forward_branch_[g_.latent_first(s) + k] = (g_.is_outcome(j) ? g_.is_win(j) : j > s) ? 1.0 : 0.0;
                pi_[s].push_back(g_.branches(s)[k].probability);
            }
        }
    }

    /// The shock's data. Classic stages: the forward-edge mask and probabilities of each
    /// row's entries (edges to a winning outcome or to a later open stage). Branched stages:
    /// π and the forward branches (prepare_branch_flags). Per latent row (branched graphs):
    /// where each entry comes from: the entry of the stage's row and the branch of the
    /// target stage it enters (or none).
    void prepare_shock() {
        const std::size_t m = g_.open_count();
        forward_.resize(m);
        base_probs_.resize(m);
        for (std::size_t i = 0; i < m; ++i) {
            if (g_.branched(i)) continue;
            for (std::size_t j = 0; j < g_.size(); ++j) {
                const double p = g_.transition(i, j);
                if (!(p > 0.0)) continue;
                forward_[i].push_back((j >= m ? g_.is_win(j) : j > i) ? 1 : 0);
                base_probs_[i].push_back(p);
            }
        }
        if (!branched_) return;
        // Latent row l: entries in rows_.entries(l) order, each from (stage-row entry, branch).
        shock_src_.assign(m_, {});
        for (std::size_t l = 0; l < m_; ++l) {
            const std::size_t i = g_.stage_of_latent(l);
            // The stage-level target of a latent column, and the branch of it (or -1).
            auto source = [&](std::uint32_t col) {
                std::size_t j;
                std::int32_t k = -1;
                if (col >= m_) {
                    j = m + (col - m_);
                } else {
                    j = g_.stage_of_latent(col);
                    if (g_.branched(j)) k = static_cast<std::int32_t>(col - g_.latent_first(j));
                }
                return std::pair{j, k};
            };
            for (std::uint32_t col : rows_.entries(l)) {
                const auto [j, k] = source(col);
                std::int32_t e = -1; // entry of stage i's classic row
                if (!g_.branched(i)) {
                    e = 0;
                    for (std::size_t jj = 0; jj < j; ++jj) e += g_.transition(i, jj) > 0.0 ? 1 : 0;
                }
                shock_src_[l].push_back({e, k, static_cast<std::uint32_t>(j)});
            }
        }
    }

    /// The shifted log-odds of forward conversion: f′ = f e^{σZ} / (1 − f + f e^{σZ}); the
    /// forward entries scaled by f′/f, the others by (1 − f′)/(1 − f).
    static void shock_row(std::span<const double> p, std::span<const std::uint8_t> forward, double mult,
                          std::vector<double>& out) {
        double fwd = 0.0;
        for (std::size_t e = 0; e < p.size(); ++e)
            if (forward[e]) fwd += p[e];
        out.assign(p.begin(), p.end());
        if (fwd > 0.0 && fwd < 1.0) {
            const double odds = fwd / (1.0 - fwd) * mult;
            const double nf = odds / (1.0 + odds);
            for (std::size_t e = 0; e < p.size(); ++e)
                out[e] = p[e] * (forward[e] ? nf / fwd : (1.0 - nf) / (1.0 - fwd));
        }
    }

    /// Probability overrides (book::probability_overrides(), NaN = none). Overridden deals
    /// leave the plain batches (`plain_` lists the others, in book order). Winners follow
    /// the Doob h-transform of the jump chain by w = P(win | stage): from open i with
    /// w_i > 0, P̃(i→j) = P(i→j) w_j / w_i for open j, P(i→k) / w_i for a winning outcome k,
    /// 0 for a losing one (the dwells are unchanged: in a semi-Markov model the next stage
    /// is independent of the dwell): detail::for_each_win_conditioned_edge, each row then
    /// renormalised by its sum. w_i is set to exactly 0 where no winning outcome is reachable
    /// in the graph (stage_graph::can_reach), so numerical noise of the solve never makes a
    /// stage winnable.
    void prepare_overrides() {
        const auto ov = b_.probability_overrides();
        const std::size_t n = b_.size();
        std::size_t count = 0;
        for (std::size_t d = 0; d < n; ++d) count += std::isnan(ov[d]) ? 0 : 1;
        if (count == 0) return;
        if (n > 0xFFFFFFFFull)
            throw argument_error(detail::message("simulate: a book with probability overrides must have < 2^32 deals, got ", n));
        // Latent states that can reach a winning outcome.
        const stage_graph& lg = lg_;
        const std::size_t size = lg.size();
        const std::vector<char> reach = lg.can_reach([&lg](std::size_t k) { return lg.is_win(k); });
        const Eigen::VectorXd wv = analyse(lg).win_probability;
        std::vector<double> w(size, 0.0);
        for (std::size_t i = 0; i < m_; ++i)
            w[i] = reach[i] ? std::clamp(wv(static_cast<Eigen::Index>(i)), 0.0, 1.0) : 0.0;
        for (std::size_t s = m_; s < size; ++s) w[s] = lg.is_win(s) ? 1.0 : 0.0;
        std::vector<std::vector<double>> rows(m_, std::vector<double>(size, 0.0));
        std::vector<char> winnable(m_, 0);
        detail::for_each_win_conditioned_edge(lg, std::span<const double>(w.data(), m_),
                                              [&rows](std::size_t i, std::size_t j, double v) { rows[i][j] = v; });
        for (std::size_t i = 0; i < m_; ++i) {
            double sum = 0.0;
            for (double x : rows[i]) sum += x;
            if (sum > 0.0) {
                for (double& x : rows[i]) x /= sum; // renormalised: w_i is the solve's, Σ_j P(i→j) w_j up to rounding
                winnable[i] = 1;
            } else {
                for (std::size_t j = 0; j < size; ++j) rows[i][j] = lg.transition(i, j); // never used
            }
        }
        win_rows_ = transition_sampler(rows);
        const auto st = b_.stages();
        overrides_.reserve(count);
        plain_.reserve(n - count);
        for (std::size_t d = 0; d < n; ++d) {
            if (std::isnan(ov[d])) {
                plain_.push_back(static_cast<std::uint32_t>(d));
                continue;
            }
            std::uint32_t can_win = static_cast<unsigned char>(winnable[deals_[d].stage]); // 0 or 1
            if (choice_.size() > d && choice_[d] != no_choice) {
                // A winner of a branched stage leaves by branch k with P(k | age, win) ∝
                // P(k | age) · w_k; it can win if any branch of positive weight can. Its
                // choice is not shocked (run_overrides runs it with e^{σZ} = 1).
                const std::size_t first = deals_[d].stage;
                double total = 0.0;
                for (std::size_t k = 0; k < g_.latent_count(st[d]); ++k) {
                    double& x = bweight_[d * width_ + k];
                    x *= winnable[first + k] ? w[first + k] : 0.0;
                    total += x;
                }
                can_win = total > 0.0 ? 1 : 0;
            }
            overrides_.push_back({static_cast<std::uint32_t>(d), can_win, ov[d]});
        }
    }

    /// A batch of deal-paths advanced in lock step, one stage visit per sweep, with the
    /// still-running lanes compacted after each sweep: every lane of sweep k has made k
    /// visits, so the Philox block refills (every second visit) need no per-lane branch and
    /// the hot loop has no data-dependent branch: a lane's end and its win are recorded
    /// with arithmetic. `start(i)` gives lane i's start; `on_win(i, t)` is called after the
    /// batch for every lane won at a time t <= horizon, in the order the wins happened
    /// (sweep by sweep, lane order within a sweep): fixed by the random numbers alone.
    struct lane_start {
        std::uint32_t stage;
        double cdf_at_age, survival_at_age, age, t0;
        bool exact;
        std::uint32_t choice = no_choice; ///< choice index of a branched first stage, else no_choice
    };
    /// `rows` are the transition rows to follow; `item(i)` is lane i's Philox item (its
    /// deal index or arrival number).
    template <class Item, class Start, class OnWin>
    void run_batch(worker_state& ws, const transition_sampler& rows, std::size_t lanes, std::uint32_t path,
                   std::uint32_t domain, Item&& item, Start&& start, OnWin&& on_win) const {
        const bool narrow = rows.width() == 4;
        const transition_sampler::row_view v = rows.view();
        if (branched_) {
            if (all_tabulated_ && narrow) run_batch_impl<true, 4, true>(ws, v, lanes, path, domain, item, start, on_win);
            else if (all_tabulated_) run_batch_impl<true, 0, true>(ws, v, lanes, path, domain, item, start, on_win);
            else if (narrow) run_batch_impl<false, 4, true>(ws, v, lanes, path, domain, item, start, on_win);
            else run_batch_impl<false, 0, true>(ws, v, lanes, path, domain, item, start, on_win);
            return;
        }
        if (all_tabulated_ && narrow) run_batch_impl<true, 4, false>(ws, v, lanes, path, domain, item, start, on_win);
        else if (all_tabulated_) run_batch_impl<true, 0, false>(ws, v, lanes, path, domain, item, start, on_win);
        else if (narrow) run_batch_impl<false, 4, false>(ws, v, lanes, path, domain, item, start, on_win);
        else run_batch_impl<false, 0, false>(ws, v, lanes, path, domain, item, start, on_win);
    }

    /// The first-visit branch choice of a lane that starts in a branched stage, by inversion
    /// of the word k (the visit-0 transition word): with weights w_j = P(branch j | age) ×
    /// (e^{σZ} for a forward branch, 1 otherwise) and u = (k + ½)2⁻³² · Σ w, branch j is the
    /// first whose cumulative weight C_j exceeds u (no data-dependent branch). The remainder
    /// (u − C_{j−1}) / (C_j − C_{j−1}), uniform on [0, 1) and independent of j, becomes the
    /// word k of the first transition (scaled to 32 bits): it is needed only when the branch
    /// leads to a branched stage. Replaces the lane's stage and residual start data.
    /// The shocked cumulative weights are C_j = A_j + (e^{σZ} − 1)·F_j with A_j the
    /// cumulative weights and F_j the cumulative forward weights of the choice record, both
    /// precomputed: each C_j is one multiply-add, independent of the others (no running sum),
    /// and unshocked (e^{σZ} = 1) C_j = A_j exactly.
    PIPECAST_HOT_INLINE void choose_branch(lane_start& x, std::uint32_t& k, double mult) const noexcept {
        const std::size_t width = width_;
        const double* cw = choice_store_.data() + choice_offset_ + x.choice * choice_stride_; // W cumulative
        const double* cf = cw + width;                                                        // W cumulative forward
        const double up = mult - 1.0;
        const double u = uniform_open(k) * (cw[width - 1] + up * cf[width - 1]);
        double lo = 0.0;
        std::uint32_t pick = 0;
        for (std::size_t j = 0; j + 1 < width; ++j) { // zero-weight padding is never passed
            const double c = cw[j] + up * cf[j];
            const bool past = u >= c;
            pick += past ? 1u : 0u;
            lo = past ? c : lo;
        }
        const double w = cw[pick] + up * cf[pick] - lo; // > 0: lo <= u < C_pick
        const branch_start& b = bstart_[x.choice * width + pick];
        k = static_cast<std::uint32_t>(std::min((u - lo) / w * 0x1p32, 4294967295.0));
        x.stage += pick;
        x.cdf_at_age = b.cdf_at_age;
        x.survival_at_age = b.survival_at_age;
        x.age = b.age;
        x.exact = b.exact != 0;
    }

    /// The state code of a lane's next stage s at time t: code[s] if t <= h, else 0 (out of
    /// the horizon), by arithmetic: t <= h is data-dependent (unpredictable on a book of old
    /// deals, many near the horizon), so no branch.
    PIPECAST_HOT_INLINE [[nodiscard]] static std::uint32_t lane_code(std::uint8_t code, double t, double h) noexcept {
        const auto in = static_cast<std::uint32_t>(t <= h);
        return code & (in | (in << 1));
    }

    /// The choice records (after prepare_overrides, which win-conditions a winner's
    /// weights): per choice, the W cumulative weights A_j = w_0 + ... + w_j then the W
    /// cumulative forward weights F_j (the same sum over the forward branches only), both
    /// summed left to right; one 64-byte line a record for W <= 4.
    void prepare_choice_records() {
        const std::size_t width = width_, count = bweight_.size() / width, n = b_.size();
        const auto st = b_.stages();
        choice_stride_ = (2 * width + 7) / 8 * 8;
        choice_store_.assign(count * choice_stride_ + 8, 0.0);
        const auto addr = reinterpret_cast<std::uintptr_t>(choice_store_.data());
        choice_offset_ = ((64 - addr % 64) % 64) / sizeof(double);
        for (std::size_t j = 0; j < count; ++j) {
            // Record j is deal j's (j < n) or a fresh entry into open stage j − n.
            const double* fw = forward_branch_.data() + g_.latent_first(j < n ? st[j] : j - n);
            double* r = choice_store_.data() + choice_offset_ + j * choice_stride_;
            double a = 0.0, f = 0.0;
            for (std::size_t k = 0; k < width; ++k) {
                const double w = bweight_[j * width + k];
                a += w;
                f += w * fw[k];
                r[k] = a;
                r[width + k] = f;
            }
        }
        bweight_.clear();
        bweight_.shrink_to_fit();
    }

    /// Dwell samplers: the raw tables when every stage is tabulated, else the samplers.
    template <bool Tabulated>
    PIPECAST_HOT_INLINE [[nodiscard]] double fresh(std::uint32_t s, std::uint32_t k) const noexcept {
        if constexpr (Tabulated) return views_[s].sample(k);
        else return samplers_[sampler_of_[s]].sample(k);
    }
    template <bool Tabulated>
    PIPECAST_HOT_INLINE [[nodiscard]] double residual_total(std::uint32_t s, std::uint32_t k, double f0, double s0) const noexcept {
        if constexpr (Tabulated) return views_[s].total_time(k, f0, s0);
        else return samplers_[sampler_of_[s]].total_time(k, f0, s0);
    }

    template <bool Tabulated, std::size_t Width, bool Branched, class Item, class Start, class OnWin>
    void run_batch_impl(worker_state& ws, const transition_sampler::row_view rows, std::size_t lanes,
                        std::uint32_t path, std::uint32_t domain, Item& item_of, Start& start, OnWin& on_win) const {
        auto& L = ws.lanes;
        const double h = ws.run.horizon;
        const std::uint32_t max_visits = ws.run.max_visits;
        const philox_isa isa = ws.run.isa;
        const std::uint8_t* code = code_.data(); // bit 0: still open, bit 1: won
        std::uint32_t* won_lane = L.won_lane.data();
        double* won_time = L.won_time.data();
        std::size_t nw = 0; // wins are recorded without a branch, booked after the batch
        std::uint32_t* lane = L.lane.data();
        std::uint32_t* stage = L.stage.data();
        double* time = L.time.data();
        std::uint32_t *w0 = L.w0.data(), *w1 = L.w1.data(), *w2 = L.w2.data(), *w3 = L.w3.data();
        std::uint32_t *c2 = L.c2.data(), *c3 = L.c3.data();
        const philox_schedule& key = ws.run.key;
        auto draw = [&](std::uint32_t block, std::size_t count) {
            philox4x32_10_lanes(key, block, path, c2, c3, w0, w1, w2, w3, count, isa);
        };
        // Visit 0: the residual dwell of the first stage.
        for (std::size_t i = 0; i < lanes; ++i) {
            const std::uint64_t item = item_of(i);
            c2[i] = static_cast<std::uint32_t>(item);
            c3[i] = sim_domain_word(domain, item);
        }
        draw(0, lanes);
        std::size_t n = 0;
        // The rest of visit 0 of lane i from its (latent) start stage and data.
        auto first_visit = [&](std::size_t i, std::uint32_t s0, std::uint32_t k1, double t0, double f0, double sv0,
                               double age, bool exact) {
            double dwell;
            if (exact) [[unlikely]]
                dwell = pipecast::quantile(residual(lg_.dwell(s0), age), uniform_open(w0[i]));
            else
                dwell = std::max(residual_total<Tabulated>(s0, w0[i], f0, sv0) - age, 0.0);
            const double t = t0 + dwell;
            const std::uint32_t s = rows.template next<Width>(s0, k1);
            const std::uint32_t c = lane_code(code[s], t, h);
            won_lane[nw] = static_cast<std::uint32_t>(i);
            won_time[nw] = t;
            nw += c >> 1;
            lane[n] = static_cast<std::uint32_t>(i);
            stage[n] = s;
            time[n] = t;
            w2[n] = w2[i];
            w3[n] = w3[i];
            n += c & 1u;
        };
        const double* lmult = ws.lmult.data(); // e^{σ_s Z} by latent state (1: no shock)
        for (std::size_t i = 0; i < lanes; ++i) {
            lane_start x = start(i);
            std::uint32_t k1 = w1[i];
            if constexpr (Branched)
                if (x.choice != no_choice) choose_branch(x, k1, lmult[x.stage]);
            first_visit(i, x.stage, k1, x.t0, x.cdf_at_age, x.survival_at_age, x.age, x.exact);
        }
        // Later visits: fresh dwells; a new block every second visit. A lane still open after
        // max_path_visits visits stops (not won) and is counted.
        for (std::uint32_t visit = 1; n > 0; ++visit) {
            if (visit >= max_visits) [[unlikely]] {
                ws.capped += n;
                break;
            }
            std::size_t k = 0;
            if (visit & 1u) { // the second half of the last block
                for (std::size_t j = 0; j < n; ++j) {
                    const std::uint32_t s0 = stage[j];
                    const double t = time[j] + fresh<Tabulated>(s0, w2[j]);
                    const std::uint32_t s = rows.template next<Width>(s0, w3[j]);
                    const std::uint32_t c = lane_code(code[s], t, h);
                    won_lane[nw] = lane[j];
                    won_time[nw] = t;
                    nw += c >> 1;
                    lane[k] = lane[j];
                    stage[k] = s;
                    time[k] = t;
                    k += c & 1u;
                }
            } else { // a new block: its first half now, its second half kept
                for (std::size_t j = 0; j < n; ++j) {
                    const std::uint64_t item = item_of(lane[j]);
                    c2[j] = static_cast<std::uint32_t>(item);
                    c3[j] = sim_domain_word(domain, item);
                }
                draw(visit / 2, n);
                for (std::size_t j = 0; j < n; ++j) {
                    const std::uint32_t s0 = stage[j];
                    const double t = time[j] + fresh<Tabulated>(s0, w0[j]);
                    const std::uint32_t s = rows.template next<Width>(s0, w1[j]);
                    const std::uint32_t c = lane_code(code[s], t, h);
                    won_lane[nw] = lane[j];
                    won_time[nw] = t;
                    nw += c >> 1;
                    lane[k] = lane[j];
                    stage[k] = s;
                    time[k] = t;
                    w2[k] = w2[j];
                    w3[k] = w3[j];
                    k += c & 1u;
                }
            }
            n = k;
        }
        for (std::size_t w = 0; w < nw; ++w) on_win(won_lane[w], won_time[w]);
    }

#if defined(PIPECAST_PHILOX_AVX2)
    // -----------------------------------------------------------------------------------
    // The AVX-512 lane sweep (philox_isa::avx512): run_batch_impl's sweeps for a batch of
    // plain book deals of a tabulated, unbranched model, eight lanes a step. Each lane's
    // arithmetic is the scalar code's, operation for operation (no fused multiply-add:
    // products and sums by the *_round_pd intrinsics, which the compiler does not
    // contract; max/min with the scalar std::max/min's operand order, so NaNs and ties
    // resolve alike), so the results are bit-identical to the scalar sweep. Table reads
    // are masked gathers; the still-open lanes and the wins are packed in order by
    // compress (the register form: the memory form is slow on some AMD CPUs) and a full
    // store, which may write up to 8 entries past the count (the arrays are padded).
    // Lanes that leave the common path (the exact residual of a far-tail first dwell, a
    // transition row whose guide bucket needs a search) are finished by the scalar code.
    // -----------------------------------------------------------------------------------
PIPECAST_AVX512_WARNINGS_OFF
    struct avx512_sweep {
        const dwell_sampler::table_view* views = nullptr;
        transition_sampler::row_view rows;
        const std::uint32_t* code = nullptr;
        double horizon = 0.0;
        std::uint32_t *lane = nullptr, *stage = nullptr, *w0 = nullptr, *w1 = nullptr, *w2 = nullptr, *w3 = nullptr,
                      *won_lane = nullptr;
        double *time = nullptr, *won_time = nullptr;
        std::size_t nw = 0; ///< wins recorded so far in this batch
        // With at most 8 open stages (and 16 stages in all), the per-stage fields are held in
        // registers and picked by a permutation instead of a gather.
        bool small_views = false, small_code = false;
        alignas(64) std::int64_t table[8] = {}, bias0[8] = {}, bias1[8] = {};
        alignas(64) double floor[8] = {};
        alignas(64) std::uint32_t code16[16] = {};
        alignas(64) double zero_cell[4] = {}; ///< read by the lanes that are not live
    };
    static_assert(sizeof(dwell_sampler::table_view) == 32, "table_view: 4 words (table, bias[2], upper_floor)");

    static constexpr int avx512_round = _MM_FROUND_CUR_DIRECTION;
    /// u01(k) = k·2⁻³² + 2⁻³³, exact for a 32-bit k in either order.
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __m512d avx512_uniform(__m256i k) noexcept {
        return _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepu32_pd(k), _mm512_set1_pd(0x1p-32)), _mm512_set1_pd(0x1p-33));
    }
    /// Two table cells (4 doubles each) in one register. (A function, not a lambda: a lambda
    /// would not inherit the target attribute.)
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __m512d
    avx512_two_cells(const double* lo, const double* hi) noexcept {
        return _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(lo)), _mm256_loadu_pd(hi), 1);
    }
    /// dwell_sampler::lookup for 8 lanes: table addresses `tbl`, biases `bias`, probabilities
    /// `x`. Each lane's cell (4 coefficients, 32 bytes) is one 256-bit load; the 8 cells are
    /// transposed to 4 registers of one coefficient each (fewer loads than 4 gathers).
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __m512d
    avx512_lookup(const avx512_sweep& x, __mmask8 live, __m512i tbl, __m512i bias, __m512d p) noexcept {
        const __m512i bits = _mm512_castpd_si512(p);
        const __m512i cell = _mm512_sub_epi64(_mm512_srli_epi64(bits, dwell_sampler::frac_bits), bias);
        // frac < 2^48 converts exactly; the scale is a power of two: exact.
        const __m512d f = _mm512_mul_pd(
            _mm512_cvtepu64_pd(_mm512_and_si512(bits, _mm512_set1_epi64(static_cast<long long>(dwell_sampler::frac_mask)))),
            _mm512_set1_pd(dwell_sampler::frac_scale));
        const __m512i at = _mm512_mask_add_epi64(_mm512_set1_epi64(reinterpret_cast<long long>(x.zero_cell)), live, tbl,
                                                 _mm512_slli_epi64(cell, 5)); // 4 doubles a cell
        alignas(64) const double* a[8];
        _mm512_store_si512(a, at);
        const __m512d z01 = avx512_two_cells(a[0], a[1]), z23 = avx512_two_cells(a[2], a[3]);
        const __m512d z45 = avx512_two_cells(a[4], a[5]), z67 = avx512_two_cells(a[6], a[7]);
        // Lanes 0–3's coefficients 0 and 1, then 2 and 3 (from z01, z23); lanes 4–7 alike.
        const __m512i i01 = _mm512_setr_epi64(0, 4, 8, 12, 1, 5, 9, 13), i23 = _mm512_setr_epi64(2, 6, 10, 14, 3, 7, 11, 15);
        const __m512d lo01 = _mm512_permutex2var_pd(z01, i01, z23), hi01 = _mm512_permutex2var_pd(z45, i01, z67);
        const __m512d lo23 = _mm512_permutex2var_pd(z01, i23, z23), hi23 = _mm512_permutex2var_pd(z45, i23, z67);
        const __m512i first = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), second = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
        const __m512d c0 = _mm512_permutex2var_pd(lo01, first, hi01), c1 = _mm512_permutex2var_pd(lo01, second, hi01);
        const __m512d c2 = _mm512_permutex2var_pd(lo23, first, hi23), c3 = _mm512_permutex2var_pd(lo23, second, hi23);
        // c0 + f (c1 + f (c2 + f c3)), rounded after every operation as in the scalar code.
        __m512d r = _mm512_mul_round_pd(f, c3, avx512_round);
        r = _mm512_add_round_pd(c2, r, avx512_round);
        r = _mm512_mul_round_pd(f, r, avx512_round);
        r = _mm512_add_round_pd(c1, r, avx512_round);
        r = _mm512_mul_round_pd(f, r, avx512_round);
        return _mm512_add_round_pd(c0, r, avx512_round);
    }
    /// A per-stage field of the table views of stages `s`: `field` 0 table, 1–2 bias, 3
    /// upper_floor; from registers (`reg`: the field's 8 values) when there are few stages.
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __m512i
    avx512_view_field(const avx512_sweep& x, __mmask8 live, __m256i s, int field, const void* reg) noexcept {
        if (x.small_views) return _mm512_permutexvar_epi64(_mm512_cvtepu32_epi64(s), _mm512_load_si512(reg));
        const __m256i idx = _mm256_add_epi32(_mm256_slli_epi32(s, 2), _mm256_set1_epi32(field));
        return _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), live, idx, x.views, 8);
    }
    /// The bias of tail `upper` (0 or 1 per lane) of stages `s`.
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __m512i
    avx512_bias(const avx512_sweep& x, __mmask8 live, __m256i s, __mmask8 upper) noexcept {
        if (x.small_views) {
            const __m512i i = _mm512_cvtepu32_epi64(s);
            return _mm512_mask_blend_epi64(upper, _mm512_permutexvar_epi64(i, _mm512_load_si512(x.bias0)),
                                           _mm512_permutexvar_epi64(i, _mm512_load_si512(x.bias1)));
        }
        const __m256i lower = _mm256_add_epi32(_mm256_slli_epi32(s, 2), _mm256_set1_epi32(1)); // field 1: bias[0]
        const __m256i idx = _mm256_mask_add_epi32(lower, upper, lower, _mm256_set1_epi32(1));
        return _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), live, idx, x.views, 8);
    }
    /// The next stages (transition_sampler::row_view::next) of lanes in stages `s` with
    /// words `k`; buckets that need a search are searched by the scalar code.
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __m256i
    avx512_next(__mmask8 live, const transition_sampler::row_view& rows, __m256i s, __m256i k) noexcept {
        const __m256i bucket = _mm256_or_si256(_mm256_slli_epi32(s, 8), _mm256_srli_epi32(k, 24));
        const __m256i g = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), live, bucket, rows.guide, 4);
        const __mmask8 search = _mm256_mask_cmplt_epi32_mask(live, g, _mm256_setzero_si256());
        if (search == 0) [[likely]]
            return g;
        alignas(32) std::uint32_t gs[8], ss[8], ks[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(gs), g);
        _mm256_store_si256(reinterpret_cast<__m256i*>(ss), s);
        _mm256_store_si256(reinterpret_cast<__m256i*>(ks), k);
        for (unsigned j = 0; j < 8; ++j)
            if ((search >> j) & 1u) gs[j] = rows.search(ss[j], ks[j]);
        return _mm256_load_si256(reinterpret_cast<const __m256i*>(gs));
    }
    /// Books the 8 lanes `lanes` (mask `live`) that moved to stages `s` at times `t`: the
    /// won ones into the win list, the still-open ones packed at `n` (with their words `k2`,
    /// `k3` for the next visit when `Carry`). Returns the new count of open lanes.
    template <bool Carry>
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline std::size_t
    avx512_book(avx512_sweep& x, __mmask8 live, __m256i lanes, __m256i s, __m512d t, __m256i k2, __m256i k3,
                std::size_t n) noexcept {
        const __m256i code =
            x.small_code ? _mm512_castsi512_si256(_mm512_permutexvar_epi32(_mm512_castsi256_si512(s), _mm512_load_si512(x.code16)))
                         : _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), live, s, x.code, 4);
        const __mmask8 in = _mm512_mask_cmp_pd_mask(live, t, _mm512_set1_pd(x.horizon), _CMP_LE_OQ);
        const __mmask8 won = _mm256_mask_test_epi32_mask(in, code, _mm256_set1_epi32(2));
        const __mmask8 open = _mm256_mask_test_epi32_mask(in, code, _mm256_set1_epi32(1));
        if (won != 0) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.won_lane + x.nw), _mm256_maskz_compress_epi32(won, lanes));
            _mm512_storeu_pd(x.won_time + x.nw, _mm512_maskz_compress_pd(won, t));
            x.nw += static_cast<std::size_t>(__builtin_popcount(won));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.lane + n), _mm256_maskz_compress_epi32(open, lanes));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.stage + n), _mm256_maskz_compress_epi32(open, s));
        _mm512_storeu_pd(x.time + n, _mm512_maskz_compress_pd(open, t));
        if constexpr (Carry) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.w2 + n), _mm256_maskz_compress_epi32(open, k2));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.w3 + n), _mm256_maskz_compress_epi32(open, k3));
        }
        return n + static_cast<std::size_t>(__builtin_popcount(open));
    }
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline __mmask8 avx512_live(std::size_t left) noexcept {
        return left >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << left) - 1u);
    }

    /// Eight lanes after a step: their lane numbers, next stages, times and carried words.
    struct avx512_step {
        __mmask8 live;
        __m256i lane, stage, k2, k3;
        __m512d time;
    };
    /// Visit 0 of lanes i..i+7 (deal d0 + i in lane i): the residual first dwell and the first
    /// transition from words w0, w1; w2, w3 carried. Not noexcept: a lane far in its tail takes
    /// the exact residual quantile, which may throw as in the scalar first visit (clang-tidy's
    /// bugprone-exception-escape), and the exception reaches the caller as there.
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] inline avx512_step
    avx512_first_step(const avx512_sweep& x, std::size_t d0, std::size_t i, std::size_t lanes) const {
        const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
        const deal_columns& dc = columns_;
        const __mmask8 live = avx512_live(lanes - i);
        const std::size_t d = d0 + i;
        const __m256i lane = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m512d f0 = _mm512_maskz_loadu_pd(live, dc.cdf_at_age.data() + d);
        const __m512d s0 = _mm512_maskz_loadu_pd(live, dc.survival_at_age.data() + d);
        const __m512d age = _mm512_maskz_loadu_pd(live, dc.age.data() + d);
        const __m256i st = _mm256_maskz_loadu_epi32(live, dc.stage.data() + d);
        const __mmask8 far =
            _mm256_mask_test_epi32_mask(live, _mm256_maskz_loadu_epi32(live, dc.exact.data() + d), _mm256_set1_epi32(1));
        const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.w0 + i));
        const __m256i k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.w1 + i));
        // dwell_sampler::table_view::total_time
        const __m512d v = avx512_uniform(k0);
        const __m512d floor = _mm512_castsi512_pd(avx512_view_field(x, live, st, 3, x.floor));
        const __m512d p = _mm512_max_pd(floor, _mm512_mul_round_pd(s0, _mm512_sub_pd(one, v), avx512_round));
        const __m512d q =
            _mm512_min_pd(half, _mm512_add_round_pd(f0, _mm512_mul_round_pd(s0, v, avx512_round), avx512_round));
        const __mmask8 up = _mm512_cmp_pd_mask(p, half, _CMP_LE_OQ);
        const __m512d xb = _mm512_mask_blend_pd(up, q, p);
        const __m512i bias = avx512_bias(x, live, st, up);
        const __m512i tbl = avx512_view_field(x, live, st, 0, x.table);
        __m512d t = _mm512_max_pd(zero, _mm512_sub_round_pd(avx512_lookup(x, live, tbl, bias, xb), age, avx512_round));
        if (far != 0) [[unlikely]] { // the exact residual quantile, as the scalar first visit
            alignas(64) double ts[8];
            _mm512_store_pd(ts, t);
            for (unsigned j = 0; j < 8; ++j)
                if ((far >> j) & 1u) {
                    const deal_start& e = deals_[d + j];
                    ts[j] = 0.0 + pipecast::quantile(residual(lg_.dwell(e.stage), e.age), uniform_open(x.w0[i + j]));
                }
            t = _mm512_load_pd(ts);
        }
        return {live, lane, avx512_next(live, x.rows, st, k1),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.w2 + i)),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.w3 + i)), t};
    }
    /// Visit 0 of lanes [0, lanes), sixteen a step (two independent halves, booked in order:
    /// the second half's loads come before the first half's packed stores, which never
    /// reach past lane i + 8). Returns the open lanes.
    [[gnu::target(PIPECAST_AVX512_TARGET)]] std::size_t avx512_first_visit(avx512_sweep& sweep, std::size_t d0,
                                                                           std::size_t lanes) const {
        avx512_sweep x = sweep; // a local copy: the stores through its pointers cannot alias it
        std::size_t n = 0;
        std::size_t i = 0;
        for (; i + 8 < lanes; i += 16) {
            const avx512_step a = avx512_first_step(x, d0, i, lanes);
            const avx512_step b = avx512_first_step(x, d0, i + 8, lanes);
            n = avx512_book<true>(x, a.live, a.lane, a.stage, a.time, a.k2, a.k3, n);
            n = avx512_book<true>(x, b.live, b.lane, b.stage, b.time, b.k2, b.k3, n);
        }
        if (i < lanes) {
            const avx512_step a = avx512_first_step(x, d0, i, lanes);
            n = avx512_book<true>(x, a.live, a.lane, a.stage, a.time, a.k2, a.k3, n);
        }
        sweep.nw = x.nw;
        return n;
    }

    /// A later visit of the open lanes j..j+7: a fresh dwell from words `kd` and the next
    /// transition from words `kn` (w2, w3 read for the carry).
    [[gnu::target(PIPECAST_AVX512_TARGET), gnu::always_inline]] static inline avx512_step
    avx512_visit_step(const avx512_sweep& x, std::size_t j, std::size_t n, const std::uint32_t* kd,
                      const std::uint32_t* kn) noexcept {
        const __mmask8 live = avx512_live(n - j);
        const __m256i st = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.stage + j));
        const __m512d t0 = _mm512_loadu_pd(x.time + j);
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kd + j));
        // dwell_sampler::table_view::sample: the tail by the top bit, v or 1 − v exactly.
        const __mmask8 upper = _mm256_movepi32_mask(w);
        const __m256i kk = _mm256_xor_si256(w, _mm256_srai_epi32(w, 31));
        const __m512i bias = avx512_bias(x, live, st, upper);
        const __m512i tbl = avx512_view_field(x, live, st, 0, x.table);
        const __m512d t = _mm512_add_round_pd(t0, avx512_lookup(x, live, tbl, bias, avx512_uniform(kk)), avx512_round);
        return {live, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.lane + j)),
                avx512_next(live, x.rows, st, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kn + j))),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.w2 + j)),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.w3 + j)), t};
    }
    /// A later visit of the open lanes [0, n), sixteen a step as in avx512_first_visit (the
    /// packed stores of a half never reach past the lanes already loaded); `Carry`: w2, w3
    /// move with the lanes (a fresh block). Returns the lanes still open.
    template <bool Carry>
    [[gnu::target(PIPECAST_AVX512_TARGET)]] std::size_t avx512_visit(avx512_sweep& sweep, std::size_t n,
                                                                      const std::uint32_t* kd,
                                                                      const std::uint32_t* kn) const noexcept {
        avx512_sweep x = sweep; // a local copy: the stores through its pointers cannot alias it
        std::size_t k = 0, j = 0;
        for (; j + 8 < n; j += 16) {
            const avx512_step a = avx512_visit_step(x, j, n, kd, kn);
            const avx512_step b = avx512_visit_step(x, j + 8, n, kd, kn);
            k = avx512_book<Carry>(x, a.live, a.lane, a.stage, a.time, a.k2, a.k3, k);
            k = avx512_book<Carry>(x, b.live, b.lane, b.stage, b.time, b.k2, b.k3, k);
        }
        if (j < n) {
            const avx512_step a = avx512_visit_step(x, j, n, kd, kn);
            k = avx512_book<Carry>(x, a.live, a.lane, a.stage, a.time, a.k2, a.k3, k);
        }
        sweep.nw = x.nw;
        return k;
    }

    /// run_batch_impl for plain book deals d0 + i of a tabulated, unbranched model with the
    /// AVX-512 sweeps: the same Philox blocks, sweeps and win order. The wins (lane, time)
    /// are left in ws.lanes.won_lane/won_time in the order they happened; returns their count.
    std::size_t run_plain_batch_avx512(worker_state& ws, const transition_sampler::row_view rows, std::size_t lanes,
                                       std::uint32_t path, std::size_t d0) const {
        auto& L = ws.lanes;
        avx512_sweep x;
        x.views = views_.data();
        x.rows = rows;
        x.code = code32_.data();
        x.horizon = ws.run.horizon;
        x.lane = L.lane.data();
        x.stage = L.stage.data();
        x.w0 = L.w0.data();
        x.w1 = L.w1.data();
        x.w2 = L.w2.data();
        x.w3 = L.w3.data();
        x.won_lane = L.won_lane.data();
        x.time = L.time.data();
        x.won_time = L.won_time.data();
        x.nw = 0;
        x.small_views = m_ <= 8;
        for (std::size_t s = 0; s < m_ && x.small_views; ++s) {
            x.table[s] = reinterpret_cast<std::int64_t>(views_[s].table);
            x.bias0[s] = views_[s].bias[0];
            x.bias1[s] = views_[s].bias[1];
            x.floor[s] = views_[s].upper_floor;
        }
        x.small_code = code32_.size() <= 16;
        for (std::size_t s = 0; s < code32_.size() && x.small_code; ++s) x.code16[s] = code32_[s];
        std::uint32_t *c2 = L.c2.data(), *c3 = L.c3.data();
        auto draw = [&](std::uint32_t block, std::size_t count) {
            philox4x32_10_lanes(ws.run.key, block, path, c2, c3, x.w0, x.w1, x.w2, x.w3, count, philox_isa::avx512);
        };
        for (std::size_t i = 0; i < lanes; ++i) {
            c2[i] = static_cast<std::uint32_t>(d0 + i);
            c3[i] = sim_domain_word(0, d0 + i);
        }
        draw(0, lanes);
        std::size_t n = avx512_first_visit(x, d0, lanes);
        for (std::uint32_t visit = 1; n > 0; ++visit) {
            if (visit >= ws.run.max_visits) [[unlikely]] {
                ws.capped += n;
                break;
            }
            if (visit & 1u) {
                n = avx512_visit<false>(x, n, x.w2, x.w3);
            } else {
                for (std::size_t j = 0; j < n; ++j) {
                    c2[j] = static_cast<std::uint32_t>(d0 + x.lane[j]);
                    c3[j] = sim_domain_word(0, d0 + x.lane[j]);
                }
                draw(visit / 2, n);
                n = avx512_visit<true>(x, n, x.w0, x.w1);
            }
        }
        return x.nw;
    }
PIPECAST_AVX512_WARNINGS_ON
#endif

    /// The path's shock Z (domain 2, item 0, words 0 and 1, Box–Muller) applied to the rows:
    /// classic rows as shock_row; a branched stage's shares π by the same rule on its forward
    /// branches (π′, used wherever a deal enters it); a latent row is its stage's shocked row
    /// times π′ of the branched target it enters. Stage i's rows and shares use e^{σ_i Z} (σ_i from
    /// stage_correlation, else `correlation` for every stage); ws.lmult = e^{σ_s Z} by latent state shifts the forward odds of
    /// the first-visit branch choice of book deals and arrivals.
    void apply_shock(worker_state& ws, std::size_t path) const {
        const philox_block r = philox_draw(ws.run.o.seed, {0, static_cast<std::uint32_t>(path), 0, sim_domain_word(2, 0)});
        const double u1 = uniform_open(r[0]), u2 = uniform_open(r[1]);
        const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        const std::size_t m = g_.open_count();
        for (std::size_t i = 0; i < m; ++i) ws.stage_mult[i] = std::exp(ws.run.sigma[i] * z); // e^{σ_i Z}
        for (std::size_t l = 0; l < m_; ++l) ws.lmult[l] = ws.stage_mult[g_.stage_of_latent(l)];
        if (!branched_) {
            for (std::size_t i = 0; i < m_; ++i) {
                shock_row(base_probs_[i], forward_[i], ws.stage_mult[i], ws.scratch);
                ws.rows.set_row(i, ws.scratch);
            }
            return;
        }
        std::vector<std::uint8_t>& fw = ws.fwd_scratch;
        for (std::size_t s = 0; s < m; ++s) {
            if (!g_.branched(s)) continue;
            fw.clear();
            for (std::size_t k = 0; k < pi_[s].size(); ++k) fw.push_back(forward_branch_[g_.latent_first(s) + k] > 0.0);
            shock_row(pi_[s], fw, ws.stage_mult[s], ws.pi[s]);
        }
        for (std::size_t l = 0; l < m_; ++l) {
            const auto& src = shock_src_[l];
            if (src.size() < 2) continue; // a single target: nothing to shift
            const std::size_t i = g_.stage_of_latent(l);
            const bool classic = !g_.branched(i);
            if (classic) shock_row(base_probs_[i], forward_[i], ws.stage_mult[i], ws.scratch);
            ws.row.resize(src.size());
            for (std::size_t e = 0; e < src.size(); ++e) {
                const shock_source& x = src[e];
                const double stage_p = classic ? ws.scratch[static_cast<std::size_t>(x.entry)] : 1.0;
                ws.row[e] = x.branch >= 0 ? stage_p * ws.pi[x.target][static_cast<std::size_t>(x.branch)] : stage_p;
            }
            ws.rows.set_row(l, ws.row);
        }
    }

    /// Paths [p0, p1) in tiles of `tile` paths: each batch of deals runs for every path of
    /// the tile before the next batch, so the batch's start data, choice records and branch
    /// starts (up to 232 bytes a deal on a 4-branch graph) are read from cache `tile` times
    /// instead of once per path from memory. Each path keeps its own sums, which get the same
    /// wins in the same order as path by path (batches in book order, then the overridden
    /// deals, then arrivals): bit-identical results. A shocked path's rows and first-branch
    /// multipliers are kept per tile slot (ws.tile_rows, ws.tile_lmult) and swapped in.
    void run_chunk(worker_state& ws, std::size_t p0, std::size_t p1, path_outputs& out,
                   std::vector<std::uint64_t>& wins, std::vector<std::uint64_t>& time) const {
        const std::size_t n = deals_.size();
        const run_state& R = ws.run;
        const double* ends = R.o.sub_period_ends.data();
        const std::size_t nsub = R.nsub;
        const bool overrides = !overrides_.empty();
        const std::size_t np = overrides ? plain_.size() : n; // deals of the plain batches
        // Path k of the tile: its shocked rows and multipliers into ws.rows, ws.lmult (and back:
        // a swap both ways).
        auto swap_in = [&](std::size_t k) {
            if (!R.shocked) return;
            std::swap(ws.rows, ws.tile_rows[k]);
            std::swap(ws.lmult, ws.tile_lmult[k]);
        };
        for (std::size_t t0 = p0; t0 < p1; t0 += tile) {
            const std::size_t tn = std::min(tile, p1 - t0);
            double value[tile] = {}, count[tile] = {};
            double* sub[tile] = {};
            for (std::size_t k = 0; k < tn; ++k) {
                sub[k] = nsub ? out.sub_value.data() + (t0 + k - out.first) * nsub : nullptr;
                if (R.shocked) {
                    apply_shock(ws, t0 + k);
                    swap_in(k); // the tile slot now holds path t0 + k's rows
                }
            }
            // Books a win of deal d at time t in path t0 + k (in the order the wins happened).
            auto book_win = [&](std::size_t k, std::size_t d, double t) {
                const double amount = deals_[d].amount;
                value[k] += amount;
                count[k] += 1.0;
                ++wins[d];
                time[d] += static_cast<std::uint64_t>(t * (1.0 / sim_time_quantum) + 0.5); // NOLINT(bugprone-incorrect-roundings): t >= 0
                if (sub[k]) {
                    const auto b = static_cast<std::size_t>(std::lower_bound(ends, ends + nsub, t) - ends);
                    if (b < nsub) sub[k][b] += amount;
                }
            };
            for (std::size_t d0 = 0; d0 < np; d0 += batch)
                for (std::size_t k = 0; k < tn; ++k) {
                    const auto pw = static_cast<std::uint32_t>(t0 + k);
                    swap_in(k);
                    if (!overrides) { // every deal, in book order: item = deal index
                        const deal_start* x = deals_.data() + d0;
                        std::uint64_t* wn = wins.data() + d0;
                        std::uint64_t* tm = time.data() + d0;
                        // The path's sums in locals (written back below): through references into
                        // value[]/count[] every win would reload them, as sb might alias them.
                        double v = value[k], c = count[k];
                        double* sb = sub[k];
                        auto on_win = [&](std::size_t i, double t) {
                            v += x[i].amount;
                            c += 1.0;
                            ++wn[i];
                            tm[i] += static_cast<std::uint64_t>(t * (1.0 / sim_time_quantum) + 0.5); // NOLINT(bugprone-incorrect-roundings): t >= 0
                            if (sb) {
                                const auto b = static_cast<std::size_t>(std::lower_bound(ends, ends + nsub, t) - ends);
                                if (b < nsub) sb[b] += x[i].amount;
                            }
                        };
                        const std::size_t lanes = std::min(batch, n - d0);
#if defined(PIPECAST_PHILOX_AVX2)
                        if (R.isa == philox_isa::avx512 && avx512_sweep_) {
                            const std::size_t nw = run_plain_batch_avx512(ws, ws.rows.view(), lanes, pw, d0);
                            const std::uint32_t* wl = ws.lanes.won_lane.data();
                            const double* wt = ws.lanes.won_time.data();
                            for (std::size_t w = 0; w < nw; ++w) on_win(wl[w], wt[w]);
                        } else
#endif
                        {
                            run_batch(
                                ws, ws.rows, lanes, pw, 0, [d0](std::size_t i) -> std::uint64_t { return d0 + i; },
                                [x, ch = branched_ ? choice_.data() + d0 : nullptr](std::size_t i) {
                                    const deal_start& e = x[i];
                                    return lane_start{e.stage, e.cdf_at_age, e.survival_at_age, e.age, 0.0,
                                                      e.exact != 0, ch ? ch[i] : no_choice};
                                },
                                on_win);
                        }
                        value[k] = v;
                        count[k] = c;
                    } else { // the deals without an override, in book order, on the (shocked) rows
                        const std::uint32_t* idx = plain_.data() + d0;
                        run_batch(
                            ws, ws.rows, std::min(batch, np - d0), pw, 0,
                            [idx](std::size_t i) -> std::uint64_t { return idx[i]; },
                            [&](std::size_t i) { return start_of(idx[i]); },
                            [&](std::size_t i, double t) { book_win(k, idx[i], t); });
                    }
                    swap_in(k);
                }
            for (std::size_t k = 0; k < tn; ++k) {
                const std::size_t p = t0 + k;
                swap_in(k);
                if (overrides) {
                    auto win_k = [&](std::size_t d, double t) { book_win(k, d, t); };
                    run_overrides(ws, static_cast<std::uint32_t>(p), win_k);
                }
                if (R.o.arrivals) run_arrivals(ws, p, value[k], count[k], sub[k], out);
                swap_in(k);
                for (std::size_t i = 1; i < nsub; ++i) sub[k][i] += sub[k][i - 1];
                out.value[p - out.first] = value[k];
                out.count[p - out.first] = count[k];
            }
        }
    }

    [[nodiscard]] lane_start start_of(std::size_t d) const noexcept {
        const deal_start& e = deals_[d];
        return lane_start{e.stage, e.cdf_at_age, e.survival_at_age, e.age, 0.0, e.exact != 0,
                          branched_ ? choice_[d] : no_choice};
    }

    /// The overridden deals of path p: deal d is won iff uniform_open(word 0 of the block
    /// (0, p, d, domain 3)) < o_d and its stage can win; the winners then run on the
    /// win-conditioned rows with their own deal streams (domain 0, item d), unshocked.
    template <class BookWin>
    void run_overrides(worker_state& ws, std::uint32_t pw, BookWin& book_win) const {
        ws.winners.clear();
        for (const override_deal& x : overrides_) {
            const philox_block r =
                philox_draw(ws.run.o.seed, {0, pw, x.deal, sim_domain_word(sim_override_domain, x.deal)});
            if (x.can_win && uniform_open(r[0]) < x.probability) ws.winners.push_back(x.deal);
        }
        const std::size_t nw = ws.winners.size();
        std::swap(ws.lmult, ws.lmult_off); // winners are not shocked (nor is their first branch)
        for (std::size_t d0 = 0; d0 < nw; d0 += batch) {
            const std::uint32_t* idx = ws.winners.data() + d0;
            run_batch(
                ws, win_rows_, std::min(batch, nw - d0), pw, 0,
                [idx](std::size_t i) -> std::uint64_t { return idx[i]; },
                [&](std::size_t i) { return start_of(idx[i]); },
                [&](std::size_t i, double t) { book_win(idx[i], t); });
        }
        std::swap(ws.lmult, ws.lmult_off);
    }

    /// Arrivals of path p: times by inverting the cumulative intensity at the partial sums
    /// of Exp(1) gaps (domain 2, item 1); arrival j runs as a fresh deal from its arrival
    /// time (domain 1, item j), its amount drawn only if it is won (block 2³² − 1).
    void run_arrivals(worker_state& ws, std::size_t p, double& value, double& count, double* sub,
                      path_outputs& out) const {
        const run_state& R = ws.run;
        const std::uint64_t seed = R.o.seed;
        const std::size_t nsub = R.nsub;
        const auto pw = static_cast<std::uint32_t>(p);
        philox_counter gc = {0, pw, 1, sim_domain_word(2, 1)};
        philox_block g = philox_draw(seed, gc);
        unsigned slot = 0;
        double cum = 0.0, wins = 0.0, val = 0.0;
        std::size_t seg = 0;
        std::uint64_t total = 0;
        std::vector<double>& taus = ws.scratch;
        const double* ends = R.o.sub_period_ends.data();
        for (bool more = true; more;) {
            taus.clear();
            while (taus.size() < batch) {
                if (slot == 4) {
                    ++gc[0];
                    g = philox_draw(seed, gc);
                    slot = 0;
                }
                cum += -std::log(uniform_open(g[slot++]));
                if (cum > R.arrival_total) {
                    more = false;
                    break;
                }
                while (seg + 1 < R.seg_t.size() && R.seg_cum[seg + 1] < cum) ++seg;
                while (seg + 1 < R.seg_t.size() && R.seg_rate[seg] <= 0.0) ++seg;
                taus.push_back(std::min(R.seg_t[seg] + (cum - R.seg_cum[seg]) / R.seg_rate[seg], R.horizon));
            }
            const std::uint64_t base = total;
            const auto entry = static_cast<std::uint32_t>(g_.latent_first(R.entry));
            const std::uint32_t choice =
                g_.branched(R.entry) ? static_cast<std::uint32_t>(b_.size() + R.entry) : no_choice;
            run_batch(
                ws, ws.rows, taus.size(), pw, 1, [base](std::size_t i) -> std::uint64_t { return base + i; },
                [&](std::size_t i) { return lane_start{entry, 0.0, 1.0, 0.0, taus[i], false, choice}; },
                [&](std::size_t i, double t) {
                    const std::uint64_t j = base + i;
                    const philox_block r = philox_draw(
                        seed, {0xFFFFFFFFu, pw, static_cast<std::uint32_t>(j), sim_domain_word(1, j)});
                    const double u = uniform_open(r[0]);
                    const double amount =
                        R.deal_lognormal
                            ? std::exp(R.deal_mu - R.deal_sigma * 1.4142135623730951 * boost::math::erfc_inv(2.0 * u))
                            : R.deal_size->quantile(u);
                    value += amount;
                    count += 1.0;
                    wins += 1.0;
                    val += amount;
                    if (sub) {
                        const auto b = static_cast<std::size_t>(std::lower_bound(ends, ends + nsub, t) - ends);
                        if (b < nsub) sub[b] += amount;
                    }
                });
            total += taus.size();
        }
        const std::size_t at = p - out.first;
        out.arrivals[at] = static_cast<double>(total);
        out.arrival_wins[at] = wins;
        out.arrival_value[at] = val;
    }

    const stage_graph& g_;
    const stage_graph& lg_; ///< g_.latent(): the graph the engine runs on
    const book& b_;
    std::size_t m_ = 0;
    std::vector<std::uint8_t> code_; ///< per stage: 1 open, 2 winning outcome, 0 other outcome
    std::vector<std::uint32_t> code32_; ///< code_ widened, for the gathers of the AVX-512 sweep
    std::vector<deal_start> deals_;
    deal_columns columns_;       ///< deals_ by columns (AVX-512 sweep; empty where it does not run)
    bool avx512_sweep_ = false;  ///< the AVX-512 sweep can run the plain deals (CPU, tabulated, unbranched)
    std::vector<dwell_sampler> samplers_;      ///< one per distinct dwell
    std::vector<std::size_t> sampler_of_;      ///< per latent state: its sampler
    std::vector<dwell_sampler::table_view> views_;
    bool all_tabulated_ = true;
    transition_sampler rows_;
    // probability overrides (empty when the book has none)
    transition_sampler win_rows_;          ///< the win-conditioned (h-transformed) rows
    std::vector<override_deal> overrides_; ///< overridden deals, in book order
    std::vector<std::uint32_t> plain_;     ///< the other deals, in book order
    std::vector<std::vector<std::uint8_t>> forward_; ///< per classic stage: forward entries of its row
    std::vector<std::vector<double>> base_probs_;    ///< per classic stage: its row's entries
    // branched graphs (empty for a classic one)
    bool branched_ = false;
    std::size_t width_ = 1;                ///< W: the largest branch count of a stage
    std::vector<double> bweight_;          ///< per choice (deal, then fresh entry per stage) × W (preparation only)
    /// Choice records from choice_store_[choice_offset_] (64-byte aligned): per choice, W
    /// cumulative weights then W cumulative forward weights (prepare_choice_records).
    std::vector<double> choice_store_;
    std::size_t choice_offset_ = 0;
    std::size_t choice_stride_ = 8;        ///< doubles a choice record (2W rounded up to 8)
    std::vector<branch_start> bstart_;     ///< the same, the branch's residual start data
    std::vector<std::uint32_t> choice_;    ///< per deal: its choice index (= d), or no_choice
    std::vector<double> forward_branch_; ///< per latent state: 1 for a forward branch
    std::vector<std::vector<double>> pi_; ///< per open stage: π of its branches
    /// Where entry e of latent row l comes from: entry `entry` of its classic stage's row
    /// (-1 for a branched stage's latent state) times π′ of branch `branch` of stage `target`.
    struct shock_source {
        std::int32_t entry, branch;
        std::uint32_t target;
    };
    std::vector<std::vector<shock_source>> shock_src_;
};

/// The engine: a class template only so that a translation unit compiles its members where
/// it runs a simulation (docs/design.md, "Compiled where called").
using sim_engine = basic_sim_engine<>;

/// Validates a path range of a run of `o` on (g, b): first < last <= o.paths.
template <class = void>
void check_path_range(const simulation_options& o, std::size_t first, std::size_t last) {
    if (!(first < last && last <= o.paths))
        throw argument_error(detail::message("simulate: the path range [", first, ", ", last,
                                             ") must be non-empty and within [0, paths = ", o.paths, ")"));
}

/// The result of a run from its pieces (in path order, covering [0, o.paths) without gaps);
/// `values` receives the per-path won values of the completed paths, in path order.
template <class = void>
simulation_result assemble(const stage_graph& g, const book& b, const simulation_options& o,
                           std::span<const simulation_paths> parts, std::vector<double>* values = nullptr) {
    std::size_t expect = 0;
    for (const simulation_paths& x : parts) {
        if (x.first != expect || x.last <= x.first || x.value.size() != x.last - x.first ||
            x.deal_wins.size() != b.size() || x.deal_time_sums.size() != b.size())
            throw argument_error(detail::message("simulate: the pieces to combine must be runs of this book over "
                                                 "consecutive path ranges from 0; a piece of [", x.first, ", ", x.last,
                                                 ") follows path ", expect));
        expect = x.last;
    }
    if (expect != o.paths)
        throw argument_error(detail::message("simulate: the pieces to combine cover ", expect, " of ", o.paths, " paths"));
    const std::size_t nsub = o.sub_period_ends.size(), n = b.size(), m = g.open_count();
    bool ok = true;
    for (const simulation_paths& x : parts) ok = ok && x.completed;

    simulation_result r;
    r.status = ok ? simulation_status::completed : simulation_status::cancelled;
    r.paths_requested = o.paths;
    r.deals = n;
    for (double p : b.probability_overrides()) r.overridden += std::isnan(p) ? 0 : 1;
    r.horizon = o.horizon;
    r.seed = o.seed;
    std::vector<double> value, count, arrivals, arrival_wins, arrival_value;
    std::vector<std::vector<double>> sub(nsub);
    std::vector<std::uint64_t> wins(n, 0), tsum(n, 0);
    for (const simulation_paths& x : parts) {
        r.elapsed_seconds += x.elapsed_seconds;
        r.capped_deal_paths += x.capped_deal_paths();
        for (std::size_t d = 0; d < n; ++d) {
            wins[d] += x.deal_wins[d];
            tsum[d] += x.deal_time_sums[d];
        }
        auto take = [&](std::size_t i) { // path first + i
            value.push_back(x.value[i]);
            count.push_back(x.count[i]);
            for (std::size_t k = 0; k < nsub; ++k) sub[k].push_back(x.sub_value[i * nsub + k]);
            if (o.arrivals) {
                arrivals.push_back(x.arrivals[i]);
                arrival_wins.push_back(x.arrival_wins[i]);
                arrival_value.push_back(x.arrival_value[i]);
            }
        };
        if (x.completed)
            for (std::size_t i = 0; i < x.last - x.first; ++i) take(i);
        else
            for (std::size_t p : x.completed_paths()) take(p - x.first);
    }
    r.paths = value.size();
    r.deal_paths = static_cast<std::uint64_t>(r.paths) * n;
    r.won_value = summarise(value, o);
    r.won_count = summarise(count, o);
    r.sub_period_ends = o.sub_period_ends;
    for (std::size_t k = 0; k < nsub; ++k) r.sub_period_value.push_back(summarise(sub[k], o));

    r.deal_win_probability.resize(n);
    r.deal_expected_close_time.resize(n);
    r.stage_expected_wins.assign(m, 0.0);
    r.stage_expected_value.assign(m, 0.0);
    const double paths = static_cast<double>(r.paths);
    for (std::size_t d = 0; d < n; ++d) {
        const double w = static_cast<double>(wins[d]);
        r.deal_win_probability[d] = paths > 0 ? w / paths : std::numeric_limits<double>::quiet_NaN();
        r.deal_expected_close_time[d] = wins[d] ? static_cast<double>(tsum[d]) * sim_time_quantum / w
                                                : std::numeric_limits<double>::quiet_NaN();
        r.stage_expected_wins[b.stages()[d]] += r.deal_win_probability[d];
        r.stage_expected_value[b.stages()[d]] += r.deal_win_probability[d] * b.amounts()[d];
    }
    if (o.arrivals && r.paths > 0) {
        double sa = 0.0, sw = 0.0, sv = 0.0;
        for (std::size_t p = 0; p < arrivals.size(); ++p) {
            sa += arrivals[p];
            sw += arrival_wins[p];
            sv += arrival_value[p];
        }
        r.arrivals_expected_count = sa / paths;
        r.arrivals_expected_wins = sw / paths;
        r.arrivals_expected_value = sv / paths;
        r.arrival_deal_paths = static_cast<std::uint64_t>(sa);
    }
    if (values) *values = std::move(value);
    return r;
}

/// Runs the paths [first, last) of `o` on a prepared engine (options already validated).
template <class = void>
simulation_paths run_paths(const sim_engine& e, const simulation_options& o,
                           std::optional<deal_size_distribution> deal_size, std::size_t first, std::size_t last) {
    const auto start = std::chrono::steady_clock::now();
    const sim_engine::run_state R(e, o, std::move(deal_size));
    simulation_paths out;
    out.first = first;
    out.last = last;
    (void)e.run(R, out);
    out.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

/// Validates, prepares an engine, runs every path and assembles the result (simulate()):
/// `values` receives the per-path won values (of the completed paths, in path order).
template <class = void>
simulation_result run_simulation(const stage_graph& g, const book& b, const simulation_options& o,
                                 std::optional<deal_size_distribution> deal_size,
                                 std::vector<double>* values = nullptr) {
    validate_options(o, g, deal_size.has_value());
    check_estimate(estimate_simulation(g, b, o), o, b.size());
    const auto start = std::chrono::steady_clock::now();
    const sim_engine engine(g, b, o.threads);
    const simulation_paths out = run_paths(engine, o, std::move(deal_size), 0, o.paths);
    const auto stop = std::chrono::steady_clock::now();
    simulation_result r = assemble(g, b, o, std::span<const simulation_paths>(&out, 1), values);
    r.elapsed_seconds = std::chrono::duration<double>(stop - start).count();
    return r;
}

template <class = void>
[[nodiscard]] simulation_options with_model_arrivals(const model& mdl, simulation_options o) {
    if (!o.arrivals && o.model_arrivals) o.arrivals = mdl.arrivals;
    if (!o.arrival_deal_size) o.arrival_deal_size = mdl.deal_size;
    return o;
}

} // namespace detail

} // namespace pipecast
