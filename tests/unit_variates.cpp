// Tests of variates.hpp (and detail/sim_philox.hpp): Philox known answers, the 4-wide
// Philox against Random123, uniforms, the dwell tables against Boost.Math on dense grids,
// residual draws, and the transition rows.
#include <pipecast/simulation/detail/philox.hpp>
#include <pipecast/simulation/detail/variates.hpp>

#include <Random123/philox.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_variates {

using namespace pipecast;

namespace {

/// Largest relative error of the tables over n log-spaced probabilities in each tail, from
/// 2^lo to ½ (dense: far more points than cells, off the nodes).
double dense_table_error(const dwell_sampler& s, const dwell_distribution& d, int lo_upper, std::size_t n) {
    double worst = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double f = (static_cast<double>(i) + 0.37) / static_cast<double>(n);
        const double q = std::exp2(dwell_sampler::lower_min_exponent * (1.0 - f) - f); // 2^-34 .. 2^-1
        const double p = std::exp2(lo_upper * (1.0 - f) - f);
        const double eq = quantile(d, q), ep = survival_quantile(d, p);
        worst = std::max(worst, std::abs(s.lower_quantile(q) - eq) / eq);
        worst = std::max(worst, std::abs(s.upper_quantile(p) - ep) / ep);
    }
    return worst;
}

} // namespace

TEST_CASE("variates") {
    SUBCASE("Philox4x32-10 known answers (Random123 kat_vectors), pinned") {
        CHECK(philox_draw(0, {0, 0, 0, 0}) == philox_block{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
        CHECK(philox_draw(0xffffffffffffffffull, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}) ==
              philox_block{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
        // key words (0xa4093822, 0x299f31d0): the seed's low word is the first key word.
        CHECK(philox_draw(0x299f31d0a4093822ull, {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}) ==
              philox_block{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
        // The simulator's first block for seed 1, path 0, deal 0 (domain 0): pinned so the
        // stream cannot change silently.
        const philox_block first = philox_draw(1, {0, 0, 0, 0});
        std::uint32_t scalar[4];
        detail::philox4x32_10(0, 0, 0, 0, 1, 0, scalar);
        CHECK(first == philox_block{scalar[0], scalar[1], scalar[2], scalar[3]});
    }

    SUBCASE("the scalar and 4-wide Philox equal Random123 for random counters and keys") {
        std::mt19937_64 rng(20261122);
        for (int trial = 0; trial < 2000; ++trial) {
            const std::uint64_t seed = rng();
            const auto c0 = static_cast<std::uint32_t>(rng()), c1 = static_cast<std::uint32_t>(rng());
            std::uint32_t c2[4], c3[4], o0[4], o1[4], o2[4], o3[4];
            for (int i = 0; i < 4; ++i) {
                c2[i] = static_cast<std::uint32_t>(rng());
                c3[i] = static_cast<std::uint32_t>(rng());
            }
            detail::philox4x32_10_x4(seed, c0, c1, c2, c3, o0, o1, o2, o3);
            for (int i = 0; i < 4; ++i) {
                const r123::Philox4x32::ctr_type c = {{c0, c1, c2[i], c3[i]}};
                const r123::Philox4x32::key_type k = {
                    {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
                const auto r = r123::Philox4x32{}(c, k);
                REQUIRE(o0[i] == r[0]);
                REQUIRE(o1[i] == r[1]);
                REQUIRE(o2[i] == r[2]);
                REQUIRE(o3[i] == r[3]);
                std::uint32_t s[4];
                detail::philox4x32_10(c0, c1, c2[i], c3[i], static_cast<std::uint32_t>(seed),
                                      static_cast<std::uint32_t>(seed >> 32), s);
                REQUIRE(s[0] == r[0]);
                REQUIRE(s[3] == r[3]);
            }
        }
    }

    SUBCASE("every run-time dispatch path (SSE2 4-wide, AVX2 8-wide, AVX-512 16-wide) equals Random123") {
        // Counts that are not multiples of 4 or 8 (the kernels fill padded lanes too).
        std::mt19937_64 rng(20261125);
        const bool avx2 = detail::philox_isa_available(philox_isa::avx2);
        MESSAGE(std::string(avx2 ? "AVX2 kernel available on this CPU" : "no AVX2 on this CPU: the AVX2 request runs SSE2"));
        CHECK(detail::philox_resolve(philox_isa::automatic) ==
              (detail::philox_isa_available(philox_isa::avx512) ? philox_isa::avx512
                                                                : (avx2 ? philox_isa::avx2 : philox_isa::sse2)));
        MESSAGE(std::string(detail::philox_isa_available(philox_isa::avx512) ? "AVX-512 kernel available on this CPU"
                                                                            : "no AVX-512 on this CPU: that request runs a narrower kernel"));
        for (std::size_t count : {std::size_t{1}, std::size_t{5}, std::size_t{8}, std::size_t{13}, std::size_t{17},
                                  std::size_t{1024}})
            for (int trial = 0; trial < 20; ++trial) {
                const std::uint64_t seed = rng();
                const detail::philox_schedule key(seed);
                const auto c0 = static_cast<std::uint32_t>(rng()), c1 = static_cast<std::uint32_t>(rng());
                const std::size_t n = count + detail::philox_lane_padding;
                std::vector<std::uint32_t> c2(n), c3(n);
                for (std::size_t i = 0; i < n; ++i) {
                    c2[i] = static_cast<std::uint32_t>(rng());
                    c3[i] = static_cast<std::uint32_t>(rng());
                }
                for (auto isa : {philox_isa::sse2, philox_isa::avx2, philox_isa::avx512, philox_isa::automatic}) {
                    std::vector<std::uint32_t> o0(n), o1(n), o2(n), o3(n);
                    detail::philox4x32_10_lanes(key, c0, c1, c2.data(), c3.data(), o0.data(), o1.data(), o2.data(),
                                                o3.data(), count, isa);
                    for (std::size_t i = 0; i < count; ++i) {
                        const r123::Philox4x32::ctr_type c = {{c0, c1, c2[i], c3[i]}};
                        const r123::Philox4x32::key_type k = {
                            {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
                        const auto r = r123::Philox4x32{}(c, k);
                        REQUIRE(o0[i] == r[0]);
                        REQUIRE(o1[i] == r[1]);
                        REQUIRE(o2[i] == r[2]);
                        REQUIRE(o3[i] == r[3]);
                    }
                }
            }
    }

    SUBCASE("uniforms: open interval, exact complement") {
        CHECK(uniform_open(0) == std::ldexp(1.0, -33));
        CHECK(uniform_open(0xFFFFFFFFu) == 1.0 - std::ldexp(1.0, -33));
        CHECK(uniform_open(0x80000000u) == 0.5 + std::ldexp(1.0, -33));
        for (std::uint32_t k : {0u, 1u, 12345u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu}) {
            CHECK(uniform_open(k) + uniform_open_complement(k) == 1.0);
            CHECK(uniform_open(k) > 0.0);
            CHECK(uniform_open(k) < 1.0);
        }
    }

    SUBCASE("uniform_open is Random123's u01, bit for bit the simulator's former (k + 1/2)·2^-32") {
        // The simulator's results stay bit-identical only if every word maps to the same double.
        std::uint64_t differ = 0;
        for (std::uint64_t k = 0; k <= 0xFFFFFFFFull; k += 4093) { // ~1.05M words across the range
            const auto w = static_cast<std::uint32_t>(k);
            const double before = (static_cast<double>(w) + 0.5) * 0x1p-32;
            const double before_c = (static_cast<double>(0xFFFFFFFFu - w) + 0.5) * 0x1p-32;
            differ += uniform_open(w) != before || uniform_open_complement(w) != before_c;
        }
        for (std::uint32_t w : {0u, 1u, 2u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu})
            differ += uniform_open(w) != (static_cast<double>(w) + 0.5) * 0x1p-32;
        CHECK(differ == 0);
    }

    SUBCASE("dwell tables match Boost.Math within 1e-5 relative on dense grids") {
        const std::vector<dwell_distribution> ds = {
            dwell_distribution::exponential(7.0),        dwell_distribution::gamma(2.0, 14.0),
            dwell_distribution::gamma(0.5, 10.0),        dwell_distribution::gamma(3.0, 21.0),
            dwell_distribution::gamma(25.0, 30.0),       dwell_distribution::gamma(0.2, 5.0),
            dwell_distribution::lognormal(10.0, 6.0),    dwell_distribution::lognormal(30.0, 90.0),
            dwell_distribution::lognormal(5.0, 0.5),     dwell_distribution::weibull(1.5, 18.0),
            dwell_distribution::weibull(0.6, 40.0),      dwell_distribution::weibull(4.0, 12.0)};
        for (const auto& d : ds) {
            CAPTURE(std::string(to_string(d.family())));
            CAPTURE(d.mean());
            CAPTURE(d.sd());
            const dwell_sampler s(d);
            CHECK(s.tabulated());
            CHECK(s.max_relative_error(d) < 1e-5);
            CHECK(dense_table_error(s, d, dwell_sampler::default_upper_min_exponent, 20000) < 1e-5);
        }
    }

    SUBCASE("fixed dwell: exact; empirical: exact inverse of the weights") {
        const dwell_sampler f(dwell_distribution::fixed(12.5));
        for (std::uint32_t k : {0u, 77u, 0x80000000u, 0xFFFFFFFFu}) CHECK(f.sample(k) == 12.5);
        const auto e = dwell_distribution::empirical({1.0, 2.0, 5.0}, {1.0, 1.0, 2.0}); // cdf .25 .5 1
        const dwell_sampler s(e);
        CHECK_FALSE(s.tabulated());
        CHECK(s.max_relative_error(e) == 0.0);
        CHECK(s.sample(0) == 1.0);
        CHECK(s.sample(0x3FFFFFFFu) == 1.0); // v just below .25
        CHECK(s.sample(0x40000000u) == 2.0);
        CHECK(s.sample(0x80000000u) == 5.0);
        // Residual at age 1.5 (mass above: 2 and 5, weights .25 and .5): F0 = .25, S0 = .75.
        CHECK(s.total_time(0x3FFFFFFFu, 0.25, 0.75) == 2.0); // .25 + .75 v = .4375
        CHECK(s.total_time(0x60000000u, 0.25, 0.75) == 5.0); // .25 + .75 v = .53125
    }

    SUBCASE("residual draws equal the library's residual quantile within 1e-5 of T") {
        const std::vector<dwell_distribution> ds = {dwell_distribution::gamma(2.0, 14.0),
                                                    dwell_distribution::lognormal(10.0, 6.0),
                                                    dwell_distribution::weibull(1.5, 18.0),
                                                    dwell_distribution::gamma(3.0, 21.0)};
        std::mt19937 rng(7);
        for (const auto& d : ds) {
            for (double age : {0.5, 5.0, 20.0, 60.0, 150.0}) {
                const double s0 = survival(d, age);
                const dwell_sampler s(d, dwell_sampler::upper_exponent_for(s0));
                for (int i = 0; i < 500; ++i) {
                    const auto k = static_cast<std::uint32_t>(rng());
                    const double t = s.total_time(k, cdf(d, age), s0);
                    const double exact = age + quantile(residual(d, age), uniform_open(k));
                    CAPTURE(age);
                    CAPTURE(k);
                    REQUIRE(std::abs(t - exact) <= 1e-5 * exact);
                }
            }
        }
    }

    SUBCASE("table depth for aged deals") {
        CHECK(dwell_sampler::upper_exponent_for(1.0) == dwell_sampler::default_upper_min_exponent);
        CHECK(dwell_sampler::upper_exponent_for(std::ldexp(1.0, -60)) == -95);
        CHECK(dwell_sampler::upper_exponent_for(0.0) == dwell_sampler::deepest_exponent);
        const auto d = dwell_distribution::gamma(2.0, 14.0);
        const dwell_sampler deep(d, -300);
        CHECK(dense_table_error(deep, d, -300, 20000) < 1e-5);
        CHECK_THROWS_AS(dwell_sampler(d, -34), argument_error);
        CHECK_THROWS_WITH_AS(dwell_sampler(d, -2000), doctest::Contains("upper_min_exponent"), argument_error);
    }

    SUBCASE("copies keep working tables") {
        const auto d = dwell_distribution::lognormal(10.0, 6.0);
        std::vector<dwell_sampler> v;
        v.emplace_back(d);
        v.push_back(v[0]);
        const dwell_sampler moved = std::move(v[0]);
        CHECK(v[1].sample(123456u) == moved.sample(123456u));
        CHECK(v[1].view().table != moved.view().table);
    }

    SUBCASE("transition rows: probabilities quantised to 2^-32") {
        const std::vector<std::vector<double>> rows = {{0.0, 0.55, 0.05, 0.0, 0.4}, {0.3, 0.0, 0.0, 0.7, 0.0}};
        const transition_sampler t(rows);
        CHECK(t.rows() == 2);
        CHECK(t.width() == 4); // padded: one unrolled path for rows of up to 4 entries
        CHECK(t.entries(0).size() == 3);
        CHECK(t.entries(1).size() == 2);
        // Exact frequencies over all words: count the words mapping to each target by
        // bisection of the monotone map k -> next(i, k).
        for (std::size_t i = 0; i < rows.size(); ++i) {
            std::vector<double> freq(rows[i].size(), 0.0);
            std::uint64_t start = 0;
            while (start < (std::uint64_t{1} << 32)) {
                const std::uint32_t target = t.next(i, static_cast<std::uint32_t>(start));
                std::uint64_t lo = start, hi = std::uint64_t{1} << 32; // first word with another target
                while (hi - lo > 1) {
                    const std::uint64_t mid = (lo + hi) / 2;
                    (t.next(i, static_cast<std::uint32_t>(mid)) == target ? lo : hi) = mid;
                }
                freq[target] += static_cast<double>(hi - start) * 0x1p-32;
                start = hi;
            }
            for (std::size_t j = 0; j < rows[i].size(); ++j) CHECK(std::abs(freq[j] - rows[i][j]) <= 0x1p-31);
        }
        transition_sampler shocked = t;
        const std::vector<double> p = {0.5, 0.25, 0.25};
        shocked.set_row(0, p);
        CHECK(shocked.next(0, 0x7FFFFFFFu) == 1);
        CHECK(shocked.next(0, 0x80000000u) == 2);
        CHECK(shocked.next(0, 0xC0000000u) == 4);
        // A NaN probability (an overflowed shock before issue 11) converts to a threshold of 0,
        // not by an undefined conversion (UBSan: "nan is outside the range of uint64_t").
        const double nan = std::numeric_limits<double>::quiet_NaN();
        const std::vector<double> bad = {nan, nan, nan};
        shocked.set_row(0, bad);
        for (std::uint32_t k : {0u, 0x80000000u, 0xFFFFFFFFu}) {
            const std::uint32_t j = shocked.next(0, k);
            CHECK((j == 1 || j == 2 || j == 4));
        }
    }

    SUBCASE("transition rows: the guide (built by one merge in set_row) agrees with the row search") {
        // Rows of 1 to 7 entries with probabilities from 1e-12 to 1 (thresholds inside one
        // guide bucket, equal thresholds, a whole bucket per entry), reset as a shock does.
        std::mt19937_64 rng(20261125);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        for (int trial = 0; trial < 300; ++trial) {
            const std::size_t count = 1 + static_cast<std::size_t>(trial % 7);
            std::vector<std::vector<double>> rows(3, std::vector<double>(count + 2, 0.0));
            for (auto& r : rows)
                for (std::size_t j = 0; j < count; ++j) r[j + 1] = 0.1 + u(rng);
            transition_sampler t(rows);
            for (std::size_t i = 0; i < rows.size(); ++i) {
                std::vector<double> p(count);
                double sum = 0.0;
                for (double& x : p) sum += (x = std::pow(10.0, -12.0 * u(rng) * u(rng)));
                for (double& x : p) x /= sum;
                t.set_row(i, p);
                const transition_sampler::row_view v = t.view();
                std::vector<std::uint32_t> words;
                for (std::uint32_t b = 0; b < 256; ++b) words.insert(words.end(), {b << 24, (b << 24) | 0xFFFFFFu});
                double acc = 0.0;
                for (double x : p) { // around every threshold
                    acc += x;
                    const double w = std::min(std::ldexp(acc, 32), 4294967295.0);
                    for (double d : {-2.0, -1.0, 0.0, 1.0})
                        words.push_back(static_cast<std::uint32_t>(std::clamp(w + d, 0.0, 4294967295.0)));
                }
                for (int r = 0; r < 200; ++r) words.push_back(static_cast<std::uint32_t>(rng()));
                for (std::uint32_t k : words) REQUIRE(t.next(i, k) == v.search(i, k));
            }
        }
    }
}

} // namespace unit_variates
