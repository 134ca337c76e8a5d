// Tests of dwell.hpp: the dwell-time families, their parameterisations, and the residual
// (age-conditioned) distributions.
#include <pipecast/model/dwell.hpp>

#include "test_support.hpp"
#include <boost/math/distributions/exponential.hpp>
#include <boost/math/distributions/gamma.hpp>
#include <boost/math/distributions/lognormal.hpp>
#include <boost/math/distributions/weibull.hpp>
#include <boost/math/quadrature/exp_sinh.hpp>
#include <boost/math/quadrature/tanh_sinh.hpp>
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_dwell {

using pipecast::dwell_distribution;
using pipecast::dwell_family;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

/// |a - b| <= tol * max(|b|, tiny): a relative check that still works at 0.
bool close_rel(double a, double b, double tol) {
    return std::abs(a - b) <= tol * std::max(std::abs(b), 1e-300);
}

using pipecast_test::check_throws;

/// ∫_lo^hi pdf(d, u) g(u) du by double-exponential quadrature (hi may be +inf): an
/// integration of the base density, independent of the library's cdf/survival code.
template <class G>
double integrate_pdf(const dwell_distribution& d, double lo, double hi, G g) {
    auto f = [&](double u) {
        const double p = pipecast::pdf(d, u);
        return std::isfinite(p) ? p * g(u) : 0.0;
    };
    if (std::isinf(hi)) {
        boost::math::quadrature::exp_sinh<double> es;
        // shift so that the integrand starts at 0 (exp_sinh integrates over (a, ∞))
        return es.integrate([&](double x) { return f(lo + x); }, 0.0, inf, 1e-13);
    }
    boost::math::quadrature::tanh_sinh<double> ts;
    return ts.integrate(f, lo, hi, 1e-13);
}

double integrate_pdf(const dwell_distribution& d, double lo, double hi) {
    return integrate_pdf(d, lo, hi, [](double) { return 1.0; });
}

const std::vector<double> p_grid = {1e-12, 1e-6, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1 - 1e-9};

} // namespace

TEST_CASE("dwell") {
    SUBCASE("exponential: parameters, hand values, Boost.Math") {
        const auto d = dwell_distribution::exponential(2.0);
        CHECK(d.family() == dwell_family::exponential);
        CHECK(d.mean() == 2.0);
        CHECK(d.scale() == 2.0);
        CHECK(d.sd() == 2.0);
        CHECK(pipecast::variance(d) == 4.0);
        CHECK(std::isnan(d.shape()));
        // hand values: rate 1/2
        CHECK(close_rel(pipecast::cdf(d, 1.0), 1.0 - std::exp(-0.5), 1e-15));
        CHECK(close_rel(pipecast::survival(d, 1.0), std::exp(-0.5), 1e-15));
        CHECK(close_rel(pipecast::pdf(d, 1.0), 0.5 * std::exp(-0.5), 1e-15));
        CHECK(close_rel(pipecast::quantile(d, 0.5), 2.0 * std::log(2.0), 1e-15));
        CHECK(pipecast::pdf(d, 0.0) == 0.5);
        CHECK(pipecast::cdf(d, 0.0) == 0.0);
        CHECK(pipecast::cdf(d, -1.0) == 0.0);
        CHECK(pipecast::survival(d, -1.0) == 1.0);
        CHECK(pipecast::pdf(d, -1.0) == 0.0);
        CHECK(pipecast::cdf(d, inf) == 1.0);
        CHECK(pipecast::survival(d, inf) == 0.0);
        CHECK(pipecast::quantile(d, 0.0) == 0.0);
        CHECK(pipecast::quantile(d, 1.0) == inf);
        const boost::math::exponential_distribution<double> b(0.5);
        for (double t : {0.01, 0.3, 1.0, 4.0, 17.0, 60.0}) {
            CHECK(close_rel(pipecast::cdf(d, t), boost::math::cdf(b, t), 1e-14));
            CHECK(close_rel(pipecast::survival(d, t), boost::math::cdf(boost::math::complement(b, t)), 1e-14));
            CHECK(close_rel(pipecast::pdf(d, t), boost::math::pdf(b, t), 1e-14));
        }
    }

    SUBCASE("gamma: mean + shape parameterisation, hand values, Boost.Math") {
        const auto d = dwell_distribution::gamma(2.0, 4.0); // θ = 2
        CHECK(d.shape() == 2.0);
        CHECK(d.scale() == 2.0);
        CHECK(d.mean() == 4.0);
        CHECK(close_rel(d.sd(), 4.0 / std::sqrt(2.0), 1e-15));
        // shape 2, θ = 2: S(t) = e^{-t/2} (1 + t/2), f(t) = t e^{-t/2} / 4
        for (double t : {0.5, 1.0, 3.0, 10.0}) {
            CHECK(close_rel(pipecast::survival(d, t), std::exp(-t / 2) * (1 + t / 2), 1e-14));
            CHECK(close_rel(pipecast::cdf(d, t), 1 - std::exp(-t / 2) * (1 + t / 2), 1e-14));
            CHECK(close_rel(pipecast::pdf(d, t), t * std::exp(-t / 2) / 4, 1e-14));
        }
        for (double k : {0.3, 1.0, 2.0, 7.5}) {
            const auto g = dwell_distribution::gamma(k, 14.0);
            const boost::math::gamma_distribution<double> b(k, 14.0 / k);
            CHECK(close_rel(boost::math::mean(b), g.mean(), 1e-14));
            CHECK(close_rel(boost::math::standard_deviation(b), g.sd(), 1e-14));
            for (double t : {0.1, 2.0, 14.0, 40.0, 100.0}) {
                CHECK(close_rel(pipecast::cdf(g, t), boost::math::cdf(b, t), 1e-13));
                CHECK(close_rel(pipecast::survival(g, t), boost::math::cdf(boost::math::complement(b, t)), 1e-13));
                CHECK(close_rel(pipecast::pdf(g, t), boost::math::pdf(b, t), 1e-13));
            }
        }
    }

    SUBCASE("lognormal: mean + sd parameterisation, log parameters, Boost.Math") {
        const auto d = dwell_distribution::lognormal(10.0, 6.0);
        const double s2 = std::log(1.0 + 0.36);
        CHECK(close_rel(d.log_sigma(), std::sqrt(s2), 1e-15));
        CHECK(close_rel(d.log_mu(), std::log(10.0) - 0.5 * s2, 1e-15));
        CHECK(d.mean() == 10.0);
        CHECK(d.sd() == 6.0);
        const boost::math::lognormal_distribution<double> b(d.log_mu(), d.log_sigma());
        CHECK(close_rel(boost::math::mean(b), 10.0, 1e-14));
        CHECK(close_rel(boost::math::standard_deviation(b), 6.0, 1e-14));
        for (double t : {0.5, 3.0, 10.0, 25.0, 80.0}) {
            const double z = (std::log(t) - d.log_mu()) / d.log_sigma();
            CHECK(close_rel(pipecast::cdf(d, t), 0.5 * std::erfc(-z / std::sqrt(2.0)), 1e-13));
            CHECK(close_rel(pipecast::survival(d, t), 0.5 * std::erfc(z / std::sqrt(2.0)), 1e-13));
            CHECK(close_rel(pipecast::pdf(d, t), boost::math::pdf(b, t), 1e-13));
        }
        // from log parameters: the mean and sd follow
        const auto e = dwell_distribution::lognormal_log(1.5, 0.4);
        CHECK(e.log_mu() == 1.5);
        CHECK(e.log_sigma() == 0.4);
        CHECK(close_rel(e.mean(), std::exp(1.5 + 0.08), 1e-15));
        CHECK(close_rel(e.sd(), e.mean() * std::sqrt(std::expm1(0.16)), 1e-14));
    }

    SUBCASE("weibull: mean + shape parameterisation, hand values, Boost.Math") {
        for (double k : {0.6, 1.0, 1.5, 3.0, 12.0}) {
            const auto d = dwell_distribution::weibull(k, 18.0);
            const double lam = 18.0 / std::tgamma(1.0 + 1.0 / k);
            CHECK(close_rel(d.scale(), lam, 1e-15));
            CHECK(d.shape() == k);
            const boost::math::weibull_distribution<double> b(k, lam);
            CHECK(close_rel(boost::math::mean(b), 18.0, 1e-13));
            CHECK(close_rel(boost::math::standard_deviation(b), d.sd(), 1e-12));
            for (double t : {0.2, 5.0, 18.0, 50.0}) {
                CHECK(close_rel(pipecast::survival(d, t), std::exp(-std::pow(t / lam, k)), 1e-13));
                CHECK(close_rel(pipecast::cdf(d, t), boost::math::cdf(b, t), 1e-13));
                CHECK(close_rel(pipecast::pdf(d, t), boost::math::pdf(b, t), 1e-13));
            }
        }
        // shape 1 is the exponential
        const auto w1 = dwell_distribution::weibull(1.0, 3.0);
        CHECK(close_rel(pipecast::cdf(w1, 2.0), 1 - std::exp(-2.0 / 3.0), 1e-15));
    }

    SUBCASE("fixed") {
        const auto d = dwell_distribution::fixed(5.0);
        CHECK(d.mean() == 5.0);
        CHECK(d.sd() == 0.0);
        CHECK(pipecast::variance(d) == 0.0);
        CHECK(pipecast::cdf(d, 4.999) == 0.0);
        CHECK(pipecast::cdf(d, 5.0) == 1.0);
        CHECK(pipecast::survival(d, 4.999) == 1.0);
        CHECK(pipecast::survival(d, 5.0) == 0.0);
        CHECK(pipecast::pdf(d, 5.0) == 1.0); // the mass at 5
        CHECK(pipecast::pdf(d, 4.0) == 0.0);
        for (double p : {0.0, 0.3, 1.0}) CHECK(pipecast::quantile(d, p) == 5.0);
    }

    SUBCASE("empirical: equal weights and explicit weights") {
        const auto d = dwell_distribution::empirical({5.0, 2.0, 1.0, 2.0}); // sorted: 1, 2, 2, 5
        CHECK(d.family() == dwell_family::empirical);
        CHECK(d.values().size() == 3);
        CHECK(d.values()[0] == 1.0);
        CHECK(d.values()[1] == 2.0);
        CHECK(d.values()[2] == 5.0);
        CHECK(d.mean() == 2.5);
        CHECK(close_rel(d.sd(), 1.5, 1e-15)); // ((1.5)² + 2(0.5)² + (2.5)²)/4 = 9/4
        CHECK(pipecast::cdf(d, 0.99) == 0.0);
        CHECK(pipecast::cdf(d, 1.0) == 0.25);
        CHECK(pipecast::cdf(d, 2.0) == 0.75);
        CHECK(pipecast::cdf(d, 4.0) == 0.75);
        CHECK(pipecast::cdf(d, 5.0) == 1.0);
        CHECK(pipecast::survival(d, 2.0) == 0.25);
        CHECK(pipecast::pdf(d, 2.0) == 0.5);
        CHECK(pipecast::pdf(d, 3.0) == 0.0);
        CHECK(pipecast::quantile(d, 0.25) == 1.0);
        CHECK(pipecast::quantile(d, 0.26) == 2.0);
        CHECK(pipecast::quantile(d, 0.75) == 2.0);
        CHECK(pipecast::quantile(d, 0.76) == 5.0);
        CHECK(pipecast::quantile(d, 1.0) == 5.0);

        // weights: 3 (1), 1 (2), 2 (1) -> 1: 1/2, 2: 1/4, 3: 1/4; zero weights drop a point
        const auto w = dwell_distribution::empirical({3.0, 1.0, 2.0, 9.0}, {1.0, 2.0, 1.0, 0.0});
        CHECK(w.values().size() == 3);
        CHECK(w.mean() == 1.75);
        CHECK(pipecast::cdf(w, 1.0) == 0.5);
        CHECK(pipecast::cdf(w, 2.5) == 0.75);
        CHECK(pipecast::cdf(w, 8.0) == 1.0);
        CHECK(close_rel(w.sd(), std::sqrt(0.5 * 0.5625 + 0.25 * 0.0625 + 0.25 * 1.5625), 1e-15));
        // a mass at 0 counts at t = 0
        const auto z = dwell_distribution::empirical({0.0, 4.0});
        CHECK(pipecast::cdf(z, 0.0) == 0.5);
        CHECK(pipecast::survival(z, 0.0) == 0.5);
        // variance of values far from 0 with a small spread (two-pass, no cancellation)
        const auto far = dwell_distribution::empirical({1e8 + 1.0, 1e8 + 3.0});
        CHECK(close_rel(far.sd(), 1.0, 1e-9));
    }

    SUBCASE("cdf(quantile(p)) = p and survival(survival_quantile(q)) = q on a grid") {
        const std::vector<dwell_distribution> ds = {
            dwell_distribution::exponential(7.0),       dwell_distribution::gamma(2.0, 14.0),
            dwell_distribution::gamma(0.4, 3.0),        dwell_distribution::lognormal(10.0, 6.0),
            dwell_distribution::weibull(1.5, 18.0),     dwell_distribution::weibull(0.7, 5.0)};
        for (const auto& d : ds) {
            INFO("family " << pipecast::to_string(d.family()));
            for (double p : p_grid) {
                CHECK(close_rel(pipecast::cdf(d, pipecast::quantile(d, p)), p, 1e-11));
                CHECK(close_rel(pipecast::survival(d, pipecast::survival_quantile(d, p)), p, 1e-11));
            }
            // far tail: survival_quantile reaches q = 1e-30 where 1 - cdf is 0
            const double t = pipecast::survival_quantile(d, 1e-30);
            CHECK(close_rel(pipecast::survival(d, t), 1e-30, 1e-10));
            CHECK(pipecast::cdf(d, t) == 1.0);
        }
        // empirical: quantile is the smallest support point with cdf >= p
        const auto e = dwell_distribution::empirical({1.0, 2.0, 3.0, 4.0});
        for (double p : p_grid) CHECK(pipecast::cdf(e, pipecast::quantile(e, p)) >= p);
    }

    SUBCASE("survival is accurate in the far tail (not 1 - cdf)") {
        const auto ex = dwell_distribution::exponential(2.0);
        CHECK(close_rel(pipecast::survival(ex, 150.0), std::exp(-75.0), 1e-13));
        const auto g = dwell_distribution::gamma(2.0, 4.0); // θ = 2
        CHECK(close_rel(pipecast::survival(g, 200.0), std::exp(-100.0) * 101.0, 1e-12));
        const auto w = dwell_distribution::weibull(1.5, 18.0);
        const double lam = w.scale();
        CHECK(close_rel(pipecast::survival(w, 400.0), std::exp(-std::pow(400.0 / lam, 1.5)), 1e-12));
        const auto ln = dwell_distribution::lognormal(10.0, 6.0);
        const double z = (std::log(500.0) - ln.log_mu()) / ln.log_sigma();
        CHECK(close_rel(pipecast::survival(ln, 500.0), 0.5 * std::erfc(z / std::sqrt(2.0)), 1e-11));
        for (double t : {150.0, 200.0, 400.0}) CHECK(pipecast::cdf(ex, t) == 1.0);
        CHECK(pipecast::survival(ex, 150.0) > 0.0);
    }

    SUBCASE("residual of the exponential is the exponential (memoryless)") {
        const auto d = dwell_distribution::exponential(3.0);
        for (double a : {0.0, 1.0, 10.0, 100.0, 5000.0}) {
            const auto r = pipecast::residual(d, a);
            CHECK_FALSE(r.overdue());
            CHECK(pipecast::mean(r) == 3.0);
            for (double t : {0.0, 0.5, 3.0, 20.0}) {
                CHECK(close_rel(pipecast::survival(r, t), pipecast::survival(d, t), 1e-15));
                CHECK(close_rel(pipecast::cdf(r, t), pipecast::cdf(d, t), 1e-15));
                CHECK(close_rel(pipecast::pdf(r, t), pipecast::pdf(d, t), 1e-15)); // finite at any age
            }
            for (double p : {0.1, 0.5, 0.9}) CHECK(pipecast::quantile(r, p) == pipecast::quantile(d, p));
        }
    }

    SUBCASE("residual of continuous families against integration of the base density") {
        const std::vector<dwell_distribution> ds = {
            dwell_distribution::gamma(2.0, 14.0),  dwell_distribution::gamma(0.5, 6.0),
            dwell_distribution::lognormal(10.0, 6.0), dwell_distribution::lognormal(5.0, 12.0),
            dwell_distribution::weibull(1.5, 18.0), dwell_distribution::weibull(0.7, 5.0),
            dwell_distribution::weibull(3.0, 10.0)};
        for (const auto& d : ds) {
            for (double rel_age : {0.0, 0.3, 1.0, 2.5, 5.0}) {
                const double a = rel_age * d.mean();
                INFO("family " << pipecast::to_string(d.family()) << " mean " << d.mean() << " age " << a);
                const auto r = pipecast::residual(d, a);
                const double s_a = integrate_pdf(d, a, inf); // P(T > a) by quadrature
                REQUIRE(s_a > 1e-200);
                CHECK(close_rel(r.survival_at_age(), a == 0.0 ? 1.0 : s_a, 1e-9));
                for (double rel_t : {0.05, 0.5, 1.0, 3.0}) {
                    const double t = rel_t * d.mean();
                    const double s_rt = integrate_pdf(d, a + t, inf) / s_a;
                    CHECK(close_rel(pipecast::survival(r, t), s_rt, 1e-8));
                    CHECK(std::abs(pipecast::cdf(r, t) - (1.0 - s_rt)) <= 1e-9);
                    CHECK(close_rel(pipecast::pdf(r, t), pipecast::pdf(d, a + t) / s_a, 1e-8));
                }
                // E[T - a | T > a] = ∫_a^∞ (u - a) f(u) du / S(a)
                const double m = integrate_pdf(d, a, inf, [a](double u) { return u - a; }) / s_a;
                CHECK(close_rel(pipecast::mean(r), m, 1e-8));
                // the quantile inverts the (integrated) residual cdf
                for (double p : {0.01, 0.25, 0.5, 0.9, 0.999}) {
                    const double t = pipecast::quantile(r, p);
                    const double s_rt = integrate_pdf(d, a + t, inf) / s_a;
                    CHECK(close_rel(1.0 - s_rt, p, 1e-7));
                    CHECK(close_rel(pipecast::cdf(r, t), p, 1e-10));
                }
                CHECK(pipecast::quantile(r, 0.0) <= 1e-9 * (a + d.mean()));
                CHECK(pipecast::quantile(r, 1.0) == inf);
            }
        }
    }

    SUBCASE("residual of a gamma(2) at large ages: closed form") {
        // shape 2, scale θ: S(a + t)/S(a) = e^{-u} (1 + x + u)/(1 + x), x = a/θ, u = t/θ;
        // E[T - a | T > a] = θ (2 + x)/(1 + x) -> θ (the hazard tends to 1/θ).
        const double th = 7.0;
        const auto d = dwell_distribution::gamma(2.0, 2.0 * th);
        for (double x : {10.0, 40.0, 100.0, 300.0}) {
            const auto r = pipecast::residual(d, x * th);
            INFO("x = " << x);
            CHECK_FALSE(r.overdue());
            CHECK(close_rel(pipecast::mean(r), th * (2 + x) / (1 + x), 1e-12));
            for (double u : {0.1, 1.0, 5.0}) {
                CHECK(close_rel(pipecast::survival(r, u * th), std::exp(-u) * (1 + x + u) / (1 + x), 1e-12));
            }
            for (double p : {0.1, 0.5, 0.99}) {
                const double u = pipecast::quantile(r, p) / th;
                CHECK(close_rel(std::exp(-u) * (1 + x + u) / (1 + x), 1 - p, 1e-10));
            }
        }
    }

    SUBCASE("residual of a Weibull at large ages: closed forms stay finite and accurate") {
        // x = (a/λ)^k; mean = (λ/k) e^x Γ(1/k, x) ~ (λ/k) x^{s-1} (1 + (s-1)/x + (s-1)(s-2)/x² + ...)
        for (double k : {0.7, 1.5, 3.0}) {
            const auto d = dwell_distribution::weibull(k, 10.0);
            const double lam = d.scale(), s = 1.0 / k;
            for (double x : {800.0, 1e4, 1e6}) { // survival(a) underflows to 0 here
                const double a = lam * std::pow(x, 1.0 / k);
                const auto r = pipecast::residual(d, a);
                INFO("k " << k << " x " << x);
                CHECK_FALSE(r.overdue());
                const double series =
                    lam / k * std::pow(x, s - 1) *
                    (1 + (s - 1) / x + (s - 1) * (s - 2) / (x * x) + (s - 1) * (s - 2) * (s - 3) / (x * x * x));
                CHECK(std::isfinite(pipecast::mean(r)));
                CHECK(close_rel(pipecast::mean(r), series, 1e-9));
                // survival exp(x_a - x_{a+t}) against long double arithmetic
                for (double t : {1e-3 * a / x, 0.1 * a / x, a / x}) {
                    const long double xa = std::pow(static_cast<long double>(a) / lam, static_cast<long double>(k));
                    const long double xt = std::pow((static_cast<long double>(a) + t) / lam, static_cast<long double>(k));
                    const double want = static_cast<double>(std::exp(xa - xt));
                    CHECK(close_rel(pipecast::survival(r, t), want, 1e-9));
                    CHECK(std::isfinite(pipecast::pdf(r, t)));
                }
                for (double p : {0.01, 0.5, 0.99}) {
                    const double t = pipecast::quantile(r, p);
                    CHECK(t > 0.0);
                    CHECK(close_rel(pipecast::cdf(r, t), p, 1e-9));
                }
            }
            // tiny ages: the residual is the distribution itself (no 0·∞ in the closed forms)
            for (double a : {1e-300, 1e-12}) {
                const auto r = pipecast::residual(d, a);
                for (double t : {0.5, 10.0, 100.0}) {
                    const long double xa = std::pow(static_cast<long double>(a) / lam, static_cast<long double>(k));
                    const long double xt = std::pow((static_cast<long double>(a) + t) / lam, static_cast<long double>(k));
                    CHECK(close_rel(pipecast::survival(r, t), static_cast<double>(std::exp(xa - xt)), 1e-13));
                    CHECK(close_rel(pipecast::survival(r, t), pipecast::survival(d, t), 1e-8)); // ≈ the base
                }
                for (double p : {0.1, 0.5, 0.9}) { // λ (x_a + c)^{1/k} - a in long double
                    const long double xa = std::pow(static_cast<long double>(a) / lam, static_cast<long double>(k));
                    const long double c = -std::log1p(-static_cast<long double>(p));
                    const double want = static_cast<double>(lam * std::pow(xa + c, 1.0L / k) - a);
                    CHECK(close_rel(pipecast::quantile(r, p), want, 1e-13));
                }
                CHECK(close_rel(pipecast::mean(r), d.mean(), 1e-9));
            }
            // moderate ages: e^x Γ(1/k, x) evaluated by Boost and by the continued fraction
            // agree where the two branches meet
            const double lo = pipecast::detail::scaled_upper_gamma(s, 39.999999);
            const double hi = pipecast::detail::scaled_upper_gamma(s, 40.000001);
            CHECK(close_rel(lo, hi, 1e-6));
        }
    }

    SUBCASE("residual of a fixed dwell: the rest of the time, then overdue") {
        const auto d = dwell_distribution::fixed(5.0);
        const auto r = pipecast::residual(d, 3.0);
        CHECK_FALSE(r.overdue());
        CHECK(pipecast::mean(r) == 2.0);
        CHECK(pipecast::cdf(r, 1.999) == 0.0);
        CHECK(pipecast::cdf(r, 2.0) == 1.0);
        CHECK(pipecast::survival(r, 1.999) == 1.0);
        CHECK(pipecast::quantile(r, 0.3) == 2.0);
        for (double age : {5.0, 6.0, 100.0}) { // overdue: leaves at once
            const auto o = pipecast::residual(d, age);
            CHECK(o.overdue());
            CHECK(o.survival_at_age() == 0.0);
            CHECK(pipecast::mean(o) == 0.0);
            CHECK(pipecast::cdf(o, 0.0) == 1.0);
            CHECK(pipecast::survival(o, 0.0) == 0.0);
            CHECK(pipecast::quantile(o, 0.5) == 0.0);
            CHECK(pipecast::pdf(o, 0.0) == 1.0);
        }
    }

    SUBCASE("residual of an empirical dwell") {
        const auto d = dwell_distribution::empirical({1.0, 2.0, 2.0, 5.0});
        // age 1.5: T > 1.5 leaves {2: 2/3, 5: 1/3}, so the residual is {0.5: 2/3, 3.5: 1/3}
        const auto r = pipecast::residual(d, 1.5);
        CHECK(close_rel(r.survival_at_age(), 0.75, 1e-15));
        CHECK(close_rel(pipecast::mean(r), 2.0 / 3 * 0.5 + 1.0 / 3 * 3.5, 1e-15));
        CHECK(close_rel(pipecast::survival(r, 0.4), 1.0, 1e-15));
        CHECK(close_rel(pipecast::survival(r, 0.5), 1.0 / 3, 1e-15));
        CHECK(close_rel(pipecast::cdf(r, 3.5), 1.0, 1e-15));
        CHECK(close_rel(pipecast::pdf(r, 0.5), 2.0 / 3, 1e-15));
        CHECK(pipecast::quantile(r, 0.5) == 0.5);
        CHECK(pipecast::quantile(r, 0.7) == 3.5);
        // age exactly on a support point: T > 1 leaves {2, 2, 5}
        const auto r1 = pipecast::residual(d, 1.0);
        CHECK(close_rel(pipecast::mean(r1), 2.0 / 3 * 1.0 + 1.0 / 3 * 4.0, 1e-15));
        CHECK(pipecast::quantile(r1, 0.6) == 1.0);
        // age 0 is the distribution itself, including a mass at 0
        const auto z = dwell_distribution::empirical({0.0, 4.0});
        const auto r0 = pipecast::residual(z, 0.0);
        CHECK(pipecast::mean(r0) == 2.0);
        CHECK(pipecast::cdf(r0, 0.0) == 0.5);
        CHECK(pipecast::quantile(r0, 0.25) == 0.0);
        CHECK(pipecast::quantile(r0, 0.75) == 4.0);
        // past the largest sample: overdue
        const auto o = pipecast::residual(d, 5.0);
        CHECK(o.overdue());
        CHECK(pipecast::mean(o) == 0.0);
    }

    SUBCASE("equality, including parameters a family does not use (NaN)") {
        CHECK(dwell_distribution::exponential(7.0) == dwell_distribution::exponential(7.0));
        CHECK_FALSE(dwell_distribution::exponential(7.0) == dwell_distribution::exponential(7.5));
        CHECK(dwell_distribution::gamma(2, 14) == dwell_distribution::gamma(2, 14));
        CHECK_FALSE(dwell_distribution::gamma(2, 14) == dwell_distribution::weibull(2, 14));
        CHECK(dwell_distribution::lognormal(10, 6) == dwell_distribution::lognormal(10, 6));
        CHECK(dwell_distribution::fixed(3) == dwell_distribution::fixed(3));
        CHECK(dwell_distribution::empirical({1, 2}) == dwell_distribution::empirical({2, 1}));
        CHECK_FALSE(dwell_distribution::empirical({1, 2}) == dwell_distribution::empirical({1, 3}));
    }

    SUBCASE("bad parameters throw model_error naming the parameter") {
        using pipecast::model_error;
        for (double bad : {0.0, -1.0, nan_v, inf}) {
            check_throws<model_error>([&] { (void)dwell_distribution::exponential(bad); }, {"exponential", "mean"});
            check_throws<model_error>([&] { (void)dwell_distribution::gamma(bad, 1.0); }, {"gamma", "shape"});
            check_throws<model_error>([&] { (void)dwell_distribution::gamma(2.0, bad); }, {"gamma", "mean"});
            check_throws<model_error>([&] { (void)dwell_distribution::lognormal(bad, 1.0); }, {"lognormal", "mean"});
            check_throws<model_error>([&] { (void)dwell_distribution::lognormal(1.0, bad); }, {"lognormal", "sd"});
            check_throws<model_error>([&] { (void)dwell_distribution::lognormal_log(0.0, bad); }, {"lognormal", "sigma"});
            check_throws<model_error>([&] { (void)dwell_distribution::weibull(bad, 1.0); }, {"weibull", "shape"});
            check_throws<model_error>([&] { (void)dwell_distribution::weibull(1.5, bad); }, {"weibull", "mean"});
            check_throws<model_error>([&] { (void)dwell_distribution::fixed(bad); }, {"fixed", "value"});
        }
        check_throws<model_error>([] { (void)dwell_distribution::lognormal_log(nan_v, 1.0); }, {"lognormal", "mu"});
        check_throws<model_error>([] { (void)dwell_distribution::weibull(0.001, 1.0); }, {"weibull", "shape 0.001"});
        check_throws<model_error>([] { (void)dwell_distribution::exponential(1e-320); }, {"exponential", "rate"});
        check_throws<model_error>([] { (void)dwell_distribution::gamma(1e-300, 1e10); }, {"gamma", "scale"});
        // issue 11: shape 1e-300 hung the simulator's sampler, 1e12 made Boost's series give up
        // ("internal error"), 1e20 hung the funnel's residuals of a book
        for (double k : {1e-300, 1e-7, 2e6, 1e12, 1e20, 1e300})
            check_throws<model_error>([k] { (void)dwell_distribution::gamma(k, 14.0); },
                                      {"gamma dwell: shape", "is outside [1e-06, 1e+06]"});
        check_throws<model_error>([] { (void)dwell_distribution::gamma(1e20, 14.0); }, {"use a fixed dwell"});
        CHECK(dwell_distribution::gamma(1e-6, 14.0).shape() == 1e-6);
        CHECK(dwell_distribution::gamma(1e6, 14.0).shape() == 1e6);
        check_throws<model_error>([] { (void)dwell_distribution::empirical(std::vector<double>{}); }, {"empirical", "no samples"});
        check_throws<model_error>([] { (void)dwell_distribution::empirical({1.0, 2.0}, {1.0}); },
                                  {"empirical", "2 values but 1 weights"});
        check_throws<model_error>([] { (void)dwell_distribution::empirical({1.0, -2.0}); }, {"empirical", "sample 1", "-2"});
        check_throws<model_error>([] { (void)dwell_distribution::empirical({1.0, nan_v}); }, {"empirical", "sample 1"});
        check_throws<model_error>([] { (void)dwell_distribution::empirical({1.0, 2.0}, {1.0, -1.0}); },
                                  {"empirical", "weight 1"});
        check_throws<model_error>([] { (void)dwell_distribution::empirical({1.0, 2.0}, {0.0, 0.0}); },
                                  {"empirical", "weights sum to zero"});
        check_throws<model_error>([] { (void)dwell_distribution::empirical({0.0, 0.0}); }, {"empirical", "mean"});
        // every model_error is a pipecast::error
        CHECK_THROWS_AS((void)dwell_distribution::fixed(-1.0), pipecast::error);
    }

    SUBCASE("bad arguments throw argument_error naming the function") {
        using pipecast::argument_error;
        const auto d = dwell_distribution::gamma(2.0, 4.0);
        check_throws<argument_error>([&] { (void)pipecast::cdf(d, nan_v); }, {"cdf", "NaN"});
        check_throws<argument_error>([&] { (void)pipecast::survival(d, nan_v); }, {"survival", "NaN"});
        check_throws<argument_error>([&] { (void)pipecast::pdf(d, nan_v); }, {"pdf", "NaN"});
        for (double p : {-0.1, 1.5, nan_v}) {
            check_throws<argument_error>([&] { (void)pipecast::quantile(d, p); }, {"quantile", "probability"});
            check_throws<argument_error>([&] { (void)pipecast::survival_quantile(d, p); }, {"survival_quantile"});
            check_throws<argument_error>([&] { (void)pipecast::quantile(pipecast::residual(d, 1.0), p); },
                                         {"quantile(residual)"});
        }
        for (double age : {-1.0, nan_v, inf})
            check_throws<argument_error>([&] { (void)pipecast::residual(d, age); }, {"residual", "age"});
        const auto r = pipecast::residual(d, 1.0);
        check_throws<argument_error>([&] { (void)pipecast::survival(r, nan_v); }, {"survival(residual)", "NaN"});
        check_throws<argument_error>([&] { (void)pipecast::cdf(r, nan_v); }, {"NaN"});
        check_throws<argument_error>([&] { (void)pipecast::pdf(r, nan_v); }, {"pdf(residual)", "NaN"});
    }
}

namespace {
/// True when residual(D, age) compiles for an argument of type D (an rvalue for a non-reference D).
template <class D>
concept residual_accepts = requires(D&& d) { pipecast::residual(std::forward<D>(d), 1.0); };
} // namespace

TEST_CASE("dwell: empirical cumulative weights never decrease (fuzz finding 4, issue 11)") {
    // The running sum of these weights over their total passes 1 (1 + 2^-52) before the last,
    // tiny weight; the last cumulative weight used to be set to 1 below it, so the weight
    // written back for it was -2.2e-16 and a fitted model did not load back.
    const std::vector<double> values = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};
    const std::vector<double> weights = {0.7, 0.05, 2.0 / 3.0, 2.0 / 3.0, 0.15, 1e-18};
    const dwell_distribution d = dwell_distribution::empirical(values, weights);
    const auto c = d.cumulative();
    REQUIRE(c.size() == values.size());
    CHECK(c.back() == 1.0);
    std::vector<double> back(c.size());
    for (std::size_t i = 0; i < c.size(); ++i) {
        back[i] = c[i] - (i ? c[i - 1] : 0.0);
        CHECK(back[i] >= 0.0);
    }
    // What the model writer writes and the reader reads: the differences load back.
    const dwell_distribution again = dwell_distribution::empirical(std::vector<double>(d.values().begin(), d.values().end()), back);
    CHECK(again.mean() == doctest::Approx(d.mean()).epsilon(1e-12));
}

TEST_CASE("dwell: residual safety and the far tail (issue 11)") {
    SUBCASE("a residual of a temporary distribution does not compile (it would dangle)") {
        CHECK(residual_accepts<const dwell_distribution&>);
        CHECK(residual_accepts<dwell_distribution&>);
        CHECK_FALSE(residual_accepts<dwell_distribution>);       // residual(dwell_distribution::gamma(2, 3), 1.0)
        CHECK_FALSE(residual_accepts<const dwell_distribution>);
        CHECK_FALSE(std::is_constructible_v<pipecast::residual_dwell, dwell_distribution, double>);
        CHECK(std::is_constructible_v<pipecast::residual_dwell, const dwell_distribution&, double>);
    }

    SUBCASE("gamma whose survival underflows: the residual tends to the exponential, in closed form for shape 2") {
        // shape 2, scale θ: S(a + t)/S(a) = e^{-u}(1 + x + u)/(1 + x), x = a/θ, u = t/θ; density
        // e^{-u}(x + u)/((1 + x)θ); mean θ(2 + x)/(1 + x). S(a) underflows for x > ~745.
        const auto d = dwell_distribution::gamma(2.0, 3.0); // θ = 1.5
        const double th = 1.5;
        for (double a : {1200.0, 2000.0, 1e5, 1e20}) { // 1e20: a + t == a; no cancellation of e^{-x}
            const double x = a / th;
            const auto r = pipecast::residual(d, a);
            INFO("age " << a);
            CHECK(r.survival_at_age() == 0.0);
            CHECK_FALSE(r.overdue());
            CHECK(r.far_tail());
            CHECK(close_rel(r.log_survival_at_age(), -x + std::log1p(x), 1e-13));
            CHECK(close_rel(pipecast::mean(r), th * (2 + x) / (1 + x), 1e-12));
            for (double u : {0.01, 1.0, 5.0, 30.0}) {
                CHECK(close_rel(pipecast::survival(r, u * th), std::exp(-u) * (1 + x + u) / (1 + x), 1e-10));
                CHECK(close_rel(pipecast::pdf(r, u * th), std::exp(-u) * (x + u) / ((1 + x) * th), 1e-10));
            }
            for (double p : {1e-6, 0.1, 0.5, 0.99}) {
                const double u = pipecast::quantile(r, p) / th;
                CHECK(close_rel(std::exp(-u) * (1 + x + u) / (1 + x), 1 - p, 1e-9));
            }
            CHECK(pipecast::quantile(r, 0.0) == 0.0);
            CHECK(pipecast::quantile(r, 1.0) == inf);
        }
        // log_survival is continuous where it switches from Boost.Math to the continued fraction
        const auto g = dwell_distribution::gamma(0.7, 5.0);
        double lo = 1.0, hi = 1e4; // bisect for Q ≈ 1e-280
        for (int i = 0; i < 200; ++i) {
            const double mid = 0.5 * (lo + hi);
            (pipecast::survival(g, mid) >= 1e-280 ? lo : hi) = mid;
        }
        CHECK(close_rel(pipecast::log_survival(g, lo), pipecast::log_survival(g, hi), 1e-12));
        CHECK(close_rel(pipecast::log_survival(g, lo), std::log(pipecast::survival(g, lo)), 1e-12));
    }

    SUBCASE("lognormal whose survival underflows: log-space survival, density, quantile and mean") {
        const auto d = dwell_distribution::lognormal(10.0, 5.0);
        const double mu = d.log_mu(), sg = d.log_sigma();
        for (double a : {1e10, 1e20}) {
            const auto r = pipecast::residual(d, a);
            INFO("age " << a);
            CHECK(r.survival_at_age() == 0.0);
            CHECK_FALSE(r.overdue());
            // the mean: ∫ S_r(t) dt, and near σ² a /(ln a − μ) (the hazard ~ (ln a − μ)/(σ² a))
            const double m = pipecast::mean(r);
            const double approx = sg * sg * a / (std::log(a) - mu);
            CHECK(std::abs(m / approx - 1.0) < 0.05);
            boost::math::quadrature::exp_sinh<double> es;
            const double integral = es.integrate([&](double t) { return pipecast::survival(r, t); }, 0.0, inf, 1e-10);
            CHECK(close_rel(m, integral, 1e-6));
            // the density is −dS/dt
            for (double t : {0.1 * m, m, 3.0 * m}) {
                const double h = 1e-4 * m;
                const double deriv = (pipecast::survival(r, t - h) - pipecast::survival(r, t + h)) / (2 * h);
                CHECK(close_rel(pipecast::pdf(r, t), deriv, 1e-6));
            }
            for (double p : {0.01, 0.5, 0.99}) CHECK(close_rel(pipecast::cdf(r, pipecast::quantile(r, p)), p, 1e-9));
        }
        // log_survival is continuous where it switches to the asymptotic series (z/√2 = 26)
        const double u = std::exp(mu + sg * std::sqrt(2.0) * 26.0);
        CHECK(close_rel(pipecast::log_survival(d, u * (1 - 1e-12)), pipecast::log_survival(d, u * (1 + 1e-12)), 1e-9));
        CHECK(close_rel(pipecast::log_survival(d, u * 0.999), std::log(pipecast::survival(d, u * 0.999)), 1e-12));
    }
}

TEST_CASE("dwell: extreme lognormal parameters are valid or a model_error, never a Boost exception (issue 11)") {
    SUBCASE("sd/mean beyond 1e150 or below 1e-8: finite log parameters, and every function evaluates") {
        for (const auto& ms : {std::pair{10.0, 1e150}, std::pair{1e-300, 6.0}, std::pair{1e-300, 1e150}, std::pair{1.0, 1e-200}}) {
            const double m = ms.first, s = ms.second; // named variables: clang 14 cannot capture a structured binding
            INFO("mean " << m << " sd " << s);
            const auto d = dwell_distribution::lognormal(m, s);
            CHECK(std::isfinite(d.log_mu()));
            CHECK(std::isfinite(d.log_sigma()));
            CHECK(d.log_sigma() > 0.0);
            CHECK(d.mean() == m);
            // σ² = log(1 + (sd/mean)²): 2 log(sd/mean) to double precision when the ratio is huge
            const double r = std::log(s) - std::log(m);
            if (r > 400.0) CHECK(close_rel(d.log_sigma() * d.log_sigma(), 2.0 * r, 1e-14));
            CHECK_NOTHROW((void)pipecast::cdf(d, 30.0));
            CHECK_NOTHROW((void)pipecast::survival(d, 30.0));
            CHECK_NOTHROW((void)pipecast::pdf(d, 30.0));
            CHECK_NOTHROW((void)pipecast::quantile(d, 0.5));
            CHECK_NOTHROW((void)pipecast::survival_quantile(d, 0.5));
            CHECK_NOTHROW((void)pipecast::mean(pipecast::residual(d, 30.0)));
        }
    }
    SUBCASE("a variance that overflows (sd 1e300), a ratio sd/mean that underflows, mu and sigma whose mean or sd overflow: model_error") {
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::lognormal(10.0, 1e300); },
                                            {"lognormal dwell", "mean 10 with sd 1e+300", "the variance (sd squared) overflows"});
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::exponential(1e200); },
                                            {"exponential dwell", "the variance (sd squared) overflows"});
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::gamma(0.5, 1e200); }, {"gamma dwell", "overflows"});
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::empirical({1e308, 1.0}, {1.0, 1.0}); },
                                            {"empirical dwell", "overflows"});
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::lognormal(1e300, 1e-300); },
                                            {"lognormal dwell", "mean 1e+300", "sd 1e-300", "no finite positive log-scale"});
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::lognormal_log(800.0, 1.0); },
                                            {"lognormal dwell", "mu 800", "sigma 1", "out of the range of a double"});
        check_throws<pipecast::model_error>([] { (void)dwell_distribution::lognormal_log(0.0, 40.0); },
                                            {"lognormal dwell", "sigma 40"});
    }
}

} // namespace unit_dwell
