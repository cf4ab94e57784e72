// CQuant: matrix-vector and small-matrix products on GGUF weight blocks kept as they are stored
// (quantized blocks, F16, BF16), a persistent worker pool that runs them on all cores, and the
// one-query attention of a decoding step. Every CPU-specific function has a generic C version
// and x86 variants compiled with per-function target attributes (AVX2+FMA+F16C,
// AVX-512 F/BW/VL/VNNI), picked once at run time from the CPU's features, so one build runs on
// any x86-64 and compiles on arm64 (generic path only).
//
// Legend: O output rows of a weight matrix, I its columns (inputs), T token rows, B block size
// (32 or 256 values), H = I/16 half-blocks.
//
// Integer types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) multiply 8-bit activations:
// each row of x is quantized per 32 values (scale d = max|x|/127), and each weight row is unpacked
// tile by tile into signed 8-bit values with one float scale per 16 values and an offset, then the
// integer dot products are scaled per 4-value lane. F16/BF16 rows multiply float x directly.
#ifndef CQUANT_H
#define CQUANT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// GGML type ids of the weight types the kernels take.
enum {
    VQ_F16 = 1, VQ_Q4_0 = 2, VQ_Q4_1 = 3, VQ_Q5_0 = 6, VQ_Q5_1 = 7, VQ_Q8_0 = 8,
    VQ_Q4_K = 12, VQ_Q5_K = 13, VQ_Q6_K = 14, VQ_BF16 = 30,
};

/// Kernel variants: 0 generic C, 1 AVX2+FMA+F16C, 2 AVX-512 F/BW/VL/VNNI.
enum { VQ_GENERIC = 0, VQ_AVX2 = 1, VQ_AVX512VNNI = 2 };

/// A weight matrix (O, I) in GGUF row-major blocks: row r starts at data + r * row_bytes.
typedef struct {
    int type;
    int rows;
    int cols;
    size_t row_bytes;
    const void *data;
} vq_matrix;

/// 1 when `type` is one the kernels take.
int vq_type_supported(int type);
/// Values per block of `type` (32 or 256; 1 for F16/BF16), 0 when unsupported.
int vq_block_size(int type);
/// Bytes per block of `type`, 0 when unsupported.
int vq_block_bytes(int type);

/// The best variant this CPU runs (the default), the variant in use, its name.
int vq_best_variant(void);
int vq_variant(void);
const char *vq_variant_name(int variant);
/// Selects a variant (tests compare them); returns 0 when this CPU cannot run it (nothing changes).
int vq_set_variant(int variant);

/// Bytes of the quantized activations of T rows of `cols` values (cols % 32 == 0).
size_t vq_act_bytes(int T, int cols);
/// act = 8-bit quantization of x (T, cols), per 32 values.
void vq_quantize_act(const float *x, int T, int cols, void *act);

/// x(T, cols) = the values vq_quantize_act represents (q · d), in place: the float32 path rounded
/// like the integer kernels' inputs, a reference for tests.
void vq_round_act(float *x, int T, int cols);

/// y_m(T, O_m) (+)= x(T, I) · W_mᵀ for n matrices of the same I (e.g. q, k, v), in one run of the
/// worker pool. `act` holds vq_quantize_act(x) when any matrix is an integer type (may be NULL
/// otherwise); x is read for F16/BF16. ldy[m] is the row stride of y_m (>= O_m).
void vq_matmul(const vq_matrix *mats, float *const *ys, const int *ldy, int n,
               const float *x, const void *act, int T, int accumulate);

/// out(Hq, D) = softmax(scale · q·kᵀ) · v for one query over S cached positions, grouped-query
/// heads (query head h reads kv head h / (Hq/Hkv)); k, v rows (S, Hkv·D). One pass over the
/// keys and one over the values per kv head, for all of its query heads. scratch: Hq·S floats.
void vq_attention_decode(float *out, const float *q, const float *k, const float *v,
                         int S, int Hq, int Hkv, int D, float scale, float *scratch);

/// Causal attention of T queries at positions pos0 ..< pos0+T (q, out (T, Hq·D)) over the cached
/// rows 0 ..< pos0+T of k, v, each query as in vq_attention_decode, the queries split over the pool.
void vq_attention_causal(float *out, const float *q, const float *k, const float *v,
                         int T, int pos0, int Hq, int Hkv, int D, float scale);

/// Worker pool: threads used by vq_matmul (default: the online cores; at least 1).
void vq_set_threads(int n);
int vq_threads(void);
/// Runs fn(ctx, i, n) for i in 0..<n (n = vq_threads()) on the pool, the caller taking i = 0.
void vq_parallel(void (*fn)(void *ctx, int index, int count), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
