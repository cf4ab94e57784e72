// Products on GGUF weight blocks without a float32 copy of the weights. See CQuant.h.
//
// Two internal layouts, both per row and both small enough to live in L1:
//
//   unpacked weight row (I values), from any integer type, `unpack_row`:
//     cq int8[I]     the values, signed (|cq| <= 63 except Q8_0's full int8 range)
//     ca float[I/4]  the scale of each 4-value lane (one scale per 16 values, repeated)
//     cb float[I/16] the offset of each 16 values: w = ca*cq + cb (Q4_1, Q5_1, K-type minimums)
//     cw float[I/16] -128 * scale * sum(cq) of each 16 values (corrects the unsigned activations)
//
//   quantized activation row (I values), `quantize_act`:
//     aq  int8[I]       q = round(x / d), d = max|x| / 127 per 32 values
//     aqu uint8[I]      q + 128 (the unsigned operand of maddubs / vpdpbusd)
//     adx float[I/4]    d of each 4-value lane
//     ads float[I/16]   d * sum(q) of each 16 values
//     adxh float[I/16]  d of each 16 values
//
// dot(w, x) = sum over lanes l of ca[l]*adx[l]*sum4(cq*aq) + sum over 16s h of cb[h]*ads[h]
//           = sum over lanes of ca*adx*sum4(cq*aqu) + sum over h of (cb*ads + cw*adxh)
// The first form is the generic and the AVX2 Q8_0 one (sign trick), the second the AVX2 (for
// |cq| <= 63, so maddubs cannot saturate) and VNNI one. A product tile is 4 weight rows, unpacked
// once and multiplied with every token row. F16/BF16 rows are widened to float per tile instead.
#include "CQuant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define VQ_X86 1
#endif

#define INL static inline __attribute__((always_inline))
#define VQ_TILE 4

#if VQ_X86
#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

// MARK: - scalar helpers

INL uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
INL uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/// IEEE half to float, exactly (subnormals, infinities, NaN).
INL float h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) bits = sign | 0x7F800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {   // subnormal: normalise
        int e = -1;
        do { mant <<= 1; e++; } while ((mant & 0x400) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
    }
    float f; memcpy(&f, &bits, 4); return f;
}

INL float bf2f(uint16_t h) { uint32_t bits = (uint32_t)h << 16; float f; memcpy(&f, &bits, 4); return f; }

// MARK: - types

int vq_block_size(int type) {
    switch (type) {
    case VQ_F16: case VQ_BF16: return 1;
    case VQ_Q4_0: case VQ_Q4_1: case VQ_Q5_0: case VQ_Q5_1: case VQ_Q8_0: return 32;
    case VQ_Q4_K: case VQ_Q5_K: case VQ_Q6_K: return 256;
    default: return 0;
    }
}

int vq_block_bytes(int type) {
    switch (type) {
    case VQ_F16: case VQ_BF16: return 2;
    case VQ_Q4_0: return 18;
    case VQ_Q4_1: return 20;
    case VQ_Q5_0: return 22;
    case VQ_Q5_1: return 24;
    case VQ_Q8_0: return 34;
    case VQ_Q4_K: return 144;
    case VQ_Q5_K: return 176;
    case VQ_Q6_K: return 210;
    default: return 0;
    }
}

int vq_type_supported(int type) { return vq_block_size(type) != 0; }

INL int is_float_type(int type) { return type == VQ_F16 || type == VQ_BF16; }

INL size_t crow_bytes(int I) { return (size_t)2 * I + (size_t)I / 2; }
INL size_t arow_bytes(int I) { return (size_t)3 * I + (size_t)I / 2; }

size_t vq_act_bytes(int T, int cols) { return (size_t)T * arow_bytes(cols); }

// MARK: - unpacking a weight row

/// Records the scale `a` and offset `b` of the 16 values of half-block h (cq already written).
INL void put_half(const int8_t *cq, int h, float a, float b, float *ca, float *cb, float *cw) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += cq[16 * h + j];
    ca[4 * h] = a; ca[4 * h + 1] = a; ca[4 * h + 2] = a; ca[4 * h + 3] = a;
    cb[h] = b;
    cw[h] = -128.0f * a * (float)s;
}

/// The 6-bit scale and minimum of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes).
INL void scale_min_k4(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) { *sc = s[j] & 63; *mn = s[j + 4] & 63; }
    else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/// Unpacks one row of I values of an integer type into the layout above at `out`.
INL void unpack_row(int type, const uint8_t *p, int I, uint8_t *out) {
    int8_t *cq = (int8_t *)out;
    float *ca = (float *)(out + I), *cb = (float *)(out + 2 * I), *cw = cb + I / 16;
    switch (type) {
    case VQ_Q4_0:
        for (int b = 0; b < I / 32; b++, p += 18) {
            float d = h2f(rd16(p));
            int8_t *q = cq + 32 * b;
            for (int j = 0; j < 16; j++) { q[j] = (int8_t)((p[2 + j] & 15) - 8); q[16 + j] = (int8_t)((p[2 + j] >> 4) - 8); }
            put_half(cq, 2 * b, d, 0, ca, cb, cw); put_half(cq, 2 * b + 1, d, 0, ca, cb, cw);
        }
        break;
    case VQ_Q4_1:
        for (int b = 0; b < I / 32; b++, p += 20) {
            float d = h2f(rd16(p)), m = h2f(rd16(p + 2));
            int8_t *q = cq + 32 * b;
            for (int j = 0; j < 16; j++) { q[j] = (int8_t)(p[4 + j] & 15); q[16 + j] = (int8_t)(p[4 + j] >> 4); }
            put_half(cq, 2 * b, d, m, ca, cb, cw); put_half(cq, 2 * b + 1, d, m, ca, cb, cw);
        }
        break;
    case VQ_Q5_0:
        for (int b = 0; b < I / 32; b++, p += 22) {
            float d = h2f(rd16(p));
            uint32_t qh = rd32(p + 2);
            int8_t *q = cq + 32 * b;
            for (int j = 0; j < 16; j++) {
                q[j] = (int8_t)(((p[6 + j] & 15) | ((qh >> j) & 1) << 4) - 16);
                q[16 + j] = (int8_t)(((p[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
            }
            put_half(cq, 2 * b, d, 0, ca, cb, cw); put_half(cq, 2 * b + 1, d, 0, ca, cb, cw);
        }
        break;
    case VQ_Q5_1:
        for (int b = 0; b < I / 32; b++, p += 24) {
            float d = h2f(rd16(p)), m = h2f(rd16(p + 2));
            uint32_t qh = rd32(p + 4);
            int8_t *q = cq + 32 * b;
            for (int j = 0; j < 16; j++) {
                q[j] = (int8_t)((p[8 + j] & 15) | ((qh >> j) & 1) << 4);
                q[16 + j] = (int8_t)((p[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
            }
            put_half(cq, 2 * b, d, m, ca, cb, cw); put_half(cq, 2 * b + 1, d, m, ca, cb, cw);
        }
        break;
    case VQ_Q8_0:
        for (int b = 0; b < I / 32; b++, p += 34) {
            float d = h2f(rd16(p));
            memcpy(cq + 32 * b, p + 2, 32);
            put_half(cq, 2 * b, d, 0, ca, cb, cw); put_half(cq, 2 * b + 1, d, 0, ca, cb, cw);
        }
        break;
    case VQ_Q4_K:
        for (int sb = 0; sb < I / 256; sb++, p += 144) {
            float d = h2f(rd16(p)), dmin = h2f(rd16(p + 2));
            for (int j = 0; j < 8; j++) {
                int sc, mn; scale_min_k4(p + 4, j, &sc, &mn);
                const uint8_t *qs = p + 16 + 32 * (j >> 1);
                int shift = 4 * (j & 1);
                int8_t *q = cq + 256 * sb + 32 * j;
                for (int l = 0; l < 32; l++) q[l] = (int8_t)((qs[l] >> shift) & 15);
                float a = d * (float)sc, b = -(dmin * (float)mn);
                int h = 16 * sb + 2 * j;
                put_half(cq, h, a, b, ca, cb, cw); put_half(cq, h + 1, a, b, ca, cb, cw);
            }
        }
        break;
    case VQ_Q5_K:
        for (int sb = 0; sb < I / 256; sb++, p += 176) {
            float d = h2f(rd16(p)), dmin = h2f(rd16(p + 2));
            const uint8_t *qh = p + 16;
            for (int j = 0; j < 8; j++) {
                int sc, mn; scale_min_k4(p + 4, j, &sc, &mn);
                const uint8_t *qs = p + 48 + 32 * (j >> 1);
                int shift = 4 * (j & 1);
                int8_t *q = cq + 256 * sb + 32 * j;
                for (int l = 0; l < 32; l++) q[l] = (int8_t)(((qs[l] >> shift) & 15) | ((qh[l] >> j) & 1) << 4);
                float a = d * (float)sc, b = -(dmin * (float)mn);
                int h = 16 * sb + 2 * j;
                put_half(cq, h, a, b, ca, cb, cw); put_half(cq, h + 1, a, b, ca, cb, cw);
            }
        }
        break;
    case VQ_Q6_K:
        for (int sb = 0; sb < I / 256; sb++, p += 210) {
            float d = h2f(rd16(p + 208));
            const int8_t *scales = (const int8_t *)(p + 192);
            int8_t *q = cq + 256 * sb;
            for (int g = 0; g < 2; g++) {
                const uint8_t *ql = p + 64 * g, *qh = p + 128 + 32 * g;
                for (int r = 0; r < 32; r++) {
                    q[128 * g + r]      = (int8_t)(((ql[r] & 15)      | ((qh[r] >> 0) & 3) << 4) - 32);
                    q[128 * g + r + 32] = (int8_t)(((ql[r + 32] & 15) | ((qh[r] >> 2) & 3) << 4) - 32);
                    q[128 * g + r + 64] = (int8_t)(((ql[r] >> 4)      | ((qh[r] >> 4) & 3) << 4) - 32);
                    q[128 * g + r + 96] = (int8_t)(((ql[r + 32] >> 4) | ((qh[r] >> 6) & 3) << 4) - 32);
                }
            }
            for (int k = 0; k < 16; k++) put_half(cq, 16 * sb + k, d * (float)scales[k], 0, ca, cb, cw);
        }
        break;
    default:
        break;
    }
}

/// Widens one F16/BF16 row of I values to float.
INL void widen_row(int type, const uint8_t *p, int I, float *out) {
    if (type == VQ_F16) for (int i = 0; i < I; i++) out[i] = h2f(rd16(p + 2 * i));
    else for (int i = 0; i < I; i++) out[i] = bf2f(rd16(p + 2 * i));
}

// MARK: - activation quantization

INL void quantize_act_row(const float *x, int I, uint8_t *out) {
    int8_t *aq = (int8_t *)out;
    uint8_t *aqu = out + I;
    float *adx = (float *)(out + 2 * I), *ads = (float *)(out + 3 * I), *adxh = ads + I / 16;
    for (int b = 0; b < I / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0;
        for (int j = 0; j < 32; j++) { float a = fabsf(xb[j]); amax = a > amax ? a : amax; }
        float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 32; j++) {
            float v = xb[j] * id;
            int q = (int)(v >= 0 ? v + 0.5f : v - 0.5f);   // round half away from zero
            q = q > 127 ? 127 : (q < -127 ? -127 : q);
            aq[32 * b + j] = (int8_t)q;
            aqu[32 * b + j] = (uint8_t)(q + 128);
            if (j < 16) s0 += q; else s1 += q;
        }
        for (int l = 0; l < 8; l++) adx[8 * b + l] = d;
        ads[2 * b] = d * (float)s0; ads[2 * b + 1] = d * (float)s1;
        adxh[2 * b] = d; adxh[2 * b + 1] = d;
    }
}

void vq_round_act(float *x, int T, int cols) {
    for (size_t b = 0; b < (size_t)T * (size_t)(cols / 32); b++) {
        float *xb = x + 32 * b, amax = 0;
        for (int j = 0; j < 32; j++) { float a = fabsf(xb[j]); amax = a > amax ? a : amax; }
        float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) {
            float v = xb[j] * id;
            int q = (int)(v >= 0 ? v + 0.5f : v - 0.5f);
            q = q > 127 ? 127 : (q < -127 ? -127 : q);
            xb[j] = (float)q * d;
        }
    }
}

// MARK: - generic tiles

/// out[r] = dot(unpacked row r, activation row) for r < 4 (rows at c + r * cs).
INL void tile_q_generic(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out) {
    const int8_t *aq = (const int8_t *)a;
    const float *adx = (const float *)(a + 2 * I), *ads = (const float *)(a + 3 * I);
    for (int r = 0; r < VQ_TILE; r++) {
        const uint8_t *row = c + r * cs;
        const int8_t *cq = (const int8_t *)row;
        const float *ca = (const float *)(row + I), *cb = (const float *)(row + 2 * I);
        float acc = 0;
        for (int l = 0; l < I / 4; l++) {
            int s = cq[4 * l] * aq[4 * l] + cq[4 * l + 1] * aq[4 * l + 1] + cq[4 * l + 2] * aq[4 * l + 2] + cq[4 * l + 3] * aq[4 * l + 3];
            acc += (float)s * (ca[l] * adx[l]);
        }
        for (int h = 0; h < I / 16; h++) acc += cb[h] * ads[h];
        out[r] = acc;
    }
}

INL void tile_f_generic(int I, const float *w, const float *x, float *out) {
    for (int r = 0; r < VQ_TILE; r++) {
        const float *row = w + (size_t)r * I;
        float s[8] = {0};
        int i = 0;
        for (; i + 8 <= I; i += 8) for (int j = 0; j < 8; j++) s[j] += row[i + j] * x[i + j];
        float acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        for (; i < I; i++) acc += row[i] * x[i];
        out[r] = acc;
    }
}

// MARK: - x86 tiles

#if VQ_X86
T_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// The offset terms of row `row` with activation `a`: sum cb*ads (+ cw*adxh when `unsigned_x`).
T_AVX2 static inline float offsets_avx2(int I, const uint8_t *row, const uint8_t *a, int unsigned_x) {
    const float *cb = (const float *)(row + 2 * I), *cw = cb + I / 16;
    const float *ads = (const float *)(a + 3 * I), *adxh = ads + I / 16;
    int H = I / 16, h = 0;
    __m256 acc = _mm256_setzero_ps();
    for (; h + 8 <= H; h += 8) {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(cb + h), _mm256_loadu_ps(ads + h), acc);
        if (unsigned_x) acc = _mm256_fmadd_ps(_mm256_loadu_ps(cw + h), _mm256_loadu_ps(adxh + h), acc);
    }
    float s = hsum256(acc);
    for (; h < H; h++) { s += cb[h] * ads[h]; if (unsigned_x) s += cw[h] * adxh[h]; }
    return s;
}

/// `wide`: values span all of int8 (Q8_0), so maddubs takes |w| and sign(x, w) instead of x + 128.
T_AVX2 static void tile_q_avx2(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out, int wide) {
    const uint8_t *aq = a, *aqu = a + I;
    const float *adx = (const float *)(a + 2 * I);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const uint8_t *r0 = c, *r1 = c + cs, *r2 = c + 2 * cs, *r3 = c + 3 * cs;
#define VQ_STEP2(R, ACC) do { \
        __m256i w = _mm256_loadu_si256((const __m256i *)((R) + i)); \
        __m256i p = wide ? _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xs, w)), ones) \
                         : _mm256_madd_epi16(_mm256_maddubs_epi16(xu, w), ones); \
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps((const float *)((R) + I) + i / 4), dx); \
        ACC = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, ACC); } while (0)
    for (int i = 0; i < I; i += 32) {
        __m256i xs = _mm256_loadu_si256((const __m256i *)(aq + i));
        __m256i xu = _mm256_loadu_si256((const __m256i *)(aqu + i));
        __m256 dx = _mm256_loadu_ps(adx + i / 4);
        VQ_STEP2(r0, acc0); VQ_STEP2(r1, acc1); VQ_STEP2(r2, acc2); VQ_STEP2(r3, acc3);
    }
#undef VQ_STEP2
    out[0] = hsum256(acc0) + offsets_avx2(I, r0, a, !wide);
    out[1] = hsum256(acc1) + offsets_avx2(I, r1, a, !wide);
    out[2] = hsum256(acc2) + offsets_avx2(I, r2, a, !wide);
    out[3] = hsum256(acc3) + offsets_avx2(I, r3, a, !wide);
}

T_AVX2 static void tile_f_avx2(int I, const float *w, const float *x, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 8 <= I; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + I + i), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 2 * I + i), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 3 * I + i), xv, a3);
    }
    out[0] = hsum256(a0); out[1] = hsum256(a1); out[2] = hsum256(a2); out[3] = hsum256(a3);
    for (; i < I; i++) for (int r = 0; r < 4; r++) out[r] += w[r * I + i] * x[i];
}

T_AVX512 static inline float offsets_avx512(int I, const uint8_t *row, const uint8_t *a) {
    const float *cb = (const float *)(row + 2 * I), *cw = cb + I / 16;
    const float *ads = (const float *)(a + 3 * I), *adxh = ads + I / 16;
    int H = I / 16;
    __m512 acc = _mm512_setzero_ps();
    for (int h = 0; h < H; h += 16) {
        __mmask16 m = H - h >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - h)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, cb + h), _mm512_maskz_loadu_ps(m, ads + h), acc);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, cw + h), _mm512_maskz_loadu_ps(m, adxh + h), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

T_AVX512 static void tile_q_avx512(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out) {
    const uint8_t *aqu = a + I;
    const float *adx = (const float *)(a + 2 * I);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const uint8_t *r0 = c, *r1 = c + cs, *r2 = c + 2 * cs, *r3 = c + 3 * cs;
    const __m512i z = _mm512_setzero_si512();
#define VQ_STEP5(R, ACC) do { \
        __m512i w = _mm512_maskz_loadu_epi8(mb, (R) + i); \
        __m512i p = _mm512_dpbusd_epi32(z, xu, w); \
        __m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(mf, (const float *)((R) + I) + i / 4), dx); \
        ACC = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, ACC); } while (0)
    for (int i = 0; i < I; i += 64) {
        __mmask64 mb = I - i >= 64 ? ~(__mmask64)0 : (__mmask64)0xFFFFFFFFull;   // I % 32 == 0
        __mmask16 mf = I - i >= 64 ? (__mmask16)0xFFFF : (__mmask16)0x00FF;
        __m512i xu = _mm512_maskz_loadu_epi8(mb, aqu + i);
        __m512 dx = _mm512_maskz_loadu_ps(mf, adx + i / 4);
        VQ_STEP5(r0, acc0); VQ_STEP5(r1, acc1); VQ_STEP5(r2, acc2); VQ_STEP5(r3, acc3);
    }
#undef VQ_STEP5
    out[0] = _mm512_reduce_add_ps(acc0) + offsets_avx512(I, r0, a);
    out[1] = _mm512_reduce_add_ps(acc1) + offsets_avx512(I, r1, a);
    out[2] = _mm512_reduce_add_ps(acc2) + offsets_avx512(I, r2, a);
    out[3] = _mm512_reduce_add_ps(acc3) + offsets_avx512(I, r3, a);
}

T_AVX512 static void tile_f_avx512(int I, const float *w, const float *x, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < I; i += 16) {
        __mmask16 m = I - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (I - i)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), xv, a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + I + i), xv, a1);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + 2 * I + i), xv, a2);
        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + 3 * I + i), xv, a3);
    }
    out[0] = _mm512_reduce_add_ps(a0); out[1] = _mm512_reduce_add_ps(a1);
    out[2] = _mm512_reduce_add_ps(a2); out[3] = _mm512_reduce_add_ps(a3);
}

// MARK: - direct row kernels (decoding: no unpacking)
//
// For T <= 4 token rows, Q4_0 / Q4_1 / Q8_0 rows are multiplied straight from their blocks:
// nibbles are unsigned (0..15) against signed x (maddubs / vpdpbusd), Q4_0's "- 8" and Q4_1's
// minimum become d_x·Σx terms (ads); Q8_0's signed values meet x + 128 (VNNI, with the exact
// correction 128·Σw from a second vpdpbusd) or the sign trick (AVX2).

T_AVX2 static float dot_q4_avx2(const uint8_t *p, int bb, int moff, int I, const uint8_t *a) {
    const int8_t *aq = (const int8_t *)a;
    const float *adxh = (const float *)(a + 3 * I) + I / 16, *ads = (const float *)(a + 3 * I);
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float off = 0;
    for (int b = 0; b < I / 32; b++, p += bb) {
        float d = _cvtsh_ss(rd16(p)), m = moff ? _cvtsh_ss(rd16(p + 2)) : -8.0f * d;
        __m128i q = _mm_loadu_si128((const __m128i *)(p + (moff ? 4 : 2)));
        __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
        __m256i x = _mm256_loadu_si256((const __m256i *)(aq + 32 * b));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * adxh[2 * b]), acc);
        off += m * (ads[2 * b] + ads[2 * b + 1]);
    }
    return hsum256(acc) + off;
}

T_AVX2 static float dot_q8_avx2(const uint8_t *p, int I, const uint8_t *a) {
    const int8_t *aq = (const int8_t *)a;
    const float *adxh = (const float *)(a + 3 * I) + I / 16;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < I / 32; b++, p += 34) {
        float d = _cvtsh_ss(rd16(p));
        __m256i w = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i x = _mm256_loadu_si256((const __m256i *)(aq + 32 * b));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), ones);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * adxh[2 * b]), acc);
    }
    return hsum256(acc);
}

T_AVX512 static float dot_q4_avx512(const uint8_t *p, int bb, int moff, int I, const uint8_t *a) {
    const int8_t *aq = (const int8_t *)a;
    const float *adxh = (const float *)(a + 3 * I) + I / 16, *ads = (const float *)(a + 3 * I);
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m512i z = _mm512_setzero_si512();
    __m512 acc = _mm512_setzero_ps();
    float off = 0;
    int nb = I / 32, b = 0;
    const int qo = moff ? 4 : 2;
    for (; b + 2 <= nb; b += 2, p += 2 * bb) {
        float d0 = _cvtsh_ss(rd16(p)), d1 = _cvtsh_ss(rd16(p + bb));
        float m0 = moff ? _cvtsh_ss(rd16(p + 2)) : -8.0f * d0, m1 = moff ? _cvtsh_ss(rd16(p + bb + 2)) : -8.0f * d1;
        __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + qo))),
                                            _mm_loadu_si128((const __m128i *)(p + bb + qo)), 1);     // [q0 | q1]
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low)),
                                       _mm256_and_si256(_mm256_srli_epi16(v, 4), low), 1);      // [lo0 lo1 hi0 hi1]
        __m512i x = _mm512_loadu_si512((const void *)(aq + 32 * b));                              // [x0a x0b x1a x1b]
        x = _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(3, 1, 2, 0));                                  // [x0a x1a x0b x1b]
        __m512i s = _mm512_dpbusd_epi32(z, w, x);
        __m512 sc = _mm512_mask_blend_ps((__mmask16)0xF0F0, _mm512_set1_ps(d0 * adxh[2 * b]), _mm512_set1_ps(d1 * adxh[2 * b + 2]));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc);
        off += m0 * (ads[2 * b] + ads[2 * b + 1]) + m1 * (ads[2 * b + 2] + ads[2 * b + 3]);
    }
    float total = _mm512_reduce_add_ps(acc) + off;
    for (; b < nb; b++, p += bb) {   // an odd last block
        float d = _cvtsh_ss(rd16(p)), m = moff ? _cvtsh_ss(rd16(p + 2)) : -8.0f * d;
        __m128i q = _mm_loadu_si128((const __m128i *)(p + qo));
        __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
        __m256i x = _mm256_loadu_si256((const __m256i *)(aq + 32 * b));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
        total += d * adxh[2 * b] * hsum256(_mm256_cvtepi32_ps(s)) + m * (ads[2 * b] + ads[2 * b + 1]);
    }
    return total;
}

T_AVX512 static float dot_q8_avx512(const uint8_t *p, int I, const uint8_t *a) {
    const uint8_t *aqu = a + I;
    const int8_t *aq = (const int8_t *)a;
    const float *adxh = (const float *)(a + 3 * I) + I / 16;
    const __m512i z = _mm512_setzero_si512(), bias = _mm512_set1_epi8((char)0x80);
    __m512 acc = _mm512_setzero_ps();
    int nb = I / 32, b = 0;
    for (; b + 2 <= nb; b += 2, p += 68) {
        float d0 = _cvtsh_ss(rd16(p)), d1 = _cvtsh_ss(rd16(p + 34));
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2))),
                                       _mm256_loadu_si256((const __m256i *)(p + 36)), 1);
        __m512i x = _mm512_loadu_si512((const void *)(aqu + 32 * b));
        // Σ(x+128)·w − Σ128·w = Σx·w, exactly
        __m512i s = _mm512_sub_epi32(_mm512_dpbusd_epi32(z, x, w), _mm512_dpbusd_epi32(z, bias, w));
        __m512 sc = _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(d0 * adxh[2 * b]), _mm512_set1_ps(d1 * adxh[2 * b + 2]));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc);
    }
    float total = _mm512_reduce_add_ps(acc);
    for (; b < nb; b++, p += 34) {
        float d = _cvtsh_ss(rd16(p));
        __m256i w = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i x = _mm256_loadu_si256((const __m256i *)(aq + 32 * b));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
        total += d * adxh[2 * b] * hsum256(_mm256_cvtepi32_ps(s));
    }
    return total;
}

/// Row kernels of the variant for `type`, or NULL (then rows are unpacked into tiles).
T_AVX2 static float direct_avx2(int type, const uint8_t *p, int I, const uint8_t *a) {
    switch (type) {
    case VQ_Q4_0: return dot_q4_avx2(p, 18, 0, I, a);
    case VQ_Q4_1: return dot_q4_avx2(p, 20, 1, I, a);
    default: return dot_q8_avx2(p, I, a);
    }
}
T_AVX512 static float direct_avx512(int type, const uint8_t *p, int I, const uint8_t *a) {
    switch (type) {
    case VQ_Q4_0: return dot_q4_avx512(p, 18, 0, I, a);
    case VQ_Q4_1: return dot_q4_avx512(p, 20, 1, I, a);
    default: return dot_q8_avx512(p, I, a);
    }
}
#endif

// MARK: - variants

typedef struct {
    void (*unpack)(int type, const uint8_t *p, int I, uint8_t *out);
    void (*widen)(int type, const uint8_t *p, int I, float *out);
    void (*quantize)(const float *x, int T, int I, uint8_t *out);
    void (*tile_q)(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out, int wide);
    void (*tile_f)(int I, const float *w, const float *x, float *out);
    // query heads [h0, h1) of one query (see attention_body)
    void (*attention)(float *out, const float *q, const float *k, const float *v, int S, int Hq, int Hkv, int D, float scale, float *scratch, int h0, int h1);
    float (*direct)(int type, const uint8_t *p, int I, const uint8_t *a);   // Q4_0, Q4_1, Q8_0 rows; NULL: none
} vq_kernels;

INL void quantize_rows(const float *x, int T, int I, uint8_t *out) {
    for (int t = 0; t < T; t++) quantize_act_row(x + (size_t)t * I, I, out + (size_t)t * arow_bytes(I));
}

// One query, all S keys; see CQuant.h. Query heads [h0, h1) only (out and q rows of those heads):
// per kv head, the scores of its query heads in the range side by side. scratch: (h1 - h0)·S.
INL void attention_body(float *out, const float *q, const float *k, const float *v,
                        int S, int Hq, int Hkv, int D, float scale, float *scratch, int h0, int h1) {
    int G = Hq / Hkv, ld = Hkv * D;
    for (int g = h0 / G; g < Hkv && g * G < h1; g++) {
        int j0 = h0 > g * G ? h0 - g * G : 0, j1 = h1 < (g + 1) * G ? h1 - g * G : G;
        float *sc = scratch + (size_t)(g * G + j0 - h0) * S;   // (j1 - j0, S)
        const float *qg = q + (size_t)g * G * D;
        for (int s = 0; s < S; s++) {
            const float *kr = k + (size_t)s * ld + (size_t)g * D;
            for (int j = j0; j < j1; j++) {
                const float *qj = qg + (size_t)j * D;
                float p[8] = {0};
                int i = 0;
                for (; i + 8 <= D; i += 8) for (int u = 0; u < 8; u++) p[u] += qj[i + u] * kr[i + u];
                float acc = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
                for (; i < D; i++) acc += qj[i] * kr[i];
                sc[(size_t)(j - j0) * S + s] = acc * scale;
            }
        }
        for (int j = j0; j < j1; j++) {
            float *row = sc + (size_t)(j - j0) * S, mx = row[0], sum = 0;
            for (int s = 1; s < S; s++) mx = row[s] > mx ? row[s] : mx;
            for (int s = 0; s < S; s++) { row[s] = expf(row[s] - mx); sum += row[s]; }
            float inv = 1.0f / sum;
            for (int s = 0; s < S; s++) row[s] *= inv;
            memset(out + (size_t)(g * G + j) * D, 0, sizeof(float) * (size_t)D);
        }
        for (int s = 0; s < S; s++) {
            const float *vr = v + (size_t)s * ld + (size_t)g * D;
            for (int j = j0; j < j1; j++) {
                float pj = sc[(size_t)(j - j0) * S + s];
                float *o = out + (size_t)(g * G + j) * D;
                for (int i = 0; i < D; i++) o[i] += pj * vr[i];
            }
        }
    }
}

static void unpack_generic(int type, const uint8_t *p, int I, uint8_t *out) { unpack_row(type, p, I, out); }
static void widen_generic(int type, const uint8_t *p, int I, float *out) { widen_row(type, p, I, out); }
static void quantize_generic(const float *x, int T, int I, uint8_t *out) { quantize_rows(x, T, I, out); }
static void tile_q_gen(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out, int wide) { (void)wide; tile_q_generic(I, c, cs, a, out); }
static void tile_f_gen(int I, const float *w, const float *x, float *out) { tile_f_generic(I, w, x, out); }
static void attention_generic(float *out, const float *q, const float *k, const float *v, int S, int Hq, int Hkv, int D, float scale, float *scratch, int h0, int h1) {
    attention_body(out, q, k, v, S, Hq, Hkv, D, scale, scratch, h0, h1);
}

#if VQ_X86
T_AVX2 static void unpack_avx2(int type, const uint8_t *p, int I, uint8_t *out) { unpack_row(type, p, I, out); }
T_AVX2 static void widen_avx2(int type, const uint8_t *p, int I, float *out) {
    if (type == VQ_F16) {
        int i = 0;
        for (; i + 8 <= I; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
        for (; i < I; i++) out[i] = h2f(rd16(p + 2 * i));
    } else widen_row(type, p, I, out);
}
T_AVX2 static void quantize_avx2(const float *x, int T, int I, uint8_t *out) { quantize_rows(x, T, I, out); }
T_AVX2 static void tile_q_avx2v(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out, int wide) { tile_q_avx2(I, c, cs, a, out, wide); }
T_AVX2 static void attention_avx2(float *out, const float *q, const float *k, const float *v, int S, int Hq, int Hkv, int D, float scale, float *scratch, int h0, int h1) {
    attention_body(out, q, k, v, S, Hq, Hkv, D, scale, scratch, h0, h1);
}
T_AVX512 static void unpack_avx512(int type, const uint8_t *p, int I, uint8_t *out) { unpack_row(type, p, I, out); }
T_AVX512 static void quantize_avx512(const float *x, int T, int I, uint8_t *out) { quantize_rows(x, T, I, out); }
T_AVX512 static void tile_q_avx512v(int I, const uint8_t *c, size_t cs, const uint8_t *a, float *out, int wide) { (void)wide; tile_q_avx512(I, c, cs, a, out); }
/// e^x for 16 lanes, the polynomial of Kernels' vexp (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2,
/// degree 6 for e^r, 2^n through the exponent bits; relative error ~1e-7). Inputs are clamped
/// to ±88.376 (e^x of the clamp above, 0 below).
T_AVX512 static inline __m512 exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.3762626647949f)), _mm512_set1_ps(88.3762626647949f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i nb = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(nb, _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(er, scale);
}

/// attention_body for D a multiple of 16 (≤ 256): the key dot products, the softmax (vector
/// exp) and the value sums in 16-lane registers. Other head sizes take attention_body.
T_AVX512 static void attention_avx512(float *out, const float *q, const float *k, const float *v, int S, int Hq, int Hkv, int D, float scale, float *scratch, int h0, int h1) {
    if (D % 16 != 0 || D > 256) { attention_body(out, q, k, v, S, Hq, Hkv, D, scale, scratch, h0, h1); return; }
    int G = Hq / Hkv, ld = Hkv * D, nv = D / 16;
    for (int g = h0 / G; g < Hkv && g * G < h1; g++) {
        int j0 = h0 > g * G ? h0 - g * G : 0, j1 = h1 < (g + 1) * G ? h1 - g * G : G;
        float *sc = scratch + (size_t)(g * G + j0 - h0) * S;   // (j1 - j0, S)
        const float *kg = k + (size_t)g * D, *vg = v + (size_t)g * D;
        for (int j = j0; j < j1; j++) {
            const float *qj = q + (size_t)(g * G + j) * D;
            float *row = sc + (size_t)(j - j0) * S;
            __m512 qv[16];
            for (int c = 0; c < nv; c++) qv[c] = _mm512_loadu_ps(qj + 16 * c);
            // scores: one key row (D floats) per position
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int s = 0; s < S; s++) {
                const float *kr = kg + (size_t)s * ld;
                __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
                for (int c = 1; c < nv; c++) acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + 16 * c), acc);
                row[s] = _mm512_reduce_add_ps(acc) * scale;
            }
            int s = 0;
            for (; s + 16 <= S; s += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + s));
            float m = _mm512_reduce_max_ps(mx);
            for (; s < S; s++) m = row[s] > m ? row[s] : m;
            // e^(score - max), its sum, then the weights normalised
            __m512 vm = _mm512_set1_ps(m), vsum = _mm512_setzero_ps();
            for (s = 0; s + 16 <= S; s += 16) {
                __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(row + s), vm));
                _mm512_storeu_ps(row + s, e);
                vsum = _mm512_add_ps(vsum, e);
            }
            if (s < S) {
                __mmask16 tail = (__mmask16)((1u << (S - s)) - 1);
                __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + s), vm));
                e = _mm512_maskz_mov_ps(tail, e);
                _mm512_mask_storeu_ps(row + s, tail, e);
                vsum = _mm512_add_ps(vsum, e);
            }
            float inv = 1.0f / _mm512_reduce_add_ps(vsum);
            // out = Σ_s weight_s · v_s, 64 floats of the head at a time in registers
            float *o = out + (size_t)(g * G + j) * D;
            for (int c0 = 0; c0 < nv; c0 += 4) {
                int w = nv - c0 < 4 ? nv - c0 : 4;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int t = 0; t < S; t++) {
                    const float *vr = vg + (size_t)t * ld + 16 * c0;
                    __m512 p = _mm512_set1_ps(row[t]);
                    a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr), a0);
                    if (w > 1) a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16), a1);
                    if (w > 2) a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 32), a2);
                    if (w > 3) a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 48), a3);
                }
                __m512 vi = _mm512_set1_ps(inv);
                _mm512_storeu_ps(o + 16 * c0, _mm512_mul_ps(a0, vi));
                if (w > 1) _mm512_storeu_ps(o + 16 * c0 + 16, _mm512_mul_ps(a1, vi));
                if (w > 2) _mm512_storeu_ps(o + 16 * c0 + 32, _mm512_mul_ps(a2, vi));
                if (w > 3) _mm512_storeu_ps(o + 16 * c0 + 48, _mm512_mul_ps(a3, vi));
            }
        }
    }
}
#endif

static const vq_kernels kernels_generic = { unpack_generic, widen_generic, quantize_generic, tile_q_gen, tile_f_gen, attention_generic, NULL };
#if VQ_X86
static const vq_kernels kernels_avx2 = { unpack_avx2, widen_avx2, quantize_avx2, tile_q_avx2v, tile_f_avx2, attention_avx2, direct_avx2 };
static const vq_kernels kernels_avx512 = { unpack_avx512, widen_avx2, quantize_avx512, tile_q_avx512v, tile_f_avx512, attention_avx512, direct_avx512 };
#endif

static const vq_kernels *active = NULL;
static int active_variant = -1;

static int cpu_runs(int variant) {
    switch (variant) {
    case VQ_GENERIC: return 1;
#if VQ_X86
    case VQ_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case VQ_AVX512VNNI:
        __builtin_cpu_init();
        return cpu_runs(VQ_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    default: return 0;
    }
}

int vq_best_variant(void) {
    if (cpu_runs(VQ_AVX512VNNI)) return VQ_AVX512VNNI;
    if (cpu_runs(VQ_AVX2)) return VQ_AVX2;
    return VQ_GENERIC;
}

int vq_set_variant(int variant) {
    if (!cpu_runs(variant)) return 0;
    switch (variant) {
#if VQ_X86
    case VQ_AVX2: active = &kernels_avx2; break;
    case VQ_AVX512VNNI: active = &kernels_avx512; break;
#endif
    default: active = &kernels_generic; break;
    }
    active_variant = variant;
    return 1;
}

static const vq_kernels *K(void) {
    if (!active) {
        int v = vq_best_variant();
        const char *env = getenv("VLM_KERNELS");   // generic | avx2 | avx512: force a lower variant
        if (env) {
            if (strcmp(env, "generic") == 0) v = VQ_GENERIC;
            else if (strcmp(env, "avx2") == 0 && cpu_runs(VQ_AVX2)) v = VQ_AVX2;
        }
        vq_set_variant(v);
    }
    return active;
}

int vq_variant(void) { K(); return active_variant; }

const char *vq_variant_name(int variant) {
    switch (variant) {
    case VQ_AVX2: return "avx2";
    case VQ_AVX512VNNI: return "avx512vnni";
    default: return "generic";
    }
}

// MARK: - drivers

void vq_quantize_act(const float *x, int T, int cols, void *act) { K()->quantize(x, T, cols, (uint8_t *)act); }

typedef struct {
    float *out; const float *q, *k, *v;
    int S, Hq, Hkv, D;
    float scale;
    const vq_kernels *k_;
} decode_job;

static void decode_task(void *ctx, int index, int count);

void vq_attention_decode(float *out, const float *q, const float *k, const float *v,
                         int S, int Hq, int Hkv, int D, float scale, float *scratch) {
    if (S <= 0 || Hkv <= 0 || Hq % Hkv != 0) { memset(out, 0, sizeof(float) * (size_t)Hq * D); return; }
    // Long contexts: the query heads split over the pool (a step's attention grows with S; the
    // products around it are already split). Short ones: one thread (the hand-off costs more).
    if (S >= 64 && Hq > 1 && vq_threads() > 1) {
        decode_job job = { out, q, k, v, S, Hq, Hkv, D, scale, K() };
        vq_parallel(decode_task, &job);
        return;
    }
    K()->attention(out, q, k, v, S, Hq, Hkv, D, scale, scratch, 0, Hq);
}

typedef struct {
    const vq_matrix *mats;
    float *const *ys;
    const int *ldy;
    int n;
    const float *x;
    const uint8_t *act;
    int T;
    int accumulate;
    long total;
    const vq_kernels *k;
} matmul_job;

static _Thread_local uint8_t *tls_scratch = NULL;
static _Thread_local size_t tls_scratch_size = 0;

static uint8_t *scratch_for(size_t bytes) {
    if (bytes > tls_scratch_size) {
        free(tls_scratch);
        tls_scratch = (uint8_t *)aligned_alloc(64, (bytes + 63) / 64 * 64);
        tls_scratch_size = tls_scratch ? bytes : 0;
    }
    return tls_scratch;
}

/// Rows [r0, r1) of matrix m: tiles of 4 rows unpacked once, times every token row.
static void run_rows(const matmul_job *job, int m, int r0, int r1) {
    const vq_matrix *W = &job->mats[m];
    const vq_kernels *k = job->k;
    int I = W->cols, T = job->T, ld = job->ldy[m];
    float *y = job->ys[m];
    int fl = is_float_type(W->type), wide = W->type == VQ_Q8_0;
    size_t cs = fl ? sizeof(float) * (size_t)I : crow_bytes(I), as = arow_bytes(I);
    if (k->direct && T <= VQ_TILE && (W->type == VQ_Q4_0 || W->type == VQ_Q4_1 || W->type == VQ_Q8_0)) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *src = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
            for (int t = 0; t < T; t++) {
                float v = k->direct(W->type, src, I, job->act + (size_t)t * as);
                float *yt = y + (size_t)t * ld + r;
                *yt = job->accumulate ? *yt + v : v;
            }
        }
        return;
    }
    uint8_t *c = scratch_for(VQ_TILE * cs);
    if (!c) return;
    float out[VQ_TILE];
    for (int r = r0; r < r1; r += VQ_TILE) {
        int nr = r1 - r < VQ_TILE ? r1 - r : VQ_TILE;
        for (int i = 0; i < VQ_TILE; i++) {   // missing rows of the last tile repeat its first row
            const uint8_t *src = (const uint8_t *)W->data + (size_t)(i < nr ? r + i : r) * W->row_bytes;
            if (fl) k->widen(W->type, src, I, (float *)(c + i * cs));
            else k->unpack(W->type, src, I, c + i * cs);
        }
        for (int t = 0; t < T; t++) {
            if (fl) k->tile_f(I, (const float *)c, job->x + (size_t)t * I, out);
            else k->tile_q(I, c, cs, job->act + (size_t)t * as, out, wide);
            float *yt = y + (size_t)t * ld + r;
            if (job->accumulate) for (int i = 0; i < nr; i++) yt[i] += out[i];
            else for (int i = 0; i < nr; i++) yt[i] = out[i];
        }
    }
}

static void matmul_task(void *ctx, int index, int count) {
    const matmul_job *job = (const matmul_job *)ctx;
    // An equal share of all rows, in whole tiles.
    long tiles = (job->total + VQ_TILE - 1) / VQ_TILE;
    long per = (tiles + count - 1) / count * VQ_TILE;
    long g0 = (long)index * per, g1 = g0 + per < job->total ? g0 + per : job->total;
    long base = 0;
    for (int m = 0; m < job->n && g0 < g1; m++) {
        long rows = job->mats[m].rows;
        long lo = g0 > base ? g0 : base, hi = g1 < base + rows ? g1 : base + rows;
        if (lo < hi) run_rows(job, m, (int)(lo - base), (int)(hi - base));
        base += rows;
    }
}

typedef struct {
    float *out; const float *q, *k, *v;
    int T, pos0, Hq, Hkv, D;
    float scale;
    const vq_kernels *k_;
} attention_job;

static void decode_task(void *ctx, int index, int count) {
    const decode_job *j = (const decode_job *)ctx;
    int h0 = j->Hq * index / count, h1 = j->Hq * (index + 1) / count;
    if (h0 >= h1) return;
    float *scratch = (float *)scratch_for(sizeof(float) * (size_t)(h1 - h0) * (size_t)j->S);
    if (!scratch) return;
    j->k_->attention(j->out, j->q, j->k, j->v, j->S, j->Hq, j->Hkv, j->D, j->scale, scratch, h0, h1);
}

static void attention_task(void *ctx, int index, int count) {
    const attention_job *j = (const attention_job *)ctx;
    size_t qw = (size_t)j->Hq * j->D;
    float *scratch = (float *)scratch_for(sizeof(float) * (size_t)j->Hq * (size_t)(j->pos0 + j->T));
    if (!scratch) return;
    // Query t sees keys 0...pos0 + t; interleaved rows give every thread a similar share.
    for (int t = index; t < j->T; t += count)
        j->k_->attention(j->out + t * qw, j->q + t * qw, j->k, j->v, j->pos0 + t + 1, j->Hq, j->Hkv, j->D, j->scale, scratch, 0, j->Hq);
}

void vq_attention_causal(float *out, const float *q, const float *k, const float *v,
                         int T, int pos0, int Hq, int Hkv, int D, float scale) {
    if (T <= 0 || Hkv <= 0 || Hq % Hkv != 0) return;
    attention_job job = { out, q, k, v, T, pos0, Hq, Hkv, D, scale, K() };
    if (T == 1 || vq_threads() == 1) attention_task(&job, 0, 1);
    else vq_parallel(attention_task, &job);
}

void vq_matmul(const vq_matrix *mats, float *const *ys, const int *ldy, int n,
               const float *x, const void *act, int T, int accumulate) {
    if (n <= 0 || T <= 0) return;
    matmul_job job = { mats, ys, ldy, n, x, (const uint8_t *)act, T, accumulate, 0, K() };
    for (int m = 0; m < n; m++) job.total += mats[m].rows;
    // Below ~32k multiply-adds a wake-up costs more than it saves.
    if (vq_threads() == 1 || job.total * (long)mats[0].cols * (long)T < 32768) matmul_task(&job, 0, 1);
    else vq_parallel(matmul_task, &job);
}
