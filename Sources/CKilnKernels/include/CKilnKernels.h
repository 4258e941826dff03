// CKilnKernels: the innermost float32 loops of Kiln's accelerated kernels, in C with ISA
// intrinsics, and a small spinning thread pool.
//
// Every kernel is compiled once per instruction set (portable C, AVX2+FMA, AVX-512, NEON on
// aarch64) and takes the instruction set to use as its first argument, so tests can run each
// path on one machine. `kiln_isa_best()` is the fastest one this CPU and OS support, chosen
// once. The Swift orchestration lives in KilnKernels/Accelerated; this header is its only
// interface.
//
// Layout legend: activations are NHWC, one batch item at a time: a pixel is `channels`
// contiguous floats and consecutive pixels are `pixel_stride` floats apart (>= channels, so a
// kernel can read or write a channel slice of a wider tensor). Conv weights are OHWI
// (TFLite CONV_2D), depthwise weights [KH, KW, C] (TFLite DEPTHWISE_CONV_2D's 1HWC).
#ifndef CKILNKERNELS_H
#define CKILNKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction sets a kernel can be run with.
typedef enum {
    KILN_ISA_PORTABLE = 0,
    KILN_ISA_AVX2 = 1,
    KILN_ISA_AVX512 = 2,
    KILN_ISA_NEON = 3,
} kiln_isa;

/// The fastest instruction set this CPU and OS support, detected once (cpuid + xgetbv on x86).
/// The environment variable KILN_ISA=portable|avx2|avx512|neon caps it (for comparisons).
kiln_isa kiln_isa_best(void);
/// 1 when this CPU and OS can run kernels compiled for `isa`, else 0.
int kiln_isa_supported(kiln_isa isa);

/// Output channels per packed weight panel.
#define KILN_PANEL 16
/// The largest number of kernel taps (KH * KW) the conv kernel accepts.
#define KILN_MAX_TAPS 64

// MARK: - Convolution (dense, any kernel size) and fully connected layers

/// Floats needed by kiln_pack_conv_f32: per panel of 16 output channels, 16 biases then
/// taps * in_channels rows of 16 weights.
size_t kiln_conv_packed_count(size_t out_channels, size_t taps, size_t in_channels);

/// Packs OHWI weights `[out_channels][taps][in_channels]` and an optional bias into panels
/// (zero-padded past the last output channel). `packed` has kiln_conv_packed_count floats.
void kiln_pack_conv_f32(
    size_t out_channels, size_t taps, size_t in_channels, const float *weights, const float *bias,
    float *packed);

/// Geometry of one convolution over one batch item.
typedef struct {
    size_t in_h, in_w, in_c, in_pixel_stride;
    size_t out_h, out_w, out_c, out_pixel_stride;
    size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    /// Leading padding; trailing padding follows from the output size.
    size_t pad_top, pad_left;
    /// At least in_c zeros: what padded taps read.
    const float *zeros;
    /// The fused activation as a clamp (-inf, +inf for none).
    float min, max;
} kiln_conv_params;

/// y[p][o] = clamp(bias[o] + sum_{t,i} w[o][t][i] * x[pixel of tap t of p][i]) for output pixels
/// p in [pixel_begin, pixel_end) (flat oy * out_w + ox) and the output channels of panels
/// [panel_begin, panel_end). A fully connected layer is a 1x1 conv over `rows` pixels.
void kiln_conv_f32(
    kiln_isa isa, const kiln_conv_params *p, const float *input, const float *packed, float *output,
    size_t pixel_begin, size_t pixel_end, size_t panel_begin, size_t panel_end);

// MARK: - Depthwise convolution (depth multiplier 1)

/// Floats needed by kiln_pack_depthwise_f32: (taps + 1) rows of channels rounded up to 16.
size_t kiln_depthwise_packed_count(size_t channels, size_t taps);
/// Packs `[taps][channels]` weights and an optional bias as [bias row][tap rows], zero-padded.
void kiln_pack_depthwise_f32(size_t channels, size_t taps, const float *weights, const float *bias, float *packed);

/// y[oy][ox][c] = clamp(bias[c] + sum_{ky,kx} w[ky][kx][c] * x[oy*sh - pt + ky*dh][ox*sw - pl + kx*dw][c])
/// for output rows [row_begin, row_end); out_c must equal in_c.
void kiln_depthwise_f32(
    kiln_isa isa, const kiln_conv_params *p, const float *input, const float *packed, float *output,
    size_t row_begin, size_t row_end);

// MARK: - Pooling

typedef struct {
    size_t in_h, in_w, channels;
    size_t out_h, out_w;
    size_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    /// Average pooling divides by the whole window (1) or by the cells inside the input (0,
    /// TFLite's rule).
    int count_include_pad;
    float min, max;
} kiln_pool_params;

/// Max over each window (cells outside the input never win), output rows [row_begin, row_end).
void kiln_max_pool_f32(kiln_isa isa, const kiln_pool_params *p, const float *input, float *output, size_t row_begin, size_t row_end);
/// Average over each window, output rows [row_begin, row_end).
void kiln_avg_pool_f32(kiln_isa isa, const kiln_pool_params *p, const float *input, float *output, size_t row_begin, size_t row_end);
/// y[c] = mean over `pixels` of x[p][c], for channels [c_begin, c_end).
void kiln_mean_pixels_f32(
    kiln_isa isa, const float *input, size_t pixels, size_t channels, float *output, size_t c_begin, size_t c_end);

/// A convolution followed by a max pool over its output, without that output in memory: pooled
/// rows [row_begin, row_end) of `pool` (whose input is the conv's output, channels = out_c,
/// contiguous pixels). The conv rows each pooled row needs are computed into `ring`, which
/// holds pool->kernel_h rows of conv->out_w * conv->out_c floats (one ring per thread).
void kiln_conv_max_pool_f32(
    kiln_isa isa, const kiln_conv_params *conv, const kiln_pool_params *pool, const float *input, const float *packed,
    float *ring, float *output, size_t row_begin, size_t row_end);

// MARK: - Elementwise

typedef enum {
    KILN_BINARY_ADD = 0,
    KILN_BINARY_SUB = 1,
    KILN_BINARY_MUL = 2,
    KILN_BINARY_DIV = 3,
    KILN_BINARY_MAX = 4,
    KILN_BINARY_MIN = 5,
} kiln_binary_op;

/// y[i] = clamp(a[i * a_step] op b[i * b_step]) for i < n; steps are 0 (broadcast) or 1.
void kiln_binary_f32(
    kiln_isa isa, kiln_binary_op op, const float *a, size_t a_step, const float *b, size_t b_step, float *y,
    size_t n, float min, float max);

typedef enum {
    /// clamp(x, min, max): ReLU, ReLU6, ReLU_N1_TO_1.
    KILN_UNARY_CLAMP = 0,
    /// 1 / (1 + exp(-x))
    KILN_UNARY_LOGISTIC = 1,
    /// x * relu6(x + 3) / 6
    KILN_UNARY_HARD_SWISH = 2,
    /// x * logistic(x)
    KILN_UNARY_SILU = 3,
    /// tanh(x)
    KILN_UNARY_TANH = 4,
} kiln_unary_op;

/// y[i] = f(x[i]) for i < n (`min`/`max` used by KILN_UNARY_CLAMP). In place is allowed.
void kiln_unary_f32(kiln_isa isa, kiln_unary_op op, const float *x, float *y, size_t n, float min, float max);

/// Softmax over each of `rows` rows of `n` contiguous floats: exp(beta*(x - max)) / sum.
void kiln_softmax_f32(const float *x, float *y, size_t rows, size_t n, float beta);

// MARK: - Data movement

/// Copies `rows` runs of `count` floats: dst[r * dst_stride + i] = src[r * src_stride + i].
void kiln_copy_rows_f32(const float *src, size_t src_stride, float *dst, size_t dst_stride, size_t rows, size_t count);

/// Batched transpose of small matrices of `inner`-float elements:
/// y[b][c][r][k] = x[b][r][c][k] for b < batch, r < rows, c < cols, k < inner.
/// With rows = groups, cols = channels / groups and inner = 1 it is ShuffleNet's channel shuffle.
void kiln_transpose_f32(const float *x, float *y, size_t batch, size_t rows, size_t cols, size_t inner);

/// Interleaves two sources: y[r * y_stride + 2 j] = a[r * a_stride + j] and
/// y[r * y_stride + 2 j + 1] = b[r * b_stride + j] for r < rows, j < count (a concatenation
/// followed by ShuffleNet's two-group channel shuffle, in one pass).
void kiln_interleave2_f32(
    const float *a, size_t a_stride, const float *b, size_t b_stride, float *y, size_t y_stride, size_t rows, size_t count);

/// The largest rank kiln_strided_copy_f32 takes.
#define KILN_MAX_RANK 6
/// Copies a strided box: for every index (i_0, ..., i_{rank-1}) below `counts`,
/// dst[Σ i_d * dst_strides[d]] = src[Σ i_d * src_strides[d]] (strides in floats, may be 0 or
/// negative on the source). Transposes, slices and the interior of a pad are such boxes.
void kiln_strided_copy_f32(
    const float *src, float *dst, size_t rank, const size_t *counts, const ptrdiff_t *src_strides,
    const ptrdiff_t *dst_strides);

/// dst[i] = value for i < count.
void kiln_fill_f32(float *dst, size_t count, float value);

// MARK: - int8 (TFLite's integer arithmetic; see KilnKernels/Requantize.swift)
//
// Activations are int8 with a per-tensor zero point; weights int8 symmetric (-127...127) with
// per-channel scales; accumulators int32. A requantization multiplies an int32 by a real
// multiplier given as a Q0.31 `multiplier` and a power-of-two `shift` (TFLite's
// QuantizeMultiplier), as a rounding doubling high multiply followed by a rounding right shift
// whose ties go away from zero (TFLite's MultiplyByQuantizedMultiplier) or upward (the rounding
// shift of TFLite's optimized kernels). Kernels that read padded taps read the input zero
// point, and every kernel that reads 4 input channels at a time may read up to 3 bytes past the
// last pixel of its input: callers leave 64 bytes of slack after every int8 tensor.

/// `x * M` with M = multiplier * 2^(shift - 31): the scalar form of every kernel's requantization.
/// `round_up` selects ties toward +infinity for the final shift (else away from zero).
int32_t kiln_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift, int round_up);

/// y[i] = clamp(x[i] * M[i] + zero_point, min, max) for i < n, with per-element multipliers,
/// shifts and rounding (round_up[i] != 0: ties upward), through the vector epilogue the conv
/// kernels of `isa` use (for tests of that epilogue against Requantize.swift).
void kiln_requantize_i32_i8(
    kiln_isa isa, const int32_t *x, size_t n, const int32_t *multiplier, const int32_t *shift, const int32_t *round_up,
    int32_t zero_point, int32_t min, int32_t max, int8_t *y);

/// Whether `isa`'s int8 dot products use AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw + vpmaddwd),
/// NEON sdot, or portable C: the instruction set the int8 kernels actually run for `isa`.
typedef enum {
    KILN_I8_PORTABLE = 0,
    KILN_I8_AVX2 = 1,
    KILN_I8_AVX512_VNNI = 2,
    KILN_I8_NEON_DOT = 3,
} kiln_i8_path;
kiln_i8_path kiln_i8_path_for(kiln_isa isa);

/// Geometry and output quantization of one int8 convolution over one batch item.
typedef struct {
    size_t in_h, in_w, in_c, in_pixel_stride;
    size_t out_h, out_w, out_c, out_pixel_stride;
    size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_left;
    int32_t input_zero_point;
    /// The output's zero point and the clamp (the int8 range intersected with a fused activation).
    int32_t output_zero_point, output_min, output_max;
} kiln_conv_i8_params;

/// Output channels per packed int8 weight panel.
#define KILN_I8_PANEL 16

/// Bytes kiln_pack_conv_i8 writes: a row of input zero points (what padded taps read), then per
/// panel of 16 output channels seven int32 rows of requantization parameters (bias with the
/// zero-point correction, multiplier, shifts, tie mode), one int32 row per tap (what the tap
/// adds when it reads only the zero points: kernels skip such taps), and taps * ceil(in_c / 4)
/// blocks of 16 x 4 weights.
size_t kiln_conv_i8_packed_bytes(size_t out_c, size_t taps, size_t in_c);

/// Packs OHWI int8 weights `[out_c][taps][in_c]`, an optional int32 bias, and per-channel
/// requantization (multiplier, shift; channels below `round_up_channels` round ties upward) for
/// `isa` (the zero-point correction depends on how the kernel forms its products).
void kiln_pack_conv_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *weights, const int32_t *bias, const int32_t *multiplier,
    const int32_t *shift, size_t round_up_channels, uint8_t *packed);

/// y[p][o] = clamp(requantize(bias[o] + sum_{t,i} w[o][t][i] * (x[tap t of p][i] - zx)) + zo) for
/// output pixels [pixel_begin, pixel_end) and the channels of panels [panel_begin, panel_end).
/// A fully connected layer is a 1x1 conv over `rows` pixels.
void kiln_conv_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output,
    size_t pixel_begin, size_t pixel_end, size_t panel_begin, size_t panel_end);

/// Bytes kiln_pack_depthwise_i8 writes: the zero-point row, seven int32 rows of channels rounded
/// up to 16 (as for conv), then taps rows of int32 weights.
size_t kiln_depthwise_i8_packed_bytes(size_t channels, size_t taps);
/// Packs `[taps][channels]` int8 weights (TFLite's 1HWC), bias and requantization.
void kiln_pack_depthwise_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *weights, const int32_t *bias, const int32_t *multiplier,
    const int32_t *shift, size_t round_up_channels, uint8_t *packed);
/// Depthwise int8 convolution (depth multiplier 1; out_c == in_c) for output rows [row_begin, row_end).
void kiln_depthwise_i8(
    kiln_isa isa, const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output,
    size_t row_begin, size_t row_end);

typedef struct {
    size_t in_h, in_w, channels;
    size_t out_h, out_w;
    size_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    int32_t min, max;
} kiln_pool_i8_params;

/// Max over each window (cells outside the input never win), output rows [row_begin, row_end).
void kiln_max_pool_i8(kiln_isa isa, const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end);
/// The rounded (half away from zero) average of the cells inside the input, clamped.
void kiln_avg_pool_i8(kiln_isa isa, const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, size_t row_end);
/// An int8 convolution followed by a max pool over its output, without that output in memory:
/// pooled rows [row_begin, row_end) of `pool` (whose input is the conv's output: in_h x in_w =
/// out_h x out_w, channels = out_c = out_pixel_stride; kernel_h at most KILN_MAX_TAPS). The conv
/// rows each pooled row needs are computed by kiln_conv_i8's tiles into `ring` (one per thread,
/// kiln_conv_max_pool_i8_ring_bytes bytes: pool->kernel_h conv rows and two rows of maxima);
/// the result equals kiln_conv_i8 then kiln_max_pool_i8 exactly.
size_t kiln_conv_max_pool_i8_ring_bytes(const kiln_conv_i8_params *conv, const kiln_pool_i8_params *pool);
void kiln_conv_max_pool_i8(
    kiln_isa isa, const kiln_conv_i8_params *conv, const kiln_pool_i8_params *pool, const int8_t *input,
    const uint8_t *packed, int8_t *ring, int8_t *output, size_t row_begin, size_t row_end);

/// TFLite's int8 MEAN over `pixels`: y[c] = clamp(requantize(sum_p x[p][c]) + bias) for channels
/// [c_begin, c_end); channels below `round_up_channels` round ties upward.
void kiln_mean_i8(
    const int8_t *input, size_t pixels, size_t channels, int8_t *output, int32_t multiplier, int32_t shift, int32_t bias,
    size_t round_up_channels, size_t c_begin, size_t c_end);

/// TFLite's int8 ADD: both inputs moved to a common scale (left shift 20, two multipliers), summed,
/// requantized to the output (every shift rounding ties away from zero).
typedef struct {
    int32_t a_zero_point, a_multiplier, a_shift;
    int32_t b_zero_point, b_multiplier, b_shift;
    int32_t left_shift, output_multiplier, output_shift, output_zero_point, min, max;
} kiln_add_i8_params;
/// y[i] = add(a[i * a_step], b[i * b_step]) for i < n; steps are 0 (broadcast) or 1. Contiguous
/// inputs run `isa`'s vector lanes (the same integers).
void kiln_add_i8(kiln_isa isa, const kiln_add_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step, int8_t *y, size_t n);

/// TFLite's int8 MUL: y = clamp(requantize((a - za) * (b - zb)) + zo).
typedef struct {
    int32_t a_zero_point, b_zero_point, multiplier, shift, output_zero_point, min, max;
} kiln_mul_i8_params;
void kiln_mul_i8(const kiln_mul_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b, size_t b_step, int8_t *y, size_t n);

/// y[i] = table[x[i] + 128] (LOGISTIC, HARD_SWISH, RELU, QUANTIZE int8 -> int8: any int8 -> int8
/// function, tabulated at prepare time). In place is allowed.
void kiln_lookup_i8(kiln_isa isa, const int8_t *table, const int8_t *x, int8_t *y, size_t n);

/// TFLite's QUANTIZE float -> int8: y = clamp(round(x / scale) + zero_point), rounding half away
/// from zero (NaN gives the zero point).
void kiln_quantize_f32_i8(kiln_isa isa, const float *x, int8_t *y, size_t n, float scale, int32_t zero_point);
/// DEQUANTIZE: y = scale * (x - zero_point).
void kiln_dequantize_i8_f32(const int8_t *x, float *y, size_t n, float scale, int32_t zero_point);

/// TFLite's int8 SOFTMAX over each of `rows` rows of n values, with the float table of
/// exponentials made by Requantize.softmaxTable (256 entries).
void kiln_softmax_i8(const int8_t *x, int8_t *y, size_t rows, size_t n, const float *table, float output_scale, int32_t output_zero_point);

/// The byte versions of the data-movement kernels (see the float ones).
void kiln_strided_copy_i8(
    const int8_t *src, int8_t *dst, size_t rank, const size_t *counts, const ptrdiff_t *src_strides, const ptrdiff_t *dst_strides);
void kiln_fill_i8(int8_t *dst, size_t count, int8_t value);
void kiln_transpose_i8(const int8_t *x, int8_t *y, size_t batch, size_t rows, size_t cols, size_t inner);
void kiln_interleave2_i8(
    const int8_t *a, size_t a_stride, const int8_t *b, size_t b_stride, int8_t *y, size_t y_stride, size_t rows, size_t count);

// MARK: - Thread pool

/// A fixed set of worker threads that run the tasks of one parallel loop at a time.
/// Workers spin briefly between loops (kernels are microseconds long), then sleep.
typedef struct kiln_thread_pool kiln_thread_pool;
/// One task of a parallel loop: `context` is the caller's, `task` in [0, tasks).
typedef void (*kiln_task_fn)(void *context, size_t task);

/// A pool with `threads` participants: the calling thread plus threads - 1 workers.
/// NULL when a thread cannot be created (or threads is 0).
kiln_thread_pool *kiln_thread_pool_create(size_t threads);
void kiln_thread_pool_destroy(kiln_thread_pool *pool);
size_t kiln_thread_pool_threads(const kiln_thread_pool *pool);
/// Runs fn(context, t) for every t in [0, tasks), on the caller and the workers; returns when
/// all are done. Performs no allocation.
void kiln_thread_pool_run(kiln_thread_pool *pool, kiln_task_fn fn, void *context, size_t tasks);

#ifdef __cplusplus
}
#endif
#endif
