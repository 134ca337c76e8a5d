// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/options.hpp
/// @brief The simulator's options and results: simulation_options, simulation_result and
/// the summaries in it (simulation.hpp runs them; docs/simulation.md).

#include <pipecast/error.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/simulation/detail/philox.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace pipecast {

/// Options of a simulation run. Defaults: 10,000 paths, no horizon (every deal runs to
/// its outcome), seed 1, all cores, P10/P50/P90, 40 histogram bins, no arrivals, no shock.
struct simulation_options {
    std::size_t paths = 10000;           ///< number of Monte Carlo paths (>= 1)
    double horizon = std::numeric_limits<double>::infinity(); ///< h > 0; +inf = no horizon
    std::uint64_t seed = 1;              ///< the Philox key
    unsigned threads = 0;                ///< worker threads; 0 = std::thread::hardware_concurrency()
    std::vector<double> quantiles = {0.1, 0.5, 0.9}; ///< levels in [0, 1]
    std::vector<double> quotas;          ///< report P(won value >= quota) for each (>= 0)
    /// Ends of sub-periods (increasing, in (0, h]): the won value by the end of each is
    /// summarised too. sub_periods(h, n) makes n equal ones.
    std::vector<double> sub_period_ends;
    std::size_t histogram_bins = 40;     ///< bins of the won-value histogram (>= 1)
    /// New deals: a Poisson stream into arrivals->stage (needs a finite horizon).
    std::optional<arrival_process> arrivals;
    /// Use the model's own arrival process when `arrivals` is empty (model overloads only).
    bool model_arrivals = false;
    /// Amounts of new deals; the model's deal_size when empty (model overloads).
    std::optional<deal_size_distribution> arrival_deal_size;
    /// σ of the per-path log-odds shock on forward conversion (0 = independent deals). Not
    /// taken from the model: pass model::overdispersion (what `pipecast simulate` does when
    /// --correlation is not given) to use the fitted overdispersion.
    double correlation = 0.0;
    /// Per open stage of the model's graph (funnel order): σ_i of the same shock on stage i's
    /// forward conversion (one Z per path moves stage i's log-odds by σ_i Z). When not empty
    /// it replaces `correlation`; pass model::overdispersion_by_stage() to use a fitted
    /// model's per-stage overdispersion.
    std::vector<double> stage_correlation;
    /// Called from the calling thread about every 50 ms with the fraction of paths done;
    /// returning false cancels the run.
    std::function<bool(double)> progress;
    /// Cancels the run when a stop is requested.
    std::stop_token stop;
    /// Paths per work unit (0 = automatic). Results do not depend on it.
    std::size_t chunk_paths = 0;
    /// The most stage visits one deal-path makes: a deal still open after that many visits
    /// (a near-certain self-loop, a cycle without a horizon) stops there, is not won, and is
    /// counted in simulation_result::capped_deal_paths. Bounds the work of every path.
    std::size_t max_path_visits = 10000;
    /// Refuse (argument_error) a run whose estimated memory (estimate_simulation()) exceeds
    /// this many bytes, before allocating anything.
    std::uint64_t max_memory_bytes = std::uint64_t{8} << 30;
    /// Refuse (argument_error) a run whose estimated work exceeds this many stage visits
    /// (about 1e9 a second on one core: the default is some minutes on a laptop).
    double max_stage_visits = 2e11;
    /// The kernels: `automatic` = the widest this CPU runs, chosen at run time: AVX-512 (a
    /// 16-wide Philox and, for tabulated unbranched models, the AVX-512 sweep of the book's
    /// deals), else 8-wide AVX2, else 4-wide SSE2; a kernel the CPU lacks falls back to the
    /// next narrower one. Results do not depend on it (tests and benchmarks pin it to compare
    /// the paths).
    philox_isa philox_kernel = philox_isa::automatic;
};

/// The largest σ accepted for `correlation` and `stage_correlation`: a shock of sd 10 on
/// the log-odds already moves a 50% conversion to 1e-29 or 1 - 1e-29 at |Z| = 6.7 (the
/// largest Z the 32-bit Box–Muller uniforms give), so larger values only overflow.
inline constexpr double max_correlation = 10.0;

/// What a run will cost, estimated before it starts (estimate_simulation()).
struct simulation_estimate {
    std::uint64_t memory_bytes = 0;  ///< per-path outputs, their summaries, per-deal and per-thread buffers
    double visits_per_path = 0.0;    ///< expected stage visits of one path (book deals and arrivals)
    double stage_visits = 0.0;       ///< visits_per_path × paths
    double arrivals_per_path = 0.0;  ///< expected arrivals of one path
};

/// `n` equal sub-periods of a horizon: {h/n, 2h/n, ..., h}.
/// @throws argument_error unless h is positive and finite and n >= 1.
template <class = void>
[[nodiscard]] std::vector<double> sub_periods(double horizon, std::size_t n) {
    if (!(std::isfinite(horizon) && horizon > 0.0))
        throw argument_error(detail::message("sub_periods: horizon must be positive and finite, got ", horizon));
    if (n == 0) throw argument_error("sub_periods: the number of sub-periods must be >= 1, got 0");
    std::vector<double> e(n);
    for (std::size_t i = 0; i < n; ++i) e[i] = horizon * static_cast<double>(i + 1) / static_cast<double>(n);
    e.back() = horizon;
    return e;
}

/// Equal-width histogram of the per-path values.
struct simulation_histogram {
    double lower = 0.0;                 ///< left edge of bin 0
    double width = 0.0;                 ///< bin width (0 if every value is equal)
    std::vector<std::uint64_t> counts;  ///< paths per bin; the last bin includes its right edge
};

/// Summary of one per-path quantity (won value, won count, ...).
struct outcome_summary {
    double mean = 0.0;
    double standard_error = 0.0;        ///< sd / sqrt(paths)
    double sd = 0.0;                    ///< sample standard deviation over paths
    double min = 0.0, max = 0.0;
    std::vector<double> quantile_levels;
    std::vector<double> quantiles;      ///< sample quantiles (linear interpolation, type 7)
    std::vector<double> quotas;
    std::vector<double> p_quota;        ///< P(value >= quotas[i]), fraction of paths
    simulation_histogram histogram;
};

/// How a run ended.
enum class simulation_status { completed, cancelled };

/// Result of simulate(). Statistics cover the completed paths (all of them unless
/// cancelled; a cancelled run reports the paths it finished, whole work units only).
struct simulation_result {
    simulation_status status = simulation_status::completed;
    std::size_t paths = 0;               ///< paths completed
    std::size_t paths_requested = 0;
    std::size_t deals = 0;               ///< deals in the book
    std::size_t overridden = 0;          ///< deals with a probability override (won with that probability)
    std::uint64_t deal_paths = 0;        ///< deals × completed paths (book deals only)
    double horizon = 0.0;
    std::uint64_t seed = 0;
    double elapsed_seconds = 0.0;        ///< wall time of the simulation (tables included)

    outcome_summary won_value;           ///< won value within the horizon
    outcome_summary won_count;           ///< number of deals won within the horizon
    std::vector<double> sub_period_ends;
    std::vector<outcome_summary> sub_period_value; ///< won value by the end of each sub-period

    std::vector<double> deal_win_probability; ///< per deal: P(won within the horizon)
    std::vector<double> deal_expected_close_time; ///< per deal: E[time of win | won]; NaN if never won
    std::vector<double> stage_expected_wins;  ///< per open stage: expected wins among its deals
    std::vector<double> stage_expected_value; ///< per open stage: expected won value of its deals

    double arrivals_expected_count = 0.0;    ///< mean number of arrivals per path
    double arrivals_expected_wins = 0.0;     ///< mean number of arrivals won within the horizon
    double arrivals_expected_value = 0.0;    ///< mean won value of arrivals
    std::uint64_t arrival_deal_paths = 0;    ///< arrivals simulated in total
    /// Deal-paths (book deals and arrivals) stopped at options.max_path_visits stage visits,
    /// counted as not won; 0 in any sound model.
    std::uint64_t capped_deal_paths = 0;

    /// Deal-paths per second of wall time.
    [[nodiscard]] double deal_paths_per_second() const noexcept {
        return elapsed_seconds > 0.0 ? static_cast<double>(deal_paths) / elapsed_seconds : 0.0;
    }
};

/// The raw outputs of the paths [first, last) of a run (simulation_engine::run_paths()): what
/// one process of a split run computes and sends back. Path p always draws from the same
/// counter-based streams (path p of the seed), so pieces that cover [0, paths) combine
/// (simulation_engine::combine()) to the bit-identical result of one run of all the paths.
struct simulation_paths {
    std::size_t first = 0, last = 0;   ///< the path range
    bool completed = true;             ///< false: cancelled; `done` says which work units finished
    /// Per path p (index p − first): won value, won count; sub_value is (last − first) ×
    /// sub-periods, path-major; arrivals, arrival_wins, arrival_value only with arrivals.
    std::vector<double> value, count, sub_value, arrivals, arrival_wins, arrival_value;
    std::size_t chunk = 1;             ///< paths per work unit (the last one may be shorter)
    std::vector<char> done;            ///< per work unit: 1 if it completed
    std::vector<std::uint64_t> capped; ///< per work unit: deal-paths stopped at max_path_visits
    /// Per deal: wins and the sum of win times in units of 2⁻¹⁶ (integers: sums over pieces
    /// are exact in any order).
    std::vector<std::uint64_t> deal_wins, deal_time_sums;
    double elapsed_seconds = 0.0;      ///< wall time of run_paths()

    /// The completed paths (absolute indices, increasing).
    [[nodiscard]] std::vector<std::size_t> completed_paths() const {
        std::vector<std::size_t> p;
        for (std::size_t c = 0; c < done.size(); ++c)
            if (done[c])
                for (std::size_t i = first + c * chunk; i < std::min(last, first + (c + 1) * chunk); ++i) p.push_back(i);
        return p;
    }
    /// Deal-paths of the completed work units stopped at max_path_visits.
    [[nodiscard]] std::uint64_t capped_deal_paths() const noexcept {
        std::uint64_t c = 0;
        for (std::size_t i = 0; i < done.size(); ++i) c += done[i] ? capped[i] : 0;
        return c;
    }
};

/// Result of simulate_difference(): both runs and the per-path difference variant − base.
struct simulation_difference {
    simulation_result base;
    simulation_result variant;
    outcome_summary difference;          ///< of won value, variant − base, path by path
    double correlation = 0.0;            ///< correlation of the two runs' won values over paths
};

} // namespace pipecast
