// Dot products with a run-time choice of instruction set: the package is built for baseline
// x86-64 (SSE2), and only this function is compiled for AVX + FMA as well.
#include "ckernels.h"
#include <stdatomic.h>

#if defined(__x86_64__)
#include "hsum.h"
#include <cpuid.h>
#include <immintrin.h>

static float dot_sse(const float *a, const float *b, long n) {
    __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps(), acc2 = _mm_setzero_ps(), acc3 = _mm_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm_add_ps(acc0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
        acc1 = _mm_add_ps(acc1, _mm_mul_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4)));
        acc2 = _mm_add_ps(acc2, _mm_mul_ps(_mm_loadu_ps(a + i + 8), _mm_loadu_ps(b + i + 8)));
        acc3 = _mm_add_ps(acc3, _mm_mul_ps(_mm_loadu_ps(a + i + 12), _mm_loadu_ps(b + i + 12)));
    }
    for (; i + 4 <= n; i += 4) acc0 = _mm_add_ps(acc0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
    __m128 s = _mm_add_ps(_mm_add_ps(acc0, acc1), _mm_add_ps(acc2, acc3));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

__attribute__((target("avx,fma")))
static float dot_avx_fma(const float *a, const float *b, long n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float r = ck_hsum8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/// AVX and FMA reported by cpuid, and the OS saving the YMM registers (xgetbv bits 1 and 2).
static int has_avx_fma(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12;
    if ((ecx & (osxsave | avx | fma)) != (osxsave | avx | fma)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6u) == 6u;
}

typedef float (*dot_fn)(const float *, const float *, long);
// Chosen on first use; racing threads store the same value.
static _Atomic(dot_fn) chosen = 0;

static dot_fn choose(void) {
    dot_fn f = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (!f) {
        f = has_avx_fma() ? dot_avx_fma : dot_sse;
        atomic_store_explicit(&chosen, f, memory_order_relaxed);
    }
    return f;
}

float ck_dot(const float *a, const float *b, long n) { return choose()(a, b, n); }

int ck_dot_uses_avx_fma(void) { return choose() == dot_avx_fma; }

/// Prefetches the `bytes` at `p` into L1, one line at a time.
static inline void prefetch_all(const float *p, long bytes) {
    for (long o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

void ck_dot_gather(const float *q, const float *base, long d, const uint32_t *slots, long count, float *out) {
    const dot_fn f = choose();
    const long bytes = d * 4;
    // Two vectors ahead: a graph walk's neighbours are scattered over memory, so each fetch is a
    // cache miss the dot product before it can hide.
    for (long i = 0; i < count && i < 2; i++) prefetch_all(base + (long)slots[i] * d, bytes);
    for (long i = 0; i < count; i++) {
        if (i + 2 < count) prefetch_all(base + (long)slots[i + 2] * d, bytes);
        out[i] = f(q, base + (long)slots[i] * d, d);
    }
}

#else

float ck_dot(const float *a, const float *b, long n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

int ck_dot_uses_avx_fma(void) { return 0; }

void ck_dot_gather(const float *q, const float *base, long d, const uint32_t *slots, long count, float *out) {
    for (long i = 0; i < count; i++) out[i] = ck_dot(q, base + (long)slots[i] * d, d);
}

#endif
