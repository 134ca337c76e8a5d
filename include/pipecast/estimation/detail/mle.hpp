// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation/detail/mle.hpp
/// @brief The fit's numerical kernels (internal): censored maximum likelihood of the
/// dwell families, their standard errors, the Kaplan–Meier estimator's pieces.

#include <pipecast/data/history.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/estimates.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Eigen/Dense>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/erf.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <boost/math/tools/roots.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------

namespace detail {

inline constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

/// Durations of one stage (or one branch), split into exits and censored visits, with their
/// logs, optional per-observation weights (recency weights times EM responsibilities; 1 when
/// not given) and the weighted sufficient statistics of the exits. With unit weights every
/// sum is the plain sum (a product by 1.0 is exact), so unweighted fits are unchanged.
struct dwell_sample {
    std::vector<double> t, log_t, wt; ///< exits (clamped to min_dwell) and their weights
    std::vector<double> c, log_c, wc; ///< censored durations > 0 (a visit censored at 0 carries no information)
    double n = 0, sum_t = 0, sum_log = 0, sum_log2 = 0, sum_c = 0; ///< n = Σ exit weights
    std::size_t events = 0; ///< exits with a positive weight

    dwell_sample(std::span<const double> exits, std::span<const double> censored, double min_dwell,
                 std::span<const double> exit_weights = {}, std::span<const double> censored_weights = {}) {
        PIPECAST_ASSERT(exit_weights.empty() || exit_weights.size() == exits.size());
        PIPECAST_ASSERT(censored_weights.empty() || censored_weights.size() == censored.size());
        t.reserve(exits.size());
        log_t.reserve(exits.size());
        wt.reserve(exits.size());
        for (std::size_t i = 0; i < exits.size(); ++i) {
            const double w = exit_weights.empty() ? 1.0 : exit_weights[i];
            if (!(w > 0.0)) continue;
            const double v = std::max(exits[i], min_dwell);
            const double l = std::log(v);
            t.push_back(v);
            log_t.push_back(l);
            wt.push_back(w);
            sum_t += w * v;
            sum_log += w * l;
            sum_log2 += w * (l * l);
            n += w;
        }
        events = t.size();
        for (std::size_t i = 0; i < censored.size(); ++i) {
            const double x = censored[i];
            const double w = censored_weights.empty() ? 1.0 : censored_weights[i];
            if (!(x > 0.0) || !(w > 0.0)) continue;
            c.push_back(x);
            log_c.push_back(std::log(x));
            wc.push_back(w);
            sum_c += w * x;
        }
    }
    [[nodiscard]] bool has_censoring() const noexcept { return !c.empty(); }
    [[nodiscard]] double mean_log() const noexcept { return sum_log / n; }
    [[nodiscard]] double var_log() const noexcept { return std::max(0.0, sum_log2 / n - mean_log() * mean_log()); }
};

/// Value, gradient and Hessian of a 2-parameter log-likelihood.
struct local_quadratic {
    double f = 0;
    std::array<double, 2> g{};
    std::array<double, 4> h{}; ///< row-major 2x2
};

/// 2x2 inverse of the negated Hessian (the covariance); nullopt unless positive definite.
template <class = void>
[[nodiscard]] std::optional<std::array<double, 4>> covariance(const std::array<double, 4>& h) {
    const double a = -h[0], b = -h[1], d = -h[3];
    const double det = a * d - b * b;
    if (!(a > 0.0 && det > 0.0 && std::isfinite(det))) return std::nullopt;
    return std::array<double, 4>{d / det, -b / det, -b / det, a / det};
}

struct newton_result {
    std::array<double, 2> x{};
    local_quadratic q;
    fit_status status = fit_status::failed;
    std::size_t iterations = 0;
};

/// Maximises f from x0 by Newton's method with a backtracking line search (gradient ascent
/// where the Hessian is not negative definite); steps are capped at `max_step` per
/// coordinate. f returns a local_quadratic (f = -inf outside the domain).
template <class F>
[[nodiscard]] newton_result maximise_2d(F&& f, std::array<double, 2> x, std::size_t max_iter, double max_step = 2.0) {
    newton_result r;
    local_quadratic q = f(x);
    if (!std::isfinite(q.f)) return r;
    for (std::size_t it = 1; it <= max_iter; ++it) {
        r.iterations = it;
        std::array<double, 2> d;
        const auto cov = covariance(q.h);
        if (cov) {
            d = {(*cov)[0] * q.g[0] + (*cov)[1] * q.g[1], (*cov)[2] * q.g[0] + (*cov)[3] * q.g[1]};
        } else {
            const double gn = std::hypot(q.g[0], q.g[1]);
            if (!(gn > 0.0)) break;
            d = {q.g[0] / gn * 0.1, q.g[1] / gn * 0.1};
        }
        const double big = std::max(std::abs(d[0]), std::abs(d[1]));
        if (big > max_step) d = {d[0] * max_step / big, d[1] * max_step / big};
        const double slope = q.g[0] * d[0] + q.g[1] * d[1];
        if (cov && slope < 1e-12 * (1.0 + std::abs(q.f)) && big < 1e-7) {
            r.status = fit_status::converged;
            break;
        }
        double step = 1.0;
        local_quadratic next;
        std::array<double, 2> y{};
        bool moved = false;
        for (int k = 0; k < 40; ++k, step *= 0.5) {
            y = {x[0] + step * d[0], x[1] + step * d[1]};
            next = f(y);
            if (std::isfinite(next.f) && next.f >= q.f + 1e-4 * step * slope) {
                moved = true;
                break;
            }
        }
        if (!moved) {
            // No ascent: at a maximum up to rounding if the Newton decrement is tiny.
            if (cov && slope < 1e-8 * (1.0 + std::abs(q.f))) r.status = fit_status::converged;
            break;
        }
        const double change = std::max(std::abs(y[0] - x[0]), std::abs(y[1] - x[1]));
        x = y;
        q = next;
        if (cov && change < 1e-10) {
            r.status = fit_status::converged;
            break;
        }
        if (it == max_iter) r.status = fit_status::max_iterations;
    }
    r.x = x;
    r.q = q;
    if (r.status == fit_status::converged && !covariance(q.h)) r.status = fit_status::failed;
    return r;
}

/// log Φc(z) = log P(Z > z) and the inverse Mills ratio h(z) = φ(z)/Φc(z), stable in both tails.
template <class = void>
void normal_tail(double z, double& log_sf, double& mills) {
    constexpr double log_sqrt_2pi = 0.91893853320467274178;
    if (z < 30.0) {
        const double sf = 0.5 * boost::math::erfc(z / std::numbers::sqrt2, boost_policy{});
        log_sf = std::log(sf);
        mills = std::exp(-0.5 * z * z - log_sqrt_2pi) / sf;
    } else { // asymptotic series (relative error < 1e-9 at z = 30)
        const double iz2 = 1.0 / (z * z);
        log_sf = -0.5 * z * z - std::log(z) - log_sqrt_2pi + std::log1p(-iz2 + 3.0 * iz2 * iz2 - 15.0 * iz2 * iz2 * iz2);
        mills = z / (1.0 - iz2 + 3.0 * iz2 * iz2 - 15.0 * iz2 * iz2 * iz2);
    }
}

template <class = void>
void set_aic(family_fit& f, double k) { f.aic = 2.0 * k - 2.0 * f.log_likelihood; }

/// Exponential: closed form θ = (Σt + Σc) / n.
template <class = void>
[[nodiscard]] family_fit fit_exponential(const dwell_sample& s) {
    family_fit f;
    f.family = dwell_family::exponential;
    if (s.events < 1 || !(s.n > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    const double theta = (s.sum_t + s.sum_c) / s.n;
    f.log_likelihood = -s.n * std::log(theta) - s.n;
    set_aic(f, 1);
    f.mean = theta;
    f.mean_se = theta / std::sqrt(s.n);
    f.parameters = {{"mean", theta, f.mean_se}};
    f.iterations = 0;
    f.status = fit_status::converged;
    f.dwell = dwell_distribution::exponential(theta);
    return f;
}

/// Weibull: profile likelihood in the shape k (the scale given k is closed form:
/// λ^k = Σ_all x^k / n), solved by Newton's method on the monotone score with a bracket.
template <class = void>
[[nodiscard]] family_fit fit_weibull(const dwell_sample& s, std::size_t max_iter) {
    family_fit f;
    f.family = dwell_family::weibull;
    if (s.events < 2 || !(s.var_log() > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    // Work with u = log x - g (g = mean log of the exits), shifted by u_max in the exponent.
    const double g = s.mean_log();
    double u_max = -std::numeric_limits<double>::infinity();
    for (double l : s.log_t) u_max = std::max(u_max, l - g);
    for (double l : s.log_c) u_max = std::max(u_max, l - g);
    const double sum_u_events = s.sum_log - s.n * g; // = 0 up to rounding
    auto moments = [&](double k, double& b, double& a, double& c2) {
        b = a = c2 = 0.0;
        auto acc = [&](const std::vector<double>& logs, const std::vector<double>& wts) {
            for (std::size_t i = 0; i < logs.size(); ++i) {
                const double u = logs[i] - g;
                const double w = wts[i] * std::exp(k * (u - u_max));
                b += w;
                a += w * u;
                c2 += w * u * u;
            }
        };
        acc(s.log_t, s.wt);
        acc(s.log_c, s.wc);
    };
    auto score = [&](double k) {
        double b, a, c2;
        moments(k, b, a, c2);
        const double ab = a / b;
        const double val = s.n / k + sum_u_events - s.n * ab;
        const double der = -s.n / (k * k) - s.n * (c2 / b - ab * ab);
        return std::pair<double, double>(val, der);
    };
    const double guess = std::clamp(std::numbers::pi / std::sqrt(6.0 * s.var_log()), 0.02, 50.0);
    boost::uintmax_t iters = max_iter;
    double k = guess;
    try {
        k = boost::math::tools::newton_raphson_iterate(score, guess, 1e-3, 1e3, 40, iters);
    } catch (const std::exception&) {
        f.status = fit_status::failed;
        return f;
    }
    f.iterations = static_cast<std::size_t>(iters);
    double b, a, c2;
    moments(k, b, a, c2);
    const double log_lambda = g + u_max + (std::log(b) - std::log(s.n)) / k;
    const double lambda = std::exp(log_lambda);
    f.log_likelihood = s.n * std::log(k) - s.n * k * log_lambda + (k - 1.0) * s.sum_log - s.n;
    set_aic(f, 2);
    // Observed information in (k, η = log λ): with w = (x/λ)^k, S0 = Σw (= n), S1 = Σ w log(x/λ),
    // S2 = Σ w log²(x/λ): H_ηη = -k² S0, H_kk = -n/k² - S2, H_kη = -n + S0 + k S1.
    double s0 = 0, s1 = 0, s2 = 0;
    auto acc = [&](const std::vector<double>& logs, const std::vector<double>& wts) {
        for (std::size_t i = 0; i < logs.size(); ++i) {
            const double v = logs[i] - log_lambda;
            const double w = wts[i] * std::exp(k * v);
            s0 += w;
            s1 += w * v;
            s2 += w * v * v;
        }
    };
    acc(s.log_t, s.wt);
    acc(s.log_c, s.wc);
    const std::array<double, 4> h{-s.n / (k * k) - s2, -s.n + s0 + k * s1, -s.n + s0 + k * s1, -k * k * s0};
    const double score_at = score(k).first;
    const bool finite = std::isfinite(k) && std::isfinite(lambda) && std::isfinite(f.log_likelihood);
    f.status = !finite                                                   ? fit_status::failed
               : iters >= max_iter                                       ? fit_status::max_iterations
               : std::abs(score_at) > 1e-6 * s.n                         ? fit_status::failed
                                                                         : fit_status::converged;
    if (!finite) return f;
    const auto cov = covariance(h);
    const double g1 = std::tgamma(1.0 + 1.0 / k);
    f.mean = lambda * g1;
    double se_k = nan_v, se_l = nan_v;
    if (cov) {
        se_k = std::sqrt((*cov)[0]);
        se_l = lambda * std::sqrt((*cov)[3]);
        const double dk = f.mean * (-1.0 / (k * k)) * boost::math::digamma(1.0 + 1.0 / k, boost_policy{});
        const double de = f.mean;
        f.mean_se = std::sqrt(std::max(0.0, dk * dk * (*cov)[0] + 2 * dk * de * (*cov)[1] + de * de * (*cov)[3]));
    }
    f.parameters = {{"shape", k, se_k}, {"scale", lambda, se_l}};
    if (f.status == fit_status::converged) {
        try {
            f.dwell = dwell_distribution::weibull(k, f.mean);
        } catch (const model_error&) {
            f.status = fit_status::failed;
        }
    }
    return f;
}

/// Gamma shape from s = log(mean) - mean(log) > 0 (the uncensored profile equation
/// log k - ψ(k) = s), by Newton's method from the Minka/Thom approximation.
template <class = void>
[[nodiscard]] std::optional<double> gamma_shape(double s, std::size_t max_iter, std::size_t& used) {
    if (!(s > 0.0) || !std::isfinite(s)) return std::nullopt;
    const double guess = (3.0 - s + std::sqrt((s - 3.0) * (s - 3.0) + 24.0 * s)) / (12.0 * s);
    auto eq = [s](double k) {
        return std::pair<double, double>(std::log(k) - boost::math::digamma(k, boost_policy{}) - s,
                                         1.0 / k - boost::math::trigamma(k, boost_policy{}));
    };
    boost::uintmax_t iters = max_iter;
    try {
        const double k = boost::math::tools::newton_raphson_iterate(eq, guess, 1e-6, 1e7, 45, iters);
        used = static_cast<std::size_t>(iters);
        return k;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

/// Gamma: closed-form scale and a 1-D shape equation without censoring; with censoring a
/// 2-D Newton method in (log k, log θ) from that estimate, the censored terms log Q(k, c/θ)
/// (Boost's regularised upper incomplete gamma) differentiated by central differences.
template <class = void>
[[nodiscard]] family_fit fit_gamma(const dwell_sample& s, std::size_t max_iter) {
    family_fit f;
    f.family = dwell_family::gamma;
    if (s.events < 2 || !(s.var_log() > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    std::size_t used = 0;
    const double mean_t = s.sum_t / s.n;
    const auto k0 = gamma_shape(std::log(mean_t) - s.mean_log(), max_iter, used);
    if (!k0) {
        f.status = fit_status::failed;
        return f;
    }
    // Exact part in (a, b) = (log k, log θ): ℓ_e = (k-1)Σlog t - Σt/θ - n k log θ - n lnΓ(k).
    auto exits_part = [&](double a, double b, local_quadratic& q) {
        const double k = std::exp(a), th = std::exp(b);
        const double lg = boost::math::lgamma(k, boost_policy{});
        const double psi = boost::math::digamma(k, boost_policy{});
        const double tri = boost::math::trigamma(k, boost_policy{});
        q.f = (k - 1.0) * s.sum_log - s.sum_t / th - s.n * k * b - s.n * lg;
        const double dk = s.sum_log - s.n * b - s.n * psi; // ∂/∂k
        const double db = s.sum_t / th - s.n * k;          // ∂/∂b
        q.g = {k * dk, db};
        q.h = {k * dk - k * k * s.n * tri, -s.n * k, -s.n * k, -s.sum_t / th};
    };
    auto censored_sum = [&](double a, double b) {
        const double k = std::exp(a), th = std::exp(b);
        double acc = 0.0;
        for (std::size_t i = 0; i < s.c.size(); ++i) {
            double q;
            try {
                q = boost::math::gamma_q(k, s.c[i] / th, boost_policy{});
            } catch (const boost::math::evaluation_error&) {
                // Boost's series for Q(k, x) gives up (10^6 terms) at shapes near 10^12 with x
                // near k (fuzz finding 5): no usable likelihood there, so the search backs off.
                return -std::numeric_limits<double>::infinity();
            }
            acc += q > 0.0 ? s.wc[i] * std::log(q) : -std::numeric_limits<double>::infinity();
        }
        return acc;
    };
    auto loglik = [&](const std::array<double, 2>& x) {
        local_quadratic q;
        if (!(std::abs(x[0]) < 30.0 && std::abs(x[1]) < 700.0)) {
            q.f = -std::numeric_limits<double>::infinity();
            return q;
        }
        exits_part(x[0], x[1], q);
        if (!s.has_censoring()) return q;
        constexpr double h = 1e-4;
        const double c0 = censored_sum(x[0], x[1]);
        const double ap = censored_sum(x[0] + h, x[1]), am = censored_sum(x[0] - h, x[1]);
        const double bp = censored_sum(x[0], x[1] + h), bm = censored_sum(x[0], x[1] - h);
        const double pp = censored_sum(x[0] + h, x[1] + h), mm = censored_sum(x[0] - h, x[1] - h);
        q.f += c0;
        q.g[0] += (ap - am) / (2 * h);
        q.g[1] += (bp - bm) / (2 * h);
        const double haa = (ap - 2 * c0 + am) / (h * h), hbb = (bp - 2 * c0 + bm) / (h * h);
        const double hab = (pp - ap - bp + 2 * c0 - am - bm + mm) / (2 * h * h);
        q.h[0] += haa;
        q.h[3] += hbb;
        q.h[1] += hab;
        q.h[2] += hab;
        return q;
    };
    const std::array<double, 2> x0{std::log(*k0), std::log(mean_t / *k0)};
    newton_result r;
    if (!s.has_censoring()) {
        r.x = x0;
        r.q = loglik(x0);
        r.status = fit_status::converged;
        r.iterations = used;
    } else {
        r = maximise_2d(loglik, x0, max_iter);
    }
    const double k = std::exp(r.x[0]), th = std::exp(r.x[1]);
    f.iterations = r.iterations;
    f.status = r.status;
    f.log_likelihood = r.q.f;
    set_aic(f, 2);
    f.mean = k * th;
    const auto cov = covariance(r.q.h);
    if (cov) {
        f.parameters = {{"shape", k, k * std::sqrt((*cov)[0])}, {"scale", th, th * std::sqrt((*cov)[3])}};
        f.mean_se = f.mean * std::sqrt(std::max(0.0, (*cov)[0] + 2 * (*cov)[1] + (*cov)[3]));
    } else {
        f.parameters = {{"shape", k, nan_v}, {"scale", th, nan_v}};
    }
    if (f.status == fit_status::converged) {
        try {
            f.dwell = dwell_distribution::gamma(k, f.mean);
        } catch (const model_error&) {
            f.status = fit_status::failed;
        }
    }
    return f;
}

/// Lognormal: closed form without censoring (mean and variance of log t); with censoring a
/// 2-D Newton method in (μ, log σ) with analytic derivatives of log Φc.
template <class = void>
[[nodiscard]] family_fit fit_lognormal(const dwell_sample& s, std::size_t max_iter) {
    family_fit f;
    f.family = dwell_family::lognormal;
    if (s.events < 2 || !(s.var_log() > 0.0)) {
        f.status = fit_status::too_few_events;
        return f;
    }
    constexpr double log_sqrt_2pi = 0.91893853320467274178;
    auto loglik = [&](const std::array<double, 2>& x) {
        local_quadratic q;
        const double mu = x[0], ls = x[1];
        if (!(std::abs(ls) < 300.0 && std::isfinite(mu))) {
            q.f = -std::numeric_limits<double>::infinity();
            return q;
        }
        const double sg = std::exp(ls), is2 = std::exp(-2.0 * ls);
        const double s1 = s.sum_log - s.n * mu;
        const double s2 = s.sum_log2 - 2.0 * mu * s.sum_log + s.n * mu * mu;
        q.f = -s.n * ls - 0.5 * s2 * is2 - s.sum_log - s.n * log_sqrt_2pi;
        q.g = {s1 * is2, -s.n + s2 * is2};
        q.h = {-s.n * is2, -2.0 * s1 * is2, -2.0 * s1 * is2, -2.0 * s2 * is2};
        for (std::size_t i = 0; i < s.log_c.size(); ++i) {
            const double w = s.wc[i];
            const double z = (s.log_c[i] - mu) / sg;
            double lsf, h;
            normal_tail(z, lsf, h);
            const double g2 = -h * (h - z); // second derivative of log Φc
            q.f += w * lsf;
            q.g[0] += w * (h / sg);
            q.g[1] += w * (h * z);
            q.h[0] += w * (g2 / (sg * sg));
            const double cross = g2 * z / sg - h / sg;
            q.h[1] += w * cross;
            q.h[2] += w * cross;
            q.h[3] += w * (g2 * z * z - h * z);
        }
        return q;
    };
    const std::array<double, 2> x0{s.mean_log(), 0.5 * std::log(s.var_log())};
    const newton_result r = s.has_censoring() ? maximise_2d(loglik, x0, max_iter)
                                              : newton_result{x0, loglik(x0), fit_status::converged, 0};
    const double mu = r.x[0], sg = std::exp(r.x[1]);
    f.iterations = r.iterations;
    f.status = r.status;
    f.log_likelihood = r.q.f;
    set_aic(f, 2);
    f.mean = std::exp(mu + 0.5 * sg * sg);
    const auto cov = covariance(r.q.h);
    if (cov) {
        f.parameters = {{"mu", mu, std::sqrt((*cov)[0])}, {"sigma", sg, sg * std::sqrt((*cov)[3])}};
        const double dm = f.mean, ds = f.mean * sg * sg; // ∂mean/∂μ, ∂mean/∂log σ
        f.mean_se = std::sqrt(std::max(0.0, dm * dm * (*cov)[0] + 2 * dm * ds * (*cov)[1] + ds * ds * (*cov)[3]));
    } else {
        f.parameters = {{"mu", mu, nan_v}, {"sigma", sg, nan_v}};
    }
    if (f.status == fit_status::converged) {
        try {
            f.dwell = dwell_distribution::lognormal_log(mu, sg);
        } catch (const model_error&) {
            f.status = fit_status::failed;
        }
    }
    return f;
}

} // namespace detail

} // namespace pipecast
