// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/gauss_hermite.hpp
/// @brief Gauss–Hermite quadrature for expectations over a normal variable (the correlation
/// shock of the exact distribution, the cohort shocks of the nowcast).

#include <Eigen/Dense>

#include <cmath>
#include <cstddef>
#include <vector>

namespace pipecast::detail {

/// Probabilists' Gauss–Hermite rule for E f(Z), Z ~ N(0, 1), by Golub–Welsch (the Jacobi
/// matrix of the Hermite polynomials He_n); weights sum to 1.
inline void gauss_hermite(std::size_t n, std::vector<double>& x, std::vector<double>& w) {
    const auto N = static_cast<Eigen::Index>(n);
    Eigen::MatrixXd j = Eigen::MatrixXd::Zero(N, N);
    for (Eigen::Index k = 1; k < N; ++k) j(k - 1, k) = j(k, k - 1) = std::sqrt(static_cast<double>(k));
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(j);
    x.resize(n);
    w.resize(n);
    double sum = 0.0;
    for (Eigen::Index k = 0; k < N; ++k) {
        x[static_cast<std::size_t>(k)] = es.eigenvalues()(k);
        w[static_cast<std::size_t>(k)] = es.eigenvectors()(0, k) * es.eigenvectors()(0, k);
        sum += w[static_cast<std::size_t>(k)];
    }
    for (double& v : w) v /= sum;
}

} // namespace pipecast::detail
