// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/detail/philox.hpp
/// @brief Philox4x32-10 for four counters at once (SSE2 when available, scalar
/// otherwise), for eight at once (AVX2) and for sixteen (AVX-512), the wide ones chosen at
/// run time, bit-identical to Random123's philox4x32 (tests/unit_variates.cpp checks every
/// path).
///
/// **Run-time dispatch.** The library is header-only and built without `-march`, so the
/// AVX2 kernel is a function compiled with GCC's `target("avx2")` attribute and called only
/// when `__builtin_cpu_supports("avx2")` says the CPU has it (philox_isa_available()); the
/// default build still runs on any x86-64. Philox is integer arithmetic, so every path gives
/// the same bits. The AVX-512 kernel is chosen likewise (AVX-512 F, DQ and VL), and with it
/// the simulator's AVX-512 sweep (simulation.hpp).
///
/// The simulator asks for one block per running deal-path and sweep; four counters differ
/// only in their last two words (deal, domain), so four blocks are computed side by side in
/// 128-bit registers (SSE2, part of every x86-64): one round is four `pmuludq`, four
/// shuffles and eight xors for four streams, instead of four scalar rounds.

#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#define PIPECAST_PHILOX_AVX2 1
#include <immintrin.h>
#endif

namespace pipecast {

/// Which kernels the simulator runs (simulation_options::philox_kernel): the 4-wide SSE2
/// Philox (scalar without SSE2), the 8-wide AVX2 one, or the 16-wide AVX-512 one together
/// with the AVX-512 lane sweep (simulation.hpp: 8 deal-paths a step for tabulated,
/// unbranched models). `automatic` = the widest the CPU supports. Every kernel gives the
/// same bits.
enum class philox_isa { automatic, sse2, avx2, avx512 };

} // namespace pipecast

namespace pipecast::detail {

inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;

/// Scalar Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1).
template <class = void>
void philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3, std::uint32_t k0,
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

/// The ten round keys of a seed, broadcast once (not per call).
struct philox_schedule {
    explicit philox_schedule(std::uint64_t seed) noexcept {
        std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
        for (int r = 0; r < 10; ++r) {
#if defined(__SSE2__)
            key0[r] = _mm_set1_epi32(static_cast<int>(k0));
            key1[r] = _mm_set1_epi32(static_cast<int>(k1));
#else
            key0[r] = k0;
            key1[r] = k1;
#endif
            scalar0[r] = k0;
            scalar1[r] = k1;
            k0 += philox_w0;
            k1 += philox_w1;
        }
    }
#if defined(__SSE2__)
    __m128i key0[10], key1[10];
#else
    std::uint32_t key0[10], key1[10];
#endif
    std::uint32_t scalar0[10], scalar1[10]; ///< the same round keys, one word each
};


/// The instruction-set extensions the `avx512` kernels are compiled for (GCC `target`).
#define PIPECAST_AVX512_TARGET "avx512f,avx512dq,avx512vl"
/// GCC 12's AVX-512 intrinsics fill unused result lanes from `_mm512_undefined_*()`, a
/// self-initialised variable that -Wuninitialized reports once inlined (GCC bug 105593,
/// fixed in GCC 13): the AVX-512 code is wrapped in these.
#if defined(__clang__) || !defined(__GNUC__)
#define PIPECAST_AVX512_WARNINGS_OFF
#define PIPECAST_AVX512_WARNINGS_ON
#else
#define PIPECAST_AVX512_WARNINGS_OFF                                                                                  \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")                              \
        _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define PIPECAST_AVX512_WARNINGS_ON _Pragma("GCC diagnostic pop")
#endif

/// True if the CPU running this process can execute `isa`'s kernel (`sse2` and `automatic`
/// always; `avx2` on an x86-64 CPU with AVX2; `avx512` with AVX-512 F, DQ and VL; by
/// __builtin_cpu_supports, cached).
template <class = void>
[[nodiscard]] bool philox_isa_available(philox_isa isa) noexcept {
#if defined(PIPECAST_PHILOX_AVX2)
    static const bool avx2 = __builtin_cpu_supports("avx2") != 0;
    static const bool avx512 = __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512dq") != 0 &&
                               __builtin_cpu_supports("avx512vl") != 0;
    if (isa == philox_isa::avx2) return avx2;
    if (isa == philox_isa::avx512) return avx512;
    return true;
#else
    return isa != philox_isa::avx2 && isa != philox_isa::avx512;
#endif
}

/// The kernel `isa` resolves to on this CPU: `automatic` becomes the widest available;
/// a kernel the CPU lacks falls back to the next narrower one (AVX-512 to AVX2 to SSE2).
template <class = void>
[[nodiscard]] philox_isa philox_resolve(philox_isa isa) noexcept {
    if (isa == philox_isa::automatic) isa = philox_isa::avx512;
    if (isa == philox_isa::avx512 && !philox_isa_available(isa)) isa = philox_isa::avx2;
    return philox_isa_available(isa) ? isa : philox_isa::sse2;
}

/// Four Philox4x32-10 blocks: counters (c0, c1, c2[i], c3[i]) for i = 0..3, key = seed.
/// Output word j of block i goes to out_j[i].
template <class = void>
void philox4x32_10_x4(const philox_schedule& key, std::uint32_t c0, std::uint32_t c1, const std::uint32_t* c2,
                      const std::uint32_t* c3, std::uint32_t* out0, std::uint32_t* out1, std::uint32_t* out2,
                      std::uint32_t* out3) noexcept {
#if defined(__SSE2__)
    // Each word of the four blocks is held as two registers of 64-bit slots: "e" with the
    // blocks 0 and 2 in the low halves, "o" with the blocks 1 and 3. pmuludq multiplies the
    // low halves only, so the high halves may hold garbage: the product's low half is the
    // next lo word in place, its high half shifted down is the hi word.
    const __m128i m0 = _mm_set1_epi32(static_cast<int>(philox_m0));
    const __m128i m1 = _mm_set1_epi32(static_cast<int>(philox_m1));
    const __m128i x2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c2));
    const __m128i x3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c3));
    __m128i e0 = _mm_set1_epi32(static_cast<int>(c0)), o0 = e0;
    __m128i e1 = _mm_set1_epi32(static_cast<int>(c1)), o1 = e1;
    __m128i e2 = x2, o2 = _mm_srli_epi64(x2, 32);
    __m128i e3 = x3, o3 = _mm_srli_epi64(x3, 32);
    // The high half of each 64-bit product moved to the low half (pshufd: no register copy).
    auto hi = [](__m128i p) { return _mm_shuffle_epi32(p, _MM_SHUFFLE(3, 3, 1, 1)); };
    for (int r = 0; r < 10; ++r) {
        const __m128i kk0 = key.key0[r], kk1 = key.key1[r];
        const __m128i pe0 = _mm_mul_epu32(e0, m0), pe1 = _mm_mul_epu32(e2, m1);
        const __m128i po0 = _mm_mul_epu32(o0, m0), po1 = _mm_mul_epu32(o2, m1);
        e0 = _mm_xor_si128(_mm_xor_si128(hi(pe1), e1), kk0);
        o0 = _mm_xor_si128(_mm_xor_si128(hi(po1), o1), kk0);
        e2 = _mm_xor_si128(_mm_xor_si128(hi(pe0), e3), kk1);
        o2 = _mm_xor_si128(_mm_xor_si128(hi(po0), o3), kk1);
        e1 = pe1;
        o1 = po1;
        e3 = pe0;
        o3 = po0;
    }
    // Low halves of e (blocks 0, 2) and o (blocks 1, 3) back to block order.
    auto merge = [](__m128i e, __m128i o) {
        return _mm_unpacklo_epi32(_mm_shuffle_epi32(e, _MM_SHUFFLE(3, 1, 2, 0)),
                                  _mm_shuffle_epi32(o, _MM_SHUFFLE(3, 1, 2, 0)));
    };
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out0), merge(e0, o0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out1), merge(e1, o1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out2), merge(e2, o2));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out3), merge(e3, o3));
#else
    for (int i = 0; i < 4; ++i) {
        std::uint32_t o[4];
        philox4x32_10(c0, c1, c2[i], c3[i], key.key0[0], key.key1[0], o);
        out0[i] = o[0];
        out1[i] = o[1];
        out2[i] = o[2];
        out3[i] = o[3];
    }
#endif
}

#if defined(PIPECAST_PHILOX_AVX2)
/// Eight Philox4x32-10 blocks at a time, AVX2 (call only where philox_isa_available(avx2)):
/// counters (c0, c1, c2[i], c3[i]) for i < count rounded up to a multiple of 8 (the arrays
/// must have that many entries). The SSE2 kernel's even/odd scheme in 256-bit registers:
/// blocks 0, 2, 4, 6 in the low halves of "e", 1, 3, 5, 7 in those of "o"; vpmuludq's
/// product holds the next lo word in its low half and the hi word in its high half.
/// No lambdas here: they would not inherit the target attribute.
[[gnu::target("avx2")]] inline void philox4x32_10_x8_avx2(const philox_schedule& key, std::uint32_t c0,
                                                           std::uint32_t c1, const std::uint32_t* c2,
                                                           const std::uint32_t* c3, std::uint32_t* out0,
                                                           std::uint32_t* out1, std::uint32_t* out2,
                                                           std::uint32_t* out3, std::size_t count) noexcept {
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(philox_m0));
    const __m256i m1 = _mm256_set1_epi32(static_cast<int>(philox_m1));
    __m256i k0[10], k1[10];
    for (int r = 0; r < 10; ++r) {
        k0[r] = _mm256_set1_epi32(static_cast<int>(key.scalar0[r]));
        k1[r] = _mm256_set1_epi32(static_cast<int>(key.scalar1[r]));
    }
    const __m256i first0 = _mm256_set1_epi32(static_cast<int>(c0));
    const __m256i first1 = _mm256_set1_epi32(static_cast<int>(c1));
    for (std::size_t j = 0; j < count; j += 8) {
        const __m256i x2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c2 + j));
        const __m256i x3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c3 + j));
        __m256i e0 = first0, o0 = first0, e1 = first1, o1 = first1;
        __m256i e2 = x2, o2 = _mm256_srli_epi64(x2, 32);
        __m256i e3 = x3, o3 = _mm256_srli_epi64(x3, 32);
        for (int r = 0; r < 10; ++r) {
            const __m256i pe0 = _mm256_mul_epu32(e0, m0), pe1 = _mm256_mul_epu32(e2, m1);
            const __m256i po0 = _mm256_mul_epu32(o0, m0), po1 = _mm256_mul_epu32(o2, m1);
            // _MM_SHUFFLE(3, 3, 1, 1) = 0xF5: the high half of each product to its low half.
            e0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(pe1, 0xF5), e1), k0[r]);
            o0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(po1, 0xF5), o1), k0[r]);
            e2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(pe0, 0xF5), e3), k1[r]);
            o2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(po0, 0xF5), o3), k1[r]);
            e1 = pe1;
            o1 = po1;
            e3 = pe0;
            o3 = po0;
        }
        // _MM_SHUFFLE(3, 1, 2, 0) = 0xD8 per 128-bit half, then interleave: blocks in order.
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out0 + j),
                            _mm256_unpacklo_epi32(_mm256_shuffle_epi32(e0, 0xD8), _mm256_shuffle_epi32(o0, 0xD8)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out1 + j),
                            _mm256_unpacklo_epi32(_mm256_shuffle_epi32(e1, 0xD8), _mm256_shuffle_epi32(o1, 0xD8)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out2 + j),
                            _mm256_unpacklo_epi32(_mm256_shuffle_epi32(e2, 0xD8), _mm256_shuffle_epi32(o2, 0xD8)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out3 + j),
                            _mm256_unpacklo_epi32(_mm256_shuffle_epi32(e3, 0xD8), _mm256_shuffle_epi32(o3, 0xD8)));
    }
}

PIPECAST_AVX512_WARNINGS_OFF
/// Sixteen Philox4x32-10 blocks at a time, AVX-512 F (call only where
/// philox_isa_available(avx512)): the AVX2 kernel's scheme in 512-bit registers, for i <
/// count rounded up to a multiple of 16.
[[gnu::target(PIPECAST_AVX512_TARGET)]] inline void
philox4x32_10_x16_avx512(const philox_schedule& key, std::uint32_t c0, std::uint32_t c1, const std::uint32_t* c2,
                         const std::uint32_t* c3, std::uint32_t* out0, std::uint32_t* out1, std::uint32_t* out2,
                         std::uint32_t* out3, std::size_t count) noexcept {
    const __m512i m0 = _mm512_set1_epi32(static_cast<int>(philox_m0));
    const __m512i m1 = _mm512_set1_epi32(static_cast<int>(philox_m1));
    __m512i k0[10], k1[10];
    for (int r = 0; r < 10; ++r) {
        k0[r] = _mm512_set1_epi32(static_cast<int>(key.scalar0[r]));
        k1[r] = _mm512_set1_epi32(static_cast<int>(key.scalar1[r]));
    }
    const __m512i first0 = _mm512_set1_epi32(static_cast<int>(c0));
    const __m512i first1 = _mm512_set1_epi32(static_cast<int>(c1));
    for (std::size_t j = 0; j < count; j += 16) {
        const __m512i x2 = _mm512_loadu_si512(c2 + j);
        const __m512i x3 = _mm512_loadu_si512(c3 + j);
        __m512i e0 = first0, o0 = first0, e1 = first1, o1 = first1;
        __m512i e2 = x2, o2 = _mm512_srli_epi64(x2, 32);
        __m512i e3 = x3, o3 = _mm512_srli_epi64(x3, 32);
        for (int r = 0; r < 10; ++r) {
            const __m512i pe0 = _mm512_mul_epu32(e0, m0), pe1 = _mm512_mul_epu32(e2, m1);
            const __m512i po0 = _mm512_mul_epu32(o0, m0), po1 = _mm512_mul_epu32(o2, m1);
            e0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_shuffle_epi32(pe1, _MM_PERM_DDBB), e1), k0[r]);
            o0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_shuffle_epi32(po1, _MM_PERM_DDBB), o1), k0[r]);
            e2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_shuffle_epi32(pe0, _MM_PERM_DDBB), e3), k1[r]);
            o2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_shuffle_epi32(po0, _MM_PERM_DDBB), o3), k1[r]);
            e1 = pe1;
            o1 = po1;
            e3 = pe0;
            o3 = po0;
        }
        // _MM_PERM_DBCA = _MM_SHUFFLE(3, 1, 2, 0) per 128-bit lane, then interleave.
        _mm512_storeu_si512(out0 + j, _mm512_unpacklo_epi32(_mm512_shuffle_epi32(e0, _MM_PERM_DBCA),
                                                            _mm512_shuffle_epi32(o0, _MM_PERM_DBCA)));
        _mm512_storeu_si512(out1 + j, _mm512_unpacklo_epi32(_mm512_shuffle_epi32(e1, _MM_PERM_DBCA),
                                                            _mm512_shuffle_epi32(o1, _MM_PERM_DBCA)));
        _mm512_storeu_si512(out2 + j, _mm512_unpacklo_epi32(_mm512_shuffle_epi32(e2, _MM_PERM_DBCA),
                                                            _mm512_shuffle_epi32(o2, _MM_PERM_DBCA)));
        _mm512_storeu_si512(out3 + j, _mm512_unpacklo_epi32(_mm512_shuffle_epi32(e3, _MM_PERM_DBCA),
                                                            _mm512_shuffle_epi32(o3, _MM_PERM_DBCA)));
    }
}
PIPECAST_AVX512_WARNINGS_ON
#endif

/// Padding a lane array needs beyond its count for philox4x32_10_lanes (any kernel).
inline constexpr std::size_t philox_lane_padding = 16;

/// Philox4x32-10 blocks for counters (c0, c1, c2[i], c3[i]), i < count, by the kernel
/// `isa` (as philox_resolve() maps it: never a kernel the CPU lacks); word j of block i goes to out_j[i]. Up to
/// philox_lane_padding entries past `count` are read and written (pad the arrays). The
/// output does not depend on `isa`.
template <class = void>
void philox4x32_10_lanes(const philox_schedule& key, std::uint32_t c0, std::uint32_t c1,
                         const std::uint32_t* c2, const std::uint32_t* c3, std::uint32_t* out0,
                         std::uint32_t* out1, std::uint32_t* out2, std::uint32_t* out3, std::size_t count,
                         philox_isa isa) noexcept {
#if defined(PIPECAST_PHILOX_AVX2)
    switch (philox_resolve(isa)) {
    case philox_isa::avx512: philox4x32_10_x16_avx512(key, c0, c1, c2, c3, out0, out1, out2, out3, count); return;
    case philox_isa::avx2: philox4x32_10_x8_avx2(key, c0, c1, c2, c3, out0, out1, out2, out3, count); return;
    default: break;
    }
#else
    (void)isa;
#endif
    for (std::size_t j = 0; j < count; j += 4)
        philox4x32_10_x4(key, c0, c1, c2 + j, c3 + j, out0 + j, out1 + j, out2 + j, out3 + j);
}

/// Same with the key given as a seed.
template <class = void>
void philox4x32_10_x4(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1, const std::uint32_t* c2,
                      const std::uint32_t* c3, std::uint32_t* out0, std::uint32_t* out1, std::uint32_t* out2,
                      std::uint32_t* out3) noexcept {
    philox4x32_10_x4(philox_schedule(seed), c0, c1, c2, c3, out0, out1, out2, out3);
}

} // namespace pipecast::detail
