// The kernels for any CPU: the compiler's baseline vectors (SSE2 on x86-64, NEON on aarch64).
#define SUFFIX portable
#define VLEN 4
#define TILE_MR 3
#define TILE_NP 1
#define KV_SPLAT(x) ((kv){(x), (x), (x), (x)})
#include "kernels_template.h"
