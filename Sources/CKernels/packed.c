// C = X · Wᵀ + bias with W packed once (at model load) into panels of 16 rows.
//
// A general `sgemm` packs W again on every call and then scales C by beta; with W packed ahead
// of time, X is read in place: a tile of 6 rows of X x 16 rows of W keeps 12 vector accumulators
// fed by one broadcast per X row and two loads of the panel per element of K. Rows of X are taken
// in blocks of about 128 KB and W in blocks of about 192 KB of panels, so both stay in L2 while
// the other passes.
#include "ckernels.h"
#include <string.h>

static void gemm_packed_scalar(const float *x, long lda, long m, long k, const float *wp, long n, const float *bias,
                               float *c, long ldc) {
    for (long i = 0; i < m; i++)
        for (long col = 0; col < n; col++) {
            const float *panel = wp + (col / 16) * 16 * k;
            const long l = col % 16;
            float s = bias ? bias[col] : 0.0f;
            for (long j = 0; j < k; j++) s += x[i * lda + j] * panel[j * 16 + l];
            c[i * ldc + col] = s;
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))

/// Rows [0, MR) of `x` (MR <= 6, a constant after inlining) against one panel, `cols` <= 16 of
/// whose columns are real (the rest is padding and not written).
TGT __attribute__((always_inline)) static inline void tile(int MR, const float *x, long lda, long k, const float *panel,
                                                           const float *bias, long cols, float *c, long ldc) {
    float b[16] = { 0 };
    if (bias) memcpy(b, bias, (size_t)cols * sizeof(float));
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 acc[6][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = b0; acc[i][1] = b1; }
    for (long j = 0; j < k; j++) {
        const __m256 w0 = _mm256_loadu_ps(panel + j * 16), w1 = _mm256_loadu_ps(panel + j * 16 + 8);
        for (int i = 0; i < MR; i++) {
            const __m256 a = _mm256_broadcast_ss(x + i * lda + j);
            acc[i][0] = _mm256_fmadd_ps(a, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, w1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR; i++) {
        if (cols == 16) {
            _mm256_storeu_ps(c + i * ldc, acc[i][0]);
            _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
        } else {
            float s[16];
            _mm256_storeu_ps(s, acc[i][0]);
            _mm256_storeu_ps(s + 8, acc[i][1]);
            memcpy(c + i * ldc, s, (size_t)cols * sizeof(float));
        }
    }
}

/// `rows` (<= 6) rows against panels [p0, p1).
TGT static void row_group(long rows, const float *x, long lda, long k, const float *wp, long n, long p0, long p1,
                          const float *bias, float *c, long ldc) {
    for (long p = p0; p < p1; p++) {
        const long col = p * 16, cols = n - col < 16 ? n - col : 16;
        const float *panel = wp + p * 16 * k, *pb = bias ? bias + col : 0;
        float *out = c + col;
        switch (rows) {
        case 6: tile(6, x, lda, k, panel, pb, cols, out, ldc); break;
        case 5: tile(5, x, lda, k, panel, pb, cols, out, ldc); break;
        case 4: tile(4, x, lda, k, panel, pb, cols, out, ldc); break;
        case 3: tile(3, x, lda, k, panel, pb, cols, out, ldc); break;
        case 2: tile(2, x, lda, k, panel, pb, cols, out, ldc); break;
        default: tile(1, x, lda, k, panel, pb, cols, out, ldc); break;
        }
    }
}

TGT static void gemm_packed_avx2(const float *x, long lda, long m, long k, const float *wp, long n, const float *bias,
                                 float *c, long ldc) {
    const long panels = (n + 15) / 16;
    long row_block = (128 * 1024 / (4 * (lda > k ? lda : k))) / 6 * 6, panel_block = 192 * 1024 / (64 * k);
    if (row_block < 6) row_block = 6;
    if (panel_block < 1) panel_block = 1;
    for (long r0 = 0; r0 < m; r0 += row_block) {
        const long r1 = r0 + row_block < m ? r0 + row_block : m;
        for (long p0 = 0; p0 < panels; p0 += panel_block) {
            const long p1 = p0 + panel_block < panels ? p0 + panel_block : panels;
            for (long r = r0; r < r1; r += 6) {
                const long rows = r1 - r < 6 ? r1 - r : 6;
                row_group(rows, x + r * lda, lda, k, wp, n, p0, p1, bias, c + r * ldc, ldc);
            }
        }
    }
}
#endif

void ck_gemm_packed(const float *x, long lda, long m, long k, const float *wp, long n, const float *bias, float *c,
                    long ldc) {
#if defined(__x86_64__)
    if (ck_has_avx2_fma()) { gemm_packed_avx2(x, lda, m, k, wp, n, bias, c, ldc); return; }
#endif
    gemm_packed_scalar(x, lda, m, k, wp, n, bias, c, ldc);
}

void ck_gemm_packed_portable(const float *x, long lda, long m, long k, const float *wp, long n, const float *bias,
                             float *c, long ldc) {
    gemm_packed_scalar(x, lda, m, k, wp, n, bias, c, ldc);
}
