// A bf16 matrix product through oneDNN (Debian's libdnnl, 2.x), loaded with dlopen() at run time
// so that building needs no oneDNN and a machine without it (or without a bf16 CPU) keeps the
// float32 OpenBLAS path. Only what the frozen decoder and the ViTs need:
//
//   y(M,N) (+)= x(M,K) · B      x float32, converted to bf16 here; B bf16; y float32
//
// where B is a row-major bf16 matrix W(O,I) read either as Wᵀ (K=I, N=O: a linear layer's
// forward, y = x·Wᵀ) or as W (K=O, N=I: its input gradient, dx = dy·W). One bf16 copy of a
// weight serves both. Products accumulate in float32 inside oneDNN.
#ifndef CDNNL_H
#define CDNNL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads oneDNN and creates its CPU engine. Returns 1 when the bf16 path can run: the library
/// loaded, its version is 2.x, and its matmul picks a native bf16 kernel (AVX512-BF16 or AMX),
/// not a reference or emulated one. Otherwise 0, and `vlm_dnnl_status` says why. Idempotent.
int vlm_dnnl_load(void);

/// One line: the library version and the ISA oneDNN chose, or why the bf16 path is off.
const char *vlm_dnnl_status(void);

/// Threads oneDNN's OpenMP regions use (OpenBLAS's count is set separately).
void vlm_dnnl_set_threads(int n);

/// float32 -> bf16 (round to nearest even; NaN stays NaN), n values.
void vlm_bf16_from_float(uint16_t *dst, const float *src, long n);
/// Rounds n float32 values to their nearest bf16 value in place (what the bf16 path does to an
/// operand; the models' reference modes use it).
void vlm_bf16_round(float *x, long n);

/// y(M,N) = x(M,K)·B, or y += x(M,K)·B when `accumulate` is 1. `b` is a row-major bf16 matrix;
/// `transposed` = 1: b is (N,K) and B = bᵀ (forward of y = x·Wᵀ with W = b (O=N, I=K));
/// `transposed` = 0: b is (K,N) and B = b (input gradient dx = dy·W with W = b (O=K, I=N)).
/// `scratch` holds at least M*K bf16 values (x converted). Returns 0 on success, else a oneDNN
/// status (the caller falls back to float32 and reports it).
int vlm_dnnl_matmul(float *y, const float *x, const uint16_t *b, uint16_t *scratch,
                    long M, long K, long N, int transposed, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
