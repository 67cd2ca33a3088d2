// Exact inner-product search for a block of queries: scores and the top-k pre-filter in one pass.
//
// The queries are packed once per search into panels of 16 (element j of the panel's 16 queries
// is contiguous), so a tile of 6 stored rows x 16 queries is 12 vector accumulators fed by one
// broadcast per row and two loads per element: the stored rows are read in place, never copied,
// and stay in L1 while every panel passes. Each finished tile is compared with the queries'
// current thresholds in registers; only scores that could enter a top-k leave the kernel. Where
// a general `sgemm` packs both operands on every call and writes a score tile that is then read
// again, this kernel does neither.
#include "ckernels.h"

void ck_pack_panels16(const float *q, long count, long d, long ld, float *out) {
    const long panels = (count + 15) / 16;
    for (long p = 0; p < panels; p++)
        for (long j = 0; j < d; j++)
            for (long l = 0; l < 16; l++) {
                const long i = p * 16 + l;
                out[(p * d + j) * 16 + l] = i < count ? q[i * ld + j] : 0.0f;
            }
}

void ck_pack_panels16_t(const float *v, long k, long n, long ld, float *out) {
    const long panels = (n + 15) / 16;
    for (long p = 0; p < panels; p++)
        for (long j = 0; j < k; j++)
            for (long l = 0; l < 16; l++) {
                const long col = p * 16 + l;
                out[(p * k + j) * 16 + l] = col < n ? v[j * ld + col] : 0.0f;
            }
}

/// Appends a hit; the caller sized `out` for every score, so there is always room.
static inline void emit(ck_ip_hit *out, long *hits, long query, long row, float score) {
    out[*hits] = (ck_ip_hit){ .query = (int32_t)query, .row = (int32_t)row, .score = score };
    (*hits)++;
}

long ck_ip_scan16_portable(const float *db, long n, long d, const float *panels, long npanels, const float *thr,
                        ck_ip_hit *out) {
    long hits = 0;
    for (long r = 0; r < n; r++)
        for (long p = 0; p < npanels; p++) {
            float s[16] = { 0 };
            for (long j = 0; j < d; j++)
                for (int l = 0; l < 16; l++) s[l] += db[r * d + j] * panels[(p * d + j) * 16 + l];
            for (int l = 0; l < 16; l++)
                if (s[l] >= thr[p * 16 + l]) emit(out, &hits, p * 16 + l, r, s[l]);
        }
    return hits;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))

/// Rows [0, MR) of `db` (MR <= 6, a constant after inlining) against one panel, then the
/// threshold test of all MR x 16 scores.
TGT __attribute__((always_inline)) static inline void tile(int MR, const float *db, long row0, long d,
                                                           const float *panel, long query0, const float *thr,
                                                           ck_ip_hit *out, long *hits) {
    __m256 acc[6][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (long j = 0; j < d; j++) {
        const __m256 b0 = _mm256_loadu_ps(panel + j * 16), b1 = _mm256_loadu_ps(panel + j * 16 + 8);
        for (int i = 0; i < MR; i++) {
            const __m256 a = _mm256_broadcast_ss(db + i * d + j);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    const __m256 t0 = _mm256_loadu_ps(thr), t1 = _mm256_loadu_ps(thr + 8);
    for (int i = 0; i < MR; i++) {
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(acc[i][0], t0, _CMP_GE_OQ))
                      | (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(acc[i][1], t1, _CMP_GE_OQ)) << 8;
        if (!mask) continue;
        float s[16];
        _mm256_storeu_ps(s, acc[i][0]);
        _mm256_storeu_ps(s + 8, acc[i][1]);
        while (mask) {
            const int l = __builtin_ctz(mask);
            mask &= mask - 1;
            emit(out, hits, query0 + l, row0 + i, s[l]);
        }
    }
}

TGT static long scan_avx2(const float *db, long n, long d, const float *panels, long npanels, const float *thr,
                          ck_ip_hit *out) {
    long hits = 0, r = 0;
    for (; r + 6 <= n; r += 6)
        for (long p = 0; p < npanels; p++)
            tile(6, db + r * d, r, d, panels + p * d * 16, p * 16, thr + p * 16, out, &hits);
    for (; r < n; r++)
        for (long p = 0; p < npanels; p++)
            tile(1, db + r * d, r, d, panels + p * d * 16, p * 16, thr + p * 16, out, &hits);
    return hits;
}
#endif

long ck_ip_scan16(const float *db, long n, long d, const float *panels, long npanels, const float *thr,
                  ck_ip_hit *out) {
#if defined(__x86_64__)
    if (ck_has_avx2_fma()) return scan_avx2(db, n, d, panels, npanels, thr, out);
#endif
    return ck_ip_scan16_portable(db, n, d, panels, npanels, thr, out);
}
