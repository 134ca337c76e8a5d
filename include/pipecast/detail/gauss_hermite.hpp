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

/// Probabilists' Gauss–Hermite rule for E f(Z), Z ~ N(0, 1), by Golub–Welsch: the nodes are
/// the eigenvalues of the Jacobi matrix of the Hermite polynomials He_n (zero diagonal,
/// off-diagonal √k), the weights the squared first components of its eigenvectors; weights
/// sum to 1. The matrix is given to Eigen as tridiagonal (computeFromTridiagonal), which skips
/// the Householder reduction of a dense matrix and its template instantiation (about 2 s of
/// compile time in every translation unit that includes this header).
template <class = void>
void gauss_hermite(std::size_t n, std::vector<double>& x, std::vector<double>& w) {
    const auto N = static_cast<Eigen::Index>(n);
    const Eigen::VectorXd diagonal = Eigen::VectorXd::Zero(N);
    Eigen::VectorXd off_diagonal(N > 1 ? N - 1 : 0);
    for (Eigen::Index k = 1; k < N; ++k) off_diagonal(k - 1) = std::sqrt(static_cast<double>(k));
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es;
    es.computeFromTridiagonal(diagonal, off_diagonal);
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
