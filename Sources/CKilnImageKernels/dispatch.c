// Instruction-set detection and dispatch for the image kernels.
#include "internal.h"
#include <stdlib.h>
#include <string.h>

int kiln_image_isa_supported(kiln_image_isa isa) {
    switch (isa) {
    case KILN_IMAGE_ISA_PORTABLE: return 1;
#if defined(__x86_64__)
    case KILN_IMAGE_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KILN_IMAGE_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

static kiln_image_isa detect_best(void) {
    kiln_image_isa best = KILN_IMAGE_ISA_PORTABLE;
    if (kiln_image_isa_supported(KILN_IMAGE_ISA_AVX2)) best = KILN_IMAGE_ISA_AVX2;
    if (kiln_image_isa_supported(KILN_IMAGE_ISA_AVX512)) best = KILN_IMAGE_ISA_AVX512;
    const char *cap = getenv("KILN_ISA");
    if (cap) {
        if (strcmp(cap, "portable") == 0) best = KILN_IMAGE_ISA_PORTABLE;
        else if (strcmp(cap, "avx2") == 0 && best > KILN_IMAGE_ISA_AVX2) best = KILN_IMAGE_ISA_AVX2;
    }
    return best;
}

kiln_image_isa kiln_image_isa_best(void) {
    // Racing first calls compute the same value; int-sized stores are atomic on every target.
    static volatile int cached = -1;
    int v = cached;
    if (v < 0) {
        v = (int)detect_best();
        cached = v;
    }
    return (kiln_image_isa)v;
}

size_t kiln_resample_scratch_count(const kiln_resample_params *p) {
    size_t span = (p->col_end - p->col_begin) * p->in_channels;
    size_t pad = (p->horizontal.taps + 2) * p->in_channels + 16;
    size_t row = p->out_width * p->out_channels;
    return span + pad + row + 4 + 2 * row;
}

void kiln_resample_f32(kiln_image_isa isa, const kiln_resample_params *p, float *scratch, float *out) {
    switch (isa) {
#if defined(__x86_64__)
    case KILN_IMAGE_ISA_AVX512: kiln_resample_f32_avx512(p, scratch, out); return;
    case KILN_IMAGE_ISA_AVX2: kiln_resample_f32_avx2(p, scratch, out); return;
#endif
    default: kiln_resample_f32_portable(p, scratch, out); return;
    }
}

void kiln_resample_i8(kiln_image_isa isa, const kiln_resample_params *p, float *scratch, int8_t *out) {
    switch (isa) {
#if defined(__x86_64__)
    case KILN_IMAGE_ISA_AVX512: kiln_resample_i8_avx512(p, scratch, out); return;
    case KILN_IMAGE_ISA_AVX2: kiln_resample_i8_avx2(p, scratch, out); return;
#endif
    default: kiln_resample_i8_portable(p, scratch, out); return;
    }
}
