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

// MARK: - JPEG

/// A reusable decoder for baseline JPEGs (see kiln_jpeg_decode). Not thread-safe: one per thread.
typedef struct kiln_jpeg_decoder kiln_jpeg_decoder;

kiln_jpeg_decoder *kiln_jpeg_create(void);
void kiln_jpeg_destroy(kiln_jpeg_decoder *d);

/// Results of kiln_jpeg_decode.
typedef enum {
    /// Decoded.
    KILN_JPEG_OK = 0,
    /// A file this decoder does not handle (progressive, arithmetic, 12-bit, CMYK, RGB or
    /// 4:4:0 colour, several scans, ...): decode it with libjpeg-turbo instead.
    KILN_JPEG_UNSUPPORTED = 1,
    /// Malformed, truncated or inconsistent data: let libjpeg-turbo decide (it names the error,
    /// or decodes what it can with a warning).
    KILN_JPEG_INVALID = 2,
} kiln_jpeg_status;

/// Reads the frame header: the stored size and the number of components (1 or 3), and whether
/// this decoder supports the file. Returns KILN_JPEG_OK when kiln_jpeg_decode can decode it.
kiln_jpeg_status kiln_jpeg_probe(
    kiln_jpeg_decoder *d, const uint8_t *data, size_t size, int *width, int *height, int *components);

/// Decodes a baseline (sequential Huffman, 8-bit) JPEG of 1 component, or 3 (YCbCr 4:4:4,
/// 4:2:2 or 4:2:0), at 1/`denominator` of its size (1, 2, 4 or 8; rounded up as libjpeg does),
/// into `out`: rows of ceil(width / denominator) pixels, `out_stride` bytes apart, `channels`
/// samples each (grey: 1, or 3 with replication; colour: 3). It computes what libjpeg-turbo
/// computes (the IDCT scaled in the DCT domain, chroma IDCTs scaled up instead of upsampled
/// where the subsampling allows, triangle-filter upsampling otherwise, JFIF YCbCr to RGB), in
/// float: results agree with libjpeg-turbo's within 4 levels, under 0.1 on average (tested).
kiln_jpeg_status kiln_jpeg_decode(
    kiln_image_isa isa, kiln_jpeg_decoder *d, const uint8_t *data, size_t size, int denominator, uint8_t *out,
    size_t out_stride, int channels);

#ifdef __cplusplus
}
#endif
#endif
