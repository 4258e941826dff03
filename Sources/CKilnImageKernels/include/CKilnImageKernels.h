// CKilnImageKernels: the innermost loops of KilnImage's preprocessing, in C compiled once per
// instruction set (portable, AVX2+FMA, AVX-512) and chosen at run time.
//
// Layout legend: source pixels are 8-bit HWC rows (`src_stride` bytes apart, `in_channels`
// interleaved samples per pixel); the output is one image's model input, float32 or int8, NCHW
// (planes of out_h x out_w) or NHWC (rows of out_w x out_channels). The Swift orchestration is
// KilnImage's `Preprocessor`; this header is its only interface.
#ifndef CKILNIMAGEKERNELS_H
#define CKILNIMAGEKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction sets the image kernels are compiled for.
typedef enum {
    KILN_IMAGE_ISA_PORTABLE = 0,
    KILN_IMAGE_ISA_AVX2 = 1,
    KILN_IMAGE_ISA_AVX512 = 2,
} kiln_image_isa;

/// The best instruction set this CPU supports (KILN_ISA=portable|avx2|avx512 caps it, as for
/// the model kernels).
kiln_image_isa kiln_image_isa_best(void);
/// 1 when this CPU can run the kernels compiled for `isa`.
int kiln_image_isa_supported(kiln_image_isa isa);

/// One axis of a separable resampling: output k reads inputs [start[k], start[k] + count[k])
/// with weights[k * taps + i] (zero beyond count[k]).
typedef struct {
    const int32_t *start;
    const int32_t *count;
    const float *weights;
    size_t taps;
} kiln_resample_axis;

/// The fused pass: antialiased resampling (vertical, then horizontal, in float), then
/// `value * scale[c] + shift[c]` per output channel (value on the 0..255 scale), written as
/// float, or rounded half away from zero, offset by `zero_point` and clamped to int8.
typedef struct {
    const uint8_t *src;
    size_t src_width, src_height, src_stride;
    /// 1 or 3. A 1-channel source feeds every output channel (grey to RGB).
    size_t in_channels;
    /// 1 or 3; equal to in_channels or 3 with in_channels == 1.
    size_t out_channels;
    size_t out_width, out_height;
    kiln_resample_axis horizontal, vertical;
    /// Source columns [col_begin, col_end) that the horizontal axis reads.
    size_t col_begin, col_end;
    float scale[3], shift[3];
    int32_t zero_point;
    /// 1: planar output (NCHW), 0: interleaved (NHWC).
    int planar;
} kiln_resample_params;

/// Floats of scratch memory kiln_resample_* needs for `p`.
size_t kiln_resample_scratch_count(const kiln_resample_params *p);

/// Resamples and normalises into `out` (out_channels * out_height * out_width floats).
void kiln_resample_f32(kiln_image_isa isa, const kiln_resample_params *p, float *scratch, float *out);
/// Resamples, normalises and quantizes into `out` (out_channels * out_height * out_width int8).
void kiln_resample_i8(kiln_image_isa isa, const kiln_resample_params *p, float *scratch, int8_t *out);

#ifdef __cplusplus
}
#endif
#endif
