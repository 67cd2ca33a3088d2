// Private to CKernels: the horizontal sum of 8 floats, shared by the AVX kernels. Compiled for
// AVX only, so it inlines into every function built for AVX or a superset (AVX2, FMA, F16C).
#ifndef CKERNELS_HSUM_H
#define CKERNELS_HSUM_H

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx"))) static inline float ck_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

#endif
