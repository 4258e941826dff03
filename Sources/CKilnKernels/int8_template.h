// The int8 convolution, depthwise, pooling, requantization and lookup kernels, written once and
// compiled per instruction set. The including file defines, before including this header:
//   SUFFIX      name suffix (portable, avx2, vnni, neondot)
//   I8_PATH     1 portable C, 2 AVX2, 3 AVX-512 VNNI, 4 NEON dot product
// and wraps the include in `#pragma clang attribute push(target(...))`.
//
// Convolution is an indirect GEMM (as the float kernel): a tile of output pixels keeps, for each
// tap, a pointer per pixel to its input pixel (or to the packed row of input zero points, for a
// padded tap); the products run over groups of 4 input channels (4 bytes), 16 output channels
// per packed panel. How 4-byte groups are multiplied depends on the instruction set:
//   - AVX-512 VNNI: vpdpbusd multiplies unsigned bytes by signed bytes, so activations are
//     offset by 128 (x ^ 0x80) and the packed bias carries -(zx + 128) * sum(w).
//   - AVX2: vpmaddubsw (unsigned x signed bytes, pairs summed into a saturating int16) would
//     saturate with unsigned activations up to 255 and weights up to 127 (2 * 255 * 127 > 32767).
//     Instead the unsigned operand is |x| (at most 128, vpabsb) and the signed one is w with the
//     sign of x (vpsignb; |w| <= 127 so negating never overflows): every pair sums to at most
//     2 * 128 * 127 = 32512, which fits, and the products are exactly x * w. vpmaddwd then adds
//     the pairs into int32.
//   - NEON sdot multiplies signed bytes directly; portable C multiplies int32s.
// The requantization epilogue is the same arithmetic as Requantize.swift, lane by lane.
#include "int8_internal.h"

#define I8_CAT2(a, b) a##_##b
#define I8_CAT(a, b) I8_CAT2(a, b)
#define FN(name) I8_CAT(name, SUFFIX)
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#if I8_PATH == 3
#include <immintrin.h>
#define TILE_MR 12
#elif I8_PATH == 2
#include <immintrin.h>
#define TILE_MR 4
#elif I8_PATH == 4
#include <arm_neon.h>
#define TILE_MR 6
#else
#define TILE_MR 4
#endif

typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

ALWAYS_INLINE int32_t load4(const int8_t *p) { return *(const unaligned_i32 *)p; }

ALWAYS_INLINE kiln_i8_rows rows_at(const uint8_t *panel, size_t stride) {
    const int32_t *r = (const int32_t *)panel;
    kiln_i8_rows rows = {r, r + stride, r + 2 * stride, r + 3 * stride, r + 4 * stride};
    return rows;
}

/// Scalar epilogue of one channel (tails, portable path).
ALWAYS_INLINE int8_t requant_one(int32_t acc, kiln_i8_rows rows, size_t j, int32_t zo, int32_t lo, int32_t hi) {
    int32_t l = rows.left[j];
    int32_t shifted = l >= 32 ? 0 : (int32_t)((uint32_t)acc << l);
    int32_t v = kiln_rounding_shift(kiln_srdhm(shifted, rows.multiplier[j]), rows.right[j], rows.away[j] != 0) + zo;
    return (int8_t)kiln_clamp_i32(v, lo, hi);
}

// MARK: - Vector epilogues

#if I8_PATH == 3
/// 16 lanes: clamp(rounding_shift(srdhm(acc << l, m), r) + zo), narrowed and stored (`count` lanes).
ALWAYS_INLINE void store16(int8_t *y, __m512i acc, const int32_t *m, const int32_t *l, const int32_t *r, const int32_t *away,
                           int32_t zo, int32_t lo, int32_t hi, int count) {
    __m512i x = _mm512_sllv_epi32(acc, _mm512_loadu_si512(l));
    __m512i mv = _mm512_loadu_si512(m);
    const __m512i nudge = _mm512_set1_epi64(1ll << 30);
    __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, mv), nudge);
    __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(mv, 32)), nudge);
    __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
    __m512i rv = _mm512_loadu_si512(r);
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), rv), _mm512_set1_epi32(1));
    __m512i rem = _mm512_and_si512(h, mask);
    __m512i threshold = _mm512_sub_epi32(_mm512_srli_epi32(mask, 1),
                                         _mm512_and_si512(_mm512_srai_epi32(h, 31), _mm512_loadu_si512(away)));
    __m512i v = _mm512_srav_epi32(h, rv);
    v = _mm512_mask_add_epi32(v, _mm512_cmpgt_epi32_mask(rem, threshold), v, _mm512_set1_epi32(1));
    v = _mm512_add_epi32(v, _mm512_set1_epi32(zo));
    v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(lo)), _mm512_set1_epi32(hi));
    _mm512_mask_cvtsepi32_storeu_epi8(y, (__mmask16)(count >= 16 ? 0xFFFF : ((1u << count) - 1)), v);
}
#elif I8_PATH == 2
/// 8 lanes of the same epilogue.
ALWAYS_INLINE __m256i requant8(__m256i acc, const int32_t *m, const int32_t *l, const int32_t *r, const int32_t *away,
                               int32_t zo, int32_t lo, int32_t hi) {
    __m256i x = _mm256_sllv_epi32(acc, _mm256_loadu_si256((const __m256i *)l));
    __m256i mv = _mm256_loadu_si256((const __m256i *)m);
    const __m256i nudge = _mm256_set1_epi64x(1ll << 30);
    __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, mv), nudge);
    __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mv, 32)), nudge);
    __m256i h = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
    __m256i rv = _mm256_loadu_si256((const __m256i *)r);
    __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), rv), _mm256_set1_epi32(1));
    __m256i rem = _mm256_and_si256(h, mask);
    __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1),
                                         _mm256_and_si256(_mm256_srai_epi32(h, 31), _mm256_loadu_si256((const __m256i *)away)));
    __m256i v = _mm256_srav_epi32(h, rv);
    v = _mm256_sub_epi32(v, _mm256_cmpgt_epi32(rem, threshold));
    v = _mm256_add_epi32(v, _mm256_set1_epi32(zo));
    return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
}

/// Narrows 8 clamped int32 lanes to bytes and stores `count` of them.
ALWAYS_INLINE void store8(int8_t *y, __m256i v, int count) {
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    __m128i b = _mm_packs_epi16(w, w);
    if (count >= 8) {
        _mm_storel_epi64((__m128i *)y, b);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        memcpy(y, tmp, (size_t)count);
    }
}
#elif I8_PATH == 4
/// 4 lanes of the same epilogue (NEON); returns the clamped int32s.
ALWAYS_INLINE int32x4_t requant4(int32x4_t acc, const int32_t *m, const int32_t *l, const int32_t *r, const int32_t *away,
                                 int32_t zo, int32_t lo, int32_t hi) {
    int32x4_t x = vshlq_s32(acc, vld1q_s32(l));
    // vqrdmulhq_s32 is SaturatingRoundingDoublingHighMul exactly (rounds ties up, saturates
    // INT32_MIN * INT32_MIN, which cannot occur with multipliers below 2^31).
    int32x4_t h = vqrdmulhq_s32(x, vld1q_s32(m));
    int32x4_t rv = vld1q_s32(r);
    int32x4_t mask = vsubq_s32(vshlq_s32(vdupq_n_s32(1), rv), vdupq_n_s32(1));
    int32x4_t rem = vandq_s32(h, mask);
    int32x4_t threshold = vsubq_s32(vshrq_n_s32(mask, 1), vandq_s32(vshrq_n_s32(h, 31), vld1q_s32(away)));
    int32x4_t v = vshlq_s32(h, vnegq_s32(rv));
    v = vsubq_s32(v, vreinterpretq_s32_u32(vcgtq_s32(rem, threshold)));
    v = vaddq_s32(v, vdupq_n_s32(zo));
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}
#endif

void FN(kiln_requantize_i32_i8)(
    const int32_t *x, size_t n, const int32_t *multiplier, const int32_t *shift, const int32_t *round_up,
    int32_t zero_point, int32_t min, int32_t max, int8_t *y) {
    // Per-element rows as the packed panels hold them.
    int32_t m[16], l[16], r[16], away[16], acc[16];
    for (size_t i0 = 0; i0 < n; i0 += 16) {
        size_t count = n - i0 < 16 ? n - i0 : 16;
        for (size_t j = 0; j < 16; j++) {
            size_t i = i0 + (j < count ? j : 0);
            int32_t s = shift[i];
            acc[j] = x[i];
            m[j] = multiplier[i];
            l[j] = s > 0 ? (s > 32 ? 32 : s) : 0;
            r[j] = s > 0 ? 0 : (-s > 31 ? 31 : -s);
            away[j] = round_up[i] ? 0 : -1;
        }
#if I8_PATH == 3
        store16(y + i0, _mm512_loadu_si512(acc), m, l, r, away, zero_point, min, max, (int)count);
#elif I8_PATH == 2
        for (size_t h = 0; h < count; h += 8) {
            __m256i v = requant8(_mm256_loadu_si256((const __m256i *)(acc + h)), m + h, l + h, r + h, away + h, zero_point, min, max);
            store8(y + i0 + h, v, (int)(count - h));
        }
#elif I8_PATH == 4
        for (size_t h = 0; h < count; h += 4) {
            int32x4_t v = requant4(vld1q_s32(acc + h), m + h, l + h, r + h, away + h, zero_point, min, max);
            int32_t out[4];
            vst1q_s32(out, v);
            for (size_t j = 0; j < 4 && h + j < count; j++) y[i0 + h + j] = (int8_t)out[j];
        }
#else
        kiln_i8_rows rows = {acc, m, l, r, away};
        for (size_t j = 0; j < count; j++) y[i0 + j] = requant_one(acc[j], rows, j, zero_point, min, max);
#endif
    }
}

// MARK: - Convolution

/// Fills a tile's pointers for every tap and tile row: the input pixel, or the zero-point row.
__attribute__((noinline)) static void FN(tap_pointers)(
    const kiln_conv_i8_params *p, const int8_t *input, const int8_t *pad, size_t y, size_t x, size_t mr, const int8_t **a) {
    const long in_w = (long)p->in_w, sw = (long)p->stride_w, pl = (long)p->pad_left;
    long first = (long)x * sw - pl, last = (long)(x + mr - 1) * sw - pl + (long)((p->kernel_w - 1) * p->dilation_w);
    if (x + mr <= p->out_w && first >= 0 && last < in_w) {
        const long step = sw * (long)p->in_pixel_stride;
        for (size_t ky = 0; ky < p->kernel_h; ky++) {
            long iy = (long)(y * p->stride_h) + (long)(ky * p->dilation_h) - (long)p->pad_top;
            const int inside = iy >= 0 && iy < (long)p->in_h;
            for (size_t kx = 0; kx < p->kernel_w; kx++) {
                const int8_t **row = a + (ky * p->kernel_w + kx) * TILE_MR;
                if (!inside) {
                    for (size_t r = 0; r < TILE_MR; r++) row[r] = pad;
                    continue;
                }
                const int8_t *p0 = input + (iy * in_w + first + (long)(kx * p->dilation_w)) * (long)p->in_pixel_stride;
                for (size_t r = 0; r < TILE_MR; r++) row[r] = p0 + (long)(r < mr ? r : mr - 1) * step;
            }
        }
        return;
    }
    for (size_t r = 0; r < TILE_MR; r++) {
        for (size_t ky = 0; ky < p->kernel_h; ky++) {
            long iy = (long)(y * p->stride_h) + (long)(ky * p->dilation_h) - (long)p->pad_top;
            for (size_t kx = 0; kx < p->kernel_w; kx++) {
                long ix = (long)(x * p->stride_w) + (long)(kx * p->dilation_w) - (long)p->pad_left;
                int inside = iy >= 0 && iy < (long)p->in_h && ix >= 0 && ix < (long)p->in_w;
                a[(ky * p->kernel_w + kx) * TILE_MR + r] =
                    inside ? input + ((size_t)iy * p->in_w + (size_t)ix) * p->in_pixel_stride : pad;
            }
        }
        if (r + 1 < mr && ++x == p->out_w) {
            x = 0;
            y++;
        }
    }
}

/// One tile: TILE_MR pixels (rows past `mr` repeat the last and are not stored) x one panel of
/// 16 output channels (`valid` of them stored).
ALWAYS_INLINE void FN(conv_tile)(
    size_t mr, size_t taps, size_t g4, const int8_t *const *a, const uint8_t *panel, int8_t *c, size_t ldc, size_t valid,
    int32_t zo, int32_t lo, int32_t hi) {
    kiln_i8_rows rows = rows_at(panel, KILN_I8_PANEL);
    const int8_t *w = (const int8_t *)(panel + 5 * KILN_I8_PANEL * sizeof(int32_t));
#if I8_PATH == 3
    __m512i acc[TILE_MR];
    __m512i bias = _mm512_loadu_si512(rows.bias);
#pragma unroll
    for (int r = 0; r < TILE_MR; r++) acc[r] = bias;
    const __m512i flip = _mm512_set1_epi32((int32_t)0x80808080);
    for (size_t t = 0; t < taps; t++) {
        const int8_t *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < TILE_MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t g = 0; g < g4; g++) {
            __m512i wv = _mm512_loadu_si512(w);
#pragma unroll
            for (int r = 0; r < TILE_MR; r++) {
                __m512i xb = _mm512_xor_si512(_mm512_set1_epi32(load4(ar[r] + 4 * g)), flip);
                acc[r] = _mm512_dpbusd_epi32(acc[r], xb, wv);
            }
            w += 64;
        }
    }
    for (int r = 0; r < TILE_MR; r++) {
        if ((size_t)r >= mr) break;
        store16(c + r * ldc, acc[r], rows.multiplier, rows.left, rows.right, rows.away, zo, lo, hi, (int)valid);
    }
#elif I8_PATH == 2
    __m256i acc[TILE_MR][2];
    __m256i b0 = _mm256_loadu_si256((const __m256i *)rows.bias), b1 = _mm256_loadu_si256((const __m256i *)(rows.bias + 8));
#pragma unroll
    for (int r = 0; r < TILE_MR; r++) {
        acc[r][0] = b0;
        acc[r][1] = b1;
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t t = 0; t < taps; t++) {
        const int8_t *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < TILE_MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t g = 0; g < g4; g++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)w), w1 = _mm256_loadu_si256((const __m256i *)(w + 32));
#pragma unroll
            for (int r = 0; r < TILE_MR; r++) {
                __m256i xb = _mm256_set1_epi32(load4(ar[r] + 4 * g));
                __m256i ax = _mm256_abs_epi8(xb);
                __m256i p0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xb));
                __m256i p1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xb));
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
            }
            w += 64;
        }
    }
    for (int r = 0; r < TILE_MR; r++) {
        if ((size_t)r >= mr) break;
        __m256i v0 = requant8(acc[r][0], rows.multiplier, rows.left, rows.right, rows.away, zo, lo, hi);
        store8(c + r * ldc, v0, (int)valid);
        if (valid > 8) {
            __m256i v1 = requant8(acc[r][1], rows.multiplier + 8, rows.left + 8, rows.right + 8, rows.away + 8, zo, lo, hi);
            store8(c + r * ldc + 8, v1, (int)valid - 8);
        }
    }
#elif I8_PATH == 4
    int32x4_t acc[TILE_MR][4];
#pragma unroll
    for (int r = 0; r < TILE_MR; r++) {
#pragma unroll
        for (int v = 0; v < 4; v++) acc[r][v] = vld1q_s32(rows.bias + 4 * v);
    }
    for (size_t t = 0; t < taps; t++) {
        const int8_t *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < TILE_MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t g = 0; g < g4; g++) {
            int8x16_t wv[4];
#pragma unroll
            for (int v = 0; v < 4; v++) wv[v] = vld1q_s8(w + 16 * v);
#pragma unroll
            for (int r = 0; r < TILE_MR; r++) {
                int8x16_t xb = vreinterpretq_s8_s32(vdupq_n_s32(load4(ar[r] + 4 * g)));
#pragma unroll
                for (int v = 0; v < 4; v++) acc[r][v] = vdotq_s32(acc[r][v], wv[v], xb);
            }
            w += 64;
        }
    }
    for (int r = 0; r < TILE_MR; r++) {
        if ((size_t)r >= mr) break;
        int32_t out[16];
#pragma unroll
        for (int v = 0; v < 4; v++) {
            vst1q_s32(out + 4 * v, requant4(acc[r][v], rows.multiplier + 4 * v, rows.left + 4 * v, rows.right + 4 * v,
                                            rows.away + 4 * v, zo, lo, hi));
        }
        for (size_t j = 0; j < valid && j < 16; j++) c[r * ldc + j] = (int8_t)out[j];
    }
#else
    int32_t acc[TILE_MR][KILN_I8_PANEL];
    for (int r = 0; r < TILE_MR; r++) {
        for (int j = 0; j < KILN_I8_PANEL; j++) acc[r][j] = rows.bias[j];
    }
    for (size_t t = 0; t < taps; t++) {
        for (size_t g = 0; g < g4; g++) {
            for (int r = 0; r < TILE_MR; r++) {
                const int8_t *x = a[t * TILE_MR + r] + 4 * g;
                int32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
                for (int j = 0; j < KILN_I8_PANEL; j++) {
                    const int8_t *wj = w + 4 * j;
                    acc[r][j] += wj[0] * x0 + wj[1] * x1 + wj[2] * x2 + wj[3] * x3;
                }
            }
            w += 64;
        }
    }
    for (int r = 0; r < TILE_MR; r++) {
        if ((size_t)r >= mr) break;
        for (size_t j = 0; j < valid && j < KILN_I8_PANEL; j++) c[r * ldc + j] = requant_one(acc[r][j], rows, j, zo, lo, hi);
    }
#endif
}

void FN(kiln_conv_i8)(
    const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output, size_t pixel_begin,
    size_t pixel_end, size_t panel_begin, size_t panel_end) {
    const size_t taps = p->kernel_h * p->kernel_w, g4 = (p->in_c + 3) / 4;
    const size_t panel_bytes = 5 * KILN_I8_PANEL * sizeof(int32_t) + taps * g4 * KILN_I8_PANEL * 4;
    const int8_t *pad = (const int8_t *)packed;
    const uint8_t *panels = packed + kiln_i8_pad_bytes(p->in_c);
    const int8_t *a[KILN_MAX_TAPS * TILE_MR];
    for (size_t p0 = pixel_begin; p0 < pixel_end; p0 += TILE_MR) {
        size_t mr = pixel_end - p0 < TILE_MR ? pixel_end - p0 : TILE_MR;
        FN(tap_pointers)(p, input, pad, p0 / p->out_w, p0 % p->out_w, mr, a);
        int8_t *c = output + p0 * p->out_pixel_stride;
        for (size_t q = panel_begin; q < panel_end; q++) {
            size_t first = q * KILN_I8_PANEL;
            size_t valid = p->out_c - first < KILN_I8_PANEL ? p->out_c - first : KILN_I8_PANEL;
            FN(conv_tile)(mr, taps, g4, a, panels + q * panel_bytes, c + first, p->out_pixel_stride, valid,
                          p->output_zero_point, p->output_min, p->output_max);
        }
    }
}

// MARK: - Depthwise convolution

void FN(kiln_depthwise_i8)(
    const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output, size_t row_begin,
    size_t row_end) {
    const size_t c = p->in_c, taps = p->kernel_h * p->kernel_w;
    const size_t cr = (c + KILN_I8_PANEL - 1) / KILN_I8_PANEL * KILN_I8_PANEL;
    const int8_t *pad = (const int8_t *)packed;
    kiln_i8_rows rows = rows_at(packed + kiln_i8_pad_bytes(c), cr);
    const int32_t *weights = rows.away + cr;
    const int32_t zo = p->output_zero_point, lo = p->output_min, hi = p->output_max;
    const int8_t *tp[KILN_MAX_TAPS];
    for (size_t oy = row_begin; oy < row_end; oy++) {
        for (size_t ox = 0; ox < p->out_w; ox++) {
            for (size_t ky = 0; ky < p->kernel_h; ky++) {
                long iy = (long)(oy * p->stride_h) + (long)(ky * p->dilation_h) - (long)p->pad_top;
                for (size_t kx = 0; kx < p->kernel_w; kx++) {
                    long ix = (long)(ox * p->stride_w) + (long)(kx * p->dilation_w) - (long)p->pad_left;
                    int inside = iy >= 0 && iy < (long)p->in_h && ix >= 0 && ix < (long)p->in_w;
                    tp[ky * p->kernel_w + kx] = inside ? input + ((size_t)iy * p->in_w + (size_t)ix) * p->in_pixel_stride : pad;
                }
            }
            int8_t *y = output + (oy * p->out_w + ox) * p->out_pixel_stride;
            size_t ch = 0;
#if I8_PATH == 3
            for (; ch < c; ch += 16) {
                int count = c - ch < 16 ? (int)(c - ch) : 16;
                __mmask16 k = (__mmask16)(count >= 16 ? 0xFFFF : ((1u << count) - 1));
                __m512i acc = _mm512_loadu_si512(rows.bias + ch);
                for (size_t t = 0; t < taps; t++) {
                    __m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, tp[t] + ch));
                    acc = _mm512_dpwssd_epi32(acc, x, _mm512_loadu_si512(weights + t * cr + ch));
                }
                store16(y + ch, acc, rows.multiplier + ch, rows.left + ch, rows.right + ch, rows.away + ch, zo, lo, hi, count);
            }
#elif I8_PATH == 2
            for (; ch + 8 <= c; ch += 8) {
                __m256i acc = _mm256_loadu_si256((const __m256i *)(rows.bias + ch));
                for (size_t t = 0; t < taps; t++) {
                    __m256i x = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(tp[t] + ch)));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i *)(weights + t * cr + ch))));
                }
                store8(y + ch, requant8(acc, rows.multiplier + ch, rows.left + ch, rows.right + ch, rows.away + ch, zo, lo, hi), 8);
            }
#elif I8_PATH == 4
            for (; ch + 4 <= c; ch += 4) {
                int32x4_t acc = vld1q_s32(rows.bias + ch);
                for (size_t t = 0; t < taps; t++) {
                    int8x8_t x8 = vreinterpret_s8_s32(vdup_n_s32(load4(tp[t] + ch)));
                    int32x4_t x = vmovl_s16(vget_low_s16(vmovl_s8(x8)));
                    acc = vmlaq_s32(acc, x, vld1q_s32(weights + t * cr + ch));
                }
                int32_t out[4];
                vst1q_s32(out, requant4(acc, rows.multiplier + ch, rows.left + ch, rows.right + ch, rows.away + ch, zo, lo, hi));
                for (int j = 0; j < 4; j++) y[ch + j] = (int8_t)out[j];
            }
#endif
            for (; ch < c; ch++) {
                int32_t acc = rows.bias[ch];
                for (size_t t = 0; t < taps; t++) acc += (int32_t)tp[t][ch] * (int16_t)weights[t * cr + ch];
                y[ch] = requant_one(acc, rows, ch, zo, lo, hi);
            }
        }
    }
}

// MARK: - Pooling and lookups (plain loops over channels, vectorised by the compiler)

void FN(kiln_max_pool_i8)(const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end) {
    const size_t c = p->channels;
    const int8_t lo = (int8_t)p->min, hi = (int8_t)p->max;
    for (size_t oy = row_begin; oy < row_end; oy++) {
        long y0 = (long)(oy * p->stride_h) - (long)p->pad_top;
        long ya = y0 < 0 ? 0 : y0, yb = y0 + (long)p->kernel_h > (long)p->in_h ? (long)p->in_h : y0 + (long)p->kernel_h;
        for (size_t ox = 0; ox < p->out_w; ox++) {
            long x0 = (long)(ox * p->stride_w) - (long)p->pad_left;
            long xa = x0 < 0 ? 0 : x0, xb = x0 + (long)p->kernel_w > (long)p->in_w ? (long)p->in_w : x0 + (long)p->kernel_w;
            int8_t *y = output + (oy * p->out_w + ox) * c;
            for (size_t ch = 0; ch < c; ch++) y[ch] = -128;
            for (long iy = ya; iy < yb; iy++) {
                for (long ix = xa; ix < xb; ix++) {
                    const int8_t *x = input + ((size_t)iy * p->in_w + (size_t)ix) * c;
                    for (size_t ch = 0; ch < c; ch++) y[ch] = x[ch] > y[ch] ? x[ch] : y[ch];
                }
            }
            for (size_t ch = 0; ch < c; ch++) y[ch] = y[ch] < lo ? lo : (y[ch] > hi ? hi : y[ch]);
        }
    }
}

void FN(kiln_avg_pool_i8)(const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end) {
    const size_t c = p->channels;
    int32_t acc[256];
    for (size_t oy = row_begin; oy < row_end; oy++) {
        long y0 = (long)(oy * p->stride_h) - (long)p->pad_top;
        long ya = y0 < 0 ? 0 : y0, yb = y0 + (long)p->kernel_h > (long)p->in_h ? (long)p->in_h : y0 + (long)p->kernel_h;
        for (size_t ox = 0; ox < p->out_w; ox++) {
            long x0 = (long)(ox * p->stride_w) - (long)p->pad_left;
            long xa = x0 < 0 ? 0 : x0, xb = x0 + (long)p->kernel_w > (long)p->in_w ? (long)p->in_w : x0 + (long)p->kernel_w;
            int32_t count = (int32_t)((yb - ya) * (xb - xa));
            int8_t *y = output + (oy * p->out_w + ox) * c;
            for (size_t c0 = 0; c0 < c; c0 += 256) {
                size_t n = c - c0 < 256 ? c - c0 : 256;
                for (size_t j = 0; j < n; j++) acc[j] = 0;
                for (long iy = ya; iy < yb; iy++) {
                    for (long ix = xa; ix < xb; ix++) {
                        const int8_t *x = input + ((size_t)iy * p->in_w + (size_t)ix) * c + c0;
                        for (size_t j = 0; j < n; j++) acc[j] += x[j];
                    }
                }
                for (size_t j = 0; j < n; j++) {
                    int32_t v = count == 0 ? 0 : (acc[j] > 0 ? (acc[j] + count / 2) / count : (acc[j] - count / 2) / count);
                    y[c0 + j] = (int8_t)kiln_clamp_i32(v, p->min, p->max);
                }
            }
        }
    }
}

void FN(kiln_lookup_i8)(const int8_t *table, const int8_t *x, int8_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = table[(int)x[i] + 128];
}
