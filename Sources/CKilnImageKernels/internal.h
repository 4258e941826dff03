// Declarations shared by the per-instruction-set files (not part of the public API).
#ifndef KILN_IMAGE_INTERNAL_H
#define KILN_IMAGE_INTERNAL_H
#include "CKilnImageKernels.h"

#define KILN_IMAGE_DECLARE_ISA(suffix)                                                                  \
    void kiln_resample_f32_##suffix(const kiln_resample_params *p, float *scratch, float *out);         \
    void kiln_resample_i8_##suffix(const kiln_resample_params *p, float *scratch, int8_t *out);

KILN_IMAGE_DECLARE_ISA(portable)
#if defined(__x86_64__)
KILN_IMAGE_DECLARE_ISA(avx2)
KILN_IMAGE_DECLARE_ISA(avx512)
#endif
#endif
