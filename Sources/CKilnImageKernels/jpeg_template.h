// The baseline JPEG decoder's per-instruction-set part: Huffman decoding of the MCUs, the
// scaled inverse DCT, upsampling and YCbCr -> RGB. The including file defines SUFFIX and wraps
// the include in `#pragma clang attribute push(target(...))`.
//
// Huffman decoding reads the destuffed data through a 64-bit big-endian bit buffer refilled
// without branches (8-byte loads; the buffer is zero padded), and decodes most AC coefficients
// (code + extra bits within KJ_FAST_BITS) with one table lookup that yields run, value and length.
//
// The IDCT of an 8x8 block to N x N samples (N = 8, 4, 2, 1) is out = A F A^T with
//     A[k][u] = C(u) / 2 * mean_{j < 8/N} cos((2 ((8/N) k + j) + 1) u pi / 16),  C(0) = 1/sqrt 2, else 1,
// the 8-point IDCT averaged over groups of 8/N outputs: what libjpeg's reduced-size IDCTs
// compute (N = 8 is the plain IDCT), here in float, rows and columns beyond the last non-zero
// coefficient skipped.
#include "jpeg_internal.h"
#include <string.h>

// Vector arguments of always-inline helpers never cross an ABI boundary.
#pragma clang diagnostic ignored "-Wpsabi"

#define KJ_CAT2(a, b) a##_##b
#define KJ_CAT(a, b) KJ_CAT2(a, b)
#define KJ_FN(name) KJ_CAT(name, SUFFIX)
#define KJ_INLINE static inline __attribute__((always_inline))

typedef float kjf8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float kjf4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef float kjf2 __attribute__((vector_size(8), aligned(4), may_alias));
typedef int32_t kji8 __attribute__((vector_size(32), aligned(4)));
typedef int32_t kji4 __attribute__((vector_size(16), aligned(4)));
typedef int32_t kji16 __attribute__((vector_size(64), aligned(4)));
typedef uint8_t kjb8 __attribute__((vector_size(8), aligned(1), may_alias));
typedef uint8_t kjb4 __attribute__((vector_size(4), aligned(1), may_alias));
typedef uint8_t kjb16 __attribute__((vector_size(16), aligned(1), may_alias));
typedef uint8_t kjb32 __attribute__((vector_size(32), aligned(1), may_alias));

typedef struct {
    uint64_t buf;
    int cnt;
    const uint8_t *p;
} kj_bits;

KJ_INLINE uint64_t kj_load_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/// Tops the buffer up to at least 56 valid bits.
KJ_INLINE void kj_refill(kj_bits *b) {
    b->buf |= kj_load_be64(b->p) >> b->cnt;
    b->p += (63 - b->cnt) >> 3;
    b->cnt |= 56;
}

KJ_INLINE unsigned kj_peek(const kj_bits *b, int n) { return (unsigned)(b->buf >> (64 - n)); }
KJ_INLINE void kj_consume(kj_bits *b, int n) {
    b->buf <<= n;
    b->cnt -= n;
}
/// `s` bits as a signed coefficient (T.81 F.12, EXTEND); s in 1...16.
KJ_INLINE int kj_extend(unsigned v, int s) { return v < (1u << (s - 1)) ? (int)v - (1 << s) + 1 : (int)v; }

/// A symbol whose code is longer than KJ_FAST_BITS; -1 for a pattern that is no code.
KJ_INLINE int kj_slow_symbol(kj_bits *b, const kj_table *t) {
    unsigned c16 = kj_peek(b, 16);
    int l = KJ_FAST_BITS + 1;
    while (l <= 16 && c16 >= t->limit[l]) l++;
    if (l > 16) return -1;
    int index = (int)(c16 >> (16 - l)) + t->offset[l];
    if (index < 0 || index > 255) return -1;
    kj_consume(b, l);
    return t->symbols[index];
}

typedef float kjf16 __attribute__((vector_size(64), aligned(4), may_alias));

/// How a block's coefficients are used: stored for a separable IDCT (8x8 outputs), or
/// accumulated straight into the outputs (`out += value * K[k]`, with K[k] the dequantized
/// basis image of zig-zag coefficient k: sparse blocks cost one FMA per coefficient), or, for
/// 1x1 outputs, only the DC term (the AC terms of an 8-sample average are zero).
enum { KJ_DENSE = 0, KJ_SPARSE16 = 1, KJ_SPARSE4 = 2, KJ_DC = 3 };

/// Decodes one block. DENSE: dequantized coefficients into `blk` (zeroed here), natural order;
/// SPARSE16/SPARSE4: outputs into *acc16/*acc4 from the basis images `kb` (16 or 4 floats per
/// zig-zag index, 80 indices). Returns the zig-zag index of the last coefficient (0: DC only),
/// or -1 on bad data.
KJ_INLINE int kj_block(kj_bits *b, const kj_table *dc, const kj_table *ac, const float *q, const float *kb, int mode,
                       float *blk, kjf16 *acc16, kjf4 *acc4, int *pred) {
    if (mode == KJ_DENSE) memset(blk, 0, 64 * sizeof(float));
    kj_refill(b);
    int s;
    unsigned e = dc->lookup[kj_peek(b, KJ_FAST_BITS)];
    if (e) {
        kj_consume(b, (int)(e >> 8));
        s = (int)(e & 0xFF);
    } else {
        s = kj_slow_symbol(b, dc);
        if (s < 0) return -1;
    }
    if (s > 11) return -1;
    if (s) {
        int diff = kj_extend(kj_peek(b, s), s);
        kj_consume(b, s);
        *pred += diff;
    }
    float dcv = (float)*pred;
    kjf16 a16 = {}, b16 = {};
    kjf4 a4 = {};
    if (mode == KJ_DENSE) blk[0] = dcv * q[0];
    if (mode == KJ_SPARSE16) a16 = *(const kjf16 *)kb * dcv;
    if (mode == KJ_SPARSE4) a4 = *(const kjf4 *)kb * dcv;
    int k = 1, last = 0, odd = 0;
#define KJ_EMIT(kk, value)                                                                     \
    do {                                                                                       \
        float v_ = (float)(value);                                                             \
        if (mode == KJ_DENSE) blk[kj_natural[kk]] = v_ * q[kk];                                \
        if (mode == KJ_SPARSE16) {                                                             \
            if (odd) b16 += *(const kjf16 *)(kb + 16 * (kk)) * v_;                             \
            else a16 += *(const kjf16 *)(kb + 16 * (kk)) * v_;                                 \
            odd ^= 1;                                                                          \
        }                                                                                      \
        if (mode == KJ_SPARSE4) a4 += *(const kjf4 *)(kb + 4 * (kk)) * v_;                     \
    } while (0)
    // Refilled once per four fast coefficients (each at most KJ_FAST_BITS bits of the 56 a
    // refill guarantees): the refill's load is then off the lookup -> shift dependency chain.
    while (k < 64) {
        kj_refill(b);
        for (int j = 0; j < 4; j++) {
            int32_t f = ac->fast[kj_peek(b, KJ_FAST_BITS)];
            if (__builtin_expect(f == 0, 0)) goto slow;
            kj_consume(b, f & 0xFF);
            if (f & (KJ_FAST_EOB << 12)) goto done;
            k += (f >> 8) & 15;
            KJ_EMIT(k, f >> 16);
            last = k;
            if (++k >= 64) goto done;
        }
        continue;
    slow:
        kj_refill(b);
        {
            int sym;
            unsigned le = ac->lookup[kj_peek(b, KJ_FAST_BITS)];
            if (le) {
                kj_consume(b, (int)(le >> 8));
                sym = (int)(le & 0xFF);
            } else {
                sym = kj_slow_symbol(b, ac);
                if (sym < 0) return -1;
            }
            int r = sym >> 4;
            s = sym & 15;
            if (s == 0) {
                if (r != 15) goto done;
                k += 16;
                continue;
            }
            k += r;
            int v = kj_extend(kj_peek(b, s), s);
            kj_consume(b, s);
            KJ_EMIT(k, v);
            last = k;
            k++;
        }
    }
done:
#undef KJ_EMIT
    if (mode == KJ_SPARSE16) *acc16 = a16 + b16;
    if (mode == KJ_SPARSE4) *acc4 = a4;
    if (mode == KJ_DC) *acc4 = (kjf4){} + dcv * kb[0];
    return last > 63 ? 63 : last;
}

KJ_INLINE kjf8 kj_round8(kjf8 v) {
    v = __builtin_elementwise_floor(v + 128.5f);
    v = __builtin_elementwise_max(v, (kjf8){} + 0.0f);
    return __builtin_elementwise_min(v, (kjf8){} + 255.0f);
}
KJ_INLINE kjf4 kj_round4(kjf4 v) {
    v = __builtin_elementwise_floor(v + 128.5f);
    v = __builtin_elementwise_max(v, (kjf4){} + 0.0f);
    return __builtin_elementwise_min(v, (kjf4){} + 255.0f);
}
KJ_INLINE uint8_t kj_round1(float v) {
    v = __builtin_floorf(v + 128.5f);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/// 8x8 samples from one block of dequantized coefficients (natural order): out = A F A^T with
/// `t` the basis T[u][x] = A[x][u]; rows past `rows` are zero.
KJ_INLINE void kj_idct8(const float *blk, const float *t, int rows, uint8_t *dst, size_t stride) {
    kjf8 p[8];
    kjf8 t0 = *(const kjf8 *)t, t1 = *(const kjf8 *)(t + 8), t2 = *(const kjf8 *)(t + 16), t3 = *(const kjf8 *)(t + 24);
    kjf8 t4 = *(const kjf8 *)(t + 32), t5 = *(const kjf8 *)(t + 40), t6 = *(const kjf8 *)(t + 48), t7 = *(const kjf8 *)(t + 56);
    for (int v = 0; v < rows; v++) {
        const float *f = blk + 8 * v;
        p[v] = (t0 * f[0] + t1 * f[1]) + (t2 * f[2] + t3 * f[3]) + ((t4 * f[4] + t5 * f[5]) + (t6 * f[6] + t7 * f[7]));
    }
    for (int y = 0; y < 8; y++) {
        kjf8 acc = p[0] * t[y];
        for (int v = 1; v < rows; v++) acc += p[v] * t[8 * v + y];
        *(kjb8 *)(dst + (size_t)y * stride) = __builtin_convertvector(__builtin_convertvector(kj_round8(acc), kji8), kjb8);
    }
}

/// YCbCr -> RGB, JFIF's equations in libjpeg's 16-bit fixed point:
///     R = Y + 1.40200 (Cr - 128), G = Y - 0.34414 (Cb - 128) - 0.71414 (Cr - 128), B = Y + 1.77200 (Cb - 128)
KJ_INLINE void kj_ycc_row(const uint8_t *y, const uint8_t *cb, const uint8_t *cr, uint8_t *out, int w) {
    int x = 0;
    for (; x + 16 <= w; x += 16) {
        kji16 yy = __builtin_convertvector(*(const kjb16 *)(y + x), kji16);
        kji16 b = __builtin_convertvector(*(const kjb16 *)(cb + x), kji16) - 128;
        kji16 r = __builtin_convertvector(*(const kjb16 *)(cr + x), kji16) - 128;
        kji16 rr = yy + ((r * 91881 + 32768) >> 16);
        kji16 gg = yy + ((b * -22554 + r * -46802 + 32768) >> 16);
        kji16 bb = yy + ((b * 116130 + 32768) >> 16);
        kji16 lo = (kji16){} + 0, hi = (kji16){} + 255;
        rr = __builtin_elementwise_min(__builtin_elementwise_max(rr, lo), hi);
        gg = __builtin_elementwise_min(__builtin_elementwise_max(gg, lo), hi);
        bb = __builtin_elementwise_min(__builtin_elementwise_max(bb, lo), hi);
        kjb16 r8 = __builtin_convertvector(rr, kjb16), g8 = __builtin_convertvector(gg, kjb16), b8 = __builtin_convertvector(bb, kjb16);
        kjb32 rg = __builtin_shufflevector(r8, g8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                           21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
        kjb32 bz = __builtin_shufflevector(b8, b8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5,
                                           6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        kjb32 first = __builtin_shufflevector(rg, bz, 0, 16, 32, 1, 17, 33, 2, 18, 34, 3, 19, 35, 4, 20, 36, 5, 21, 37, 6,
                                              22, 38, 7, 23, 39, 8, 24, 40, 9, 25, 41, 10, 26);
        kjb16 last = __builtin_shufflevector(rg, bz, 42, 11, 27, 43, 12, 28, 44, 13, 29, 45, 14, 30, 46, 15, 31, 47);
        memcpy(out + 3 * x, &first, 32);
        memcpy(out + 3 * x + 32, &last, 16);
    }
    for (; x < w; x++) {
        int yy = y[x], b = cb[x] - 128, r = cr[x] - 128;
        int rr = yy + ((r * 91881 + 32768) >> 16);
        int gg = yy + ((b * -22554 + r * -46802 + 32768) >> 16);
        int bb = yy + ((b * 116130 + 32768) >> 16);
        out[3 * x] = (uint8_t)(rr < 0 ? 0 : rr > 255 ? 255 : rr);
        out[3 * x + 1] = (uint8_t)(gg < 0 ? 0 : gg > 255 ? 255 : gg);
        out[3 * x + 2] = (uint8_t)(bb < 0 ? 0 : bb > 255 ? 255 : bb);
    }
}

/// One chroma row brought to luma resolution: horizontally doubled (fx = 2) and/or built from
/// two rows (fy = 2), with libjpeg's triangle filters ("fancy" upsampling: 3/4 of the nearer
/// sample, 1/4 of the farther, rounding biases alternating to avoid drift), or by replication
/// when `fancy` is off. `near`/`far` are chroma rows of `n` valid samples; `w` outputs.
static void kj_upsample_row(const uint8_t *near, const uint8_t *far, int n, int fx, int fy, int fancy, uint8_t *out,
                            int w) {
    if (!fancy) {
        for (int x = 0; x < w; x++) out[x] = near[fx == 2 ? (x / 2 < n ? x / 2 : n - 1) : (x < n ? x : n - 1)];
        return;
    }
    if (fy == 1) {  // h2v1: out[2i] = (3 in[i] + in[i-1] + 1) / 4, out[2i+1] = (3 in[i] + in[i+1] + 2) / 4
        for (int i = 0; i < n && 2 * i < w; i++) {
            int c = near[i] * 3;
            out[2 * i] = (uint8_t)(i == 0 ? near[0] : (c + near[i - 1] + 1) >> 2);
            if (2 * i + 1 < w) out[2 * i + 1] = (uint8_t)(i == n - 1 ? near[i] : (c + near[i + 1] + 2) >> 2);
        }
        return;
    }
    // h2v2: column sums 3 * near + far, then the horizontal triangle.
    if (n == 1) {
        int s = near[0] * 3 + far[0];
        for (int x = 0; x < w; x++) out[x] = (uint8_t)((s * 4 + (x % 2 ? 7 : 8)) >> 4);
        return;
    }
    for (int i = 0; i < n && 2 * i < w; i++) {
        int c = near[i] * 3 + far[i];
        int l = i == 0 ? c : near[i - 1] * 3 + far[i - 1];
        int r = i == n - 1 ? c : near[i + 1] * 3 + far[i + 1];
        out[2 * i] = (uint8_t)(i == 0 ? (c * 4 + 8) >> 4 : (c * 3 + l + 8) >> 4);
        if (2 * i + 1 < w) out[2 * i + 1] = (uint8_t)(i == n - 1 ? (c * 4 + 7) >> 4 : (c * 3 + r + 7) >> 4);
    }
}

kiln_jpeg_status KJ_FN(kj_decode)(kiln_jpeg_decoder *d, int denominator, uint8_t *out, size_t out_stride, int channels) {
    const float *t8 = d->basis[0], *t4 = d->basis[1], *t2 = d->basis[2];
    float q[3][80] __attribute__((aligned(64)));
    // Basis images per component, dequantized, by zig-zag index (80: corrupt runs land on 63).
    float kb[3][80 * 16] __attribute__((aligned(64)));
    float blk[64] __attribute__((aligned(64)));
    const uint8_t *rows_of = d->rows_of;
    int mode[3];
    for (int i = 0; i < d->ncomp; i++) {
        kj_component *c = &d->comp[i];
        for (int k = 0; k < 64; k++) q[i][k] = d->qt[c->tq][k];
        for (int k = 64; k < 80; k++) q[i][k] = d->qt[c->tq][63];
        int n = c->scaled;
        mode[i] = n == 8 ? KJ_DENSE : n == 4 ? KJ_SPARSE16 : n == 2 ? KJ_SPARSE4 : KJ_DC;
        const float *t = n == 4 ? t4 : t2;
        if (n == 4 || n == 2) {
            for (int k = 0; k < 80; k++) {
                int nat = kj_natural[k], v = nat / 8, u = nat % 8;
                for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++) kb[i][n * n * k + n * y + x] = q[i][k] * t[8 * v + y] * t[8 * u + x];
            }
        } else if (n == 1) {
            kb[i][0] = q[i][0] * 0.125f;  // the block's mean: DC / 8
        }
    }
    // MCUs: interleaved scans have hmax x vmax luma blocks and one block of each chroma
    // component per MCU; a one-component scan has one block per MCU.
    int mcux, mcuy;
    if (d->ncomp == 1) {
        mcux = d->comp[0].bw;
        mcuy = d->comp[0].bh;
    } else {
        mcux = d->comp[0].bw / d->comp[0].h;
        mcuy = d->comp[0].bh / d->comp[0].v;
    }
    long total = (long)mcux * mcuy;
    long interval = d->restart_interval > 0 ? d->restart_interval : total;
    long expected = (total + interval - 1) / interval;
    if ((long)d->segment_count != expected) return KILN_JPEG_INVALID;
    long mcu = 0;
    for (size_t seg = 0; seg < d->segment_count; seg++) {
        const uint8_t *base = d->entropy + d->segments[seg];
        const uint64_t limit = (uint64_t)(d->segments[seg + 1] - d->segments[seg]) * 8;
        kj_bits b = {0, 0, base};
        int pred[3] = {0, 0, 0};
        long end = mcu + interval < total ? mcu + interval : total;
        for (; mcu < end; mcu++) {
            int mx = (int)(mcu % mcux), my = (int)(mcu / mcux);
            for (int si = 0; si < d->ncomp; si++) {
                int ci = d->scan[si];
                kj_component *c = &d->comp[ci];
                const kj_table *dc = &d->dc[c->td], *ac = &d->ac[c->ta];
                const int n = c->scaled;
                for (int by = 0; by < c->v; by++) {
                    for (int bx = 0; bx < c->h; bx++) {
                        size_t row = (size_t)(my * c->v + by) * (size_t)n, col = (size_t)(mx * c->h + bx) * (size_t)n;
                        uint8_t *dst = c->plane + row * (size_t)c->plane_stride + col;
                        const size_t stride = (size_t)c->plane_stride;
                        kjf16 a16;
                        kjf4 a4;
                        int last;
                        switch (mode[ci]) {
                        case KJ_DENSE:
                            last = kj_block(&b, dc, ac, q[ci], kb[ci], KJ_DENSE, blk, &a16, &a4, &pred[ci]);
                            if (last < 0) return KILN_JPEG_INVALID;
                            if (last == 0) {
                                uint8_t v = kj_round1(blk[0] * 0.125f);
                                for (int y = 0; y < 8; y++) memset(dst + (size_t)y * stride, v, 8);
                            } else {
                                kj_idct8(blk, t8, rows_of[last], dst, stride);
                            }
                            break;
                        case KJ_SPARSE16: {
                            last = kj_block(&b, dc, ac, q[ci], kb[ci], KJ_SPARSE16, blk, &a16, &a4, &pred[ci]);
                            if (last < 0) return KILN_JPEG_INVALID;
                            a16 = __builtin_elementwise_floor(a16 + 128.5f);
                            a16 = __builtin_elementwise_min(__builtin_elementwise_max(a16, (kjf16){} + 0.0f), (kjf16){} + 255.0f);
                            kjb16 px = __builtin_convertvector(__builtin_convertvector(a16, kji16), kjb16);
                            for (int y = 0; y < 4; y++) memcpy(dst + (size_t)y * stride, (const uint8_t *)&px + 4 * y, 4);
                            break;
                        }
                        case KJ_SPARSE4:
                            last = kj_block(&b, dc, ac, q[ci], kb[ci], KJ_SPARSE4, blk, &a16, &a4, &pred[ci]);
                            if (last < 0) return KILN_JPEG_INVALID;
                            dst[0] = kj_round1(a4[0]);
                            dst[1] = kj_round1(a4[1]);
                            dst[stride] = kj_round1(a4[2]);
                            dst[stride + 1] = kj_round1(a4[3]);
                            break;
                        default:
                            last = kj_block(&b, dc, ac, q[ci], kb[ci], KJ_DC, blk, &a16, &a4, &pred[ci]);
                            if (last < 0) return KILN_JPEG_INVALID;
                            dst[0] = kj_round1(a4[0]);
                            break;
                        }
                    }
                }
            }
            uint64_t used = (uint64_t)(b.p - base) * 8 - (uint64_t)b.cnt;
            if (used > limit) return KILN_JPEG_INVALID;  // ran past its data: truncated or corrupt
        }
    }
    // Samples to pixels.
    int ow = (d->width + denominator - 1) / denominator, oh = (d->height + denominator - 1) / denominator;
    if (d->ncomp == 1) {
        const kj_component *c = &d->comp[0];
        for (int y = 0; y < oh; y++) {
            const uint8_t *src = c->plane + (size_t)y * (size_t)c->plane_stride;
            uint8_t *dst = out + (size_t)y * out_stride;
            if (channels == 1) {
                memcpy(dst, src, (size_t)ow);
            } else {
                for (int x = 0; x < ow; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
            }
        }
        return KILN_JPEG_OK;
    }
    const kj_component *yc = &d->comp[0];
    int n = yc->scaled;
    int fx[3], fy[3], cw[3], ch[3];
    for (int i = 1; i < 3; i++) {
        const kj_component *c = &d->comp[i];
        fx[i] = d->hmax * n / (c->h * c->scaled);
        fy[i] = d->vmax * n / (c->v * c->scaled);
        if (fx[i] < 1 || fx[i] > 2 || fy[i] < 1 || fy[i] > 2 || (fx[i] == 1 && fy[i] == 2)) return KILN_JPEG_UNSUPPORTED;
        // The component's own size at this scale (libjpeg's downsampled width/height).
        cw[i] = (int)(((long)d->width * c->h * c->scaled + 8L * d->hmax - 1) / (8L * d->hmax));
        ch[i] = (int)(((long)d->height * c->v * c->scaled + 8L * d->vmax - 1) / (8L * d->vmax));
    }
    uint8_t *rows = NULL;
    uint8_t stack[2 * 4096 + 64];
    int need = fx[1] > 1 || fy[1] > 1 || fx[2] > 1 || fy[2] > 1;
    if (need) {
        if (ow > 4096) return KILN_JPEG_UNSUPPORTED;
        rows = stack;
    }
    int fancy = n > 1;  // libjpeg: no fancy upsampling when the luma IDCT is 1x1
    for (int y = 0; y < oh; y++) {
        const uint8_t *cbr, *crr;
        const uint8_t *chroma[3];
        for (int i = 1; i < 3; i++) {
            const kj_component *c = &d->comp[i];
            if (fx[i] == 1 && fy[i] == 1) {
                chroma[i] = c->plane + (size_t)y * (size_t)c->plane_stride;
                continue;
            }
            int cy = y / fy[i], fary = cy;
            if (fy[i] == 2) fary = (y % 2 == 0) ? (cy > 0 ? cy - 1 : 0) : (cy + 1 < ch[i] ? cy + 1 : ch[i] - 1);
            if (cy >= ch[i]) cy = ch[i] - 1;
            uint8_t *dst = rows + (i - 1) * (4096 + 32);
            // libjpeg filters rows of more than two samples; narrower ones are replicated.
            kj_upsample_row(c->plane + (size_t)cy * (size_t)c->plane_stride, c->plane + (size_t)fary * (size_t)c->plane_stride,
                            cw[i], fx[i], fy[i], fancy && cw[i] > 2, dst, ow);
            chroma[i] = dst;
        }
        cbr = chroma[1];
        crr = chroma[2];
        kj_ycc_row(yc->plane + (size_t)y * (size_t)yc->plane_stride, cbr, crr, out + (size_t)y * out_stride, ow);
    }
    return KILN_JPEG_OK;
}
