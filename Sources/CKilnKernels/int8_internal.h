// Declarations and exact scalar arithmetic shared by the int8 kernel files (not public API).
#ifndef KILN_INT8_INTERNAL_H
#define KILN_INT8_INTERNAL_H
#include "CKilnKernels.h"
#include <limits.h>
#include <string.h>

/// Bytes of the zero-point row at the start of packed conv and depthwise weights.
static inline size_t kiln_i8_pad_bytes(size_t in_c) { return (in_c + 4 + 63) / 64 * 64; }

/// gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties up, saturating the
/// one overflow case.
static inline int32_t kiln_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1ll << 30) : (1ll - (1ll << 30));
    return (int32_t)((ab + nudge) / (1ll << 31));
}

/// x / 2^e rounded; ties away from zero (`away` != 0, gemmlowp's RoundingDivideByPOT) or upward.
/// Written without a nudge add so that it cannot overflow.
static inline int32_t kiln_rounding_shift(int32_t x, int e, int away) {
    if (e == 0) return x;
    int32_t mask = (int32_t)((1u << e) - 1u);
    int32_t rem = x & mask;
    int32_t threshold = (mask >> 1) + ((away && x < 0) ? 1 : 0);
    return (x >> e) + (rem > threshold ? 1 : 0);
}

/// x * multiplier * 2^(shift - 31) with TFLite's left shift first (wrapping), the rounding high
/// multiply, then the rounding right shift.
static inline int32_t kiln_requant(int32_t x, int32_t multiplier, int32_t shift, int away) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int32_t shifted = left >= 32 ? 0 : (int32_t)((uint32_t)x << left);
    return kiln_rounding_shift(kiln_srdhm(shifted, multiplier), right > 31 ? 31 : right, away);
}

static inline int32_t kiln_clamp_i32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/// Rows of requantization parameters before the packed weights of every panel (conv) or of all
/// channels (depthwise).
#define KILN_I8_ROWS 7

/// The requantization rows of packed weights: bias (with the zero-point correction),
/// multiplier, left shift, right shift, -1 where ties round away from zero, the right shift
/// minus one (32 for no shift: a logical shift by it gives 0), and 1 in every lane of a block of
/// 16 channels that needs neither left shifts nor ties away from zero (the cheap epilogue).
typedef struct {
    const int32_t *bias, *multiplier, *left, *right, *away, *rm1, *simple;
} kiln_i8_rows;

#define KILN_I8_DECLARE(suffix)                                                                                          \
    void kiln_conv_i8_##suffix(const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed, int8_t *output, \
                               size_t pixel_begin, size_t pixel_end, size_t panel_begin, size_t panel_end);             \
    void kiln_depthwise_i8_##suffix(const kiln_conv_i8_params *p, const int8_t *input, const uint8_t *packed,           \
                                    int8_t *output, size_t row_begin, size_t row_end);                                   \
    void kiln_max_pool_i8_##suffix(const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, \
                                   size_t row_end);                                                                      \
    void kiln_avg_pool_i8_##suffix(const kiln_pool_i8_params *p, const int8_t *input, int8_t *output, size_t row_begin, \
                                   size_t row_end);                                                                      \
    void kiln_conv_max_pool_i8_##suffix(const kiln_conv_i8_params *conv, const kiln_pool_i8_params *pool,              \
                                        const int8_t *input, const uint8_t *packed, int8_t *ring, int8_t *output,        \
                                        size_t row_begin, size_t row_end);                                               \
    void kiln_requantize_i32_i8_##suffix(const int32_t *x, size_t n, const int32_t *multiplier, const int32_t *shift,    \
                                         const int32_t *round_up, int32_t zero_point, int32_t min, int32_t max,          \
                                         int8_t *y);                                                                     \
    void kiln_lookup_i8_##suffix(const int8_t *table, const int8_t *x, int8_t *y, size_t n);                            \
    void kiln_add_i8_##suffix(const kiln_add_i8_params *p, const int8_t *a, size_t a_step, const int8_t *b,              \
                              size_t b_step, int8_t *y, size_t n);                                                       \
    void kiln_quantize_f32_i8_##suffix(const float *x, int8_t *y, size_t n, float scale, int32_t zero_point);

KILN_I8_DECLARE(portable)
#if defined(__x86_64__)
KILN_I8_DECLARE(avx2)
KILN_I8_DECLARE(vnni)
#endif
#if defined(__aarch64__)
KILN_I8_DECLARE(neondot)
#endif

#endif
