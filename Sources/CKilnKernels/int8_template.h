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
    kiln_i8_rows rows = {r, r + stride, r + 2 * stride, r + 3 * stride, r + 4 * stride, r + 5 * stride, r + 6 * stride};
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
/// The requantization parameters of 16 channels, in registers.
typedef struct {
    __m512i m, l, r, rm1, away, zo, lo, hi;
} rq16;

ALWAYS_INLINE rq16 load_rq16(kiln_i8_rows rows, size_t j, int32_t zo, int32_t lo, int32_t hi) {
    rq16 q;
    q.m = _mm512_loadu_si512(rows.multiplier + j);
    q.l = _mm512_loadu_si512(rows.left + j);
    q.r = _mm512_loadu_si512(rows.right + j);
    q.rm1 = _mm512_loadu_si512(rows.rm1 + j);
    q.away = _mm512_loadu_si512(rows.away + j);
    q.zo = _mm512_set1_epi32(zo);
    q.lo = _mm512_set1_epi32(lo);
    q.hi = _mm512_set1_epi32(hi);
    return q;
}

/// round(x * m / 2^31), ties up, per lane (m >= 0, so the INT32_MIN case cannot occur).
ALWAYS_INLINE __m512i srdhm16(__m512i x, __m512i m) {
    const __m512i nudge = _mm512_set1_epi64(1ll << 30);
    __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), nudge);
    __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)), nudge);
    return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
}

/// clamp(rounding_shift(srdhm(acc << l, m), r) + zo). `simple`: no left shifts and every tie
/// upward, so the shift is (h >> r) + bit r-1 of h.
ALWAYS_INLINE __m512i requant16_core(__m512i acc, const rq16 *q, const int simple) {
    __m512i v;
    if (simple) {
        __m512i h = srdhm16(acc, q->m);
        v = _mm512_add_epi32(_mm512_srav_epi32(h, q->r), _mm512_and_si512(_mm512_srlv_epi32(h, q->rm1), _mm512_set1_epi32(1)));
    } else {
        __m512i h = srdhm16(_mm512_sllv_epi32(acc, q->l), q->m);
        __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), q->r), _mm512_set1_epi32(1));
        __m512i rem = _mm512_and_si512(h, mask);
        __m512i threshold = _mm512_sub_epi32(_mm512_srli_epi32(mask, 1), _mm512_and_si512(_mm512_srai_epi32(h, 31), q->away));
        v = _mm512_srav_epi32(h, q->r);
        v = _mm512_mask_add_epi32(v, _mm512_cmpgt_epi32_mask(rem, threshold), v, _mm512_set1_epi32(1));
    }
    return v;
}

ALWAYS_INLINE __m512i requant16(__m512i acc, const rq16 *q, const int simple) {
    __m512i v = requant16_core(acc, q, simple);
    v = _mm512_add_epi32(v, q->zo);
    return _mm512_min_epi32(_mm512_max_epi32(v, q->lo), q->hi);
}

ALWAYS_INLINE void store16(int8_t *y, __m512i v, int count) {
    if (count >= 16) {
        _mm_storeu_si128((__m128i *)y, _mm512_cvtepi32_epi8(v));
    } else {
        _mm512_mask_cvtepi32_storeu_epi8(y, (__mmask16)((1u << count) - 1), v);
    }
}
#elif I8_PATH == 2
typedef struct {
    __m256i m, l, r, rm1, away, zo, lo, hi;
} rq8;

ALWAYS_INLINE rq8 load_rq8(kiln_i8_rows rows, size_t j, int32_t zo, int32_t lo, int32_t hi) {
    rq8 q;
    q.m = _mm256_loadu_si256((const __m256i *)(rows.multiplier + j));
    q.l = _mm256_loadu_si256((const __m256i *)(rows.left + j));
    q.r = _mm256_loadu_si256((const __m256i *)(rows.right + j));
    q.rm1 = _mm256_loadu_si256((const __m256i *)(rows.rm1 + j));
    q.away = _mm256_loadu_si256((const __m256i *)(rows.away + j));
    q.zo = _mm256_set1_epi32(zo);
    q.lo = _mm256_set1_epi32(lo);
    q.hi = _mm256_set1_epi32(hi);
    return q;
}

ALWAYS_INLINE __m256i srdhm8(__m256i x, __m256i m) {
    const __m256i nudge = _mm256_set1_epi64x(1ll << 30);
    __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
    __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge);
    return _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
}

/// 8 lanes of the requantization (see requant16).
ALWAYS_INLINE __m256i requant8_core(__m256i acc, const rq8 *q, const int simple) {
    __m256i v;
    if (simple) {
        __m256i h = srdhm8(acc, q->m);
        v = _mm256_add_epi32(_mm256_srav_epi32(h, q->r), _mm256_and_si256(_mm256_srlv_epi32(h, q->rm1), _mm256_set1_epi32(1)));
    } else {
        __m256i h = srdhm8(_mm256_sllv_epi32(acc, q->l), q->m);
        __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), q->r), _mm256_set1_epi32(1));
        __m256i rem = _mm256_and_si256(h, mask);
        __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_and_si256(_mm256_srai_epi32(h, 31), q->away));
        v = _mm256_srav_epi32(h, q->r);
        v = _mm256_sub_epi32(v, _mm256_cmpgt_epi32(rem, threshold));
    }
    return v;
}

ALWAYS_INLINE __m256i requant8(__m256i acc, const rq8 *q, const int simple) {
    __m256i v = requant8_core(acc, q, simple);
    v = _mm256_add_epi32(v, q->zo);
    return _mm256_min_epi32(_mm256_max_epi32(v, q->lo), q->hi);
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
    // Per-element rows as the packed panels hold them, 16 at a time.
    int32_t m[16], l[16], r[16], away[16], rm1[16], simple[16], acc[16];
    for (size_t i0 = 0; i0 < n; i0 += 16) {
        size_t count = n - i0 < 16 ? n - i0 : 16;
        int all_simple = 1;
        for (size_t j = 0; j < 16; j++) {
            size_t i = i0 + (j < count ? j : 0);
            int32_t s = shift[i];
            acc[j] = x[i];
            m[j] = multiplier[i];
            l[j] = s > 0 ? (s > 32 ? 32 : s) : 0;
            r[j] = s > 0 ? 0 : (-s > 31 ? 31 : -s);
            away[j] = round_up[i] ? 0 : -1;
            rm1[j] = r[j] == 0 ? 32 : r[j] - 1;
            if (l[j] != 0 || away[j] != 0) all_simple = 0;
        }
        for (size_t j = 0; j < 16; j++) simple[j] = all_simple;
        kiln_i8_rows rows = {acc, m, l, r, away, rm1, simple};
        (void)rows;
#if I8_PATH == 3
        rq16 q = load_rq16(rows, 0, zero_point, min, max);
        __m512i v = all_simple ? requant16(_mm512_loadu_si512(acc), &q, 1) : requant16(_mm512_loadu_si512(acc), &q, 0);
        store16(y + i0, v, (int)count);
#elif I8_PATH == 2
        for (size_t h = 0; h < count; h += 8) {
            rq8 q = load_rq8(rows, h, zero_point, min, max);
            __m256i a = _mm256_loadu_si256((const __m256i *)(acc + h));
            store8(y + i0 + h, all_simple ? requant8(a, &q, 1) : requant8(a, &q, 0), (int)(count - h));
        }
#elif I8_PATH == 4
        for (size_t h = 0; h < count; h += 4) {
            int32x4_t v = requant4(vld1q_s32(acc + h), m + h, l + h, r + h, away + h, zero_point, min, max);
            int32_t out[4];
            vst1q_s32(out, v);
            for (size_t j = 0; j < 4 && h + j < count; j++) y[i0 + h + j] = (int8_t)out[j];
        }
#else
        for (size_t j = 0; j < count; j++) y[i0 + j] = requant_one(acc[j], rows, j, zero_point, min, max);
#endif
    }
}

// MARK: - Convolution

/// Fills a tile's pointers for every tap and tile row: the input pixel, or the zero-point row.
/// Returns the taps that read the zero-point row in every row (bit t for tap t).
__attribute__((noinline)) static uint64_t FN(tap_pointers)(
    const kiln_conv_i8_params *p, const int8_t *input, const int8_t *pad, size_t y, size_t x, size_t mr, const int8_t **a) {
    const long in_w = (long)p->in_w, sw = (long)p->stride_w, pl = (long)p->pad_left;
    const size_t taps = p->kernel_h * p->kernel_w;
    uint64_t real = 0;  // taps that read an input pixel in some row
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
                real |= 1ull << (ky * p->kernel_w + kx);
                const int8_t *p0 = input + (iy * in_w + first + (long)(kx * p->dilation_w)) * (long)p->in_pixel_stride;
                for (size_t r = 0; r < TILE_MR; r++) row[r] = p0 + (long)(r < mr ? r : mr - 1) * step;
            }
        }
    } else {
        for (size_t r = 0; r < TILE_MR; r++) {
            for (size_t ky = 0; ky < p->kernel_h; ky++) {
                long iy = (long)(y * p->stride_h) + (long)(ky * p->dilation_h) - (long)p->pad_top;
                for (size_t kx = 0; kx < p->kernel_w; kx++) {
                    long ix = (long)(x * p->stride_w) + (long)(kx * p->dilation_w) - (long)p->pad_left;
                    int inside = iy >= 0 && iy < (long)p->in_h && ix >= 0 && ix < (long)p->in_w;
                    a[(ky * p->kernel_w + kx) * TILE_MR + r] =
                        inside ? input + ((size_t)iy * p->in_w + (size_t)ix) * p->in_pixel_stride : pad;
                    real |= (uint64_t)inside << (ky * p->kernel_w + kx);
                }
            }
            if (r + 1 < mr && ++x == p->out_w) {
                x = 0;
                y++;
            }
        }
    }
    const uint64_t all = taps >= 64 ? ~0ull : (1ull << taps) - 1;
    return all & ~real;
}

#define PANEL_HEADER (KILN_I8_ROWS * KILN_I8_PANEL * sizeof(int32_t))
/// Bytes of one tap's row after the header: what a padded tap adds to each of the 16 channels.
#define TAP_ROW (KILN_I8_PANEL * sizeof(int32_t))

/// What the taps in `skip` would add had they read the zero-point row (kiln_pack_conv_i8's tap
/// rows), for channel j of a panel.
ALWAYS_INLINE int32_t skipped_sum(const uint8_t *panel, size_t taps, uint64_t skip, size_t j) {
    const int32_t *t0 = (const int32_t *)(panel + PANEL_HEADER);
    uint32_t s = 0;
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) s += (uint32_t)t0[t * KILN_I8_PANEL + j];
    }
    return (int32_t)s;
}

#if I8_PATH == 3
/// One tile: MR pixels (rows past `mr` repeat the last and are not stored) x NP panels of 16
/// output channels (`valid` channels of them stored); vpdpbusd on x ^ 0x80 and the packed
/// weights. MR and NP are constants at every call (the tile is inlined per shape): small MR
/// with more panels keeps a few output pixels (the deep layers of a small image, down to a
/// matrix-vector product) from computing TILE_MR rows.
ALWAYS_INLINE void FN(conv_tile)(
    const int MR, const int NP, const int simple, size_t mr, size_t taps, uint64_t skip, size_t g4, const int8_t *const *a,
    const uint8_t *panel, size_t panel_bytes, int8_t *c, size_t ldc, size_t valid, int32_t zo, int32_t lo, int32_t hi) {
    __m512i acc[TILE_MR][4];
#pragma unroll
    for (int n = 0; n < NP; n++) {
        __m512i b = _mm512_loadu_si512(rows_at(panel + n * panel_bytes, KILN_I8_PANEL).bias);
        for (size_t t = 0; skip && t < taps; t++) {
            if (skip >> t & 1) b = _mm512_add_epi32(b, _mm512_loadu_si512(panel + n * panel_bytes + PANEL_HEADER + t * TAP_ROW));
        }
#pragma unroll
        for (int r = 0; r < MR; r++) acc[r][n] = b;
    }
    const __m512i flip = _mm512_set1_epi32((int32_t)0x80808080);
    const int8_t *w = (const int8_t *)(panel + PANEL_HEADER + taps * TAP_ROW);
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads the zero points: added with the bias
            w += g4 * 64;
            continue;
        }
        const int8_t *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t g = 0; g < g4; g++) {
            __m512i wv[4];
#pragma unroll
            for (int n = 0; n < NP; n++) wv[n] = _mm512_loadu_si512(w + n * panel_bytes);
#pragma unroll
            for (int r = 0; r < MR; r++) {
                __m512i xb = _mm512_xor_si512(_mm512_set1_epi32(load4(ar[r] + 4 * g)), flip);
#pragma unroll
                for (int n = 0; n < NP; n++) acc[r][n] = _mm512_dpbusd_epi32(acc[r][n], xb, wv[n]);
            }
            w += 64;
        }
    }
#pragma unroll
    for (int n = 0; n < NP; n++) {
        rq16 q = load_rq16(rows_at(panel + n * panel_bytes, KILN_I8_PANEL), 0, zo, lo, hi);
        int count = valid - 16 * (size_t)n >= 16 ? 16 : (int)(valid - 16 * (size_t)n);
#pragma unroll
        for (int r = 0; r < MR; r++) {
            if (r < (int)mr) store16(c + r * ldc + 16 * n, requant16(acc[r][n], &q, simple), count);
        }
    }
}
#elif I8_PATH == 2
/// One tile of MR (a constant: TILE_MR, 2 or 1) pixels x one panel (two 8-lane halves): vpmaddubsw
/// on |x| and w * sign(x).
ALWAYS_INLINE void FN(conv_tile)(
    const int MR, const int NP, const int simple, size_t mr, size_t taps, uint64_t skip, size_t g4, const int8_t *const *a,
    const uint8_t *panel, size_t panel_bytes, int8_t *c, size_t ldc, size_t valid, int32_t zo, int32_t lo, int32_t hi) {
    (void)NP, (void)panel_bytes;
    kiln_i8_rows rows = rows_at(panel, KILN_I8_PANEL);
    const int8_t *w = (const int8_t *)(panel + PANEL_HEADER + taps * TAP_ROW);
    __m256i acc[TILE_MR][2];
    __m256i b0 = _mm256_loadu_si256((const __m256i *)rows.bias), b1 = _mm256_loadu_si256((const __m256i *)(rows.bias + 8));
    for (size_t t = 0; skip && t < taps; t++) {
        if (skip >> t & 1) {
            const int32_t *tr = (const int32_t *)(panel + PANEL_HEADER + t * TAP_ROW);
            b0 = _mm256_add_epi32(b0, _mm256_loadu_si256((const __m256i *)tr));
            b1 = _mm256_add_epi32(b1, _mm256_loadu_si256((const __m256i *)(tr + 8)));
        }
    }
#pragma unroll
    for (int r = 0; r < MR; r++) {
        acc[r][0] = b0;
        acc[r][1] = b1;
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads the zero points: added with the bias
            w += g4 * 64;
            continue;
        }
        const int8_t *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t g = 0; g < g4; g++) {
            __m256i wv0 = _mm256_loadu_si256((const __m256i *)w), wv1 = _mm256_loadu_si256((const __m256i *)(w + 32));
#pragma unroll
            for (int r = 0; r < MR; r++) {
                __m256i xb = _mm256_set1_epi32(load4(ar[r] + 4 * g));
                __m256i ax = _mm256_abs_epi8(xb);
                __m256i p0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv0, xb));
                __m256i p1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv1, xb));
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
            }
            w += 64;
        }
    }
    rq8 q0 = load_rq8(rows, 0, zo, lo, hi), q1 = load_rq8(rows, 8, zo, lo, hi);
    for (int r = 0; r < MR; r++) {
        if ((size_t)r >= mr) break;
        store8(c + r * ldc, requant8(acc[r][0], &q0, simple), (int)valid);
        if (valid > 8) store8(c + r * ldc + 8, requant8(acc[r][1], &q1, simple), (int)valid - 8);
    }
}
#elif I8_PATH == 4
ALWAYS_INLINE void FN(conv_tile)(
    const int MR, const int NP, const int simple, size_t mr, size_t taps, uint64_t skip, size_t g4, const int8_t *const *a,
    const uint8_t *panel, size_t panel_bytes, int8_t *c, size_t ldc, size_t valid, int32_t zo, int32_t lo, int32_t hi) {
    (void)MR, (void)NP, (void)simple, (void)panel_bytes;
    kiln_i8_rows rows = rows_at(panel, KILN_I8_PANEL);
    const int8_t *w = (const int8_t *)(panel + PANEL_HEADER + taps * TAP_ROW);
    // The bias plus what the skipped taps add (wrapping as the accumulator does), once per tile.
    int32x4_t b[4];
#pragma unroll
    for (int v = 0; v < 4; v++) b[v] = vld1q_s32(rows.bias + 4 * v);
    for (size_t t = 0; skip && t < taps; t++) {
        if (skip >> t & 1) {
            const int32_t *tr = (const int32_t *)(panel + PANEL_HEADER + t * TAP_ROW);
#pragma unroll
            for (int v = 0; v < 4; v++) b[v] = vaddq_s32(b[v], vld1q_s32(tr + 4 * v));
        }
    }
    int32x4_t acc[TILE_MR][4];
#pragma unroll
    for (int r = 0; r < TILE_MR; r++) {
#pragma unroll
        for (int v = 0; v < 4; v++) acc[r][v] = b[v];
    }
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads the zero points: added with the bias
            w += g4 * 64;
            continue;
        }
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
}
#else
ALWAYS_INLINE void FN(conv_tile)(
    const int MR, const int NP, const int simple, size_t mr, size_t taps, uint64_t skip, size_t g4, const int8_t *const *a,
    const uint8_t *panel, size_t panel_bytes, int8_t *c, size_t ldc, size_t valid, int32_t zo, int32_t lo, int32_t hi) {
    (void)MR, (void)NP, (void)simple, (void)panel_bytes;
    kiln_i8_rows rows = rows_at(panel, KILN_I8_PANEL);
    const int8_t *w = (const int8_t *)(panel + PANEL_HEADER + taps * TAP_ROW);
    // The bias plus what the skipped taps add (wrapping as the accumulator does), once per tile.
    int32_t b[KILN_I8_PANEL];
    for (int j = 0; j < KILN_I8_PANEL; j++) b[j] = (int32_t)((uint32_t)rows.bias[j] + (uint32_t)skipped_sum(panel, taps, skip, (size_t)j));
    int32_t acc[TILE_MR][KILN_I8_PANEL];
    for (int r = 0; r < TILE_MR; r++) {
        for (int j = 0; j < KILN_I8_PANEL; j++) acc[r][j] = b[j];
    }
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads the zero points: added with the bias
            w += g4 * 64;
            continue;
        }
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
}
#endif

#if I8_PATH == 3
/// The tiles of one group of `mr` <= MR pixels over panels [panel_begin, panel_end), up to NPMAX
/// (1, 2 or 4) panels per tile; a tile is `simple` when all its panels are.
ALWAYS_INLINE void FN(conv_panels)(
    const int MR, const int NPMAX, size_t mr, size_t taps, uint64_t skip, size_t g4, const int8_t *const *a, const uint8_t *panels,
    size_t panel_bytes, size_t panel_begin, size_t panel_end, int8_t *c, size_t ldc, size_t out_c, int32_t zo,
    int32_t lo, int32_t hi) {
    for (size_t q = panel_begin; q < panel_end;) {
        size_t left = panel_end - q;
        const int n = NPMAX >= 4 && left >= 4 ? 4 : (NPMAX >= 2 && left >= 2 ? 2 : 1);
        const uint8_t *panel = panels + q * panel_bytes;
        int simple = 1;
        for (int i = 0; i < n; i++) simple &= rows_at(panel + i * panel_bytes, KILN_I8_PANEL).simple[0];
        size_t first = q * KILN_I8_PANEL, valid = out_c - first;
        if (valid > (size_t)n * KILN_I8_PANEL) valid = (size_t)n * KILN_I8_PANEL;
        int8_t *cq = c + first;
#define I8_TILE(NP, S) FN(conv_tile)(MR, NP, S, mr, taps, skip, g4, a, panel, panel_bytes, cq, ldc, valid, zo, lo, hi)
        if (n == 4 && NPMAX >= 4) {
            if (simple) I8_TILE(4, 1); else I8_TILE(4, 0);
        } else if (n == 2 && NPMAX >= 2) {
            if (simple) I8_TILE(2, 1); else I8_TILE(2, 0);
        } else {
            if (simple) I8_TILE(1, 1); else I8_TILE(1, 0);
        }
#undef I8_TILE
        q += (size_t)n;
    }
}
#else
/// The tiles of one group of `mr` <= TILE_MR pixels over panels [panel_begin, panel_end), one
/// panel per tile.
ALWAYS_INLINE void FN(conv_panels)(
    const int MR, const int NPMAX, size_t mr, size_t taps, uint64_t skip, size_t g4, const int8_t *const *a, const uint8_t *panels,
    size_t panel_bytes, size_t panel_begin, size_t panel_end, int8_t *c, size_t ldc, size_t out_c, int32_t zo,
    int32_t lo, int32_t hi) {
    (void)NPMAX;
    for (size_t q = panel_begin; q < panel_end; q++) {
        const uint8_t *panel = panels + q * panel_bytes;
        size_t first = q * KILN_I8_PANEL, valid = out_c - first;
        if (valid > KILN_I8_PANEL) valid = KILN_I8_PANEL;
        if (rows_at(panel, KILN_I8_PANEL).simple[0]) {
            FN(conv_tile)(MR, 1, 1, mr, taps, skip, g4, a, panel, panel_bytes, c + first, ldc, valid, zo, lo, hi);
        } else {
            FN(conv_tile)(MR, 1, 0, mr, taps, skip, g4, a, panel, panel_bytes, c + first, ldc, valid, zo, lo, hi);
        }
    }
}
#endif

/// kiln_conv_i8 with output pixel p stored at `output + (p - origin) * out_pixel_stride` (origin 0:
/// the whole output; the first pixel of a row: that row alone, as the fused max pool's ring holds it).
static void FN(conv_i8_pixels)(
    const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output, size_t origin,
    size_t pixel_begin, size_t pixel_end, size_t panel_begin, size_t panel_end) {
    const size_t taps = p->kernel_h * p->kernel_w, g4 = (p->in_c + 3) / 4;
    const size_t panel_bytes = PANEL_HEADER + taps * TAP_ROW + taps * g4 * KILN_I8_PANEL * 4;
    const int8_t *pad = (const int8_t *)packed;
    const uint8_t *panels = packed + kiln_i8_pad_bytes(p->in_c);
    const int32_t zo = p->output_zero_point, lo = p->output_min, hi = p->output_max;
    const size_t ldc = p->out_pixel_stride, out_c = p->out_c;
    // A 1x1, stride-1, unpadded conv reads pixel p for output pixel p: no pointer tables.
    const int pointwise = taps == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 && p->pad_left == 0 &&
                          p->in_w == p->out_w && p->in_h == p->out_h;
    const int8_t *a[KILN_MAX_TAPS * TILE_MR];
    for (size_t p0 = pixel_begin; p0 < pixel_end; p0 += TILE_MR) {
        size_t mr = pixel_end - p0 < TILE_MR ? pixel_end - p0 : TILE_MR;
        // Taps that read the zero-point row in every row of the tile (most of a 3x3 window
        // over a 1x1 or 2x2 image) are skipped with their weights; their packed tap rows hold
        // what they would have added.
        uint64_t skip = 0;
        if (pointwise) {
            for (size_t r = 0; r < TILE_MR; r++) a[r] = input + (p0 + (r < mr ? r : mr - 1)) * p->in_pixel_stride;
        } else {
            skip = FN(tap_pointers)(p, input, pad, p0 / p->out_w, p0 % p->out_w, mr, a);
        }
        int8_t *c = output + (p0 - origin) * ldc;
        // The fewest rows that cover the group: a short group (few output pixels) runs short
        // tiles over more panels instead of TILE_MR rows of which most are not stored.
#define I8_PANELS(MR, NPMAX) \
    FN(conv_panels)(MR, NPMAX, mr, taps, skip, g4, a, panels, panel_bytes, panel_begin, panel_end, c, ldc, out_c, zo, lo, hi)
#if I8_PATH == 3
        if (mr > 8) I8_PANELS(TILE_MR, 2);
        else if (mr > 4) I8_PANELS(8, 2);
        else if (mr > 2) I8_PANELS(4, 4);
        else if (mr == 2) I8_PANELS(2, 4);
        else I8_PANELS(1, 4);
#elif I8_PATH == 2
        if (mr > 2) I8_PANELS(TILE_MR, 1);
        else if (mr == 2) I8_PANELS(2, 1);
        else I8_PANELS(1, 1);
#else
        I8_PANELS(TILE_MR, 1);
#endif
#undef I8_PANELS
    }
}

void FN(kiln_conv_i8)(
    const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output, size_t pixel_begin,
    size_t pixel_end, size_t panel_begin, size_t panel_end) {
    FN(conv_i8_pixels)(p, input, packed, output, 0, pixel_begin, pixel_end, panel_begin, panel_end);
}

// MARK: - Depthwise convolution

/// The channels [ch, ch + width) of one output pixel whose taps are at `tp`.
#if I8_PATH == 3
ALWAYS_INLINE void FN(dw_block)(
    const int simple, const int8_t *const *tp, size_t taps, size_t ch, int count, const int32_t *weights, size_t cr,
    const rq16 *q, __m512i bias, int8_t *y) {
    __mmask16 k = (__mmask16)(count >= 16 ? 0xFFFF : ((1u << count) - 1));
    __m512i acc = bias;
    for (size_t t = 0; t < taps; t++) {
        __m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, tp[t] + ch));
        acc = _mm512_dpwssd_epi32(acc, x, _mm512_loadu_si512(weights + t * cr + ch));
    }
    store16(y + ch, requant16(acc, q, simple), count);
}
#endif

void FN(kiln_depthwise_i8)(
    const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output, size_t row_begin,
    size_t row_end) {
    const size_t c = p->in_c, taps = p->kernel_h * p->kernel_w, kh = p->kernel_h, kw = p->kernel_w;
    const size_t cr = (c + KILN_I8_PANEL - 1) / KILN_I8_PANEL * KILN_I8_PANEL;
    const int8_t *pad = (const int8_t *)packed;
    kiln_i8_rows rows = rows_at(packed + kiln_i8_pad_bytes(c), cr);
    const int32_t *weights = rows.bias + KILN_I8_ROWS * cr;
    const int32_t zo = p->output_zero_point, lo = p->output_min, hi = p->output_max;
    const long stride = (long)p->in_pixel_stride, in_w = (long)p->in_w, in_h = (long)p->in_h;
    const long sw = (long)p->stride_w, dw = (long)p->dilation_w, pl = (long)p->pad_left;
    // Output columns whose whole window row lies inside the input.
    long xa = (pl + sw - 1) / sw, xb = (long)p->out_w;
    while (xb > xa && (xb - 1) * sw - pl + (long)(kw - 1) * dw >= in_w) xb--;
    if (xa > xb) xa = xb;
    const int8_t *tp[KILN_MAX_TAPS];
    const int8_t *rowp[KILN_MAX_TAPS];
    for (size_t oy = row_begin; oy < row_end; oy++) {
        for (size_t ky = 0; ky < kh; ky++) {
            long iy = (long)(oy * p->stride_h) + (long)(ky * p->dilation_h) - (long)p->pad_top;
            rowp[ky] = iy >= 0 && iy < in_h ? input + iy * in_w * stride : NULL;
        }
        for (size_t ox = 0; ox < p->out_w; ox++) {
            long x0 = (long)ox * sw - pl;
            int interior = (long)ox >= xa && (long)ox < xb;
            for (size_t ky = 0; ky < kh; ky++) {
                for (size_t kx = 0; kx < kw; kx++) {
                    long ix = x0 + (long)kx * dw;
                    tp[ky * kw + kx] = rowp[ky] && (interior || (ix >= 0 && ix < in_w)) ? rowp[ky] + ix * stride : pad;
                }
            }
            int8_t *y = output + (oy * p->out_w + ox) * p->out_pixel_stride;
            size_t ch = 0;
#if I8_PATH == 3
            for (; ch < c; ch += 16) {
                int count = c - ch < 16 ? (int)(c - ch) : 16;
                rq16 q = load_rq16(rows, ch, zo, lo, hi);
                __m512i bias = _mm512_loadu_si512(rows.bias + ch);
                if (rows.simple[ch]) {
                    FN(dw_block)(1, tp, taps, ch, count, weights, cr, &q, bias, y);
                } else {
                    FN(dw_block)(0, tp, taps, ch, count, weights, cr, &q, bias, y);
                }
            }
#elif I8_PATH == 2
            for (; ch + 8 <= c; ch += 8) {
                __m256i acc = _mm256_loadu_si256((const __m256i *)(rows.bias + ch));
                for (size_t t = 0; t < taps; t++) {
                    __m256i x = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(tp[t] + ch)));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i *)(weights + t * cr + ch))));
                }
                rq8 q = load_rq8(rows, ch, zo, lo, hi);
                store8(y + ch, rows.simple[ch] ? requant8(acc, &q, 1) : requant8(acc, &q, 0), 8);
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

// MARK: - Element-wise

void kiln_add_i8_scalar(const kiln_add_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step,
                        int8_t *y, size_t n);

#if I8_PATH == 2 || I8_PATH == 3
/// The requantization of one TFLite ADD multiplier and shift as packed rows (ties away from
/// zero), for the vector epilogue.
ALWAYS_INLINE void add_rows(int32_t multiplier, int32_t shift, int32_t *m, int32_t *l, int32_t *r, int32_t *away,
                            int32_t *rm1, int lanes) {
    for (int j = 0; j < lanes; j++) {
        m[j] = multiplier;
        l[j] = shift > 0 ? (shift > 32 ? 32 : shift) : 0;
        r[j] = shift > 0 ? 0 : (-shift > 31 ? 31 : -shift);
        away[j] = -1;
        rm1[j] = r[j] == 0 ? 32 : r[j] - 1;
    }
}
#endif

/// TFLite's int8 ADD (kiln_add_i8): contiguous inputs run the vector epilogue on both inputs and
/// the sum, lane by lane the scalar arithmetic; broadcasts run the scalar loop.
void FN(kiln_add_i8)(const kiln_add_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step,
                     int8_t *y, size_t n) {
    size_t i = 0;
#if I8_PATH == 2 || I8_PATH == 3
    if (a_step == 1 && b_step == 1 && p->left_shift >= 0 && p->left_shift < 32) {
        int32_t m[3][16], l[3][16], r[3][16], away[3][16], rm1[3][16];
        add_rows(p->a_multiplier, p->a_shift, m[0], l[0], r[0], away[0], rm1[0], 16);
        add_rows(p->b_multiplier, p->b_shift, m[1], l[1], r[1], away[1], rm1[1], 16);
        add_rows(p->output_multiplier, p->output_shift, m[2], l[2], r[2], away[2], rm1[2], 16);
        kiln_i8_rows ra = {NULL, m[0], l[0], r[0], away[0], rm1[0], NULL};
        kiln_i8_rows rb = {NULL, m[1], l[1], r[1], away[1], rm1[1], NULL};
        kiln_i8_rows ro = {NULL, m[2], l[2], r[2], away[2], rm1[2], NULL};
#if I8_PATH == 3
        const rq16 qa = load_rq16(ra, 0, 0, 0, 0), qb = load_rq16(rb, 0, 0, 0, 0);
        const rq16 qo = load_rq16(ro, 0, p->output_zero_point, p->min, p->max);
        const __m512i za = _mm512_set1_epi32(p->a_zero_point), zb = _mm512_set1_epi32(p->b_zero_point);
        const __m128i ls = _mm_cvtsi32_si128(p->left_shift);
        for (; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512i x1 = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, a + i)), za);
            __m512i x2 = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b + i)), zb);
            __m512i s1 = requant16_core(_mm512_sll_epi32(x1, ls), &qa, 0);
            __m512i s2 = requant16_core(_mm512_sll_epi32(x2, ls), &qb, 0);
            store16(y + i, requant16(_mm512_add_epi32(s1, s2), &qo, 0), (int)(n - i >= 16 ? 16 : n - i));
        }
        return;
#else
        const rq8 qa = load_rq8(ra, 0, 0, 0, 0), qb = load_rq8(rb, 0, 0, 0, 0);
        const rq8 qo = load_rq8(ro, 0, p->output_zero_point, p->min, p->max);
        const __m256i za = _mm256_set1_epi32(p->a_zero_point), zb = _mm256_set1_epi32(p->b_zero_point);
        const __m128i ls = _mm_cvtsi32_si128(p->left_shift);
        for (; i + 8 <= n; i += 8) {
            __m256i x1 = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(a + i))), za);
            __m256i x2 = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + i))), zb);
            __m256i s1 = requant8_core(_mm256_sll_epi32(x1, ls), &qa, 0);
            __m256i s2 = requant8_core(_mm256_sll_epi32(x2, ls), &qb, 0);
            store8(y + i, requant8(_mm256_add_epi32(s1, s2), &qo, 0), 8);
        }
#endif
    }
#endif
    kiln_add_i8_scalar(p, a + i * a_step, a_step, b + i * b_step, b_step, y + i, n - i);
}

// MARK: - Pooling, lookups, quantization

/// One pooled int8 pixel `y` of `c` channels: the max over window rows r in [0, nrows) (ROW: the
/// first input pixel of row r) and columns [xa, xb), starting from `lo` (cells outside the input
/// never win), clamped to `hi`.
#if I8_PATH == 3
#define MAX_POOL_VECTORS(ROW)                                                                                   \
    for (; ch < c; ch += 64) {                                                                                  \
        __mmask64 k = c - ch >= 64 ? ~0ull : ((1ull << (c - ch)) - 1);                                          \
        __m512i m = _mm512_set1_epi8((char)lo);                                                                 \
        for (long r = 0; r < nrows; r++) {                                                                      \
            const int8_t *row = (ROW) + ch;                                                                     \
            for (long ix = xa; ix < xb; ix++) m = _mm512_max_epi8(m, _mm512_maskz_loadu_epi8(k, row + (size_t)ix * c)); \
        }                                                                                                       \
        m = _mm512_min_epi8(m, _mm512_set1_epi8((char)hi));                                                     \
        _mm512_mask_storeu_epi8(y + ch, k, m);                                                                  \
    }
#elif I8_PATH == 2
#define MAX_POOL_VECTORS(ROW)                                                                                   \
    for (; ch + 32 <= c; ch += 32) {                                                                            \
        __m256i m = _mm256_set1_epi8((char)lo);                                                                 \
        for (long r = 0; r < nrows; r++) {                                                                      \
            const int8_t *row = (ROW) + ch;                                                                     \
            for (long ix = xa; ix < xb; ix++) m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(row + (size_t)ix * c))); \
        }                                                                                                       \
        _mm256_storeu_si256((__m256i *)(y + ch), _mm256_min_epi8(m, _mm256_set1_epi8((char)hi)));               \
    }
#else
#define MAX_POOL_VECTORS(ROW)
#endif
#define MAX_POOL_PIXEL(ROW)                                                                                     \
    {                                                                                                           \
        size_t ch = 0;                                                                                          \
        MAX_POOL_VECTORS(ROW)                                                                                   \
        for (; ch < c; ch++) {                                                                                  \
            int8_t m = lo;                                                                                      \
            for (long r = 0; r < nrows; r++) {                                                                  \
                const int8_t *row = (ROW);                                                                      \
                for (long ix = xa; ix < xb; ix++) {                                                             \
                    int8_t v = row[(size_t)ix * c + ch];                                                        \
                    m = v > m ? v : m;                                                                          \
                }                                                                                               \
            }                                                                                                   \
            y[ch] = m > hi ? hi : m;                                                                            \
        }                                                                                                       \
    }

void FN(kiln_max_pool_i8)(const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end) {
    const size_t c = p->channels;
    const int8_t lo = (int8_t)p->min, hi = (int8_t)p->max;
    for (size_t oy = row_begin; oy < row_end; oy++) {
        long y0 = (long)(oy * p->stride_h) - (long)p->pad_top;
        long ya = y0 < 0 ? 0 : y0, yb = y0 + (long)p->kernel_h > (long)p->in_h ? (long)p->in_h : y0 + (long)p->kernel_h;
        const long nrows = yb - ya;
        const int8_t *top = input + (size_t)ya * p->in_w * c;
        for (size_t ox = 0; ox < p->out_w; ox++) {
            long x0 = (long)(ox * p->stride_w) - (long)p->pad_left;
            long xa = x0 < 0 ? 0 : x0, xb = x0 + (long)p->kernel_w > (long)p->in_w ? (long)p->in_w : x0 + (long)p->kernel_w;
            int8_t *y = output + (oy * p->out_w + ox) * c;
            MAX_POOL_PIXEL(top + (size_t)r * p->in_w * c)
        }
    }
}

/// vm[i] = max over the window's `nrows` rows (ring rows `rows`) of byte i, for i in [0, n): the
/// vertical half of a separable max pool (max is associative, so the result is exact). Inlined
/// with a constant `nrows` for the common windows (a loop of unknown length per vector is slow).
ALWAYS_INLINE void FN(max_rows_n)(const int8_t *const *rows, const long nrows, size_t n, int8_t *vm) {
    size_t i = 0;
#if I8_PATH == 3
    for (; i + 64 <= n; i += 64) {
        __m512i m = _mm512_loadu_si512(rows[0] + i);
        for (long r = 1; r < nrows; r++) m = _mm512_max_epi8(m, _mm512_loadu_si512(rows[r] + i));
        _mm512_storeu_si512(vm + i, m);
    }
#elif I8_PATH == 2
    for (; i + 32 <= n; i += 32) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(rows[0] + i));
        for (long r = 1; r < nrows; r++) m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(rows[r] + i)));
        _mm256_storeu_si256((__m256i *)(vm + i), m);
    }
#elif I8_PATH == 4
    for (; i + 16 <= n; i += 16) {
        int8x16_t m = vld1q_s8(rows[0] + i);
        for (long r = 1; r < nrows; r++) m = vmaxq_s8(m, vld1q_s8(rows[r] + i));
        vst1q_s8(vm + i, m);
    }
#endif
    for (; i < n; i++) {
        int8_t m = rows[0][i];
        for (long r = 1; r < nrows; r++) m = rows[r][i] > m ? rows[r][i] : m;
        vm[i] = m;
    }
}

ALWAYS_INLINE void FN(max_rows)(const int8_t *const *rows, long nrows, size_t n, int8_t *vm) {
    switch (nrows) {
    case 0: memset(vm, -128, n); break;  // no row inside the input: no cell may win
    case 2: FN(max_rows_n)(rows, 2, n, vm); break;
    case 3: FN(max_rows_n)(rows, 3, n, vm); break;
    default: FN(max_rows_n)(rows, nrows, n, vm); break;
    }
}

/// hm[i] = clamp(max over kx < kw of vm[i + kx * c], lo, hi) for i in [0, n): the horizontal
/// half of the separable max pool over windows that lie inside the row (vm readable up to
/// n + (kw - 1) * c). 32-byte vectors on x86 (these loads are misaligned by c; wider ones are
/// no faster); a constant `kw` for the common windows.
ALWAYS_INLINE void FN(max_cols_n)(const int8_t *vm, size_t n, size_t c, const size_t kw, int8_t lo, int8_t hi, int8_t *hm) {
    size_t i = 0;
#if I8_PATH == 3 || I8_PATH == 2
    const __m256i vlo = _mm256_set1_epi8((char)lo), vhi = _mm256_set1_epi8((char)hi);
    for (; i + 32 <= n; i += 32) {
        __m256i m = _mm256_max_epi8(vlo, _mm256_loadu_si256((const __m256i *)(vm + i)));
        for (size_t kx = 1; kx < kw; kx++) m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(vm + i + kx * c)));
        _mm256_storeu_si256((__m256i *)(hm + i), _mm256_min_epi8(m, vhi));
    }
#elif I8_PATH == 4
    for (; i + 16 <= n; i += 16) {
        int8x16_t m = vmaxq_s8(vdupq_n_s8(lo), vld1q_s8(vm + i));
        for (size_t kx = 1; kx < kw; kx++) m = vmaxq_s8(m, vld1q_s8(vm + i + kx * c));
        vst1q_s8(hm + i, vminq_s8(m, vdupq_n_s8(hi)));
    }
#endif
    for (; i < n; i++) {
        int8_t m = lo;
        for (size_t kx = 0; kx < kw; kx++) m = vm[i + kx * c] > m ? vm[i + kx * c] : m;
        hm[i] = m > hi ? hi : m;
    }
}

ALWAYS_INLINE void FN(max_cols)(const int8_t *vm, size_t n, size_t c, size_t kw, int8_t lo, int8_t hi, int8_t *hm) {
    switch (kw) {
    case 2: FN(max_cols_n)(vm, n, c, 2, lo, hi, hm); break;
    case 3: FN(max_cols_n)(vm, n, c, 3, lo, hi, hm); break;
    default: FN(max_cols_n)(vm, n, c, kw, lo, hi, hm); break;
    }
}

/// Copies `n` bytes (one pooled pixel's channels): 16-byte moves, the last one overlapping the one
/// before (masked byte stores are slow on some AVX-512 CPUs).
ALWAYS_INLINE void FN(copy_pixel)(int8_t *y, const int8_t *x, size_t n) {
    if (n < 16) {
        memcpy(y, x, n);
        return;
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16) memcpy(y + i, x + i, 16);
    if (i < n) memcpy(y + n - 16, x + n - 16, 16);
}

/// The int8 conv + max pool (see CKilnKernels.h): each pooled row's window of conv rows is
/// computed once into the ring (conv row r in slot r % kernel_h) by the conv kernel itself. The
/// pool is then separable (max is associative: the result is exact): the max over the window's
/// rows into row `vm` after the ring's slots; for the pooled pixels whose window lies inside the
/// row, the clamped max over kernel_w shifted copies of `vm` into row `hm`, whence each pixel is
/// copied; the edge pixels run kiln_max_pool_i8's pixel code on `vm` (one row).
void FN(kiln_conv_max_pool_i8)(
    const kiln_conv_i8_params *conv, const kiln_pool_i8_params *pool, const int8_t *input, const uint8_t *packed,
    int8_t *ring, int8_t *output, size_t row_begin, size_t row_end) {
    const size_t slots = pool->kernel_h, c = conv->out_c, ow = conv->out_w, row_bytes = ow * c;
    const size_t panels = (c + KILN_I8_PANEL - 1) / KILN_I8_PANEL;
    const size_t sw = pool->stride_w, kw = pool->kernel_w, pl = pool->pad_left, in_w = pool->in_w, out_w = pool->out_w;
    const int8_t lo = (int8_t)pool->min, hi = (int8_t)pool->max;
    int8_t *vm = ring + slots * row_bytes, *hm = vm + row_bytes;
    // Pooled columns [pa, pb) whose window lies inside the row: pa * sw >= pl, (pb - 1) * sw - pl + kw <= in_w.
    size_t pa = (pl + sw - 1) / sw, pb = in_w + pl >= kw ? (in_w + pl - kw) / sw + 1 : 0;
    if (pb > out_w) pb = out_w;
    if (pa > pb) pa = pb;
    long cached[KILN_MAX_TAPS];
    const int8_t *rowp[KILN_MAX_TAPS];
    for (size_t i = 0; i < slots; i++) cached[i] = -1;
    for (size_t py = row_begin; py < row_end; py++) {
        long y0 = (long)(py * pool->stride_h) - (long)pool->pad_top;
        long ya = y0 < 0 ? 0 : y0, yb = y0 + (long)pool->kernel_h > (long)pool->in_h ? (long)pool->in_h : y0 + (long)pool->kernel_h;
        for (long cy = ya; cy < yb; cy++) {
            size_t slot = (size_t)cy % slots;
            int8_t *dst = ring + slot * row_bytes;
            if (cached[slot] != cy) {
                size_t first = (size_t)cy * ow;
                FN(conv_i8_pixels)(conv, input, packed, dst, first, first, first + ow, 0, panels);
                cached[slot] = cy;
            }
            rowp[cy - ya] = dst;
        }
        FN(max_rows)(rowp, yb - ya, row_bytes, vm);
        int8_t *yrow = output + py * out_w * c;
        if (pa < pb) {
            // Window starts s0 .. s1 - 1 (pixels of vm), one every sw.
            const size_t s0 = pa * sw - pl, s1 = (pb - 1) * sw - pl + 1;
            FN(max_cols)(vm + s0 * c, (s1 - s0) * c, c, kw, lo, hi, hm);
            if (sw == 1) {
                memcpy(yrow + pa * c, hm, (pb - pa) * c);
            } else {
                for (size_t px = pa; px < pb; px++) FN(copy_pixel)(yrow + px * c, hm + (px - pa) * sw * c, c);
            }
        }
        const long nrows = 1;
        for (size_t px = 0; px < out_w; px++) {
            if (px == pa && pa < pb) px = pb;
            if (px >= out_w) break;
            long x0 = (long)(px * sw) - (long)pl;
            long xa = x0 < 0 ? 0 : x0, xb = x0 + (long)kw > (long)in_w ? (long)in_w : x0 + (long)kw;
            int8_t *y = yrow + px * c;
            MAX_POOL_PIXEL(vm)
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

void kiln_quantize_f32_i8_scalar(const float *x, int8_t *y, size_t n, float scale, int32_t zero_point);

void FN(kiln_quantize_f32_i8)(const float *x, int8_t *y, size_t n, float scale, int32_t zero_point) {
    size_t i = 0;
#if I8_PATH == 3
    const __m512 s = _mm512_set1_ps(scale), half = _mm512_set1_ps(0.5f);
    const __m512 zp = _mm512_set1_ps((float)zero_point), qlo = _mm512_set1_ps(-128.0f), qhi = _mm512_set1_ps(127.0f);
    const __m512i sign = _mm512_set1_epi32((int32_t)0x80000000), one = _mm512_castps_si512(_mm512_set1_ps(1.0f));
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_div_ps(_mm512_loadu_ps(x + i), s);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        // Round half away from zero: truncate, then step by the sign where |v - t| >= 0.5.
        __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512 d = _mm512_abs_ps(_mm512_sub_ps(v, t));
        __m512 step = _mm512_castsi512_ps(_mm512_or_si512(one, _mm512_and_si512(_mm512_castps_si512(v), sign)));
        t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(d, half, _CMP_GE_OQ), t, step);
        t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, zp), qlo), qhi);
        t = _mm512_mask_mov_ps(t, nan, _mm512_min_ps(_mm512_max_ps(zp, qlo), qhi));
        _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(t)));
    }
#elif I8_PATH == 2
    const __m256 s = _mm256_set1_ps(scale), half = _mm256_set1_ps(0.5f);
    const __m256 zp = _mm256_set1_ps((float)zero_point), qlo = _mm256_set1_ps(-128.0f), qhi = _mm256_set1_ps(127.0f);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int32_t)0x80000000)), one = _mm256_set1_ps(1.0f);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m256 d = _mm256_and_ps(_mm256_sub_ps(v, t), absmask);
        __m256 step = _mm256_or_ps(one, _mm256_and_ps(v, sign));
        t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, half, _CMP_GE_OQ), step));
        t = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, zp), qlo), qhi);
        t = _mm256_blendv_ps(t, _mm256_min_ps(_mm256_max_ps(zp, qlo), qhi), nan);
        __m256i q = _mm256_cvttps_epi32(t);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packs_epi16(w, w));
    }
#endif
    kiln_quantize_f32_i8_scalar(x + i, y + i, n - i, scale, zero_point);
}
