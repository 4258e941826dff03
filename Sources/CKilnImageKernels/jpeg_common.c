// The baseline JPEG decoder, instruction-set independent part: markers (ITU-T T.81 annex B),
// Huffman tables (annex C), restart segments and the component layout of a scaled decode. Every
// length and index read from the file is checked; anything this decoder does not handle is
// KILN_JPEG_UNSUPPORTED and anything inconsistent KILN_JPEG_INVALID, so that the caller falls
// back to libjpeg-turbo, which decodes it or names the problem.
#include "jpeg_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const uint8_t kj_natural[64 + 16] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    // A corrupt run can point past the last coefficient: such writes land on 63 (as in libjpeg).
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

/// The IDCT basis for N outputs, T[u][x] = A_N[x][u] (see jpeg_template.h's header), 8 x 8 floats.
static void basis(int n, float *t) {
    const double pi = 3.14159265358979323846;
    int m = 8 / n;
    for (int u = 0; u < 8; u++) {
        double c = u == 0 ? 0.70710678118654752440 : 1.0;
        for (int x = 0; x < 8; x++) {
            double sum = 0;
            if (x < n)
                for (int j = 0; j < m; j++) sum += cos((2.0 * (m * x + j) + 1.0) * u * pi / 16.0);
            t[8 * u + x] = (float)(c / 2.0 * sum / m);
        }
    }
}

kiln_jpeg_decoder *kiln_jpeg_create(void) {
    kiln_jpeg_decoder *d = calloc(1, sizeof(kiln_jpeg_decoder));
    if (!d) return NULL;
    basis(8, d->basis[0]);
    basis(4, d->basis[1]);
    basis(2, d->basis[2]);
    int rows = 0;
    for (int k = 0; k < 64; k++) {
        if (kj_natural[k] / 8 + 1 > rows) rows = kj_natural[k] / 8 + 1;
        d->rows_of[k] = (uint8_t)rows;
    }
    return d;
}

void kiln_jpeg_destroy(kiln_jpeg_decoder *d) {
    if (!d) return;
    free(d->entropy);
    free(d->segments);
    free(d->planes);
    free(d);
}

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

/// Builds a table from the 16 code-length counts and the symbols (T.81 C.2, canonical codes).
static kiln_jpeg_status build_table(kj_table *t, const uint8_t counts[16], const uint8_t *symbols, int total, int ac) {
    uint16_t codes[256];
    uint8_t lengths[256];
    memcpy(t->symbols, symbols, (size_t)total);
    t->bad_dc = 0;
    for (int i = 0; i < total; i++)
        if (symbols[i] > 15) t->bad_dc = 1;  // refused by libjpeg when used as a DC table
    memset(t->lookup, 0, sizeof t->lookup);
    memset(t->fast, 0, sizeof t->fast);
    unsigned code = 0;
    int k = 0;
    for (int l = 1; l <= 16; l++) {
        t->offset[l] = k - (int)code;
        for (int i = 0; i < counts[l - 1]; i++) {
            codes[k] = (uint16_t)code;
            lengths[k] = (uint8_t)l;
            k++;
            code++;
        }
        // No code may be all ones (libjpeg refuses such tables as bogus).
        if (counts[l - 1] && code >= (1u << l)) return KILN_JPEG_INVALID;
        t->limit[l] = code << (16 - l);
        code <<= 1;
    }
    t->limit[0] = 0;
    t->limit[17] = 0xFFFFFFFFu;
    for (int i = 0; i < total; i++) {
        int l = lengths[i];
        if (l > KJ_FAST_BITS) continue;
        unsigned base = (unsigned)codes[i] << (KJ_FAST_BITS - l);
        for (unsigned j = 0; j < (1u << (KJ_FAST_BITS - l)); j++) t->lookup[base + j] = (uint16_t)(l << 8 | symbols[i]);
    }
    if (ac) {
        for (unsigned idx = 0; idx < KJ_FAST_SIZE; idx++) {
            unsigned e = t->lookup[idx];
            if (!e) continue;
            int l = (int)(e >> 8), sym = (int)(e & 0xFF), r = sym >> 4, s = sym & 15;
            if (s == 0) {
                if (r == 15) {
                    t->fast[idx] = (15 << 8) | l;  // ZRL: sixteen zeros (a zero written at k + 15)
                } else {
                    t->fast[idx] = (KJ_FAST_EOB << 12) | l;  // EOB (libjpeg reads any other r as EOB too)
                }
            } else if (l + s <= KJ_FAST_BITS) {
                int extra = (int)(idx >> (KJ_FAST_BITS - l - s)) & ((1 << s) - 1);
                int value = extra < (1 << (s - 1)) ? extra - (1 << s) + 1 : extra;
                t->fast[idx] = (int32_t)((uint32_t)value << 16) | (r << 8) | (l + s);
            }
        }
    }
    t->defined = 1;
    return KILN_JPEG_OK;
}

kiln_jpeg_status kj_parse(kiln_jpeg_decoder *d, const uint8_t *data, size_t size) {
    d->parsed = 0;
    d->ncomp = 0;
    d->restart_interval = 0;
    for (int i = 0; i < 4; i++) d->qt_defined[i] = d->dc[i].defined = d->ac[i].defined = 0;
    int frame = 0, jfif = 0, adobe = -1;
    if (size < 4 || data[0] != 0xFF || data[1] != 0xD8) return KILN_JPEG_INVALID;
    size_t p = 2;
    for (;;) {
        if (p >= size || data[p] != 0xFF) return KILN_JPEG_INVALID;  // garbage between segments
        while (p < size && data[p] == 0xFF) p++;
        if (p >= size) return KILN_JPEG_INVALID;
        unsigned m = data[p++];
        if (m == 0x01) continue;  // TEM: no length
        if (m == 0xD8 || m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0x00) return KILN_JPEG_INVALID;
        if (p + 2 > size) return KILN_JPEG_INVALID;
        unsigned len = be16(data + p);
        if (len < 2 || p + len > size) return KILN_JPEG_INVALID;
        const uint8_t *s = data + p + 2;
        unsigned n = len - 2;
        switch (m) {
        case 0xC0:
        case 0xC1: {  // baseline / extended sequential, Huffman
            if (frame || n < 6) return KILN_JPEG_INVALID;
            if (s[0] != 8) return KILN_JPEG_UNSUPPORTED;  // 12-bit
            d->height = (int)be16(s + 1);
            d->width = (int)be16(s + 3);
            d->ncomp = s[5];
            if (d->height == 0) return KILN_JPEG_UNSUPPORTED;  // height defined by a DNL marker
            if (d->width == 0) return KILN_JPEG_INVALID;
            if (d->ncomp != 1 && d->ncomp != 3) return KILN_JPEG_UNSUPPORTED;  // CMYK/YCCK and others
            if (n != 6 + 3 * (unsigned)d->ncomp) return KILN_JPEG_INVALID;
            d->hmax = d->vmax = 1;
            for (int c = 0; c < d->ncomp; c++) {
                kj_component *k = &d->comp[c];
                k->id = s[6 + 3 * c];
                k->h = s[7 + 3 * c] >> 4;
                k->v = s[7 + 3 * c] & 15;
                k->tq = s[8 + 3 * c];
                if (k->h < 1 || k->h > 4 || k->v < 1 || k->v > 4 || k->tq > 3) return KILN_JPEG_INVALID;
                for (int o = 0; o < c; o++)
                    if (d->comp[o].id == k->id) return KILN_JPEG_INVALID;
                if (k->h > d->hmax) d->hmax = k->h;
                if (k->v > d->vmax) d->vmax = k->v;
            }
            if (d->ncomp == 1) {
                d->comp[0].h = d->comp[0].v = d->hmax = d->vmax = 1;  // one component: blocks are MCUs
            } else {
                // YCbCr with full-resolution chroma, or luma subsampled 2x1 or 2x2 against it.
                kj_component *y = &d->comp[0];
                for (int c = 1; c < 3; c++)
                    if (d->comp[c].h != 1 || d->comp[c].v != 1) return KILN_JPEG_UNSUPPORTED;
                if (!((y->h == 1 && y->v == 1) || (y->h == 2 && y->v == 1) || (y->h == 2 && y->v == 2)))
                    return KILN_JPEG_UNSUPPORTED;
            }
            frame = 1;
            break;
        }
        case 0xC2: case 0xC3: case 0xC5: case 0xC6: case 0xC7: case 0xC9: case 0xCA: case 0xCB: case 0xCD:
        case 0xCE: case 0xCF: case 0xCC:
            return KILN_JPEG_UNSUPPORTED;  // progressive, lossless, hierarchical, arithmetic
        case 0xC4: {  // DHT
            unsigned q = 0;
            while (q < n) {
                if (q + 17 > n) return KILN_JPEG_INVALID;
                unsigned tc = s[q] >> 4, th = s[q] & 15;
                if (tc > 1 || th > 3) return KILN_JPEG_INVALID;
                int total = 0;
                for (int i = 0; i < 16; i++) total += s[q + 1 + i];
                if (total > 256 || q + 17 + (unsigned)total > n) return KILN_JPEG_INVALID;
                kj_table *t = tc ? &d->ac[th] : &d->dc[th];
                kiln_jpeg_status st = build_table(t, s + q + 1, s + q + 17, total, (int)tc);
                if (st != KILN_JPEG_OK) return st;
                q += 17 + (unsigned)total;
            }
            break;
        }
        case 0xDB: {  // DQT
            unsigned q = 0;
            while (q < n) {
                unsigned pq = s[q] >> 4, tq = s[q] & 15;
                if (pq > 1 || tq > 3) return KILN_JPEG_INVALID;
                unsigned bytes = pq ? 128 : 64;
                if (q + 1 + bytes > n) return KILN_JPEG_INVALID;
                for (int k = 0; k < 64; k++) d->qt[tq][k] = pq ? (float)be16(s + q + 1 + 2 * k) : (float)s[q + 1 + k];
                d->qt_defined[tq] = 1;
                q += 1 + bytes;
            }
            break;
        }
        case 0xDD:  // DRI
            if (n != 2) return KILN_JPEG_INVALID;
            d->restart_interval = (int)be16(s);
            break;
        case 0xE0:
            if (n >= 5 && memcmp(s, "JFIF\0", 5) == 0) jfif = 1;
            break;
        case 0xEE:
            if (n >= 12 && memcmp(s, "Adobe", 5) == 0) adobe = s[11];
            break;
        case 0xDA: {  // SOS
            if (!frame) return KILN_JPEG_INVALID;
            if (n < 1) return KILN_JPEG_INVALID;
            unsigned ns = s[0];
            if (n != 4 + 2 * ns) return KILN_JPEG_INVALID;
            if (ns != (unsigned)d->ncomp) return KILN_JPEG_UNSUPPORTED;  // one scan per component
            for (unsigned i = 0; i < ns; i++) {
                int c = -1;
                for (int o = 0; o < d->ncomp; o++)
                    if (d->comp[o].id == s[1 + 2 * i]) c = o;
                if (c < 0) return KILN_JPEG_INVALID;
                for (unsigned j = 0; j < i; j++)
                    if (d->scan[j] == c) return KILN_JPEG_INVALID;
                d->scan[i] = c;
                d->comp[c].td = s[2 + 2 * i] >> 4;
                d->comp[c].ta = s[2 + 2 * i] & 15;
                if (d->comp[c].td > 3 || d->comp[c].ta > 3) return KILN_JPEG_INVALID;
                if (!d->dc[d->comp[c].td].defined || !d->ac[d->comp[c].ta].defined) return KILN_JPEG_INVALID;
                if (d->dc[d->comp[c].td].bad_dc) return KILN_JPEG_INVALID;
                if (!d->qt_defined[d->comp[c].tq]) return KILN_JPEG_INVALID;
            }
            const uint8_t *t = s + 1 + 2 * ns;
            if (t[0] != 0 || t[1] != 63 || t[2] != 0) return KILN_JPEG_INVALID;  // sequential: all 64, no approximation
            if (d->ncomp == 3) {
                // libjpeg's colour space guess: JFIF means YCbCr; Adobe transform 0 means RGB;
                // otherwise component ids 'R', 'G', 'B' mean RGB. Only YCbCr decodes here.
                if (!jfif && adobe == 0) return KILN_JPEG_UNSUPPORTED;
                if (!jfif && adobe < 0 && d->comp[0].id == 'R' && d->comp[1].id == 'G' && d->comp[2].id == 'B')
                    return KILN_JPEG_UNSUPPORTED;
                if (d->scan[0] != 0) return KILN_JPEG_UNSUPPORTED;  // luma first, as every encoder writes it
            }
            d->scan_offset = p + len;
            d->parsed = 1;
            return KILN_JPEG_OK;
        }
        default:
            if (m == 0xDC) return KILN_JPEG_UNSUPPORTED;  // DNL
            // APPn and COM are skipped; libjpeg refuses any other marker, so let it.
            if (!(m >= 0xE0 && m <= 0xEF) && m != 0xFE) return KILN_JPEG_INVALID;
            break;
        }
        p += len;
    }
}

kiln_jpeg_status kiln_jpeg_probe(
    kiln_jpeg_decoder *d, const uint8_t *data, size_t size, int *width, int *height, int *components) {
    kiln_jpeg_status s = kj_parse(d, data, size);
    if (s == KILN_JPEG_OK) {
        *width = d->width;
        *height = d->height;
        *components = d->ncomp;
    }
    return s;
}

/// Grows a buffer to at least `need` bytes; 0 on allocation failure.
static int reserve(void **buffer, size_t *capacity, size_t need) {
    if (need <= *capacity) return 1;
    size_t n = need + need / 2;
    void *p = realloc(*buffer, n);
    if (!p) return 0;
    *buffer = p;
    *capacity = n;
    return 1;
}

/// Zero bytes after the entropy data: the bit reader loads 8 bytes at a time, and a corrupt
/// block can read far before the decoder checks that it ran past its segment.
#define KJ_PADDING 2048

kiln_jpeg_status kj_destuff(kiln_jpeg_decoder *d, const uint8_t *data, size_t size) {
    size_t p = d->scan_offset;
    if (!reserve((void **)&d->entropy, &d->entropy_capacity, size - p + KJ_PADDING)) return KILN_JPEG_UNSUPPORTED;
    if (!reserve((void **)&d->segments, &d->segment_capacity, 64 * sizeof(size_t))) return KILN_JPEG_UNSUPPORTED;
    uint8_t *out = d->entropy;
    size_t o = 0, count = 1;
    unsigned expected_rst = 0;
    int ended = 0;
    d->segments[0] = 0;
    while (p < size) {
        const uint8_t *ff = memchr(data + p, 0xFF, size - p);
        size_t q = ff ? (size_t)(ff - data) : size;
        memcpy(out + o, data + p, q - p);
        o += q - p;
        if (!ff) break;
        size_t n = q + 1;
        while (n < size && data[n] == 0xFF) n++;  // fill bytes
        if (n >= size) break;
        unsigned b = data[n];
        if (b == 0x00) {
            out[o++] = 0xFF;
            p = n + 1;
        } else if (b >= 0xD0 && b <= 0xD7) {
            if (b - 0xD0 != expected_rst) return KILN_JPEG_INVALID;  // libjpeg resynchronises, with warnings
            expected_rst = (expected_rst + 1) & 7;
            if (count + 2 > d->segment_capacity / sizeof(size_t) &&
                !reserve((void **)&d->segments, &d->segment_capacity, (count + 2) * 2 * sizeof(size_t)))
                return KILN_JPEG_UNSUPPORTED;
            d->segments[count++] = o;
            p = n + 1;
        } else if (b == 0xD9) {
            ended = 1;  // EOI
            break;
        } else {
            return KILN_JPEG_UNSUPPORTED;  // another scan, or a DNL marker
        }
    }
    // Without an EOI libjpeg reports a premature end: let it.
    if (!ended) return KILN_JPEG_INVALID;
    d->segments[count] = o;
    d->segment_count = count;
    memset(out + o, 0, KJ_PADDING);
    return KILN_JPEG_OK;
}

kiln_jpeg_status kj_layout(kiln_jpeg_decoder *d, int denominator) {
    int n = 8 / denominator;
    size_t total = 0;
    if (d->ncomp == 1) {
        kj_component *c = &d->comp[0];
        c->bw = (d->width + 7) / 8;
        c->bh = (d->height + 7) / 8;
        c->scaled = n;
    } else {
        int mx = (d->width + 8 * d->hmax - 1) / (8 * d->hmax), my = (d->height + 8 * d->vmax - 1) / (8 * d->vmax);
        for (int i = 0; i < 3; i++) {
            kj_component *c = &d->comp[i];
            c->bw = mx * c->h;
            c->bh = my * c->v;
            // As libjpeg does: scale subsampled components up in the IDCT rather than upsampling
            // them afterwards, by powers of 2, as far as the sampling factors allow.
            int s = n;
            while (s < 8 && (d->hmax * n) % (c->h * s * 2) == 0 && (d->vmax * n) % (c->v * s * 2) == 0) s *= 2;
            c->scaled = s;
        }
    }
    for (int i = 0; i < d->ncomp; i++) {
        kj_component *c = &d->comp[i];
        c->plane_stride = c->bw * c->scaled;
        total += (size_t)c->plane_stride * (size_t)(c->bh * c->scaled) + 64;
    }
    if (!reserve((void **)&d->planes, &d->planes_capacity, total)) return KILN_JPEG_UNSUPPORTED;
    uint8_t *p = d->planes;
    for (int i = 0; i < d->ncomp; i++) {
        d->comp[i].plane = p;
        p += (size_t)d->comp[i].plane_stride * (size_t)(d->comp[i].bh * d->comp[i].scaled) + 64;
    }
    return KILN_JPEG_OK;
}

kiln_jpeg_status kiln_jpeg_decode(
    kiln_image_isa isa, kiln_jpeg_decoder *d, const uint8_t *data, size_t size, int denominator, uint8_t *out,
    size_t out_stride, int channels) {
    if (denominator != 1 && denominator != 2 && denominator != 4 && denominator != 8) return KILN_JPEG_UNSUPPORTED;
    if (channels != 1 && channels != 3) return KILN_JPEG_UNSUPPORTED;
    kiln_jpeg_status s = kj_parse(d, data, size);
    if (s != KILN_JPEG_OK) return s;
    if (d->ncomp == 3 && channels != 3) return KILN_JPEG_UNSUPPORTED;  // luma of colour files: Pillow's "L" differs from Y
    if ((s = kj_destuff(d, data, size)) != KILN_JPEG_OK) return s;
    if ((s = kj_layout(d, denominator)) != KILN_JPEG_OK) return s;
    switch (isa) {
#if defined(__x86_64__)
    case KILN_IMAGE_ISA_AVX512: return kj_decode_avx512(d, denominator, out, out_stride, channels);
    case KILN_IMAGE_ISA_AVX2: return kj_decode_avx2(d, denominator, out, out_stride, channels);
#endif
    default: return kj_decode_portable(d, denominator, out, out_stride, channels);
    }
}
