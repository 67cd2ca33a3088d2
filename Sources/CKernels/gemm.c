// C = X · Wᵀ for a few rows of X (batched decode steps), AVX2 + FMA, chosen at run time.
//
// With few rows, OpenBLAS spends as long packing W (it copies the whole weight for every call)
// as multiplying. Here W is read in place: a tile of 3 rows of X by 4 rows of W accumulates 12
// vectors of 8 partial dot products over K (7 loads per 12 FMAs), reduced at the end of the
// tile. W is walked in blocks of about 160 KB that stay in L2 while every group of X rows passes,
// and the next block is prefetched meanwhile.
#include "ckernels.h"

#if defined(__x86_64__)
#include "hsum.h"
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))

/// An MR x NR tile (MR <= 3, NR <= 4; constants after inlining): c[i][j] = x_i · w_j over k.
TGT __attribute__((always_inline)) static inline void tile(int MR, int NR, const float *x, const float *w, long k,
                                                           float *c, long ldc) {
    __m256 acc[3][4];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
    long kk = 0;
    for (; kk + 8 <= k; kk += 8) {
        __m256 xv[3];
        for (int i = 0; i < MR; i++) xv[i] = _mm256_loadu_ps(x + i * k + kk);
        for (int j = 0; j < NR; j++) {
            const __m256 wv = _mm256_loadu_ps(w + j * k + kk);
            for (int i = 0; i < MR; i++) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++) {
        for (int j = 0; j < NR; j++) {
            float s = ck_hsum8(acc[i][j]);
            for (long t = kk; t < k; t++) s += x[i * k + t] * w[j * k + t];
            c[i * ldc + j] = s;
        }
    }
}

/// Rows [0, m) of X against rows [0, n) of W, n <= block size. While it runs, the `next_bytes`
/// bytes at `next` (the following block of W) are prefetched into L2, a few lines per tile, so the
/// next block does not wait for memory.
TGT static void block(const float *x, long m, const float *w, long n, long k, float *c, long ldc,
                      const char *next, long next_bytes) {
    const long lines = next_bytes / 64, tiles = ((m + 2) / 3) * ((n + 3) / 4);
    const long per_tile = (lines + tiles - 1) / tiles;
    long fetched = 0;
#define PREFETCH_SOME()                                                                          \
    for (long p = 0; p < per_tile && fetched < lines; p++, fetched++) _mm_prefetch(next + fetched * 64, _MM_HINT_T1)
    long i = 0;
    for (; i + 3 <= m; i += 3) {
        long j = 0;
        for (; j + 4 <= n; j += 4) { PREFETCH_SOME(); tile(3, 4, x + i * k, w + j * k, k, c + i * ldc + j, ldc); }
        for (; j < n; j++) tile(3, 1, x + i * k, w + j * k, k, c + i * ldc + j, ldc);
    }
    for (; i < m; i++) {
        long j = 0;
        for (; j + 4 <= n; j += 4) { PREFETCH_SOME(); tile(1, 4, x + i * k, w + j * k, k, c + i * ldc + j, ldc); }
        for (; j < n; j++) tile(1, 1, x + i * k, w + j * k, k, c + i * ldc + j, ldc);
    }
#undef PREFETCH_SOME
}

TGT static void gemm_nt(const float *x, long m, const float *w, long n, long k, float *c, long ldc) {
    // Blocks of about 160 KB of W: one in use and the next arriving fit in L2 (512 KB and up).
    long rows_per_block = (160 * 1024 / (4 * k)) & ~3L;
    if (rows_per_block < 4) rows_per_block = 4;
    if (rows_per_block > 64) rows_per_block = 64;
    for (long j = 0; j < n; j += rows_per_block) {
        const long nb = n - j < rows_per_block ? n - j : rows_per_block;
        const long after = n - j - nb, next_rows = after < rows_per_block ? after : rows_per_block;
        block(x, m, w + j * k, nb, k, c + j, ldc, (const char *)(w + (j + nb) * k), next_rows * k * 4);
    }
}

int ck_gemm_nt(const float *x, long m, const float *w, long n, long k, float *c, long ldc) {
    if (!ck_has_avx2_fma()) return 0;
    gemm_nt(x, m, w, n, k, c, ldc);
    return 1;
}

#else

int ck_gemm_nt(const float *x, long m, const float *w, long n, long k, float *c, long ldc) {
    (void)x; (void)m; (void)w; (void)n; (void)k; (void)c; (void)ldc;
    return 0;
}

#endif
