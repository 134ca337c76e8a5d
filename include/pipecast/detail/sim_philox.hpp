// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file detail/sim_philox.hpp
/// @brief Philox4x32-10 for four counters at once (SSE2 when available, scalar
/// otherwise), bit-identical to Random123's philox4x32 (tests/unit_variates.cpp checks it).
///
/// The simulator asks for one block per running deal-path and sweep; four counters differ
/// only in their last two words (deal, domain), so four blocks are computed side by side in
/// 128-bit registers: one round is two `pmuludq` pairs and a few shuffles and xors for
/// four streams, instead of four scalar rounds.

#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pipecast::detail {

inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;

/// Scalar Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1).
inline void philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3, std::uint32_t k0,
                          std::uint32_t k1, std::uint32_t out[4]) noexcept {
    for (int r = 0; r < 10; ++r) {
        const std::uint64_t p0 = std::uint64_t{philox_m0} * c0;
        const std::uint64_t p1 = std::uint64_t{philox_m1} * c2;
        const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
        const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += philox_w0;
        k1 += philox_w1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/// Four Philox4x32-10 blocks: counters (c0, c1, c2[i], c3[i]) for i = 0..3, key = seed.
/// Output word j of block i goes to out_j[i].
inline void philox4x32_10_x4(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1, const std::uint32_t* c2,
                             const std::uint32_t* c3, std::uint32_t* out0, std::uint32_t* out1, std::uint32_t* out2,
                             std::uint32_t* out3) noexcept {
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
#if defined(__SSE2__)
    __m128i x0 = _mm_set1_epi32(static_cast<int>(c0));
    __m128i x1 = _mm_set1_epi32(static_cast<int>(c1));
    __m128i x2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c2));
    __m128i x3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c3));
    const __m128i m0 = _mm_set1_epi32(static_cast<int>(philox_m0));
    const __m128i m1 = _mm_set1_epi32(static_cast<int>(philox_m1));
    // (lo, hi) of the four 32x32 -> 64 products a_i * m.
    auto mulhilo = [](__m128i a, __m128i m, __m128i& lo, __m128i& hi) {
        const __m128i even = _mm_mul_epu32(a, m);                    // lanes 0, 2 as 64-bit
        const __m128i odd = _mm_mul_epu32(_mm_srli_epi64(a, 32), m); // lanes 1, 3
        const __m128i e = _mm_shuffle_epi32(even, _MM_SHUFFLE(3, 1, 2, 0)); // lo0 lo2 hi0 hi2
        const __m128i o = _mm_shuffle_epi32(odd, _MM_SHUFFLE(3, 1, 2, 0));  // lo1 lo3 hi1 hi3
        lo = _mm_unpacklo_epi32(e, o);                                // lo0 lo1 lo2 lo3
        hi = _mm_unpackhi_epi32(e, o);                                // hi0 hi1 hi2 hi3
    };
    for (int r = 0; r < 10; ++r) {
        __m128i lo0, hi0, lo1, hi1;
        mulhilo(x0, m0, lo0, hi0);
        mulhilo(x2, m1, lo1, hi1);
        const __m128i kk0 = _mm_set1_epi32(static_cast<int>(k0));
        const __m128i kk1 = _mm_set1_epi32(static_cast<int>(k1));
        x0 = _mm_xor_si128(_mm_xor_si128(hi1, x1), kk0);
        x1 = lo1;
        x2 = _mm_xor_si128(_mm_xor_si128(hi0, x3), kk1);
        x3 = lo0;
        k0 += philox_w0;
        k1 += philox_w1;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out0), x0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out1), x1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out2), x2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out3), x3);
#else
    for (int i = 0; i < 4; ++i) {
        std::uint32_t o[4];
        philox4x32_10(c0, c1, c2[i], c3[i], k0, k1, o);
        out0[i] = o[0];
        out1[i] = o[1];
        out2[i] = o[2];
        out3[i] = o[3];
    }
#endif
}

} // namespace pipecast::detail
