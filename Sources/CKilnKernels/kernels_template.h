// The float32 kernels, written once with clang vector extensions and compiled once per
// instruction set. The including file sets, before including this header:
//   SUFFIX            name suffix of the public-per-ISA functions (portable, avx2, ...)
//   VLEN              floats per native vector (4, 8 or 16)
//   TILE_MR, TILE_NP  register tile of the conv kernel: rows x panels of 16 output channels
//   KV_SPLAT(x)       a kv with every lane x
// and wraps the include in `#pragma clang attribute push(target(...))` so that every function
// here, and the auto-vectorised plain loops, use that instruction set.
#include "internal.h"

#define KILN_CAT2(a, b) a##_##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define FN(name) KILN_CAT(name, SUFFIX)

typedef float kv __attribute__((vector_size(VLEN * 4), aligned(4), may_alias));
typedef float kv4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef float kv8 __attribute__((vector_size(32), aligned(4), may_alias));
#define SPLAT8(x) ((kv8){(x), (x), (x), (x), (x), (x), (x), (x)})
/// Native vectors per panel of 16 output channels.
#define NV (KILN_PANEL / VLEN)

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE kv kv_load(const float *p) { return *(const kv *)p; }
ALWAYS_INLINE void kv_store(float *p, kv v) { *(kv *)p = v; }
ALWAYS_INLINE kv kv_clamp(kv v, kv lo, kv hi) {
    v = __builtin_elementwise_max(v, lo);
    return __builtin_elementwise_min(v, hi);
}
ALWAYS_INLINE float clampf(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

// MARK: - Convolution as an indirect GEMM

/// One register tile: MR (a constant: TILE_MR, or 4 or 2 for short groups of pixels) output
/// pixels x np panels. `a` holds, for each tap, TILE_MR row pointers (rows past `mr` repeat a
/// valid row and are computed but not stored). `w` points at
/// the first panel; the others follow every `panel_stride` floats. `valid` output channels of
/// the tile are stored.
ALWAYS_INLINE void conv_tile(
    const int MR, const int np, size_t mr, size_t taps, uint64_t skip, size_t k, const float *const *a, const float *w, size_t panel_stride,
    float *c, size_t ldc, size_t valid, float lo, float hi) {
    kv acc[TILE_MR][TILE_NP * NV];
#pragma unroll
    for (int p = 0; p < np; p++) {
#pragma unroll
        for (int v = 0; v < NV; v++) {
            kv bias = kv_load(w + p * panel_stride + v * VLEN);
#pragma unroll
            for (int r = 0; r < MR; r++) acc[r][p * NV + v] = bias;
        }
    }
    const float *wk = w + KILN_PANEL;
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads padding: the tap adds zeros
            wk += k * KILN_PANEL;
            continue;
        }
        const float *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t i = 0; i < k; i++) {
            kv wv[TILE_NP * NV];
#pragma unroll
            for (int p = 0; p < np; p++) {
#pragma unroll
                for (int v = 0; v < NV; v++) wv[p * NV + v] = kv_load(wk + p * panel_stride + v * VLEN);
            }
#pragma unroll
            for (int r = 0; r < MR; r++) {
                kv s = KV_SPLAT(ar[r][i]);
#pragma unroll
                for (int j = 0; j < np * NV; j++) acc[r][j] += s * wv[j];
            }
            wk += KILN_PANEL;
        }
    }
    kv vlo = KV_SPLAT(lo), vhi = KV_SPLAT(hi);
    if (valid >= (size_t)np * KILN_PANEL) {
#pragma unroll
        for (int r = 0; r < MR; r++) {
            if ((size_t)r < mr) {
#pragma unroll
                for (int j = 0; j < np * NV; j++) kv_store(c + r * ldc + j * VLEN, kv_clamp(acc[r][j], vlo, vhi));
            }
        }
    } else {
        for (int r = 0; r < MR; r++) {
            if ((size_t)r >= mr) break;
            float tmp[TILE_NP * KILN_PANEL];
#pragma unroll
            for (int j = 0; j < np * NV; j++) kv_store(tmp + j * VLEN, kv_clamp(acc[r][j], vlo, vhi));
            __builtin_memcpy(c + r * ldc, tmp, valid * sizeof(float));
        }
    }
}

/// A tile whose panel has at most 8 valid output channels (the last panel of 24 or 40
/// channels): the same rows with 8-float vectors, half the work of a full panel.
ALWAYS_INLINE void conv_tile_half(
    size_t mr, size_t taps, uint64_t skip, size_t k, const float *const *a, const float *w, float *c, size_t ldc, size_t valid,
    float lo, float hi) {
    kv8 acc[TILE_MR];
    kv8 bias = *(const kv8 *)w;
#pragma unroll
    for (int r = 0; r < TILE_MR; r++) acc[r] = bias;
    const float *wk = w + KILN_PANEL;
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads padding: the tap adds zeros
            wk += k * KILN_PANEL;
            continue;
        }
        const float *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < TILE_MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t i = 0; i < k; i++) {
            kv8 wv = *(const kv8 *)wk;
#pragma unroll
            for (int r = 0; r < TILE_MR; r++) acc[r] += SPLAT8(ar[r][i]) * wv;
            wk += KILN_PANEL;
        }
    }
    kv8 vlo = SPLAT8(lo), vhi = SPLAT8(hi);
    for (int r = 0; r < TILE_MR; r++) {
        if ((size_t)r >= mr) break;
        kv8 v = __builtin_elementwise_min(__builtin_elementwise_max(acc[r], vlo), vhi);
        if (valid >= 8) {
            *(kv8 *)(c + r * ldc) = v;
        } else {
            float tmp[8];
            *(kv8 *)tmp = v;
            __builtin_memcpy(c + r * ldc, tmp, valid * sizeof(float));
        }
    }
}

#if VLEN == 16
/// A full panel and a half panel in one tile (24 output channels, or the last 24 of 40, 56...):
/// each broadcast input feeds a 16-wide and an 8-wide FMA.
ALWAYS_INLINE void conv_tile_24(
    size_t mr, size_t taps, uint64_t skip, size_t k, const float *const *a, const float *w, size_t panel_stride, float *c, size_t ldc,
    size_t valid, float lo, float hi) {
    kv acc[TILE_MR];
    kv8 acc8[TILE_MR];
    kv bias = kv_load(w);
    kv8 bias8 = *(const kv8 *)(w + panel_stride);
#pragma unroll
    for (int r = 0; r < TILE_MR; r++) {
        acc[r] = bias;
        acc8[r] = bias8;
    }
    const float *wk = w + KILN_PANEL, *wk8 = w + panel_stride + KILN_PANEL;
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads padding: the tap adds zeros
            wk += k * KILN_PANEL;
            wk8 += k * KILN_PANEL;
            continue;
        }
        const float *ar[TILE_MR];
#pragma unroll
        for (int r = 0; r < TILE_MR; r++) ar[r] = a[t * TILE_MR + r];
        for (size_t i = 0; i < k; i++) {
            kv wv = kv_load(wk);
            kv8 wv8 = *(const kv8 *)wk8;
#pragma unroll
            for (int r = 0; r < TILE_MR; r++) {
                float x = ar[r][i];
                acc[r] += KV_SPLAT(x) * wv;
                acc8[r] += SPLAT8(x) * wv8;
            }
            wk += KILN_PANEL;
            wk8 += KILN_PANEL;
        }
    }
    kv vlo = KV_SPLAT(lo), vhi = KV_SPLAT(hi);
    kv8 vlo8 = SPLAT8(lo), vhi8 = SPLAT8(hi);
    for (int r = 0; r < TILE_MR; r++) {
        if ((size_t)r >= mr) break;
        kv_store(c + r * ldc, kv_clamp(acc[r], vlo, vhi));
        kv8 v8 = __builtin_elementwise_min(__builtin_elementwise_max(acc8[r], vlo8), vhi8);
        if (valid >= 24) {
            *(kv8 *)(c + r * ldc + 16) = v8;
        } else {
            float tmp[8];
            *(kv8 *)tmp = v8;
            __builtin_memcpy(c + r * ldc + 16, tmp, (valid - 16) * sizeof(float));
        }
    }
}
#endif

/// One output row (a matrix-vector product): four partial sums per vector hide the FMA latency.
ALWAYS_INLINE void conv_row(
    size_t taps, uint64_t skip, size_t k, const float *const *a, const float *w, float *c, size_t valid, float lo, float hi) {
    kv acc[4][NV];
#pragma unroll
    for (int v = 0; v < NV; v++) {
        acc[0][v] = kv_load(w + v * VLEN);
        acc[1][v] = acc[2][v] = acc[3][v] = KV_SPLAT(0.0f);
    }
    const float *wk = w + KILN_PANEL;
    for (size_t t = 0; t < taps; t++) {
        if (skip >> t & 1) {  // every row reads padding: the tap adds zeros
            wk += k * KILN_PANEL;
            continue;
        }
        const float *x = a[t * TILE_MR];
        size_t i = 0;
        for (; i + 4 <= k; i += 4) {
#pragma unroll
            for (int u = 0; u < 4; u++) {
                kv s = KV_SPLAT(x[i + u]);
#pragma unroll
                for (int v = 0; v < NV; v++) acc[u][v] += s * kv_load(wk + u * KILN_PANEL + v * VLEN);
            }
            wk += 4 * KILN_PANEL;
        }
        for (; i < k; i++) {
            kv s = KV_SPLAT(x[i]);
#pragma unroll
            for (int v = 0; v < NV; v++) acc[0][v] += s * kv_load(wk + v * VLEN);
            wk += KILN_PANEL;
        }
    }
    kv vlo = KV_SPLAT(lo), vhi = KV_SPLAT(hi);
    float tmp[KILN_PANEL];
#pragma unroll
    for (int v = 0; v < NV; v++) kv_store(tmp + v * VLEN, kv_clamp((acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]), vlo, vhi));
    __builtin_memcpy(c, tmp, (valid < KILN_PANEL ? valid : KILN_PANEL) * sizeof(float));
}

/// The largest window (taps * in_c floats) the row-tap form takes: its border rows are
/// gathered into a stack buffer of TILE_MR windows.
#define KILN_ROWTAP_MAX 512

/// Fills a tile's row pointers for the row-tap form (see conv_impl): one pointer per kernel row
/// and tile row, at the run of kernel_w * in_c floats the window reads there; runs that cross
/// the left or right edge are gathered with zeros into `rows`, rows outside the image read
/// `zeros`. (y, x) is the tile's first output pixel; rows past `mr` repeat the last.
/// Kept out of line: inside the conv driver its variables spill.
__attribute__((noinline)) static void rowtap_pointers(
    const kiln_conv_params *p, const float *input, size_t y, size_t x, size_t mr, const float **a, float *rows) {
    const size_t k = p->in_c, kh = p->kernel_h, kw = p->kernel_w, row_len = kw * k;
    const long in_h = (long)p->in_h, in_w = (long)p->in_w, sh = (long)p->stride_h, sw = (long)p->stride_w;
    const long dh = (long)p->dilation_h, pt = (long)p->pad_top, pl = (long)p->pad_left;
    // The common case: the tile's pixels lie in one output row, clear of the left and right
    // edges, so each kernel row's pointers step by stride_w * in_c.
    long first = (long)x * sw - pl, last = (long)(x + mr - 1) * sw - pl;
    if (x + mr <= p->out_w && first >= 0 && last + (long)kw <= in_w) {
        const long step = sw * (long)k;
        for (size_t ky = 0; ky < kh; ky++) {
            long iy = (long)y * sh - pt + (long)ky * dh;
            const float **row = a + ky * TILE_MR;
            if (iy < 0 || iy >= in_h) {
                for (size_t r = 0; r < TILE_MR; r++) row[r] = p->zeros;
            } else {
                const float *p0 = input + (size_t)(iy * in_w + first) * k;
                for (size_t r = 0; r < TILE_MR; r++) row[r] = p0 + (long)(r < mr ? r : mr - 1) * step;
            }
        }
        return;
    }
    for (size_t r = 0; r < TILE_MR; r++) {
        long iy0 = (long)y * sh - pt, ix0 = (long)x * sw - pl;
        const int inside_x = ix0 >= 0 && ix0 + (long)kw <= in_w;
        for (size_t ky = 0; ky < kh; ky++) {
            long iy = iy0 + (long)ky * dh;
            const float *ptr;
            if (iy < 0 || iy >= in_h) {
                ptr = p->zeros;
            } else if (inside_x) {
                ptr = input + (size_t)(iy * in_w + ix0) * k;
            } else {
                float *dst = rows + (r * kh + ky) * row_len;
                const float *src = input + (size_t)iy * p->in_w * k;
                for (size_t kx = 0; kx < kw; kx++) {
                    long ix = ix0 + (long)kx;
                    for (size_t i = 0; i < k; i++) dst[kx * k + i] = (ix >= 0 && ix < in_w) ? src[(size_t)ix * k + i] : 0.0f;
                }
                ptr = dst;
            }
            a[ky * TILE_MR + r] = ptr;
        }
        if (r + 1 < mr && ++x == p->out_w) {
            x = 0;
            y++;
        }
    }
}

/// Fills a tile's pointers for every tap and tile row: the input pixel, or `zeros` outside.
__attribute__((noinline)) static void tap_pointers(
    const kiln_conv_params *p, const float *input, size_t y, size_t x, size_t mr, const float **a) {
    const long in_w = (long)p->in_w, sw = (long)p->stride_w, pl = (long)p->pad_left;
    long first = (long)x * sw - pl, last = (long)(x + mr - 1) * sw - pl + (long)((p->kernel_w - 1) * p->dilation_w);
    if (x + mr <= p->out_w && first >= 0 && last < in_w) {
        // One output row, clear of the left and right edges: pointers step by stride_w pixels.
        const long step = sw * (long)p->in_pixel_stride;
        for (size_t ky = 0; ky < p->kernel_h; ky++) {
            long iy = (long)(y * p->stride_h) + (long)(ky * p->dilation_h) - (long)p->pad_top;
            const int inside = iy >= 0 && iy < (long)p->in_h;
            for (size_t kx = 0; kx < p->kernel_w; kx++) {
                const float **row = a + (ky * p->kernel_w + kx) * TILE_MR;
                if (!inside) {
                    for (size_t r = 0; r < TILE_MR; r++) row[r] = p->zeros;
                    continue;
                }
                const float *p0 = input + (size_t)(iy * in_w + first + (long)(kx * p->dilation_w)) * p->in_pixel_stride;
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
                    inside ? input + ((size_t)iy * p->in_w + (size_t)ix) * p->in_pixel_stride : p->zeros;
            }
        }
        if (r + 1 < mr && ++x == p->out_w) {
            x = 0;
            y++;
        }
    }
}

/// The conv driver; `out_begin` is where output pixel `pixel_begin` goes.
static void conv_impl(
    const kiln_conv_params *p, const float *input, const float *packed, float *out_begin, size_t pixel_begin,
    size_t pixel_end, size_t panel_begin, size_t panel_end);

void FN(kiln_conv_f32)(
    const kiln_conv_params *p, const float *input, const float *packed, float *output, size_t pixel_begin,
    size_t pixel_end, size_t panel_begin, size_t panel_end) {
    conv_impl(p, input, packed, output + pixel_begin * p->out_pixel_stride, pixel_begin, pixel_end, panel_begin, panel_end);
}

static void conv_impl(
    const kiln_conv_params *p, const float *input, const float *packed, float *out_begin, size_t pixel_begin,
    size_t pixel_end, size_t panel_begin, size_t panel_end) {
    const size_t taps = p->kernel_h * p->kernel_w, k = p->in_c;
    const size_t panel_stride = KILN_PANEL * (1 + taps * k);
    const int pointwise = taps == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 && p->pad_left == 0
        && p->in_w == p->out_w && p->in_h == p->out_h;
    // Row taps: few input channels (a stem conv on RGB) make short taps; a whole window row is
    // contiguous when pixels are, so the tile runs kernel_h taps of kernel_w * k inputs.
    const int rowtaps = !pointwise && k < 16 && taps * k <= KILN_ROWTAP_MAX && p->kernel_w > 1
        && p->dilation_w == 1 && p->in_pixel_stride == k;
    const float *a[KILN_MAX_TAPS * TILE_MR];
    float rows[rowtaps ? TILE_MR * KILN_ROWTAP_MAX : 1];
    const size_t row_len = p->kernel_w * k;
    size_t oy = pixel_begin / p->out_w, ox = pixel_begin % p->out_w;
    for (size_t m0 = pixel_begin; m0 < pixel_end; m0 += TILE_MR) {
        size_t mr = pixel_end - m0 < TILE_MR ? pixel_end - m0 : TILE_MR;
        if (pointwise) {
            for (size_t r = 0; r < TILE_MR; r++) a[r] = input + (m0 + (r < mr ? r : mr - 1)) * p->in_pixel_stride;
        } else if (rowtaps) {
            rowtap_pointers(p, input, oy, ox, mr, a, rows);
        } else {
            tap_pointers(p, input, oy, ox, mr, a);
        }
        // Advance to the next tile's first pixel.
        for (size_t r = 0; r < mr; r++) {
            if (++ox == p->out_w) {
                ox = 0;
                oy++;
            }
        }
        const size_t tile_taps = rowtaps ? p->kernel_h : taps, tile_k = rowtaps ? row_len : k;
        // Taps that read padding in every row of the tile (most of a 3x3 window over a 1x1 or
        // 2x2 image) add only zeros: the tiles skip them and their weights.
        uint64_t skip = 0;
        if (!pointwise) {
            for (size_t t = 0; t < tile_taps; t++) {
                size_t r = 0;
                while (r < TILE_MR && a[t * TILE_MR + r] == p->zeros) r++;
                skip |= (uint64_t)(r == TILE_MR) << t;
            }
        }
        float *c = out_begin + (m0 - pixel_begin) * p->out_pixel_stride;
        for (size_t pn = panel_begin; pn < panel_end;) {
            size_t valid = p->out_c - pn * KILN_PANEL;
            const float *w = packed + pn * panel_stride;
            float *cp = c + pn * KILN_PANEL;
            if (mr == 1) {
                conv_row(tile_taps, skip, tile_k, a, w, cp, valid, p->min, p->max);
                pn += 1;
            } else if (valid <= 8) {
                conv_tile_half(mr, tile_taps, skip, tile_k, a, w, cp, p->out_pixel_stride, valid, p->min, p->max);
                pn += 1;
#if VLEN == 16
            } else if (valid > 16 && valid <= 24 && panel_end - pn >= 2) {
                if (tile_k == 9)  // a 3x3 window row of RGB (row taps): unrolled
                    conv_tile_24(mr, tile_taps, skip, 9, a, w, panel_stride, cp, p->out_pixel_stride, valid, p->min, p->max);
                else
                    conv_tile_24(mr, tile_taps, skip, tile_k, a, w, panel_stride, cp, p->out_pixel_stride, valid, p->min, p->max);
                pn += 2;
#endif
            } else if (TILE_NP > 1 && panel_end - pn >= TILE_NP && valid >= TILE_NP * KILN_PANEL) {
                // Short groups (few output pixels: the deep layers of a small image) run 2 or 4
                // rows instead of TILE_MR of which most would not be stored.
#define F32_TILE(MR, NP) conv_tile(MR, NP, mr, tile_taps, skip, tile_k, a, w, panel_stride, cp, p->out_pixel_stride, valid, p->min, p->max)
                if (TILE_MR > 4 && mr <= 2) F32_TILE(2, TILE_NP);
                else if (TILE_MR > 4 && mr <= 4) F32_TILE(4, TILE_NP);
                else F32_TILE(TILE_MR, TILE_NP);
                pn += TILE_NP;
            } else {
                if (TILE_MR > 4 && mr <= 2) F32_TILE(2, 1);
                else if (TILE_MR > 4 && mr <= 4) F32_TILE(4, 1);
                else F32_TILE(TILE_MR, 1);
#undef F32_TILE
                pn += 1;
            }
        }
    }
}

// MARK: - Depthwise convolution

/// Accumulates channels [c0, c1) of one output pixel with vectors of `W` floats.
#define DEPTHWISE_CHANNELS(VT, W, SPLAT, TAPS)                                                                  \
    for (; c + (W) <= cend; c += (W)) {                                                                         \
        VT acc = *(const VT *)(bias + c);                                                                       \
        for (size_t t = 0; t < (TAPS); t++) acc += *(const VT *)(wt + t * cp + c) * *(const VT *)(tp[t] + c);   \
        acc = __builtin_elementwise_max(acc, SPLAT(lo));                                                        \
        acc = __builtin_elementwise_min(acc, SPLAT(hi));                                                        \
        *(VT *)(y + c) = acc;                                                                                   \
    }

#define SPLAT4(x) ((kv4){(x), (x), (x), (x)})

void FN(kiln_depthwise_f32)(
    const kiln_conv_params *p, const float *input, const float *packed, float *output, size_t row_begin,
    size_t row_end) {
    const size_t taps = p->kernel_h * p->kernel_w, channels = p->in_c;
    const size_t cp = kiln_round_up(channels, KILN_PANEL);
    const float *bias = packed, *wt = packed + cp;
    const float lo = p->min, hi = p->max;
    const float *tp[KILN_MAX_TAPS];
    long offsets[KILN_MAX_TAPS];
    for (size_t ky = 0; ky < p->kernel_h; ky++)
        for (size_t kx = 0; kx < p->kernel_w; kx++)
            offsets[ky * p->kernel_w + kx] =
                (long)((ky * p->dilation_h * p->in_w + kx * p->dilation_w) * p->in_pixel_stride);
    const long span_h = (long)((p->kernel_h - 1) * p->dilation_h), span_w = (long)((p->kernel_w - 1) * p->dilation_w);
    for (size_t oy = row_begin; oy < row_end; oy++) {
        long iy0 = (long)(oy * p->stride_h) - (long)p->pad_top;
        for (size_t ox = 0; ox < p->out_w; ox++) {
            long ix0 = (long)(ox * p->stride_w) - (long)p->pad_left;
            if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < (long)p->in_h && ix0 + span_w < (long)p->in_w) {
                const float *base = input + ((size_t)iy0 * p->in_w + (size_t)ix0) * p->in_pixel_stride;
                for (size_t t = 0; t < taps; t++) tp[t] = base + offsets[t];
            } else {
                for (size_t ky = 0; ky < p->kernel_h; ky++) {
                    long iy = iy0 + (long)(ky * p->dilation_h);
                    for (size_t kx = 0; kx < p->kernel_w; kx++) {
                        long ix = ix0 + (long)(kx * p->dilation_w);
                        int inside = iy >= 0 && iy < (long)p->in_h && ix >= 0 && ix < (long)p->in_w;
                        tp[ky * p->kernel_w + kx] =
                            inside ? input + ((size_t)iy * p->in_w + (size_t)ix) * p->in_pixel_stride : p->zeros;
                    }
                }
            }
            float *y = output + (oy * p->out_w + ox) * p->out_pixel_stride;
            size_t c = 0, cend = channels;
            if (taps == 9) {
                // 3x3, the common case: a constant trip count the compiler unrolls.
                DEPTHWISE_CHANNELS(kv, VLEN, KV_SPLAT, 9)
#if VLEN > 8
                DEPTHWISE_CHANNELS(kv8, 8, SPLAT8, 9)
#endif
#if VLEN > 4
                DEPTHWISE_CHANNELS(kv4, 4, SPLAT4, 9)
#endif
            } else {
                DEPTHWISE_CHANNELS(kv, VLEN, KV_SPLAT, taps)
#if VLEN > 8
                DEPTHWISE_CHANNELS(kv8, 8, SPLAT8, taps)
#endif
#if VLEN > 4
                DEPTHWISE_CHANNELS(kv4, 4, SPLAT4, taps)
#endif
            }
            for (; c < cend; c++) {
                float acc = bias[c];
                for (size_t t = 0; t < taps; t++) acc += wt[t * cp + c] * tp[t][c];
                y[c] = clampf(acc, lo, hi);
            }
        }
    }
}

// MARK: - Pooling (plain loops over channels, vectorised by the compiler)

/// Pools one output pixel over channels [0, ch) with `W`-float vectors: `INIT`, combine
/// every tap with `OP`, finish with `FINISH` (scale) and the clamp.
#define POOL_CHANNELS(VT, W, SPLAT, INIT, OP, SCALE)                                                            \
    for (; c + (W) <= ch; c += (W)) {                                                                           \
        VT acc = SPLAT(INIT);                                                                                   \
        for (long iy = ya; iy < yb; iy++)                                                                       \
            for (long ix = xa; ix < xb; ix++) {                                                                 \
                VT v = *(const VT *)(input + ((size_t)iy * p->in_w + (size_t)ix) * ch + c);                     \
                acc = OP(acc, v);                                                                               \
            }                                                                                                   \
        acc = acc * SPLAT(SCALE);                                                                               \
        acc = __builtin_elementwise_max(acc, SPLAT(p->min));                                                    \
        *(VT *)(y + c) = __builtin_elementwise_min(acc, SPLAT(p->max));                                         \
    }

#define POOL_MAX(a, b) __builtin_elementwise_max(a, b)
#define POOL_ADD(a, b) ((a) + (b))
#define SCALAR_MAX(a, b) ((b) > (a) ? (b) : (a))
#define SCALAR_ADD(a, b) ((a) + (b))
#define SCALAR_SPLAT(x) (x)

#define POOL_BODY(INIT, VOP, SOP, AVERAGE)                                                                     \
    const size_t ch = p->channels;                                                                              \
    for (size_t oy = row_begin; oy < row_end; oy++) {                                                           \
        long y0 = (long)(oy * p->stride_h) - (long)p->pad_top;                                                  \
        long ya = y0 < 0 ? 0 : y0, yb = y0 + (long)p->kernel_h > (long)p->in_h ? (long)p->in_h : y0 + (long)p->kernel_h; \
        for (size_t ox = 0; ox < p->out_w; ox++) {                                                              \
            long x0 = (long)(ox * p->stride_w) - (long)p->pad_left;                                             \
            long xa = x0 < 0 ? 0 : x0, xb = x0 + (long)p->kernel_w > (long)p->in_w ? (long)p->in_w : x0 + (long)p->kernel_w; \
            float *y = output + (oy * p->out_w + ox) * ch;                                                      \
            size_t count = p->count_include_pad ? p->kernel_h * p->kernel_w : (size_t)((yb - ya) * (xb - xa));  \
            float scale = AVERAGE ? (count ? 1.0f / (float)count : 0.0f) : 1.0f;                                \
            size_t c = 0;                                                                                       \
            POOL_CHANNELS(kv, VLEN, KV_SPLAT, INIT, VOP, scale)                                                 \
            POOL_CHANNELS(kv8, 8, SPLAT8, INIT, VOP, scale)                                                     \
            POOL_CHANNELS(kv4, 4, SPLAT4, INIT, VOP, scale)                                                     \
            POOL_CHANNELS(float, 1, SCALAR_SPLAT, INIT, SOP, scale)                                             \
        }                                                                                                       \
    }

void FN(kiln_max_pool_f32)(const kiln_pool_params *p, const float *input, float *output, size_t row_begin, size_t row_end) {
    POOL_BODY(-__builtin_inff(), POOL_MAX, SCALAR_MAX, 0)
}

void FN(kiln_avg_pool_f32)(const kiln_pool_params *p, const float *input, float *output, size_t row_begin, size_t row_end) {
    POOL_BODY(0.0f, POOL_ADD, SCALAR_ADD, 1)
}

/// Max pools over `c` conv output rows held in a ring of `slots` rows (row r in slot r % slots).
#define RING_POOL_CHANNELS(VT, W, SPLAT)                                                                         \
    for (; ch + (W) <= channels; ch += (W)) {                                                                   \
        VT acc = SPLAT(-__builtin_inff());                                                                      \
        for (long cy = 0; cy < yb - ya; cy++) {                                                                 \
            const float *row = rowp[cy];                                                                        \
            for (long cx = xa; cx < xb; cx++)                                                                   \
                acc = __builtin_elementwise_max(acc, *(const VT *)(row + (size_t)cx * channels + ch));          \
        }                                                                                                       \
        acc = __builtin_elementwise_max(acc, SPLAT(pool->min));                                                 \
        *(VT *)(y + ch) = __builtin_elementwise_min(acc, SPLAT(pool->max));                                     \
    }

void FN(kiln_conv_max_pool_f32)(
    const kiln_conv_params *conv, const kiln_pool_params *pool, const float *input, const float *packed, float *ring,
    float *output, size_t row_begin, size_t row_end) {
    const size_t slots = pool->kernel_h, channels = conv->out_c, row_floats = conv->out_w * channels;
    long cached[KILN_MAX_TAPS];
    for (size_t i = 0; i < slots; i++) cached[i] = -1;
    for (size_t py = row_begin; py < row_end; py++) {
        long y0 = (long)(py * pool->stride_h) - (long)pool->pad_top;
        long ya = y0 < 0 ? 0 : y0, yb = y0 + (long)pool->kernel_h > (long)pool->in_h ? (long)pool->in_h : y0 + (long)pool->kernel_h;
        // The conv rows this pooled row needs, computed once each into the ring.
        for (long cy = ya; cy < yb; cy++) {
            size_t slot = (size_t)cy % slots;
            if (cached[slot] == cy) continue;
            conv_impl(conv, input, packed, ring + slot * row_floats, (size_t)cy * conv->out_w, (size_t)(cy + 1) * conv->out_w, 0,
                      (conv->out_c + KILN_PANEL - 1) / KILN_PANEL);
            cached[slot] = cy;
        }
        // The ring rows of this pooled row's window, found once (no division per pixel).
        const float *rowp[KILN_MAX_TAPS];
        for (long cy = ya; cy < yb; cy++) rowp[cy - ya] = ring + ((size_t)cy % slots) * row_floats;
        for (size_t px = 0; px < pool->out_w; px++) {
            long x0 = (long)(px * pool->stride_w) - (long)pool->pad_left;
            long xa = x0 < 0 ? 0 : x0, xb = x0 + (long)pool->kernel_w > (long)pool->in_w ? (long)pool->in_w : x0 + (long)pool->kernel_w;
            float *y = output + (py * pool->out_w + px) * channels;
            size_t ch = 0;
            RING_POOL_CHANNELS(kv, VLEN, KV_SPLAT)
            RING_POOL_CHANNELS(kv8, 8, SPLAT8)
            RING_POOL_CHANNELS(kv4, 4, SPLAT4)
            RING_POOL_CHANNELS(float, 1, SCALAR_SPLAT)
        }
    }
}

void FN(kiln_mean_pixels_f32)(
    const float *input, size_t pixels, size_t channels, float *output, size_t c_begin, size_t c_end) {
    float *restrict y = output + c_begin;
    const size_t n = c_end - c_begin;
    for (size_t c = 0; c < n; c++) y[c] = 0;
    for (size_t q = 0; q < pixels; q++) {
        const float *restrict x = input + q * channels + c_begin;
        for (size_t c = 0; c < n; c++) y[c] += x[c];
    }
    float scale = 1.0f / (float)pixels;
    for (size_t c = 0; c < n; c++) y[c] *= scale;
}

// MARK: - Elementwise

#define BINARY_LOOP(EXPR)                                                                                      \
    if (a_step && b_step) {                                                                                    \
        for (size_t i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = clampf(EXPR, lo, hi); }              \
    } else if (a_step) {                                                                                       \
        const float z = b[0];                                                                                  \
        for (size_t i = 0; i < n; i++) { float x = a[i]; y[i] = clampf(EXPR, lo, hi); }                        \
    } else if (b_step) {                                                                                       \
        const float x = a[0];                                                                                  \
        for (size_t i = 0; i < n; i++) { float z = b[i]; y[i] = clampf(EXPR, lo, hi); }                        \
    } else {                                                                                                   \
        const float x = a[0], z = b[0];                                                                        \
        for (size_t i = 0; i < n; i++) y[i] = clampf(EXPR, lo, hi);                                            \
    }

void FN(kiln_binary_f32)(
    kiln_binary_op op, const float *a, size_t a_step, const float *b, size_t b_step, float *y, size_t n, float lo,
    float hi) {
    switch (op) {
    case KILN_BINARY_ADD: BINARY_LOOP(x + z) break;
    case KILN_BINARY_SUB: BINARY_LOOP(x - z) break;
    case KILN_BINARY_MUL: BINARY_LOOP(x * z) break;
    case KILN_BINARY_DIV: BINARY_LOOP(x / z) break;
    case KILN_BINARY_MAX: BINARY_LOOP(x > z ? x : z) break;
    case KILN_BINARY_MIN: BINARY_LOOP(x < z ? x : z) break;
    }
}

/// exp(x) to about 1 ulp (Cephes' expf): x = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-6
/// polynomial, 2^n built in the exponent bits. Written without calls or branches so loops over
/// it vectorise. x is clamped to [-87.33, 88.3] so that 2^n stays a normal float.
ALWAYS_INLINE float kexp(float x) {
    x = clampf(x, -87.33f, 88.3f);
    float n = x * 1.44269504088896341f;
    n = (n + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23 drops the fraction bits
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float e = (((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r + 4.1665795894E-2f) * r
                   + 1.6666665459E-1f) * r + 5.0000001201E-1f) * z + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

void FN(kiln_unary_f32)(kiln_unary_op op, const float *x, float *y, size_t n, float lo, float hi) {
    switch (op) {
    case KILN_UNARY_CLAMP:
        for (size_t i = 0; i < n; i++) y[i] = clampf(x[i], lo, hi);
        break;
    case KILN_UNARY_LOGISTIC:
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + kexp(-x[i]));
        break;
    case KILN_UNARY_HARD_SWISH:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * clampf(x[i] + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f);
        break;
    case KILN_UNARY_SILU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + kexp(-x[i]));
        break;
    case KILN_UNARY_TANH:
        // tanh(x) = 1 - 2 / (exp(2x) + 1): no overflow, absolute error ~1e-7.
        for (size_t i = 0; i < n; i++) y[i] = 1.0f - 2.0f / (kexp(2.0f * x[i]) + 1.0f);
        break;
    }
}
