// The kernels for aarch64 with NEON (4-float vectors, 32 registers): a taller conv tile than
// the portable build, which targets the 16 registers of SSE2.
#if defined(__aarch64__)
#include <arm_neon.h>
#define SUFFIX neon
#define VLEN 4
#define TILE_MR 6
#define TILE_NP 1
#define KV_SPLAT(x) ((kv)vdupq_n_f32(x))
#include "kernels_template.h"
#endif
