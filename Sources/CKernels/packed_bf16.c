// C = X · Wᵀ + bias with W packed once into bfloat16 panels of 16 rows, on CPUs with AVX-512 BF16
// (AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids and later).
//
// `vdpbf16ps` multiplies 32 bfloat16 pairs and adds each pair's two products to one of 16 float32
// lanes: twice the multiply-adds of a float32 FMA per instruction, from half the weight bytes.
// Panel layout: for each pair of columns j = 2q, 2q+1 of W, the 16 rows' two values side by side,
// so one 64-byte load holds a panel's 16 x 2 weights and one 32-bit broadcast of X holds the
// matching pair of X values. X is rounded to bfloat16 (round to nearest even) a block of rows at a
// time; products accumulate in float32. Relative error per product is about 2^-8 (bfloat16
// keeps 8 significant bits), so this is an opt-in speed mode, checked against float64 in tests.
#include "ckernels.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/// Round-to-nearest-even float32 -> bfloat16 (NaN kept quiet).
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float from_bf16(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

long ck_bf16_panel_elements(long n, long k) { return (n + 15) / 16 * 16 * ((k + 1) / 2 * 2); }

void ck_pack_panels16_bf16(const float *w, long n, long k, long ld, uint16_t *out) {
    const long kp = (k + 1) / 2 * 2, panels = (n + 15) / 16;
    for (long p = 0; p < panels; p++)
        for (long q = 0; q < kp / 2; q++)
            for (long l = 0; l < 16; l++)
                for (long e = 0; e < 2; e++) {
                    const long row = p * 16 + l, col = 2 * q + e;
                    out[((p * (kp / 2) + q) * 16 + l) * 2 + e] = row < n && col < k ? to_bf16(w[row * ld + col]) : 0;
                }
}

static void gemm_bf16_scalar(const float *x, long lda, long m, long k, const uint16_t *wp, long n, const float *bias,
                             float *c, long ldc) {
    const long kp = (k + 1) / 2 * 2;
    for (long i = 0; i < m; i++)
        for (long col = 0; col < n; col++) {
            const uint16_t *panel = wp + (col / 16) * 16 * kp;
            const long l = col % 16;
            float s = 0;
            for (long j = 0; j < k; j++)
                s += from_bf16(to_bf16(x[i * lda + j])) * from_bf16(panel[((j / 2) * 16 + l) * 2 + (j % 2)]);
            c[i * ldc + col] = s + (bias ? bias[col] : 0.0f);
        }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512bf16")))

/// Rows [0, MR) of the bfloat16 pairs `xb` (rows `ldx` pairs apart) against `np` (1 or 2)
/// panels; `cols` (<= 16 * np) of the columns are real.
TGT __attribute__((always_inline)) static inline void tile_bf16(int MR, int np, const uint32_t *xb, long ldx, long pairs,
                                                                const uint16_t *panel, long pstride, const float *bias,
                                                                long cols, float *c, long ldc) {
    __m512 acc[8][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
    const uint16_t *p1 = panel + pstride;
    for (long q = 0; q < pairs; q++) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + q * 32);
        const __m512bh w1 = np == 2 ? (__m512bh)_mm512_loadu_si512(p1 + q * 32) : w0;
        for (int i = 0; i < MR; i++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)xb[i * ldx + q]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, w0);
            if (np == 2) acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, w1);
        }
    }
    float b[32] = { 0 };
    if (bias) memcpy(b, bias, (size_t)cols * sizeof(float));
    for (int i = 0; i < MR; i++) {
        const __m512 r0 = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(b)), r1 = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(b + 16));
        if (cols == 16 * np) {
            _mm512_storeu_ps(c + i * ldc, r0);
            if (np == 2) _mm512_storeu_ps(c + i * ldc + 16, r1);
        } else {
            float s[32];
            _mm512_storeu_ps(s, r0);
            _mm512_storeu_ps(s + 16, r1);
            memcpy(c + i * ldc, s, (size_t)cols * sizeof(float));
        }
    }
}

/// `rows` (<= 8) rows against panels [p0, p1), two at a time.
TGT static void row_group_bf16(long rows, const uint32_t *xb, long ldx, long pairs, const uint16_t *wp, long n, long p0,
                               long p1, const float *bias, float *c, long ldc) {
    const long pstride = 32 * pairs;
    for (long p = p0; p < p1; p += 2) {
        const int np = p + 1 < p1 ? 2 : 1;
        const long col = p * 16, cols = n - col < 16 * np ? n - col : 16 * np;
        const uint16_t *panel = wp + p * pstride;
        const float *pb = bias ? bias + col : 0;
        float *out = c + col;
#define CASE(R) case R: if (np == 2) tile_bf16(R, 2, xb, ldx, pairs, panel, pstride, pb, cols, out, ldc); \
                        else tile_bf16(R, 1, xb, ldx, pairs, panel, pstride, pb, cols, out, ldc); break;
        switch (rows) { CASE(8) CASE(7) CASE(6) CASE(5) CASE(4) CASE(3) CASE(2) default: CASE(1) }
#undef CASE
    }
}

/// Rounds `rows` rows of `x` to bfloat16 pairs (a zero pads an odd `k`).
TGT static void round_rows(const float *x, long lda, long rows, long k, uint32_t *xb, long ldx) {
    for (long i = 0; i < rows; i++) {
        const float *src = x + i * lda;
        uint16_t *dst = (uint16_t *)(xb + i * ldx);
        long j = 0;
        for (; j + 32 <= k; j += 32) {
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + j + 16), _mm512_loadu_ps(src + j));
            _mm512_storeu_si512(dst + j, (__m512i)v);
        }
        for (; j < k; j++) dst[j] = to_bf16(src[j]);
        if (k % 2) dst[k] = 0;
    }
}

TGT static void gemm_bf16_avx512(const float *x, long lda, long m, long k, const uint16_t *wp, long n, const float *bias,
                                 float *c, long ldc) {
    const long pairs = (k + 1) / 2, panels = (n + 15) / 16;
    // Rows of X are rounded a block of about 128 KB at a time; W is swept in blocks of about
    // 256 KB of panels (an even count, so panels pair up), each passed by every 8-row group of
    // the block while it is in L2: a large W (Gemma's 335 MB head) is read from memory once per
    // row block instead of once per 8 rows.
    long block = 128 * 1024 / (4 * pairs) / 8 * 8, panel_block = 256 * 1024 / (64 * pairs) / 2 * 2;
    if (block < 8) block = 8;
    if (block > m) block = (m + 7) / 8 * 8;
    if (panel_block < 2) panel_block = 2;
    uint32_t *xb = malloc((size_t)(block * pairs) * sizeof(uint32_t));
    if (!xb) { gemm_bf16_scalar(x, lda, m, k, wp, n, bias, c, ldc); return; }
    for (long r0 = 0; r0 < m; r0 += block) {
        const long r1 = r0 + block < m ? r0 + block : m;
        round_rows(x + r0 * lda, lda, r1 - r0, k, xb, pairs);
        for (long p0 = 0; p0 < panels; p0 += panel_block) {
            const long p1 = p0 + panel_block < panels ? p0 + panel_block : panels;
            for (long r = r0; r < r1; r += 8) {
                const long rows = r1 - r < 8 ? r1 - r : 8;
                row_group_bf16(rows, xb + (r - r0) * pairs, pairs, pairs, wp, n, p0, p1, bias, c + r * ldc, ldc);
            }
        }
    }
    free(xb);
}

int ck_has_avx512_bf16(void) {
    // Decided on first use; racing threads store the same value.
    static _Atomic int cached = -1;
    const int known = atomic_load_explicit(&cached, memory_order_relaxed);
    if (known >= 0) return known;
    unsigned eax, ebx, ecx, edx;
    int ok = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 27))) {  // OSXSAVE
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        const unsigned zmm_state = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);
        unsigned a7, b7, c7, d7, a71, b71, c71, d71;
        if ((lo & zmm_state) == zmm_state && __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7)
            && __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71)) {
            const unsigned f = 1u << 16, bw = 1u << 30;
            ok = (b7 & (f | bw)) == (f | bw) && (a71 & (1u << 5));
        }
    }
    atomic_store_explicit(&cached, ok, memory_order_relaxed);
    return ok;
}
#else
int ck_has_avx512_bf16(void) { return 0; }
#endif

void ck_gemm_packed_bf16(const float *x, long lda, long m, long k, const uint16_t *wp, long n, const float *bias,
                         float *c, long ldc) {
#if defined(__x86_64__)
    if (ck_has_avx512_bf16()) { gemm_bf16_avx512(x, lda, m, k, wp, n, bias, c, ldc); return; }
#endif
    gemm_bf16_scalar(x, lda, m, k, wp, n, bias, c, ldc);
}

void ck_gemm_packed_bf16_portable(const float *x, long lda, long m, long k, const uint16_t *wp, long n,
                                  const float *bias, float *c, long ldc) {
    gemm_bf16_scalar(x, lda, m, k, wp, n, bias, c, ldc);
}
