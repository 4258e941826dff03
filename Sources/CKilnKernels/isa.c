// Instruction-set detection, done once.
#include "CKilnKernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/// What the CPU reports and the OS has enabled (XSAVE state for YMM and ZMM registers).
static int detect_x86(kiln_isa isa) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx || !fma) return 0;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return 0;  // SSE and AVX state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    if (isa == KILN_ISA_AVX2) return avx2;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if ((xcr0 & 0xE0) != 0xE0) return 0;  // opmask, ZMM0-15 upper halves, ZMM16-31
    return isa == KILN_ISA_AVX512 && avx2 && avx512f && avx512dq && avx512bw && avx512vl;
}
#endif

int kiln_isa_supported(kiln_isa isa) {
    switch (isa) {
    case KILN_ISA_PORTABLE: return 1;
#if defined(__x86_64__)
    case KILN_ISA_AVX2:
    case KILN_ISA_AVX512: return detect_x86(isa);
#endif
#if defined(__aarch64__)
    case KILN_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

static kiln_isa detect_best(void) {
    kiln_isa best = KILN_ISA_PORTABLE;
#if defined(__x86_64__)
    if (kiln_isa_supported(KILN_ISA_AVX2)) best = KILN_ISA_AVX2;
    if (kiln_isa_supported(KILN_ISA_AVX512)) best = KILN_ISA_AVX512;
#elif defined(__aarch64__)
    best = KILN_ISA_NEON;
#endif
    const char *cap = getenv("KILN_ISA");
    if (cap) {
        kiln_isa wanted = best;
        if (strcmp(cap, "portable") == 0) wanted = KILN_ISA_PORTABLE;
        else if (strcmp(cap, "avx2") == 0) wanted = KILN_ISA_AVX2;
        else if (strcmp(cap, "avx512") == 0) wanted = KILN_ISA_AVX512;
        else if (strcmp(cap, "neon") == 0) wanted = KILN_ISA_NEON;
        if (kiln_isa_supported(wanted) && (wanted == KILN_ISA_PORTABLE || wanted <= best)) best = wanted;
    }
    return best;
}

kiln_isa kiln_isa_best(void) {
    // Racing first calls compute the same value; int-sized stores are atomic on every target.
    static volatile int cached = -1;
    int v = cached;
    if (v < 0) {
        v = (int)detect_best();
        cached = v;
    }
    return (kiln_isa)v;
}
