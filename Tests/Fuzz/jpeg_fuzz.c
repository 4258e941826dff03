// Damage fuzzing of Kiln's baseline JPEG decoder (Sources/CKilnImageKernels/jpeg_*.c) under
// AddressSanitizer and UndefinedBehaviorSanitizer. Tests/KilnImageTests/JPEGSanitizerTests.swift
// builds it with clang together with the decoder's sources and runs it on JPEGs it writes; any
// out-of-bounds access, use of uninitialised or freed memory, overflow or other undefined
// behaviour aborts with the sanitizer's report.
//
//   jpeg_fuzz ROUNDS SEED FILE.jpg...
//
// Each file is decoded as it is, then ROUNDS damaged copies of it: bytes overwritten (anywhere,
// or within the headers), bits flipped, marker bytes (0xFF) planted, the file cut short, a
// stretch repeated or removed. Every copy is decoded on every instruction set this CPU runs, at
// a DCT scale and channel count drawn at random, into an output buffer of exactly the size the
// decoder's probe reports (so a write past its end is caught), as ImageDecoder does: probe
// first, refuse frames above 100 megapixels, then decode. Prints how the decodes ended.
#include "CKilnImageKernels.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;
static uint64_t next(void) {  // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *p = n > 0 ? malloc((size_t)n) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

/// Where the first scan's data starts (after SOS), or `size`: damage before it hits tables.
static size_t header_end(const uint8_t *p, size_t size) {
    for (size_t i = 0; i + 1 < size; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xDA) return i + 2 < size ? i + 2 : size;
    return size;
}

static long outcomes[3];

/// One decode the way ImageDecoder does it, into a buffer of exactly the decoded size.
static void decode(kiln_jpeg_decoder *d, kiln_image_isa isa, const uint8_t *data, size_t size, int denominator,
                   int channels) {
    int w, h, c;
    // A copy of exactly `size` bytes: reading past the file is caught too.
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (kiln_jpeg_probe(d, copy, size, &w, &h, &c) == KILN_JPEG_OK && (long long)w * h <= 100000000LL) {
        size_t ow = (size_t)(w + denominator - 1) / (size_t)denominator;
        size_t oh = (size_t)(h + denominator - 1) / (size_t)denominator;
        uint8_t *out = malloc(ow * oh * (size_t)channels);
        kiln_jpeg_status s = kiln_jpeg_decode(isa, d, copy, size, denominator, out, ow * (size_t)channels, channels);
        outcomes[s == KILN_JPEG_OK ? 0 : s == KILN_JPEG_UNSUPPORTED ? 1 : 2]++;
        free(out);
    } else {
        outcomes[2]++;
    }
    free(copy);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: jpeg_fuzz ROUNDS SEED FILE.jpg...\n");
        return 2;
    }
    long rounds = strtol(argv[1], NULL, 10);
    state = strtoull(argv[2], NULL, 10);
    kiln_image_isa isas[3];
    int nisa = 0;
    for (int i = 0; i < 3; i++)
        if (kiln_image_isa_supported((kiln_image_isa)i)) isas[nisa++] = (kiln_image_isa)i;
    const int denominators[4] = {1, 2, 4, 8};
    kiln_jpeg_decoder *d = kiln_jpeg_create();
    for (int f = 3; f < argc; f++) {
        size_t size;
        uint8_t *original = read_file(argv[f], &size);
        if (!original) {
            fprintf(stderr, "jpeg_fuzz: cannot read %s\n", argv[f]);
            return 2;
        }
        size_t headers = header_end(original, size);
        for (int i = 0; i < nisa; i++)
            for (int k = 0; k < 4; k++)
                for (int ch = 1; ch <= 3; ch += 2) decode(d, isas[i], original, size, denominators[k], ch);
        uint8_t *v = malloc(2 * size + 64);
        for (long r = 0; r < rounds; r++) {
            size_t n = size;
            memcpy(v, original, size);
            int edits = 1 + (int)(next() % 4);
            for (int e = 0; e < edits && n > 2; e++) {
                size_t at = (size_t)(next() % (r % 2 ? n : (headers < n ? headers : n)));
                switch (next() % 6) {
                case 0: v[at] = (uint8_t)next(); break;
                case 1: v[at] ^= (uint8_t)(1u << (next() % 8)); break;
                case 2:  // a marker: 0xFF then a random code
                    v[at] = 0xFF;
                    if (at + 1 < n) v[at + 1] = (uint8_t)next();
                    break;
                case 3: n = at + 2 < n ? at + 2 : n; break;  // cut short
                case 4: {  // a stretch repeated
                    size_t len = 1 + (size_t)(next() % 64);
                    if (at + len > n) len = n - at;
                    if (n + len <= 2 * size + 64) {
                        memmove(v + at + len, v + at, n - at);
                        n += len;
                    }
                    break;
                }
                default: {  // a stretch removed
                    size_t len = 1 + (size_t)(next() % 64);
                    if (at + len > n) len = n - at;
                    memmove(v + at, v + at + len, n - at - len);
                    n -= len;
                    break;
                }
                }
            }
            decode(d, isas[next() % (uint64_t)nisa], v, n, denominators[next() % 4], next() % 2 ? 3 : 1);
        }
        free(v);
        free(original);
    }
    kiln_jpeg_destroy(d);
    printf("decoded %ld, unsupported %ld, invalid %ld\n", outcomes[0], outcomes[1], outcomes[2]);
    return 0;
}
