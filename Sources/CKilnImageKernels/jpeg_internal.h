// The baseline JPEG decoder's state, shared by its ISA-independent part (jpeg_common.c: markers,
// Huffman tables, entropy-coded segments) and its per-ISA part (jpeg_template.h: Huffman
// decoding, IDCT, colour conversion). Terms and tables follow ITU-T T.81 (the JPEG standard).
#ifndef KILN_JPEG_INTERNAL_H
#define KILN_JPEG_INTERNAL_H
#include "internal.h"

/// Bits of look-ahead of the Huffman tables: codes up to this length decode with one lookup;
/// AC codes whose code and extra bits fit decode value and all with one lookup.
#define KJ_FAST_BITS 11
#define KJ_FAST_SIZE (1 << KJ_FAST_BITS)

/// One Huffman table (T.81 Annex C), with its decoding tables.
typedef struct {
    /// AC only: (value << 16) | (flags << 12) | (run << 8) | bits consumed, for look-ahead
    /// patterns holding a whole coefficient (code + extra bits); 0 otherwise.
    int32_t fast[KJ_FAST_SIZE];
    /// (code length << 8) | symbol for patterns starting with a code of at most KJ_FAST_BITS
    /// bits; 0 for longer codes.
    uint16_t lookup[KJ_FAST_SIZE];
    /// For codes longer than KJ_FAST_BITS: limit[l] = (largest code of length l + 1) << (16 - l),
    /// the exclusive bound of 16-bit left-aligned patterns with a code of length <= l.
    uint32_t limit[18];
    /// symbol index = code + offset[l] for a code of length l.
    int32_t offset[17];
    uint8_t symbols[256];
    int defined;
    /// A symbol above 15: not a DC table.
    int bad_dc;
} kj_table;

/// Flags of a fast AC entry.
#define KJ_FAST_EOB 1

typedef struct {
    int id, h, v, tq, td, ta;
    /// Blocks per MCU row and per column of the whole (padded) component.
    int bw, bh;
    /// IDCT output size of this component (8 / denominator, or larger for subsampled chroma).
    int scaled;
    /// The component's plane: bw * scaled by bh * scaled samples.
    int plane_stride;
    uint8_t *plane;
} kj_component;

struct kiln_jpeg_decoder {
    int width, height, ncomp;
    kj_component comp[3];
    /// Scan order: component indices of the (single, interleaved) scan.
    int scan[3];
    int hmax, vmax;
    /// Dequantization tables in zig-zag order (T.81 figure A.6), as floats.
    float qt[4][64];
    int qt_defined[4];
    kj_table dc[4], ac[4];
    int restart_interval;
    /// Where the first scan's entropy-coded data starts.
    size_t scan_offset;
    /// The entropy-coded data with stuffed bytes removed, split at restart markers into
    /// segments [segment[i], segment[i + 1]), zero padded past the end.
    uint8_t *entropy;
    size_t entropy_capacity;
    size_t *segments;
    size_t segment_capacity, segment_count;
    uint8_t *planes;
    size_t planes_capacity;
    /// 1 when the file's data checked out up to the frame (kiln_jpeg_parse ran).
    int parsed;
    /// File-independent tables, made once by kiln_jpeg_create: the IDCT bases for 8, 4 and 2
    /// outputs (T[u][x] = A_N[x][u], see jpeg_template.h), and for each zig-zag index k the
    /// number of coefficient rows positions 0...k reach (the dense IDCT skips the others).
    float basis[3][64];
    uint8_t rows_of[64];
};

/// Zig-zag index -> natural (row-major) index within an 8x8 block.
extern const uint8_t kj_natural[64 + 16];

/// Parses markers up to the first scan; fills the frame, tables and scan order.
kiln_jpeg_status kj_parse(kiln_jpeg_decoder *d, const uint8_t *data, size_t size);
/// Copies the entropy-coded data after the scan header, removing stuffing and splitting it at
/// restart markers.
kiln_jpeg_status kj_destuff(kiln_jpeg_decoder *d, const uint8_t *data, size_t size);
/// Sets each component's IDCT size and plane for a decode at 1/denominator; allocates planes.
kiln_jpeg_status kj_layout(kiln_jpeg_decoder *d, int denominator);

#define KJ_DECLARE_ISA(suffix)                                                                              \
    kiln_jpeg_status kj_decode_##suffix(kiln_jpeg_decoder *d, int denominator, uint8_t *out, size_t out_stride, \
                                        int channels);
KJ_DECLARE_ISA(portable)
#if defined(__x86_64__)
KJ_DECLARE_ISA(avx2)
KJ_DECLARE_ISA(avx512)
#endif

#endif
