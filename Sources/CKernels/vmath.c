// Softmax rows and the erf GELU in AVX2 + FMA, the same polynomials as `VectorMath` (Cephes
// `expf`, Eigen's rational erf); the Swift code is built for baseline x86-64, where its SIMD8
// loops lower to two SSE halves without FMA.
#include "ckernels.h"
#include <string.h>

#if defined(__x86_64__)
#include "hsum.h"
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))
#define TGTH __attribute__((target("avx2,fma,f16c")))

TGT static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.37f));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), magic);
    const __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic)), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

TGT static inline __m256 erf8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f), _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(x, p);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f), _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(p, q);
}

/// exp of `count` (< 8) floats through the vector routine.
TGT static inline void exp_tail(const float *x, float *out, long count, float shift) {
    float t[8] = { 0 };
    for (long i = 0; i < count; i++) t[i] = x[i] - shift;
    _mm256_storeu_ps(t, exp8(_mm256_loadu_ps(t)));
    for (long i = 0; i < count; i++) out[i] = t[i];
}

TGT static void softmax_row(float *x, long n) {
    __m256 mx = _mm256_set1_ps(x[0]);
    long k = 0;
    for (; k + 8 <= n; k += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + k));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float m = _mm_cvtss_f32(h);
    for (; k < n; k++) m = x[k] > m ? x[k] : m;
    const __m256 mv = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = ck_hsum8(sum);
    if (i < n) {
        exp_tail(x + i, x + i, n - i, m);
        for (long j = i; j < n; j++) s += x[j];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.0f / s;
}

TGT static void gelu(float *x, long n) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), r2 = _mm256_set1_ps(0.7071067811865476f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(v, half), _mm256_add_ps(one, erf8(_mm256_mul_ps(v, r2)))));
    }
    if (i < n) {
        float t[8] = { 0 };
        for (long j = i; j < n; j++) t[j - i] = x[j];
        const __m256 v = _mm256_loadu_ps(t);
        _mm256_storeu_ps(t, _mm256_mul_ps(_mm256_mul_ps(v, half), _mm256_add_ps(one, erf8(_mm256_mul_ps(v, r2)))));
        for (long j = i; j < n; j++) x[j] = t[j - i];
    }
}

// Decode attention over an f16 cache. Scores: 8 positions at a time, one accumulator per position,
// reduced by one hadd tree, so every score sums its terms in the same order wherever it falls.
TGT static void scores8(const float *q, const float *k, long hs, float scale, float *out) {
    __m256 a[8];
    for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
    for (long i = 0; i < hs; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
        for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + j * hs + i), a[j]);
    }
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    const __m256 r = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(out, _mm256_mul_ps(r, _mm256_set1_ps(scale)));
}

/// out[h][c..<c+16] = Σ_t p[h][t] v[t][c..<c+16] for `NQ` heads (a constant after inlining).
TGTH __attribute__((always_inline)) static inline void weighted16(const float *p, long count, const uint16_t *v, long ld,
                                                               long c, int NQ, float *out, long ldo) {
    __m256 a[4][2];
    for (int h = 0; h < NQ; h++) a[h][0] = a[h][1] = _mm256_setzero_ps();
    for (long t = 0; t < count; t++) {
        const uint16_t *row = v + t * ld + c;
        const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)row));
        const __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 8)));
        for (int h = 0; h < NQ; h++) {
            const __m256 s = _mm256_broadcast_ss(p + h * count + t);
            a[h][0] = _mm256_fmadd_ps(s, v0, a[h][0]);
            a[h][1] = _mm256_fmadd_ps(s, v1, a[h][1]);
        }
    }
    for (int h = 0; h < NQ; h++) {
        _mm256_storeu_ps(out + h * ldo + c, a[h][0]);
        _mm256_storeu_ps(out + h * ldo + c + 8, a[h][1]);
    }
}

TGTH static void attend_f16(const float *q, long nq, const uint16_t *keys, const uint16_t *values, long ld, long count,
                           long hs, float scale, float *scores, float *out, long ldo) {
    float kb[8 * 512];  // 8 key rows as float32 (hs <= 512)
    for (long t0 = 0; t0 < count; t0 += 8) {
        const long m = count - t0 < 8 ? count - t0 : 8;
        for (long j = 0; j < 8; j++) {
            float *dst = kb + j * hs;
            if (j >= m) { memset(dst, 0, (size_t)hs * sizeof(float)); continue; }
            const uint16_t *src = keys + (t0 + j) * ld;
            for (long i = 0; i < hs; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
        }
        for (long h = 0; h < nq; h++) {
            float r[8];
            scores8(q + h * hs, kb, hs, scale, r);
            for (long j = 0; j < m; j++) scores[h * count + t0 + j] = r[j];
        }
    }
    for (long h = 0; h < nq; h++) softmax_row(scores + h * count, count);
    for (long h0 = 0; h0 < nq; h0 += 4) {
        const long n = nq - h0 < 4 ? nq - h0 : 4;
        const float *p = scores + h0 * count;
        float *o = out + h0 * ldo;
        for (long c = 0; c < hs; c += 16) {
            switch (n) {
            case 1: weighted16(p, count, values, ld, c, 1, o, ldo); break;
            case 2: weighted16(p, count, values, ld, c, 2, o, ldo); break;
            case 3: weighted16(p, count, values, ld, c, 3, o, ldo); break;
            default: weighted16(p, count, values, ld, c, 4, o, ldo); break;
            }
        }
    }
}

int ck_attend_f16(const float *q, long nq, const uint16_t *keys, const uint16_t *values, long ld, long count,
                  long hs, float scale, float *scores, float *out, long ldo) {
    if (!ck_has_avx2_fma() || count < 1 || hs < 16 || hs > 512 || hs % 16 != 0) return 0;
    attend_f16(q, nq, keys, values, ld, count, hs, scale, scores, out, ldo);
    return 1;
}

int ck_softmax_rows(float *x, long rows, long n, long ld) {
    if (!ck_has_avx2_fma() || n < 1) return 0;
    for (long r = 0; r < rows; r++) softmax_row(x + r * ld, n);
    return 1;
}

int ck_gelu_erf(float *x, long n) {
    if (!ck_has_avx2_fma()) return 0;
    gelu(x, n);
    return 1;
}

#else

int ck_softmax_rows(float *x, long rows, long n, long ld) { (void)x; (void)rows; (void)n; (void)ld; return 0; }
int ck_gelu_erf(float *x, long n) { (void)x; (void)n; return 0; }
int ck_attend_f16(const float *q, long nq, const uint16_t *keys, const uint16_t *values, long ld, long count,
                  long hs, float scale, float *scores, float *out, long ldo) {
    (void)q; (void)nq; (void)keys; (void)values; (void)ld; (void)count; (void)hs; (void)scale; (void)scores; (void)out; (void)ldo;
    return 0;
}

#endif
