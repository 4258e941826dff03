// Declarations shared by the per-instruction-set kernel files (not part of the public API).
#ifndef KILN_INTERNAL_H
#define KILN_INTERNAL_H
#include "CKilnKernels.h"

#define KILN_DECLARE_ISA(suffix)                                                                          \
    void kiln_conv_f32_##suffix(const kiln_conv_params *p, const float *input, const float *packed,        \
                                float *output, size_t pixel_begin, size_t pixel_end, size_t panel_begin,   \
                                size_t panel_end);                                                         \
    void kiln_depthwise_f32_##suffix(const kiln_conv_params *p, const float *input, const float *packed,   \
                                     float *output, size_t row_begin, size_t row_end);                     \
    void kiln_max_pool_f32_##suffix(const kiln_pool_params *p, const float *input, float *output,          \
                                    size_t row_begin, size_t row_end);                                     \
    void kiln_avg_pool_f32_##suffix(const kiln_pool_params *p, const float *input, float *output,          \
                                    size_t row_begin, size_t row_end);                                     \
    void kiln_mean_pixels_f32_##suffix(const float *input, size_t pixels, size_t channels, float *output,  \
                                       size_t c_begin, size_t c_end);                                      \
    void kiln_binary_f32_##suffix(kiln_binary_op op, const float *a, size_t a_step, const float *b,        \
                                  size_t b_step, float *y, size_t n, float min, float max);                \
    void kiln_unary_f32_##suffix(kiln_unary_op op, const float *x, float *y, size_t n, float min, float max);  \
    void kiln_conv_max_pool_f32_##suffix(const kiln_conv_params *conv, const kiln_pool_params *pool,             \
                                         const float *input, const float *packed, float *ring, float *output,  \
                                         size_t row_begin, size_t row_end);

KILN_DECLARE_ISA(portable)
#if defined(__x86_64__)
KILN_DECLARE_ISA(avx2)
KILN_DECLARE_ISA(avx512)
#endif
#if defined(__aarch64__)
KILN_DECLARE_ISA(neon)
#endif

static inline size_t kiln_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

#endif
