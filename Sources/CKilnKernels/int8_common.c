// The int8 kernels' dispatch, weight packing, and the element-wise and data-movement kernels
// (plain C; the hot convolutions live in int8_template.h, compiled once per instruction set).
#include "int8_internal.h"
#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

int32_t kiln_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift, int round_up) {
    return kiln_requant(x, multiplier, shift, !round_up);
}

// MARK: - Dispatch

#if defined(__x86_64__)
static int has_vnni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11) & 1;  // AVX512_VNNI
}
#endif

#if defined(__aarch64__)
static int has_dotprod(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    return 1;
#else
    return 0;
#endif
}
#endif

static kiln_i8_path detect_path(kiln_isa isa) {
    if (!kiln_isa_supported(isa)) return KILN_I8_PORTABLE;
    switch (isa) {
#if defined(__x86_64__)
    case KILN_ISA_AVX512:
        return has_vnni() ? KILN_I8_AVX512_VNNI : KILN_I8_AVX2;
    case KILN_ISA_AVX2:
        return KILN_I8_AVX2;
#endif
#if defined(__aarch64__)
    case KILN_ISA_NEON:
        return has_dotprod() ? KILN_I8_NEON_DOT : KILN_I8_PORTABLE;
#endif
    default:
        return KILN_I8_PORTABLE;
    }
}

kiln_i8_path kiln_i8_path_for(kiln_isa isa) {
    // Detection (cpuid, which a virtual machine may trap) runs once per instruction set; racing
    // first calls store the same value.
    static volatile int cached[4] = {-1, -1, -1, -1};
    unsigned i = (unsigned)isa;
    if (i >= 4) return KILN_I8_PORTABLE;
    int v = cached[i];
    if (v < 0) {
        v = (int)detect_path(isa);
        cached[i] = v;
    }
    return (kiln_i8_path)v;
}

#if defined(__x86_64__)
#define DISPATCH(path, name, ...)                                        \
    switch (path) {                                                       \
    case KILN_I8_AVX512_VNNI: name##_vnni(__VA_ARGS__); break;            \
    case KILN_I8_AVX2: name##_avx2(__VA_ARGS__); break;                   \
    default: name##_portable(__VA_ARGS__); break;                         \
    }
#elif defined(__aarch64__)
#define DISPATCH(path, name, ...)                                        \
    switch (path) {                                                       \
    case KILN_I8_NEON_DOT: name##_neondot(__VA_ARGS__); break;            \
    default: name##_portable(__VA_ARGS__); break;                         \
    }
#else
#define DISPATCH(path, name, ...) name##_portable(__VA_ARGS__);
#endif

void kiln_conv_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output,
    size_t pixel_begin, size_t pixel_end, size_t panel_begin, size_t panel_end) {
    DISPATCH(kiln_i8_path_for(isa), kiln_conv_i8, p, input, packed, output, pixel_begin, pixel_end, panel_begin, panel_end)
}

void kiln_depthwise_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output,
    size_t row_begin, size_t row_end) {
    DISPATCH(kiln_i8_path_for(isa), kiln_depthwise_i8, p, input, packed, output, row_begin, row_end)
}

void kiln_max_pool_i8(kiln_isa isa, const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end) {
    DISPATCH(kiln_i8_path_for(isa), kiln_max_pool_i8, p, input, output, row_begin, row_end)
}

void kiln_avg_pool_i8(kiln_isa isa, const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end) {
    DISPATCH(kiln_i8_path_for(isa), kiln_avg_pool_i8, p, input, output, row_begin, row_end)
}

size_t kiln_conv_max_pool_i8_ring_bytes(const kiln_conv_i8_params *conv, const kiln_pool_i8_params *pool) {
    return (pool->kernel_h + 2) * conv->out_w * conv->out_c;
}

void kiln_conv_max_pool_i8(
    kiln_isa isa, const kiln_conv_i8_params *conv, const kiln_pool_i8_params *pool, const int8_t *input,
    const uint8_t *packed, int8_t *ring, int8_t *output, size_t row_begin, size_t row_end) {
    DISPATCH(kiln_i8_path_for(isa), kiln_conv_max_pool_i8, conv, pool, input, packed, ring, output, row_begin, row_end)
}

void kiln_requantize_i32_i8(
    kiln_isa isa, const int32_t *x, size_t n, const int32_t *multiplier, const int32_t *shift, const int32_t *round_up,
    int32_t zero_point, int32_t min, int32_t max, int8_t *y) {
    DISPATCH(kiln_i8_path_for(isa), kiln_requantize_i32_i8, x, n, multiplier, shift, round_up, zero_point, min, max, y)
}

void kiln_lookup_i8(kiln_isa isa, const int8_t *table, const int8_t *x, int8_t *y, size_t n) {
    DISPATCH(kiln_i8_path_for(isa), kiln_lookup_i8, table, x, y, n)
}

// MARK: - Packing

static size_t groups4(size_t in_c) { return (in_c + 3) / 4; }

static size_t conv_panel_bytes(size_t taps, size_t in_c) {
    return (KILN_I8_ROWS + taps) * KILN_I8_PANEL * sizeof(int32_t) + taps * groups4(in_c) * KILN_I8_PANEL * 4;
}

size_t kiln_conv_i8_packed_bytes(size_t out_c, size_t taps, size_t in_c) {
    size_t panels = (out_c + KILN_I8_PANEL - 1) / KILN_I8_PANEL;
    return kiln_i8_pad_bytes(in_c) + panels * conv_panel_bytes(taps, in_c);
}

/// Writes the requantization rows of `count` channels (padded to `stride`) from channel `first`:
/// bias minus `correction[c]`, multiplier, left shift, right shift, tie mode, right shift - 1,
/// and the per-block "simple" flag (see kiln_i8_rows).
static void write_rows(
    int32_t *rows, size_t stride, size_t first, size_t count, size_t total, const int32_t *bias, const int64_t *correction,
    const int32_t *multiplier, const int32_t *shift, size_t round_up_channels) {
    for (size_t j = 0; j < count; j++) {
        size_t c = first + j;
        int32_t b = 0, m = 0, l = 0, r = 0, away = 0;
        if (c < total) {
            int64_t v = (bias ? (int64_t)bias[c] : 0) - correction[j];
            // Wraps as TFLite's int32 accumulator would.
            b = (int32_t)(uint32_t)(uint64_t)v;
            m = multiplier[c];
            l = shift[c] > 0 ? shift[c] : 0;
            r = shift[c] > 0 ? 0 : -shift[c];
            if (l > 32) l = 32;
            if (r > 31) r = 31;
            away = c < round_up_channels ? 0 : -1;
        }
        rows[0 * stride + j] = b;
        rows[1 * stride + j] = m;
        rows[2 * stride + j] = l;
        rows[3 * stride + j] = r;
        rows[4 * stride + j] = away;
        rows[5 * stride + j] = r == 0 ? 32 : r - 1;
    }
    for (size_t j0 = 0; j0 < count; j0 += KILN_I8_PANEL) {
        int simple = 1;
        for (size_t j = j0; j < j0 + KILN_I8_PANEL && j < count; j++) {
            if (rows[2 * stride + j] != 0 || rows[4 * stride + j] != 0) simple = 0;
        }
        for (size_t j = j0; j < j0 + KILN_I8_PANEL && j < count; j++) rows[6 * stride + j] = simple;
    }
}

void kiln_pack_conv_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *weights, const int32_t *bias, const int32_t *multiplier,
    const int32_t *shift, size_t round_up_channels, uint8_t *packed) {
    const size_t taps = p->kernel_h * p->kernel_w, in_c = p->in_c, out_c = p->out_c, g4 = groups4(in_c);
    const size_t pad = kiln_i8_pad_bytes(in_c);
    memset(packed, (int)(int8_t)p->input_zero_point, pad);
    // VNNI multiplies unsigned activations x + 128 (x ^ 0x80): the correction covers the offset.
    const int64_t offset = kiln_i8_path_for(isa) == KILN_I8_AVX512_VNNI ? 128 : 0;
    const size_t panels = (out_c + KILN_I8_PANEL - 1) / KILN_I8_PANEL, panel_bytes = conv_panel_bytes(taps, in_c);
    for (size_t q = 0; q < panels; q++) {
        uint8_t *panel = packed + pad + q * panel_bytes;
        int64_t correction[KILN_I8_PANEL];
        for (size_t j = 0; j < KILN_I8_PANEL; j++) {
            size_t o = q * KILN_I8_PANEL + j;
            int64_t sum = 0;
            if (o < out_c) {
                for (size_t k = 0; k < taps * in_c; k++) sum += weights[o * taps * in_c + k];
            }
            correction[j] = ((int64_t)p->input_zero_point + offset) * sum;
        }
        write_rows((int32_t *)panel, KILN_I8_PANEL, q * KILN_I8_PANEL, KILN_I8_PANEL, out_c, bias, correction, multiplier,
                   shift, round_up_channels);
        // Per tap, what it adds when it reads the zero-point row: (zx + offset) * sum_i w, wrapped
        // as the kernel's int32 accumulator wraps (kernels skip taps that read only padding).
        int32_t *tap_rows = (int32_t *)panel + KILN_I8_ROWS * KILN_I8_PANEL;
        for (size_t t = 0; t < taps; t++) {
            for (size_t j = 0; j < KILN_I8_PANEL; j++) {
                size_t o = q * KILN_I8_PANEL + j;
                int64_t sum = 0;
                if (o < out_c) {
                    for (size_t i = 0; i < in_c; i++) sum += weights[(o * taps + t) * in_c + i];
                }
                tap_rows[t * KILN_I8_PANEL + j] = (int32_t)(uint32_t)(uint64_t)(((int64_t)p->input_zero_point + offset) * sum);
            }
        }
        int8_t *w = (int8_t *)(tap_rows + taps * KILN_I8_PANEL);
        for (size_t t = 0; t < taps; t++) {
            for (size_t g = 0; g < g4; g++) {
                for (size_t j = 0; j < KILN_I8_PANEL; j++) {
                    size_t o = q * KILN_I8_PANEL + j;
                    for (size_t u = 0; u < 4; u++) {
                        size_t i = g * 4 + u;
                        *w++ = (o < out_c && i < in_c) ? weights[(o * taps + t) * in_c + i] : 0;
                    }
                }
            }
        }
    }
}

size_t kiln_depthwise_i8_packed_bytes(size_t channels, size_t taps) {
    size_t cr = (channels + KILN_I8_PANEL - 1) / KILN_I8_PANEL * KILN_I8_PANEL;
    return kiln_i8_pad_bytes(channels) + (KILN_I8_ROWS + taps) * cr * sizeof(int32_t);
}

void kiln_pack_depthwise_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *weights, const int32_t *bias, const int32_t *multiplier,
    const int32_t *shift, size_t round_up_channels, uint8_t *packed) {
    const size_t c = p->in_c, taps = p->kernel_h * p->kernel_w;
    // x86 multiplies with vpmaddwd/vpdpwssd on int16 pairs (x, sign of x): the weight's high
    // int16 must be 0 so that the pair contributes x * w alone.
    const kiln_i8_path path = kiln_i8_path_for(isa);
    const int low_half_only = path == KILN_I8_AVX2 || path == KILN_I8_AVX512_VNNI;
    const size_t cr = (c + KILN_I8_PANEL - 1) / KILN_I8_PANEL * KILN_I8_PANEL, pad = kiln_i8_pad_bytes(c);
    memset(packed, (int)(int8_t)p->input_zero_point, pad);
    int32_t *rows = (int32_t *)(packed + pad);
    int64_t *correction = (int64_t *)calloc(cr, sizeof(int64_t));
    if (!correction) return;
    for (size_t ch = 0; ch < c; ch++) {
        int64_t sum = 0;
        for (size_t t = 0; t < taps; t++) sum += weights[t * c + ch];
        correction[ch] = (int64_t)p->input_zero_point * sum;
    }
    write_rows(rows, cr, 0, cr, c, bias, correction, multiplier, shift, round_up_channels);
    free(correction);
    int32_t *w = rows + KILN_I8_ROWS * cr;
    for (size_t t = 0; t < taps; t++) {
        for (size_t ch = 0; ch < cr; ch++) {
            int32_t v = ch < c ? weights[t * c + ch] : 0;
            w[t * cr + ch] = low_half_only ? (int32_t)(uint16_t)(int16_t)v : v;
        }
    }
}

// MARK: - Element-wise

void kiln_mean_i8(
    const int8_t *input, size_t pixels, size_t channels, int8_t *output, int32_t multiplier, int32_t shift, int32_t bias,
    size_t round_up_channels, size_t c_begin, size_t c_end) {
    int32_t acc[64];
    for (size_t c0 = c_begin; c0 < c_end; c0 += 64) {
        size_t n = c_end - c0 < 64 ? c_end - c0 : 64;
        for (size_t j = 0; j < n; j++) acc[j] = 0;
        for (size_t p = 0; p < pixels; p++) {
            const int8_t *x = input + p * channels + c0;
            for (size_t j = 0; j < n; j++) acc[j] += x[j];
        }
        for (size_t j = 0; j < n; j++) {
            int32_t v = kiln_requant(acc[j], multiplier, shift, c0 + j >= round_up_channels) + bias;
            output[c0 + j] = (int8_t)kiln_clamp_i32(v, -128, 127);
        }
    }
}

void kiln_add_i8(
    kiln_isa isa, const kiln_add_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step, int8_t *y,
    size_t n) {
    DISPATCH(kiln_i8_path_for(isa), kiln_add_i8, p, a, a_step, b, b_step, y, n)
}

void kiln_add_i8_scalar(const kiln_add_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step,
                        int8_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t x1 = (int32_t)a[i * a_step] - p->a_zero_point, x2 = (int32_t)b[i * b_step] - p->b_zero_point;
        int32_t s1 = kiln_requant((int32_t)((uint32_t)x1 << p->left_shift), p->a_multiplier, p->a_shift, 1);
        int32_t s2 = kiln_requant((int32_t)((uint32_t)x2 << p->left_shift), p->b_multiplier, p->b_shift, 1);
        int32_t v = kiln_requant((int32_t)((uint32_t)s1 + (uint32_t)s2), p->output_multiplier, p->output_shift, 1) + p->output_zero_point;
        y[i] = (int8_t)kiln_clamp_i32(v, p->min, p->max);
    }
}

void kiln_mul_i8(const kiln_mul_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step, int8_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t prod = ((int32_t)a[i * a_step] - p->a_zero_point) * ((int32_t)b[i * b_step] - p->b_zero_point);
        int32_t v = kiln_requant(prod, p->multiplier, p->shift, 1) + p->output_zero_point;
        y[i] = (int8_t)kiln_clamp_i32(v, p->min, p->max);
    }
}

void kiln_quantize_f32_i8(kiln_isa isa, const float *x, int8_t *y, size_t n, float scale, int32_t zero_point) {
    DISPATCH(kiln_i8_path_for(isa), kiln_quantize_f32_i8, x, y, n, scale, zero_point)
}

void kiln_quantize_f32_i8_scalar(const float *x, int8_t *y, size_t n, float scale, int32_t zero_point);
void kiln_quantize_f32_i8_scalar(const float *x, int8_t *y, size_t n, float scale, int32_t zero_point) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        if (v != v) {
            y[i] = (int8_t)kiln_clamp_i32(zero_point, -128, 127);
            continue;
        }
        // Round half away from zero, without the error of adding 0.5 in float.
        float t = truncf(v);
        if (fabsf(v - t) >= 0.5f) t += v < 0 ? -1.0f : 1.0f;
        float q = t + (float)zero_point;
        y[i] = (int8_t)(q < -128.0f ? -128 : (q > 127.0f ? 127 : (int32_t)q));
    }
}

void kiln_dequantize_i8_f32(const int8_t *x, float *y, size_t n, float scale, int32_t zero_point) {
    for (size_t i = 0; i < n; i++) y[i] = scale * (float)((int32_t)x[i] - zero_point);
}

void kiln_softmax_i8(const int8_t *x, int8_t *y, size_t rows, size_t n, const float *table, float output_scale, int32_t output_zero_point) {
    for (size_t r = 0; r < rows; r++, x += n, y += n) {
        int32_t max = -128;
        for (size_t j = 0; j < n; j++) max = x[j] > max ? x[j] : max;
        const float *offset = table + (255 - max);
        float sum = 0;
        for (size_t j = 0; j < n; j++) sum += offset[x[j]];
        float inverse = 1.0f / (sum * output_scale);
        for (size_t j = 0; j < n; j++) {
            float p = roundf(offset[x[j]] * inverse);
            int32_t v = (p > 1e9f ? 1000000000 : (int32_t)p) + output_zero_point;
            y[j] = (int8_t)kiln_clamp_i32(v, -128, 127);
        }
    }
}

// MARK: - Data movement

void kiln_strided_copy_i8(
    const int8_t *src, int8_t *dst, size_t rank, const size_t *counts, const ptrdiff_t *src_strides,
    const ptrdiff_t *dst_strides) {
    if (rank == 0) return;
    size_t index[KILN_MAX_RANK] = {0};
    const size_t last = rank - 1, inner = counts[last];
    const ptrdiff_t si = src_strides[last], di = dst_strides[last];
    for (;;) {
        if (si == 1 && di == 1) {
            memcpy(dst, src, inner);
        } else {
            for (size_t i = 0; i < inner; i++) dst[(ptrdiff_t)i * di] = src[(ptrdiff_t)i * si];
        }
        size_t d = last;
        for (;;) {
            if (d == 0) return;
            d--;
            index[d]++;
            src += src_strides[d];
            dst += dst_strides[d];
            if (index[d] < counts[d]) break;
            src -= src_strides[d] * (ptrdiff_t)counts[d];
            dst -= dst_strides[d] * (ptrdiff_t)counts[d];
            index[d] = 0;
        }
    }
}

void kiln_fill_i8(int8_t *dst, size_t count, int8_t value) { memset(dst, value, count); }

void kiln_transpose_i8(const int8_t *x, int8_t *y, size_t batch, size_t rows, size_t cols, size_t inner) {
    for (size_t b = 0; b < batch; b++) {
        const int8_t *xb = x + b * rows * cols * inner;
        int8_t *yb = y + b * rows * cols * inner;
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) memcpy(yb + (c * rows + r) * inner, xb + (r * cols + c) * inner, inner);
        }
    }
}

void kiln_interleave2_i8(
    const int8_t *a, size_t a_stride, const int8_t *b, size_t b_stride, int8_t *y, size_t y_stride, size_t rows, size_t count) {
    for (size_t r = 0; r < rows; r++) {
        const int8_t *ar = a + r * a_stride, *br = b + r * b_stride;
        int8_t *yr = y + r * y_stride;
        for (size_t j = 0; j < count; j++) {
            yr[2 * j] = ar[j];
            yr[2 * j + 1] = br[j];
        }
    }
}
