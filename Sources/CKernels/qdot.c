// Fused "quantized weight row x float32 activations" dot products for decode, AVX2 + FMA +
// F16C, chosen at run time (the package itself is built for baseline x86-64).
//
// The activations stay float32, so results equal dequantize-then-dot up to float rounding
// order (no activation quantization error). Block layouts are ggml's, as documented in
// Sources/LLM/Quant/QuantBlocks.swift. Offsets that are the same for a whole 32-weight group
// (Q4_1's m, Q4_0's -8, the k-quants' mins) factor out of the group's dot product:
//   sum_i (d*q_i + m) x_i = d * sum_i q_i x_i + m * sum_i x_i
// so `xsums` (one sum per 32 consecutive activations) covers them.
#include "ckernels.h"
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include "hsum.h"
#include <cpuid.h>
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))

static int avx2(void);

TGT static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

TGT static inline __m256 ld(const float *p) { return _mm256_loadu_ps(p); }
/// The low 8 bytes of `v` as 8 floats (unsigned / signed).
TGT static inline __m256 u8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
TGT static inline __m256 i8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
TGT static inline __m128i ld8(const uint8_t *p) { return _mm_loadl_epi64((const __m128i *)p); }

/// Sum over 32 elements of w * x, as 8 partial sums.
TGT static inline __m256 dot32(__m256 w0, __m256 w1, __m256 w2, __m256 w3, const float *x) {
    __m256 s = _mm256_mul_ps(w0, ld(x));
    s = _mm256_fmadd_ps(w1, ld(x + 8), s);
    s = _mm256_fmadd_ps(w2, ld(x + 16), s);
    return _mm256_fmadd_ps(w3, ld(x + 24), s);
}

/// 16 bytes of nibbles (low nibbles are elements 0-15, high nibbles 16-31) dotted with x[0..<32].
TGT static inline __m256 nibble_dot(const uint8_t *q, const float *x) {
    const __m128i b = _mm_loadu_si128((const __m128i *)q), m = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    return dot32(u8f(lo), u8f(_mm_srli_si128(lo, 8)), u8f(hi), u8f(_mm_srli_si128(hi, 8)), x);
}

/// 16 where bit `8i + lane` of `bits` is set, else 0 (the fifth bit of Q5_0/Q5_1 elements).
TGT static inline __m256i fifth_bits(uint32_t bits, int i) {
    const __m256i v = _mm256_set1_epi32((int)(bits >> (8 * i)));
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(v, sel), sel), _mm256_set1_epi32(16));
}

/// 16 bytes of nibbles plus 32 fifth bits, dotted with x[0..<32] (values 0..31).
TGT static inline __m256 nibble5_dot(const uint8_t *q, uint32_t qh, const float *x) {
    const __m128i b = _mm_loadu_si128((const __m128i *)q), m = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
#define Q5(part, i) _mm256_cvtepi32_ps(_mm256_or_si256(_mm256_cvtepu8_epi32(part), fifth_bits(qh, i)))
    return dot32(Q5(lo, 0), Q5(_mm_srli_si128(lo, 8), 1), Q5(hi, 2), Q5(_mm_srli_si128(hi, 8), 3), x);
#undef Q5
}

// MARK: 32-weight blocks

TGT static float row_q4_0(const uint8_t *r, const float *x, const float *xs, long nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    float off = 0;
    long b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = r + 18 * b, *p1 = p0 + 18;
        const float d0 = half_at(p0), d1 = half_at(p1);
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(d0), nibble_dot(p0 + 2, x + 32 * b), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(d1), nibble_dot(p1 + 2, x + 32 * b + 32), a1);
        off += d0 * xs[b] + d1 * xs[b + 1];
    }
    for (; b < nb; b++) {
        const uint8_t *p = r + 18 * b;
        const float d = half_at(p);
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(d), nibble_dot(p + 2, x + 32 * b), a0);
        off += d * xs[b];
    }
    return ck_hsum8(_mm256_add_ps(a0, a1)) - 8 * off;
}

TGT static float row_q4_1(const uint8_t *r, const float *x, const float *xs, long nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    float off = 0;
    long b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = r + 20 * b, *p1 = p0 + 20;
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p0)), nibble_dot(p0 + 4, x + 32 * b), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p1)), nibble_dot(p1 + 4, x + 32 * b + 32), a1);
        off += half_at(p0 + 2) * xs[b] + half_at(p1 + 2) * xs[b + 1];
    }
    for (; b < nb; b++) {
        const uint8_t *p = r + 20 * b;
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p)), nibble_dot(p + 4, x + 32 * b), a0);
        off += half_at(p + 2) * xs[b];
    }
    return ck_hsum8(_mm256_add_ps(a0, a1)) + off;
}

TGT static float row_q5_0(const uint8_t *r, const float *x, const float *xs, long nb) {
    __m256 a = _mm256_setzero_ps();
    float off = 0;
    for (long b = 0; b < nb; b++) {
        const uint8_t *p = r + 22 * b;
        const float d = half_at(p);
        uint32_t qh;
        memcpy(&qh, p + 2, 4);
        a = _mm256_fmadd_ps(_mm256_set1_ps(d), nibble5_dot(p + 6, qh, x + 32 * b), a);
        off += d * xs[b];
    }
    return ck_hsum8(a) - 16 * off;
}

TGT static float row_q5_1(const uint8_t *r, const float *x, const float *xs, long nb) {
    __m256 a = _mm256_setzero_ps();
    float off = 0;
    for (long b = 0; b < nb; b++) {
        const uint8_t *p = r + 24 * b;
        uint32_t qh;
        memcpy(&qh, p + 4, 4);
        a = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p)), nibble5_dot(p + 8, qh, x + 32 * b), a);
        off += half_at(p + 2) * xs[b];
    }
    return ck_hsum8(a) + off;
}

TGT static float row_q8_0(const uint8_t *r, const float *x, long nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    long b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = r + 34 * b + 2, *p1 = p0 + 34;
        const float *x0 = x + 32 * b, *x1 = x0 + 32;
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p0 - 2)),
                             dot32(i8f(ld8(p0)), i8f(ld8(p0 + 8)), i8f(ld8(p0 + 16)), i8f(ld8(p0 + 24)), x0), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p1 - 2)),
                             dot32(i8f(ld8(p1)), i8f(ld8(p1 + 8)), i8f(ld8(p1 + 16)), i8f(ld8(p1 + 24)), x1), a1);
    }
    for (; b < nb; b++) {
        const uint8_t *p = r + 34 * b + 2;
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(p - 2)),
                             dot32(i8f(ld8(p)), i8f(ld8(p + 8)), i8f(ld8(p + 16)), i8f(ld8(p + 24)), x + 32 * b), a0);
    }
    return ck_hsum8(_mm256_add_ps(a0, a1));
}

// MARK: k-quants (256-weight super-blocks)

/// The 6-bit scale and min of sub-block j (0..<8) of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
static inline void scale_min_k4(const uint8_t *q, int j, float *sc, float *mn) {
    if (j < 4) {
        *sc = (float)(q[j] & 63);
        *mn = (float)(q[j + 4] & 63);
    } else {
        *sc = (float)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *mn = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/// Q4_K (144 bytes) and Q5_K (176 bytes; `five` set): weight = d*sc_j*q - dmin*m_j in sub-block j.
TGT static inline float row_qk(const uint8_t *r, const float *x, const float *xs, long nb, int five) {
    __m256 a = _mm256_setzero_ps();
    float off = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const long size = five ? 176 : 144, qsOffset = five ? 48 : 16;
    for (long b = 0; b < nb; b++) {
        const uint8_t *p = r + size * b;
        const float d = half_at(p), dmin = half_at(p + 2);
        const uint8_t *scales = p + 4, *qh = p + 16;
        for (int g = 0; g < 4; g++) {
            float s1, m1, s2, m2;
            scale_min_k4(scales, 2 * g, &s1, &m1);
            scale_min_k4(scales, 2 * g + 1, &s2, &m2);
            // 32 bytes: low nibbles are sub-block 2g (32 weights), high nibbles 2g+1.
            const __m256i bytes = _mm256_loadu_si256((const __m256i *)(p + qsOffset + 32 * g));
            const __m256i lo = _mm256_and_si256(bytes, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
            const __m128i l0 = _mm256_castsi256_si128(lo), l1 = _mm256_extracti128_si256(lo, 1);
            const __m128i h0 = _mm256_castsi256_si128(hi), h1 = _mm256_extracti128_si256(hi, 1);
            const float *xg = x + 256 * b + 64 * g;
            __m256 slo, shi;
            if (five) {
                // Bit 2g of qh[l] is the fifth bit of weight l of sub-block 2g; bit 2g+1 of 2g+1.
                const __m128i c1 = _mm_cvtsi32_si128(2 * g), c2 = _mm_cvtsi32_si128(2 * g + 1);
                const __m256i one = _mm256_set1_epi32(1);
#define HB(i, c) _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(_mm256_cvtepu8_epi32(ld8(qh + 8 * (i))), c), one), 4)
#define W(part, i, c) _mm256_cvtepi32_ps(_mm256_or_si256(_mm256_cvtepu8_epi32(part), HB(i, c)))
                slo = dot32(W(l0, 0, c1), W(_mm_srli_si128(l0, 8), 1, c1), W(l1, 2, c1), W(_mm_srli_si128(l1, 8), 3, c1), xg);
                shi = dot32(W(h0, 0, c2), W(_mm_srli_si128(h0, 8), 1, c2), W(h1, 2, c2), W(_mm_srli_si128(h1, 8), 3, c2), xg + 32);
#undef W
#undef HB
            } else {
                slo = dot32(u8f(l0), u8f(_mm_srli_si128(l0, 8)), u8f(l1), u8f(_mm_srli_si128(l1, 8)), xg);
                shi = dot32(u8f(h0), u8f(_mm_srli_si128(h0, 8)), u8f(h1), u8f(_mm_srli_si128(h1, 8)), xg + 32);
            }
            a = _mm256_fmadd_ps(_mm256_set1_ps(d * s1), slo, a);
            a = _mm256_fmadd_ps(_mm256_set1_ps(d * s2), shi, a);
            const long sub = 8 * b + 2 * g;
            off += dmin * (m1 * xs[sub] + m2 * xs[sub + 1]);
        }
    }
    return ck_hsum8(a) - off;
}

TGT static float row_q4_K(const uint8_t *r, const float *x, const float *xs, long nb) { return row_qk(r, x, xs, nb, 0); }
TGT static float row_q5_K(const uint8_t *r, const float *x, const float *xs, long nb) { return row_qk(r, x, xs, nb, 1); }

/// Q6_K (210 bytes: ql[128], qh[64], 16 int8 scales, d f16): weight = d*sc*(q - 32), 16 per scale.
TGT static float row_q6_K(const uint8_t *r, const float *x, long nb) {
    __m256 a = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi32(0xF), m2 = _mm256_set1_epi32(3), c32 = _mm256_set1_epi32(32);
    for (long b = 0; b < nb; b++) {
        const uint8_t *p = r + 210 * b;
        const float d = half_at(p + 208);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(p + 192 + 8 * h);
            const float *xh = x + 256 * b + 128 * h;
            // Weights l = 16c ..< 16c+16 of each quarter share scale c (+2, +4, +6).
            for (int c = 0; c < 2; c++) {
                __m256 s1 = _mm256_setzero_ps(), s2 = s1, s3 = s1, s4 = s1;
                for (int l = 16 * c; l < 16 * c + 16; l += 8) {
                    const __m256i lo = _mm256_cvtepu8_epi32(ld8(ql + l)), hi = _mm256_cvtepu8_epi32(ld8(ql + l + 32));
                    const __m256i hb = _mm256_cvtepu8_epi32(ld8(qh + l));
#define Q6(v, shiftLow, shiftHigh) _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(                     \
        _mm256_and_si256(_mm256_srli_epi32(v, shiftLow), m4),                                          \
        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hb, shiftHigh), m2), 4)), c32))
                    s1 = _mm256_fmadd_ps(Q6(lo, 0, 0), ld(xh + l), s1);
                    s2 = _mm256_fmadd_ps(Q6(hi, 0, 2), ld(xh + l + 32), s2);
                    s3 = _mm256_fmadd_ps(Q6(lo, 4, 4), ld(xh + l + 64), s3);
                    s4 = _mm256_fmadd_ps(Q6(hi, 4, 6), ld(xh + l + 96), s4);
#undef Q6
                }
                a = _mm256_fmadd_ps(_mm256_set1_ps(d * sc[c]), s1, a);
                a = _mm256_fmadd_ps(_mm256_set1_ps(d * sc[c + 2]), s2, a);
                a = _mm256_fmadd_ps(_mm256_set1_ps(d * sc[c + 4]), s3, a);
                a = _mm256_fmadd_ps(_mm256_set1_ps(d * sc[c + 6]), s4, a);
            }
        }
    }
    return ck_hsum8(a);
}

// MARK: int16 activations

/// Unpacks one 32-weight block to two vectors of 16 int16 (elements 0-15, 16-31) and gives the
/// block's scale d and the offset added to every weight: weight_i = d * w_i + offset. Nibble
/// types are centered (q - 8, q5 - 16): smaller integers carry less activation-rounding error.
TGT __attribute__((always_inline)) static inline void unpack32(int type, const uint8_t *p, __m256i *w0, __m256i *w1, float *d, float *offset) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    switch (type) {
    case CK_Q8_0:
        *d = half_at(p);
        *offset = 0;
        *w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 2)));
        *w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 18)));
        return;
    case CK_Q4_0:
    case CK_Q4_1: {
        const __m128i b = _mm_loadu_si128((const __m128i *)(p + (type == CK_Q4_0 ? 2 : 4))), eight = _mm_set1_epi8(8);
        *w0 = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_and_si128(b, m4), eight));
        *w1 = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), m4), eight));
        *d = half_at(p);
        *offset = type == CK_Q4_0 ? 0 : half_at(p + 2) + 8 * *d;
        return;
    }
    default: {  // CK_Q5_0, CK_Q5_1
        const int one = type == CK_Q5_1;
        uint32_t qh;
        memcpy(&qh, p + 2 + 2 * one, 4);
        const __m128i b = _mm_loadu_si128((const __m128i *)(p + 6 + 2 * one));
        const __m256i sel = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
                                              (short)32768);
        const __m256i sixteen = _mm256_set1_epi16(16);
#define FIFTH(bits) _mm256_and_si256(_mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16((short)(bits)), sel), sel), sixteen)
        *w0 = _mm256_sub_epi16(_mm256_or_si256(_mm256_cvtepu8_epi16(_mm_and_si128(b, m4)), FIFTH(qh & 0xFFFF)), sixteen);
        *w1 = _mm256_sub_epi16(_mm256_or_si256(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(b, 4), m4)),
                                               FIFTH(qh >> 16)), sixteen);
#undef FIFTH
        *d = half_at(p);
        *offset = one ? half_at(p + 2) + 16 * *d : 0;
        return;
    }
    }
}

/// Rows x up to 4 int16 activation vectors, each block unpacked once for all vectors.
TGT __attribute__((always_inline)) static inline void rows_i16(
    int type, long block_bytes, const uint8_t *w, long row_bytes, long count, const int16_t *xq, const float *xscale,
    const float *xsums, long vectors, long columns, float *out, long out_stride) {
    const long nb = columns / 32;
    if (vectors == 1) {  // decode: the same arithmetic as below (so batched = single stream), no vector loop
        for (long i = 0; i < count; i++, w += row_bytes) {
            __m256 acc = _mm256_setzero_ps();
            float off = 0;
            for (long b = 0; b < nb; b++) {
                __m256i w0, w1;
                float d, offset;
                unpack32(type, w + block_bytes * b, &w0, &w1, &d, &offset);
                const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)(xq + 32 * b))),
                                                   _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(xq + 32 * b + 16))));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * xscale[b]), _mm256_cvtepi32_ps(p), acc);
                off += offset * xsums[b];
            }
            out[i] = ck_hsum8(acc) + off;
        }
        return;
    }
    for (long i = 0; i < count; i++, w += row_bytes) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        float off[4] = {0, 0, 0, 0};
        for (long b = 0; b < nb; b++) {
            __m256i w0, w1;
            float d, offset;
            unpack32(type, w + block_bytes * b, &w0, &w1, &d, &offset);
            for (long v = 0; v < vectors; v++) {
                const int16_t *x = xq + v * columns + 32 * b;
                const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)x)),
                                                   _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(x + 16))));
                acc[v] = _mm256_fmadd_ps(_mm256_set1_ps(d * xscale[v * nb + b]), _mm256_cvtepi32_ps(p), acc[v]);
                off[v] += offset * xsums[v * nb + b];
            }
        }
        for (long v = 0; v < vectors; v++) out[v * out_stride + i] = ck_hsum8(acc[v]) + off[v];
    }
}

// One copy per type, with a constant `type`, so unpack32's switch folds away.
#define ROWS_I16(name, t, size)                                                                                      \
    TGT static void name(const uint8_t *w, long row_bytes, long count, const int16_t *xq, const float *xscale,       \
                         const float *xsums, long vectors, long columns, float *out, long out_stride) {              \
        rows_i16(t, size, w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride);                \
    }
ROWS_I16(rows_i16_q4_0, CK_Q4_0, 18)
ROWS_I16(rows_i16_q4_1, CK_Q4_1, 20)
ROWS_I16(rows_i16_q5_0, CK_Q5_0, 22)
ROWS_I16(rows_i16_q5_1, CK_Q5_1, 24)
ROWS_I16(rows_i16_q8_0, CK_Q8_0, 34)
#undef ROWS_I16

// MARK: int16 activations, k-quants

/// Adds one 32-weight block (`w0`: elements 0-15, `w1`: 16-31, as int16) times the activation
/// block `bx` of every vector: acc[v] += ds * xscale * (w . xq), off[v] += offset * xsum.
TGT __attribute__((always_inline)) static inline void acc_block32(
    __m256i w0, __m256i w1, float ds, float offset, long bx, const int16_t *xq, const float *xscale,
    const float *xsums, long vectors, long columns, __m256 *acc, float *off) {
    const long nb = columns / 32;
    for (long v = 0; v < vectors; v++) {
        const int16_t *x = xq + v * columns + 32 * bx;
        const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)x)),
                                           _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(x + 16))));
        acc[v] = _mm256_fmadd_ps(_mm256_set1_ps(ds * xscale[v * nb + bx]), _mm256_cvtepi32_ps(p), acc[v]);
        off[v] += offset * xsums[v * nb + bx];
    }
}

/// 32 signed bytes as two vectors of 16 int16 (elements 0-15, 16-31).
TGT static inline void widen32(__m256i b, __m256i *w0, __m256i *w1) {
    *w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b));
    *w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1));
}

/// One 256-weight super-block of Q4_K (`five` = 0, 144 bytes) or Q5_K (176 bytes) against the
/// activation blocks `8 sb ..< 8 sb + 8`. Sub-block j: weight = d*sc_j*q - dmin*m_j, with q
/// centered (q - 8, q5 - 16) so the integer part is small and the rest goes into the offset.
TGT __attribute__((always_inline)) static inline void superblock_qk_i16(
    const uint8_t *p, int five, long sb, const int16_t *xq, const float *xscale, const float *xsums,
    long vectors, long columns, __m256 *acc, float *off) {
    const float d = half_at(p), dmin = half_at(p + 2);
    const uint8_t *scales = p + 4;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i center = _mm256_set1_epi8(five ? 16 : 8);
    const __m256i hbits = five ? _mm256_loadu_si256((const __m256i *)(p + 16)) : _mm256_setzero_si256();
    const uint8_t *qs = p + (five ? 48 : 16);
    for (int g = 0; g < 4; g++) {
        const __m256i bytes = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
        __m256i lo = _mm256_and_si256(bytes, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
        if (five) {  // bit 2g of qh[l] is the fifth bit of weight l of sub-block 2g; bit 2g+1 of 2g+1
            const __m256i b0 = _mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * g)), one);
            const __m256i b1 = _mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * g + 1)), one);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(b0, 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(b1, 4));
        }
        float s1, m1, s2, m2;
        scale_min_k4(scales, 2 * g, &s1, &m1);
        scale_min_k4(scales, 2 * g + 1, &s2, &m2);
        const float c = five ? 16 : 8;
        __m256i w0, w1;
        widen32(_mm256_sub_epi8(lo, center), &w0, &w1);
        acc_block32(w0, w1, d * s1, c * d * s1 - dmin * m1, 8 * sb + 2 * g, xq, xscale, xsums, vectors, columns, acc, off);
        widen32(_mm256_sub_epi8(hi, center), &w0, &w1);
        acc_block32(w0, w1, d * s2, c * d * s2 - dmin * m2, 8 * sb + 2 * g + 1, xq, xscale, xsums, vectors, columns, acc, off);
    }
}

/// One 256-weight super-block of Q6_K (210 bytes): weight = d*sc*(q - 32), one int8 scale per 16
/// weights, folded into the int16 weights ((q - 32) * sc fits: |.| <= 4096).
TGT __attribute__((always_inline)) static inline void superblock_q6k_i16(
    const uint8_t *p, long sb, const int16_t *xq, const float *xscale, const float *xsums, long vectors,
    long columns, __m256 *acc, float *off) {
    const float d = half_at(p + 208);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3), c32 = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = p + 64 * h, *qhp = p + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(p + 192 + 8 * h);
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
#define Q6(low, shift) _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), m3), 4)), c32)
        const __m256i q[4] = {
            Q6(_mm256_and_si256(l0, m4), 0), Q6(_mm256_and_si256(l1, m4), 2),
            Q6(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), 4), Q6(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), 6)};
#undef Q6
        for (int k = 0; k < 4; k++) {  // elements 32k ..< 32k+32 of this half: scales sc[2k], sc[2k+1]
            __m256i w0, w1;
            widen32(q[k], &w0, &w1);
            w0 = _mm256_mullo_epi16(w0, _mm256_set1_epi16(sc[2 * k]));
            w1 = _mm256_mullo_epi16(w1, _mm256_set1_epi16(sc[2 * k + 1]));
            acc_block32(w0, w1, d, 0, 8 * sb + 4 * h + k, xq, xscale, xsums, vectors, columns, acc, off);
        }
    }
}

/// Rows of a k-quant type x up to 4 int16 activation vectors, each super-block unpacked once.
TGT __attribute__((always_inline)) static inline void rows_i16_k(
    int type, const uint8_t *w, long row_bytes, long count, const int16_t *xq, const float *xscale,
    const float *xsums, long vectors, long columns, float *out, long out_stride) {
    const long nsb = columns / 256, size = type == CK_Q4_K ? 144 : type == CK_Q5_K ? 176 : 210;
    for (long i = 0; i < count; i++, w += row_bytes) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        float off[4] = {0, 0, 0, 0};
        for (long sb = 0; sb < nsb; sb++) {
            if (type == CK_Q6_K) superblock_q6k_i16(w + size * sb, sb, xq, xscale, xsums, vectors, columns, acc, off);
            else superblock_qk_i16(w + size * sb, type == CK_Q5_K, sb, xq, xscale, xsums, vectors, columns, acc, off);
        }
        for (long v = 0; v < vectors; v++) out[v * out_stride + i] = ck_hsum8(acc[v]) + off[v];
    }
}

// One copy per type and for one vector (decode), so the type tests and the vector loop fold away.
#define ROWS_I16_K(name, t)                                                                                          \
    TGT static void name(const uint8_t *w, long row_bytes, long count, const int16_t *xq, const float *xscale,       \
                         const float *xsums, long vectors, long columns, float *out, long out_stride) {              \
        if (vectors == 1) rows_i16_k(t, w, row_bytes, count, xq, xscale, xsums, 1, columns, out, out_stride);        \
        else rows_i16_k(t, w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride);               \
    }
ROWS_I16_K(rows_i16_q4_K, CK_Q4_K)
ROWS_I16_K(rows_i16_q5_K, CK_Q5_K)
ROWS_I16_K(rows_i16_q6_K, CK_Q6_K)
#undef ROWS_I16_K

int ck_qdot_i16_supports(int type) {
    if (!avx2()) return 0;
    return type == CK_Q4_0 || type == CK_Q4_1 || type == CK_Q5_0 || type == CK_Q5_1 || type == CK_Q8_0 ||
           type == CK_Q4_K || type == CK_Q5_K || type == CK_Q6_K;
}

int ck_qdot_i16_rows(int type, const void *rows, long row_bytes, long count, const int16_t *xq, const float *xscale,
                     const float *xsums, long vectors, long columns, float *out, long out_stride) {
    if (!ck_qdot_i16_supports(type) || vectors < 1 || vectors > 4) return 0;
    const uint8_t *w = (const uint8_t *)rows;
    switch (type) {
    case CK_Q4_0: rows_i16_q4_0(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q4_1: rows_i16_q4_1(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q5_0: rows_i16_q5_0(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q5_1: rows_i16_q5_1(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q8_0: rows_i16_q8_0(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q4_K: rows_i16_q4_K(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q5_K: rows_i16_q5_K(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    case CK_Q6_K: rows_i16_q6_K(w, row_bytes, count, xq, xscale, xsums, vectors, columns, out, out_stride); break;
    }
    return 1;
}

// MARK: Dispatch

/// AVX2, FMA and F16C reported by cpuid, and the OS saving the YMM registers.
static int has_avx2_fma_f16c(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned need1 = (1u << 27) | (1u << 28) | (1u << 12) | (1u << 29);  // osxsave, avx, fma, f16c
    if ((ecx & need1) != need1) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & 6u) != 6u) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx & (1u << 5)) != 0;  // avx2
}

static atomic_int avx2_state = -1;  // -1 unknown; racing threads store the same value

static int avx2(void) {
    int s = atomic_load_explicit(&avx2_state, memory_order_relaxed);
    if (s < 0) {
        s = has_avx2_fma_f16c();
        atomic_store_explicit(&avx2_state, s, memory_order_relaxed);
    }
    return s;
}

int ck_has_avx2_fma(void) { return avx2(); }

int ck_qdot_supports(int type) {
    if (!avx2()) return 0;
    switch (type) {
    case CK_Q4_0: case CK_Q4_1: case CK_Q5_0: case CK_Q5_1: case CK_Q8_0: case CK_Q4_K: case CK_Q5_K: case CK_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int ck_qdot_rows(int type, const void *rows, long row_bytes, long count, const float *x, const float *xsums,
                 long columns, float *out) {
    if (!ck_qdot_supports(type)) return 0;
    const uint8_t *w = (const uint8_t *)rows;
    const long nb32 = columns / 32, nb256 = columns / 256;
    switch (type) {
#define LOOP(expr) for (long i = 0; i < count; i++, w += row_bytes) out[i] = (expr); break;
    case CK_Q4_0: LOOP(row_q4_0(w, x, xsums, nb32))
    case CK_Q4_1: LOOP(row_q4_1(w, x, xsums, nb32))
    case CK_Q5_0: LOOP(row_q5_0(w, x, xsums, nb32))
    case CK_Q5_1: LOOP(row_q5_1(w, x, xsums, nb32))
    case CK_Q8_0: LOOP(row_q8_0(w, x, nb32))
    case CK_Q4_K: LOOP(row_q4_K(w, x, xsums, nb256))
    case CK_Q5_K: LOOP(row_q5_K(w, x, xsums, nb256))
    case CK_Q6_K: LOOP(row_q6_K(w, x, nb256))
#undef LOOP
    default: return 0;
    }
    return 1;
}

#else

int ck_has_avx2_fma(void) { return 0; }

int ck_qdot_supports(int type) { (void)type; return 0; }

int ck_qdot_i16_supports(int type) { (void)type; return 0; }

int ck_qdot_i16_rows(int type, const void *rows, long row_bytes, long count, const int16_t *xq, const float *xscale,
                     const float *xsums, long vectors, long columns, float *out, long out_stride) {
    (void)type; (void)rows; (void)row_bytes; (void)count; (void)xq; (void)xscale; (void)xsums; (void)vectors;
    (void)columns; (void)out; (void)out_stride;
    return 0;
}

int ck_qdot_rows(int type, const void *rows, long row_bytes, long count, const float *x, const float *xsums,
                 long columns, float *out) {
    (void)type; (void)rows; (void)row_bytes; (void)count; (void)x; (void)xsums; (void)columns; (void)out;
    return 0;
}

#endif
