// zlib, for gzip'd IDX files (inflate with gzip header detection).
#include <zlib.h>

// inflateInit2 is a macro; Swift cannot call it, so wrap it.
static inline int kiln_inflate_init_gzip(z_stream *strm) {
    return inflateInit2(strm, 15 + 32);  // 32: detect zlib or gzip headers automatically
}
