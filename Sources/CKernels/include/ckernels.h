#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdint.h>

/// Σ a[i]·b[i] over `n` floats: 256-bit AVX with FMA when the CPU has them (checked once, with
/// cpuid and xgetbv), else 128-bit SSE. Four independent accumulators; the sum order differs
/// from a sequential loop, so results agree to float rounding, not bit for bit.
float ck_dot(const float *a, const float *b, long n);

/// 1 when `ck_dot` runs the AVX + FMA path on this CPU, else 0.
int ck_dot_uses_avx_fma(void);

/// `out[i] = ck_dot(q, base + slots[i] * d, d)` for i in 0 ..< count: scattered rows of a
/// row-major `(N, d)` matrix, each prefetched two rows ahead so its cache misses overlap the
/// dot products before it (the neighbour lists of a graph walk). Same values as `ck_dot`.
void ck_dot_gather(const float *q, const float *base, long d, const uint32_t *slots, long count, float *out);

/// GGML tensor type ids of the quantized types `ck_qdot_rows` knows.
enum { CK_Q4_0 = 2, CK_Q4_1 = 3, CK_Q5_0 = 6, CK_Q5_1 = 7, CK_Q8_0 = 8, CK_Q4_K = 12, CK_Q5_K = 13, CK_Q6_K = 14 };

/// 1 when `ck_qdot_rows` has a kernel for GGML type `type` on this CPU (AVX2 + FMA + F16C, checked
/// once with cpuid and xgetbv), else 0.
int ck_qdot_supports(int type);

/// `out[i] = row_i · x` for `count` consecutive quantized rows of `columns` weights each, `row_bytes`
/// apart, starting at `rows`. `xsums[b]` is the sum of `x[32b ..< 32b+32]`. The activations stay
/// float32: results equal dequantize-then-dot up to float rounding order. `columns` must be a
/// multiple of the type's block size and every row readable (the caller checks both).
/// Returns 1 when it ran, 0 when `ck_qdot_supports(type)` is 0 (nothing written).
int ck_qdot_rows(int type, const void *rows, long row_bytes, long count, const float *x, const float *xsums,
                 long columns, float *out);

/// 1 when `ck_qdot_i16_rows` has a kernel for `type` on this CPU (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
/// Q4_K, Q5_K, Q6_K with AVX2 + FMA + F16C), else 0.
int ck_qdot_i16_supports(int type);

/// Quantized rows times `vectors` (1 to 4) activation vectors quantized per 32 to int16:
/// `out[v * out_stride + i] = row_i · x_v`, where `x_v[j] ~= xscale[v][j/32] * xq[v * columns + j]`
/// and `xsums[v][b]` is the exact float sum of block b of x_v (it carries the weights' constant
/// offsets). `pmaddwd` multiplies the int16 pairs; one int32 -> float conversion per block and
/// vector. Returns 1 when it ran, 0 when unsupported (nothing written).
int ck_qdot_i16_rows(int type, const void *rows, long row_bytes, long count, const int16_t *xq, const float *xscale,
                     const float *xsums, long vectors, long columns, float *out, long out_stride);

/// 1 when this CPU runs the AVX2 + FMA + F16C kernels (cpuid and xgetbv, checked once), else 0.
int ck_has_avx2_fma(void);

/// `c[i * ldc + j] = x_i · w_j` for the `m` rows of `x (m, k)` and the `n` rows of `w (n, k)`, both
/// row-major float32: `C = X · Wᵀ` without packing W, for small `m` (batched decode steps of a few
/// dozen rows), where OpenBLAS spends as long copying W as multiplying. Returns 1 when it ran,
/// 0 without AVX2 + FMA (nothing written).
int ck_gemm_nt(const float *x, long m, const float *w, long n, long k, float *c, long ldc);

/// A task of `ck_pool_run`: `task` is 0 ..< tasks.
typedef void (*ck_task_fn)(void *ctx, long task);

/// Runs `fn(ctx, 0)` ... `fn(ctx, tasks - 1)` on the calling thread and the pool's persistent
/// workers (one fewer than the online CPUs, started on first use; idle workers spin for 0.2 ms
/// before they sleep). Tasks are claimed dynamically and may run in any order, concurrently.
/// Returns 1 once every task has finished, or 0 without running anything when the pool is
/// busy (another thread's job, or a call from inside a task) or has no workers: the caller then
/// runs the work another way.
int ck_pool_run(long tasks, ck_task_fn fn, void *ctx);

/// The number of pool worker threads (starting them if needed).
int ck_pool_workers(void);


/// One score that passed `ck_ip_scan16`'s threshold: query index, row index, inner product.
typedef struct { int32_t query; int32_t row; float score; } ck_ip_hit;

/// Packs `count` rows of `q` (row-major, `d` values each, rows `ld` apart) into panels of 16 for
/// `ck_ip_scan16` and `ck_gemm_packed`: element j of row 16p + l goes to
/// `out[(p * d + j) * 16 + l]`; the missing rows of the last panel are zero. `out` holds
/// `ceil(count / 16) * 16 * d` floats.
void ck_pack_panels16(const float *q, long count, long d, long ld, float *out);

/// Packs W = Vᵀ for `ck_gemm_packed`, where `v (k, n)` is row-major with rows `ld` apart: the
/// panels of `ck_pack_panels16` of the `n x k` transpose, without forming it. `out` holds
/// `ceil(n / 16) * 16 * k` floats.
void ck_pack_panels16_t(const float *v, long k, long n, long ld, float *out);

/// Scores the `n` rows of `db (n, d)` (row-major, read in place) against the `npanels` packed
/// panels of queries and writes every (query, row, score) with `score >= thr[query]` to `out`, in
/// no particular order; returns how many. `thr` has `16 * npanels` entries (use +inf for padding
/// queries, -inf to keep everything). `out` must hold `16 * npanels * n` hits, the worst case.
/// AVX2 + FMA tiles of 6 rows x 16 queries when the CPU has them, a scalar loop otherwise.
long ck_ip_scan16(const float *db, long n, long d, const float *panels, long npanels, const float *thr,
                  ck_ip_hit *out);

/// `ck_ip_scan16`'s scalar loop on every CPU (the fallback without AVX2; tests check both paths).
long ck_ip_scan16_portable(const float *db, long n, long d, const float *panels, long npanels, const float *thr,
                           ck_ip_hit *out);


/// `c[i * ldc + j] = x_i · w_j (+ bias[j])` for the `m` rows of `x (m, k)` (row-major, rows `lda`
/// apart, read in place) and the `n` rows of a weight `w (n, k)` packed by
/// `ck_pack_panels16(w, n, k, k, wp)`: `C = X · Wᵀ + bias` without repacking W on every call.
/// `bias` may be NULL. AVX2 + FMA tiles of 6 rows x 16 columns when the CPU has them, a scalar
/// loop otherwise.
void ck_gemm_packed(const float *x, long lda, long m, long k, const float *wp, long n, const float *bias, float *c,
                    long ldc);

/// `ck_gemm_packed`'s scalar loop on every CPU (the fallback without AVX2; tests check both paths).
void ck_gemm_packed_portable(const float *x, long lda, long m, long k, const float *wp, long n, const float *bias,
                             float *c, long ldc);

/// 1 when the CPU and OS support AVX-512 F, BW and BF16 (the bfloat16 kernels below), else 0.
int ck_has_avx512_bf16(void);

/// bfloat16 elements `ck_pack_panels16_bf16` writes for an `(n, k)` weight:
/// `ceil(n / 16) * 16 * (k rounded up to even)`.
long ck_bf16_panel_elements(long n, long k);

/// Packs `w (n, k)` (row-major, rows `ld` apart) as bfloat16 (round to nearest even) panels of 16
/// rows for `ck_gemm_packed_bf16`: within panel p, values j = 2q and 2q + 1 of row 16p + l go to
/// `out[((p * K2 + q) * 16 + l) * 2 + (j - 2q)]` with K2 = ceil(k / 2); padding is zero.
void ck_pack_panels16_bf16(const float *w, long n, long k, long ld, uint16_t *out);

/// `ck_gemm_packed` on bfloat16 panels: `c[i * ldc + j] = x_i · w_j (+ bias[j])` with `x` rounded
/// to bfloat16 and float32 accumulation (`vdpbf16ps`, tiles of 8 rows x 32 columns) on CPUs with
/// AVX-512 BF16, a scalar loop with the same roundings otherwise.
void ck_gemm_packed_bf16(const float *x, long lda, long m, long k, const uint16_t *wp, long n, const float *bias,
                         float *c, long ldc);

/// `ck_gemm_packed_bf16`'s scalar loop on every CPU (tests compare both paths).
void ck_gemm_packed_bf16_portable(const float *x, long lda, long m, long k, const uint16_t *wp, long n,
                                  const float *bias, float *c, long ldc);


/// Softmax, in place, of `rows` rows of `n` floats starting `ld` apart (numerically stable: the
/// row maximum is subtracted), with `VectorMath`'s exp polynomial in AVX2 + FMA. Returns 1 when
/// it ran, 0 without AVX2 + FMA or for `n < 1` (nothing written).
int ck_softmax_rows(float *x, long rows, long n, long ld);

/// `x = x/2 · (1 + erf(x/√2))` (the exact GELU, `VectorMath`'s erf) on `n` floats in place, AVX2 +
/// FMA. Returns 1 when it ran, 0 without AVX2 + FMA (nothing written).
int ck_gelu_erf(float *x, long n);

/// Decode attention of `nq` query heads that share one key/value head, over `count` cached
/// positions stored as IEEE half floats: `out[h] = softmax(q[h] · Kᵀ · scale) V`.
/// `q`: (nq, hs) float rows `hs` apart; `keys`, `values`: `count` rows `ld` elements apart (this
/// head's slice, from the first visible position); `scores`: scratch of `nq * count` floats;
/// `out`: (nq, hs) rows `ldo` apart. Each score and output element sums its terms in one fixed
/// order (positions in order). AVX2 + FMA + F16C; returns 1 when it ran, 0 without them or for
/// `count < 1` or `hs` not a multiple of 16 in 16...512 (nothing written).
int ck_attend_f16(const float *q, long nq, const uint16_t *keys, const uint16_t *values, long ld, long count,
                  long hs, float scale, float *scores, float *out, long ldo);

#endif
