// Weight packing (instruction-set independent) and the ISA dispatch of every kernel.
#include "internal.h"
#include <math.h>
#include <string.h>

size_t kiln_conv_packed_count(size_t out_channels, size_t taps, size_t in_channels) {
    size_t panels = (out_channels + KILN_PANEL - 1) / KILN_PANEL;
    return panels * KILN_PANEL * (1 + taps * in_channels);
}

void kiln_pack_conv_f32(
    size_t oc, size_t taps, size_t ic, const float *weights, const float *bias, float *packed) {
    size_t panels = (oc + KILN_PANEL - 1) / KILN_PANEL;
    size_t k = taps * ic;
    for (size_t p = 0; p < panels; p++) {
        float *dst = packed + p * KILN_PANEL * (1 + k);
        for (size_t j = 0; j < KILN_PANEL; j++) {
            size_t o = p * KILN_PANEL + j;
            dst[j] = (o < oc && bias) ? bias[o] : 0.0f;
        }
        dst += KILN_PANEL;
        for (size_t r = 0; r < k; r++) {
            for (size_t j = 0; j < KILN_PANEL; j++) {
                size_t o = p * KILN_PANEL + j;
                dst[r * KILN_PANEL + j] = o < oc ? weights[o * k + r] : 0.0f;
            }
        }
    }
}

size_t kiln_depthwise_packed_count(size_t channels, size_t taps) {
    return (taps + 1) * kiln_round_up(channels, KILN_PANEL);
}

void kiln_pack_depthwise_f32(size_t c, size_t taps, const float *weights, const float *bias, float *packed) {
    size_t cp = kiln_round_up(c, KILN_PANEL);
    memset(packed, 0, (taps + 1) * cp * sizeof(float));
    if (bias) memcpy(packed, bias, c * sizeof(float));
    for (size_t t = 0; t < taps; t++) memcpy(packed + (t + 1) * cp, weights + t * c, c * sizeof(float));
}

#if defined(__x86_64__)
#define KILN_DISPATCH(isa, name, args)                                                                        \
    switch (isa) {                                                                                            \
    case KILN_ISA_AVX512: name##_avx512 args; return;                                                        \
    case KILN_ISA_AVX2: name##_avx2 args; return;                                                            \
    default: name##_portable args; return;                                                                   \
    }
#elif defined(__aarch64__)
#define KILN_DISPATCH(isa, name, args)                                                                        \
    switch (isa) {                                                                                            \
    case KILN_ISA_NEON: name##_neon args; return;                                                            \
    default: name##_portable args; return;                                                                   \
    }
#else
#define KILN_DISPATCH(isa, name, args) name##_portable args;
#endif

void kiln_conv_f32(
    kiln_isa isa, const kiln_conv_params *p, const float *input, const float *packed, float *output,
    size_t pixel_begin, size_t pixel_end, size_t panel_begin, size_t panel_end) {
    KILN_DISPATCH(isa, kiln_conv_f32, (p, input, packed, output, pixel_begin, pixel_end, panel_begin, panel_end))
}

void kiln_depthwise_f32(
    kiln_isa isa, const kiln_conv_params *p, const float *input, const float *packed, float *output,
    size_t row_begin, size_t row_end) {
    KILN_DISPATCH(isa, kiln_depthwise_f32, (p, input, packed, output, row_begin, row_end))
}

void kiln_max_pool_f32(kiln_isa isa, const kiln_pool_params *p, const float *input, float *output, size_t row_begin, size_t row_end) {
    KILN_DISPATCH(isa, kiln_max_pool_f32, (p, input, output, row_begin, row_end))
}

void kiln_avg_pool_f32(kiln_isa isa, const kiln_pool_params *p, const float *input, float *output, size_t row_begin, size_t row_end) {
    KILN_DISPATCH(isa, kiln_avg_pool_f32, (p, input, output, row_begin, row_end))
}

void kiln_mean_pixels_f32(
    kiln_isa isa, const float *input, size_t pixels, size_t channels, float *output, size_t c_begin, size_t c_end) {
    KILN_DISPATCH(isa, kiln_mean_pixels_f32, (input, pixels, channels, output, c_begin, c_end))
}

void kiln_binary_f32(
    kiln_isa isa, kiln_binary_op op, const float *a, size_t a_step, const float *b, size_t b_step, float *y,
    size_t n, float min, float max) {
    KILN_DISPATCH(isa, kiln_binary_f32, (op, a, a_step, b, b_step, y, n, min, max))
}

void kiln_unary_f32(kiln_isa isa, kiln_unary_op op, const float *x, float *y, size_t n, float min, float max) {
    KILN_DISPATCH(isa, kiln_unary_f32, (op, x, y, n, min, max))
}

void kiln_conv_max_pool_f32(
    kiln_isa isa, const kiln_conv_params *conv, const kiln_pool_params *pool, const float *input, const float *packed,
    float *ring, float *output, size_t row_begin, size_t row_end) {
    KILN_DISPATCH(isa, kiln_conv_max_pool_f32, (conv, pool, input, packed, ring, output, row_begin, row_end))
}

void kiln_softmax_f32(const float *x, float *y, size_t rows, size_t n, float beta) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float m = -INFINITY;
        for (size_t i = 0; i < n; i++) m = xr[i] > m ? xr[i] : m;
        float sum = 0;
        for (size_t i = 0; i < n; i++) {
            float e = expf(beta * (xr[i] - m));
            yr[i] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        for (size_t i = 0; i < n; i++) yr[i] *= inv;
    }
}

void kiln_copy_rows_f32(const float *src, size_t src_stride, float *dst, size_t dst_stride, size_t rows, size_t count) {
    if (src_stride == count && dst_stride == count) {
        memmove(dst, src, rows * count * sizeof(float));
        return;
    }
    for (size_t r = 0; r < rows; r++) memcpy(dst + r * dst_stride, src + r * src_stride, count * sizeof(float));
}

void kiln_transpose_f32(const float *x, float *y, size_t batch, size_t rows, size_t cols, size_t inner) {
    size_t block = rows * cols * inner;
    if (inner == 1 && rows == 2) {
        // Channel shuffle with two groups: interleave the two halves.
        for (size_t b = 0; b < batch; b++) {
            const float *x0 = x + b * block, *x1 = x0 + cols;
            float *yb = y + b * block;
            for (size_t c = 0; c < cols; c++) {
                yb[2 * c] = x0[c];
                yb[2 * c + 1] = x1[c];
            }
        }
        return;
    }
    for (size_t b = 0; b < batch; b++) {
        const float *xb = x + b * block;
        float *yb = y + b * block;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                memcpy(yb + (c * rows + r) * inner, xb + (r * cols + c) * inner, inner * sizeof(float));
    }
}

static void strided_copy(
    const float *src, float *dst, size_t d, size_t rank, const size_t *counts, const ptrdiff_t *ss, const ptrdiff_t *ds) {
    if (d + 1 == rank) {
        size_t n = counts[d];
        if (ss[d] == 1 && ds[d] == 1) {
            memcpy(dst, src, n * sizeof(float));
        } else {
            for (size_t i = 0; i < n; i++) dst[(ptrdiff_t)i * ds[d]] = src[(ptrdiff_t)i * ss[d]];
        }
        return;
    }
    for (size_t i = 0; i < counts[d]; i++)
        strided_copy(src + (ptrdiff_t)i * ss[d], dst + (ptrdiff_t)i * ds[d], d + 1, rank, counts, ss, ds);
}

void kiln_strided_copy_f32(
    const float *src, float *dst, size_t rank, const size_t *counts, const ptrdiff_t *src_strides,
    const ptrdiff_t *dst_strides) {
    if (rank == 0) {
        *dst = *src;
        return;
    }
    for (size_t d = 0; d < rank; d++)
        if (counts[d] == 0) return;
    strided_copy(src, dst, 0, rank, counts, src_strides, dst_strides);
}

void kiln_fill_f32(float *dst, size_t count, float value) {
    for (size_t i = 0; i < count; i++) dst[i] = value;
}

void kiln_interleave2_f32(
    const float *a, size_t a_stride, const float *b, size_t b_stride, float *y, size_t y_stride, size_t rows, size_t count) {
    for (size_t r = 0; r < rows; r++) {
        const float *restrict ar = a + r * a_stride, *restrict br = b + r * b_stride;
        float *restrict yr = y + r * y_stride;
        for (size_t j = 0; j < count; j++) {
            yr[2 * j] = ar[j];
            yr[2 * j + 1] = br[j];
        }
    }
}
