// The fused resample + normalise (+ quantize) pass, written once with clang vector extensions
// and compiled once per instruction set. The including file defines SUFFIX (the name suffix)
// and VLEN (floats per vector) and wraps the include in `#pragma clang attribute push(target)`.
//
// Per output row y:
//   vertical    acc[i] = sum_t vw[y][t] * src[vstart[y] + t][col_begin * C + i]   (float, contiguous)
//   horizontal  row[x][c] = sum_i hw[x][i] * acc[(hstart[x] - col_begin + i) * C + c]
//   affine      out = row * scale[c] + shift[c]   (then round, + zero point, clamp for int8)
// The order of the two separable passes does not matter in exact arithmetic; vertical first
// reads the 8-bit rows once, contiguously.
#include "internal.h"

#define KI_CAT2(a, b) a##_##b
#define KI_CAT(a, b) KI_CAT2(a, b)
#define FN(name) KI_CAT(name, SUFFIX)
#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef float kvf __attribute__((vector_size(VLEN * 4), aligned(4), may_alias));
typedef uint8_t kvb __attribute__((vector_size(VLEN), aligned(1), may_alias));
typedef int32_t kvi __attribute__((vector_size(VLEN * 4), aligned(4), may_alias));
typedef int8_t kvq __attribute__((vector_size(VLEN), aligned(1), may_alias));
typedef float kf4 __attribute__((vector_size(16), aligned(4), may_alias));

ALWAYS_INLINE kvf load_u8(const uint8_t *p) { return __builtin_convertvector(*(const kvb *)p, kvf); }
ALWAYS_INLINE kvf splat(float x) { return (kvf){} + x; }

/// acc[i] = sum_t w[t] * rows[t][i], i < n (acc[i] += ... when `accumulate`).
ALWAYS_INLINE void vertical(const uint8_t *const *rows, const float *w, size_t taps, size_t n, float *acc, int accumulate) {
    size_t i = 0;
    if (accumulate) {
        for (; i + VLEN <= n; i += VLEN) {
            kvf s = *(const kvf *)(acc + i);
            for (size_t t = 0; t < taps; t++) s += load_u8(rows[t] + i) * splat(w[t]);
            *(kvf *)(acc + i) = s;
        }
        for (; i < n; i++) {
            float s = acc[i];
            for (size_t t = 0; t < taps; t++) s += (float)rows[t][i] * w[t];
            acc[i] = s;
        }
        return;
    }
    if (taps == 1) {
        kvf w0 = splat(w[0]);
        for (; i + VLEN <= n; i += VLEN) *(kvf *)(acc + i) = load_u8(rows[0] + i) * w0;
    } else if (taps == 2) {
        kvf w0 = splat(w[0]), w1 = splat(w[1]);
        for (; i + VLEN <= n; i += VLEN) *(kvf *)(acc + i) = load_u8(rows[0] + i) * w0 + load_u8(rows[1] + i) * w1;
    } else if (taps == 3) {
        kvf w0 = splat(w[0]), w1 = splat(w[1]), w2 = splat(w[2]);
        for (; i + VLEN <= n; i += VLEN)
            *(kvf *)(acc + i) = load_u8(rows[0] + i) * w0 + load_u8(rows[1] + i) * w1 + load_u8(rows[2] + i) * w2;
    } else if (taps == 4) {
        kvf w0 = splat(w[0]), w1 = splat(w[1]), w2 = splat(w[2]), w3 = splat(w[3]);
        for (; i + VLEN <= n; i += VLEN)
            *(kvf *)(acc + i) = (load_u8(rows[0] + i) * w0 + load_u8(rows[1] + i) * w1) +
                                (load_u8(rows[2] + i) * w2 + load_u8(rows[3] + i) * w3);
    } else {
        for (; i + VLEN <= n; i += VLEN) {
            kvf s = load_u8(rows[0] + i) * splat(w[0]);
            for (size_t t = 1; t < taps; t++) s += load_u8(rows[t] + i) * splat(w[t]);
            *(kvf *)(acc + i) = s;
        }
    }
    for (; i < n; i++) {
        float s = 0;
        for (size_t t = 0; t < taps; t++) s += (float)rows[t][i] * w[t];
        acc[i] = s;
    }
}

/// One output row before the affine step, into `row`: interleaved (x * C + c) or, when
/// `planar`, planes of out_width. `acc` holds the vertical pass (padded with zeros).
ALWAYS_INLINE void horizontal(const kiln_resample_params *p, const float *acc, float *row) {
    const size_t ow = p->out_width, taps = p->horizontal.taps, cin = p->in_channels, cout = p->out_channels;
    const int32_t *start = p->horizontal.start;
    const float *hw = p->horizontal.weights;
    const ptrdiff_t base = (ptrdiff_t)p->col_begin;
    if (cin == 3) {
        for (size_t x = 0; x < ow; x++) {
            const float *a = acc + (start[x] - base) * 3;
            const float *w = hw + x * taps;
            kf4 s = *(const kf4 *)a * w[0];
            for (size_t i = 1; i < taps; i++) s += *(const kf4 *)(a + 3 * i) * w[i];
            if (p->planar) {
                row[x] = s[0];
                row[ow + x] = s[1];
                row[2 * ow + x] = s[2];
            } else {
                *(kf4 *)(row + 3 * x) = s;  // lane 3 is overwritten by the next pixel (row is padded)
            }
        }
        return;
    }
    for (size_t x = 0; x < ow; x++) {
        const float *a = acc + (start[x] - base);
        const float *w = hw + x * taps;
        float s = 0;
        for (size_t i = 0; i < taps; i++) s += a[i] * w[i];
        if (cout == 1) {
            row[x] = s;
        } else if (p->planar) {
            row[x] = s;
            row[ow + x] = s;
            row[2 * ow + x] = s;
        } else {
            row[3 * x] = s;
            row[3 * x + 1] = s;
            row[3 * x + 2] = s;
        }
    }
}

/// Scratch layout: acc (span + padding), row (out_width * out_channels + 4), then for
/// interleaved output the per-element scale and shift patterns.
typedef struct {
    float *acc, *row, *scale, *shift;
    size_t span, row_count;
} scratch_layout;

ALWAYS_INLINE scratch_layout layout_scratch(const kiln_resample_params *p, float *scratch) {
    scratch_layout s;
    s.span = (p->col_end - p->col_begin) * p->in_channels;
    size_t pad = (p->horizontal.taps + 2) * p->in_channels + 16;
    s.acc = scratch;
    for (size_t i = s.span; i < s.span + pad; i++) s.acc[i] = 0;
    s.row_count = p->out_width * p->out_channels;
    s.row = scratch + s.span + pad;
    s.scale = s.row + s.row_count + 4;
    s.shift = s.scale + s.row_count;
    if (!p->planar) {
        for (size_t j = 0; j < s.row_count; j++) {
            s.scale[j] = p->scale[j % p->out_channels];
            s.shift[j] = p->shift[j % p->out_channels];
        }
    }
    return s;
}

/// Runs the two passes for output row y; returns the row (layout as in `horizontal`).
ALWAYS_INLINE void resample_row(const kiln_resample_params *p, const scratch_layout *s, size_t y) {
    // Windows of many rows (a large PNG shrunk to a small input) run in chunks of 16 rows.
    enum { CHUNK = 16 };
    const uint8_t *rows[CHUNK];
    const size_t taps = (size_t)p->vertical.count[y];
    const float *w = p->vertical.weights + y * p->vertical.taps;
    const uint8_t *first = p->src + p->col_begin * p->in_channels + (size_t)p->vertical.start[y] * p->src_stride;
    if (taps == 0) {
        for (size_t i = 0; i < s->span; i++) s->acc[i] = 0;
    }
    for (size_t t0 = 0; t0 < taps; t0 += CHUNK) {
        size_t n = taps - t0 < CHUNK ? taps - t0 : CHUNK;
        for (size_t t = 0; t < n; t++) rows[t] = first + (t0 + t) * p->src_stride;
        vertical(rows, w + t0, n, s->span, s->acc, t0 > 0);
    }
    horizontal(p, s->acc, s->row);
}

void FN(kiln_resample_f32)(const kiln_resample_params *p, float *scratch, float *out) {
    scratch_layout s = layout_scratch(p, scratch);
    const size_t ow = p->out_width, oh = p->out_height, plane = ow * oh;
    for (size_t y = 0; y < oh; y++) {
        resample_row(p, &s, y);
        if (p->planar) {
            for (size_t c = 0; c < p->out_channels; c++) {
                const float *r = s.row + c * ow;
                float *o = out + c * plane + y * ow;
                kvf a = splat(p->scale[c]), b = splat(p->shift[c]);
                size_t x = 0;
                for (; x + VLEN <= ow; x += VLEN) *(kvf *)(o + x) = *(const kvf *)(r + x) * a + b;
                for (; x < ow; x++) o[x] = r[x] * p->scale[c] + p->shift[c];
            }
        } else {
            float *o = out + y * s.row_count;
            size_t j = 0;
            for (; j + VLEN <= s.row_count; j += VLEN)
                *(kvf *)(o + j) = *(const kvf *)(s.row + j) * *(const kvf *)(s.scale + j) + *(const kvf *)(s.shift + j);
            for (; j < s.row_count; j++) o[j] = s.row[j] * s.scale[j] + s.shift[j];
        }
    }
}

/// round half away from zero, + zero point, clamp to int8.
ALWAYS_INLINE kvq quantize(kvf v, kvf zp) {
    v = __builtin_elementwise_round(v) + zp;
    v = __builtin_elementwise_max(v, splat(-128.0f));
    v = __builtin_elementwise_min(v, splat(127.0f));
    return __builtin_convertvector(__builtin_convertvector(v, kvi), kvq);
}

ALWAYS_INLINE int8_t quantize1(float v, float zp) {
    v = __builtin_roundf(v) + zp;
    v = v < -128.0f ? -128.0f : v > 127.0f ? 127.0f : v;
    return (int8_t)(int32_t)v;
}

void FN(kiln_resample_i8)(const kiln_resample_params *p, float *scratch, int8_t *out) {
    scratch_layout s = layout_scratch(p, scratch);
    const size_t ow = p->out_width, oh = p->out_height, plane = ow * oh;
    const float zp1 = (float)p->zero_point;
    const kvf zp = splat(zp1);
    for (size_t y = 0; y < oh; y++) {
        resample_row(p, &s, y);
        if (p->planar) {
            for (size_t c = 0; c < p->out_channels; c++) {
                const float *r = s.row + c * ow;
                int8_t *o = out + c * plane + y * ow;
                kvf a = splat(p->scale[c]), b = splat(p->shift[c]);
                size_t x = 0;
                for (; x + VLEN <= ow; x += VLEN) *(kvq *)(o + x) = quantize(*(const kvf *)(r + x) * a + b, zp);
                for (; x < ow; x++) o[x] = quantize1(r[x] * p->scale[c] + p->shift[c], zp1);
            }
        } else {
            int8_t *o = out + y * s.row_count;
            size_t j = 0;
            for (; j + VLEN <= s.row_count; j += VLEN)
                *(kvq *)(o + j) =
                    quantize(*(const kvf *)(s.row + j) * *(const kvf *)(s.scale + j) + *(const kvf *)(s.shift + j), zp);
            for (; j < s.row_count; j++) o[j] = quantize1(s.row[j] * s.scale[j] + s.shift[j], zp1);
        }
    }
}
