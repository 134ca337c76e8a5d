// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/quantile.hpp
/// @brief The sample quantile of sorted values (type 7): the one definition used by the
/// simulator's summaries, the KPIs and the backtest.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

namespace pipecast::detail {

/// Linear-interpolated sample quantile of ascending values (Hyndman–Fan type 7, R's default):
/// with h = p (n − 1), v[⌊h⌋] + (h − ⌊h⌋)(v[⌊h⌋ + 1] − v[⌊h⌋]); NaN for no values.
/// @param p the level in [0, 1]
template <class = void>
[[nodiscard]] double sorted_quantile(std::span<const double> v, double p) {
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    const double h = p * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

} // namespace pipecast::detail
