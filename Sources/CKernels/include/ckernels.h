#ifndef CKERNELS_H
#define CKERNELS_H

/// Σ a[i]·b[i] over `n` floats: 256-bit AVX with FMA when the CPU has them (checked once, with
/// cpuid and xgetbv), else 128-bit SSE. Four independent accumulators; the sum order differs
/// from a sequential loop, so results agree to float rounding, not bit for bit.
float ck_dot(const float *a, const float *b, long n);

/// 1 when `ck_dot` runs the AVX + FMA path on this CPU, else 0.
int ck_dot_uses_avx_fma(void);

#endif
