// Softmax rows and the erf GELU in AVX2 + FMA, the same polynomials as `VectorMath` (Cephes
// `expf`, Eigen's rational erf); the Swift code is built for baseline x86-64, where its SIMD8
// loops lower to two SSE halves without FMA.
#include "ckernels.h"

#if defined(__x86_64__)
#include "hsum.h"
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))

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

#endif
