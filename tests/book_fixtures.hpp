// Synthetic books for the unit tests and the benchmarks. No doctest here, so bench/ can
// include it too (`#include "../tests/book_fixtures.hpp"`). Deterministic for a seed: one
// std::mt19937_64 and <random>'s distributions, each deal drawn in a fixed order (stage,
// amount, age).
#pragma once

#include <pipecast/data/book.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace pipecast_fixtures {

/// How synthetic_book() draws a deal.
struct book_recipe {
    std::vector<double> stage_weights; ///< weight of each open stage (empty: all equal)
    double amount_log_mu = std::log(20000.0); ///< lognormal amounts (log of the median) ...
    double amount_sigma = 0.8;                ///< ... and sigma; rounded to cents
    /// Ages uniform in [0, max_age) when > 0; else a uniform fraction of a dwell time drawn
    /// below the stage's 99.9% quantile (an age a deal of that stage could have; classic
    /// stages only).
    double max_age = 0.0;
    std::uint64_t seed = 42;
    std::string id_prefix; ///< deal ids are prefix + index
};

/// The weights of the open stages in an existing book (its count per stage).
[[nodiscard]] inline std::vector<double> stage_mix(const pipecast::book& b, std::size_t open_stages) {
    std::vector<double> mix(open_stages, 0.0);
    for (auto s : b.stages()) mix[s] += 1.0;
    return mix;
}

/// A book of `n` deals on `g` drawn by `r`.
[[nodiscard]] inline pipecast::book synthetic_book(const pipecast::stage_graph& g, std::size_t n,
                                                   const book_recipe& r) {
    std::mt19937_64 rng(r.seed);
    const std::vector<double> w = r.stage_weights.empty() ? std::vector<double>(g.open_count(), 1.0) : r.stage_weights;
    std::discrete_distribution<std::size_t> stage(w.begin(), w.end());
    std::lognormal_distribution<double> amount(r.amount_log_mu, r.amount_sigma);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    pipecast::book b(g);
    b.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t s = stage(rng);
        const double a = std::round(amount(rng) * 100.0) / 100.0;
        double age = 0.0;
        if (r.max_age > 0.0) {
            age = r.max_age * u(rng);
        } else {
            const double dwell = quantile(g.dwell(s), 0.999 * u(rng));
            age = dwell * u(rng);
        }
        std::string id = r.id_prefix; // appended, not prefix + to_string(): GCC 12 -Wrestrict (bug 105329)
        id += std::to_string(i);
        b.add(id, s, a, age);
    }
    return b;
}

} // namespace pipecast_fixtures
