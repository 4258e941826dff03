// Checks the NEON kernels of CKilnKernels on aarch64 (run under qemu-aarch64 on other machines:
// scripts/check-neon.sh): the float kernels against naive C and the portable build, and every
// int8 entry point the runtime calls (conv in all its shapes, depthwise, pools, ADD, MUL, the
// requantization epilogue, lookups, QUANTIZE, MEAN) on the NEON and the portable ISA against
// naive C written from TFLite's arithmetic, for exact equality. Prints FAIL lines and
// "N passed, M failed" at the end; exits 1 on any failure. An optional argument names the int8
// path the CPU must dispatch NEON to ("neon-dot" with the dot product, "portable" without), a
// second one a seed for other random int8 cases.
#include "CKilnKernels.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned long long state = 7767517;
static float rnd(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}
static int passed, failed;

static void check(const char *what, const float *a, const float *b, size_t n, float tol) {
    float worst = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= tol * (1 + fabsf(b[i])))) worst = isnan(d) ? INFINITY : (d > worst ? d : worst);
    }
    if (worst > 0) {
        printf("FAIL %s: worst %g\n", what, worst);
        failed++;
    } else {
        passed++;
    }
}

/// Naive NHWC conv, OHWI weights (groups 1) or depthwise [KH][KW][C].
static void naive(const kiln_conv_params *p, const float *x, const float *w, const float *bias, float *y, int dw) {
    for (size_t oy = 0; oy < p->out_h; oy++)
        for (size_t ox = 0; ox < p->out_w; ox++)
            for (size_t o = 0; o < p->out_c; o++) {
                float acc = bias ? bias[o] : 0;
                for (size_t ky = 0; ky < p->kernel_h; ky++)
                    for (size_t kx = 0; kx < p->kernel_w; kx++) {
                        long iy = (long)(oy * p->stride_h + ky * p->dilation_h) - (long)p->pad_top;
                        long ix = (long)(ox * p->stride_w + kx * p->dilation_w) - (long)p->pad_left;
                        if (iy < 0 || ix < 0 || iy >= (long)p->in_h || ix >= (long)p->in_w) continue;
                        const float *px = x + ((size_t)iy * p->in_w + (size_t)ix) * p->in_pixel_stride;
                        if (dw) {
                            acc += w[(ky * p->kernel_w + kx) * p->out_c + o] * px[o];
                        } else {
                            for (size_t i = 0; i < p->in_c; i++)
                                acc += w[((o * p->kernel_h + ky) * p->kernel_w + kx) * p->in_c + i] * px[i];
                        }
                    }
                acc = acc < p->min ? p->min : acc;
                acc = acc > p->max ? p->max : acc;
                y[(oy * p->out_w + ox) * p->out_pixel_stride + o] = acc;
            }
}

static void conv_case(size_t h, size_t w, size_t c, size_t o, size_t k, size_t s, size_t pad, int dw) {
    kiln_conv_params p = {0};
    p.in_h = h, p.in_w = w, p.in_c = c, p.in_pixel_stride = c;
    p.kernel_h = p.kernel_w = k, p.stride_h = p.stride_w = s, p.dilation_h = p.dilation_w = 1;
    p.pad_top = p.pad_left = pad;
    p.out_h = (h + 2 * pad - k) / s + 1, p.out_w = (w + 2 * pad - k) / s + 1;
    p.out_c = dw ? c : o, p.out_pixel_stride = p.out_c;
    p.min = 0, p.max = 6;
    size_t taps = k * k, wn = dw ? taps * c : o * taps * c, yn = p.out_h * p.out_w * p.out_c;
    float *x = malloc(h * w * c * 4), *wt = malloc(wn * 4), *b = malloc(p.out_c * 4);
    float *zeros = calloc(k * c + 16, 4), *ref = malloc(yn * 4), *out = malloc(yn * 4);
    for (size_t i = 0; i < h * w * c; i++) x[i] = rnd();
    for (size_t i = 0; i < wn; i++) wt[i] = rnd() * 0.5f;
    for (size_t i = 0; i < p.out_c; i++) b[i] = rnd();
    p.zeros = zeros;
    naive(&p, x, wt, b, ref, dw);
    size_t packed_n = dw ? kiln_depthwise_packed_count(c, taps) : kiln_conv_packed_count(o, taps, c);
    float *packed = malloc(packed_n * 4);
    if (dw) kiln_pack_depthwise_f32(c, taps, wt, b, packed);
    else kiln_pack_conv_f32(o, taps, c, wt, b, packed);
    kiln_isa isas[2] = {KILN_ISA_NEON, KILN_ISA_PORTABLE};
    for (int i = 0; i < 2; i++) {
        memset(out, 0xff, yn * 4);
        if (dw) kiln_depthwise_f32(isas[i], &p, x, packed, out, 0, p.out_h);
        else kiln_conv_f32(isas[i], &p, x, packed, out, 0, p.out_h * p.out_w, 0, (o + 15) / 16);
        char what[128];
        snprintf(what, sizeof what, "%s %zux%zux%zu->%zu k%zu s%zu p%zu isa %d", dw ? "depthwise" : "conv", h, w, c, p.out_c, k, s, pad, isas[i]);
        check(what, out, ref, yn, 1e-4f);
    }
    free(x), free(wt), free(b), free(zeros), free(ref), free(out), free(packed);
}

/// A conv (groups 1) followed by a max pool over its output, fused (kiln_conv_max_pool_f32: conv
/// rows computed into a ring), against the naive conv and a naive max pool; pooled rows split
/// into `splits` ranges, each with its own ring as each thread has.
static void conv_max_pool_case(size_t h, size_t w, size_t c, size_t o, size_t k, size_t s, size_t pad, size_t pk, size_t ps,
                               size_t ppad, size_t splits) {
    kiln_conv_params p = {0};
    p.in_h = h, p.in_w = w, p.in_c = c, p.in_pixel_stride = c;
    p.kernel_h = p.kernel_w = k, p.stride_h = p.stride_w = s, p.dilation_h = p.dilation_w = 1;
    p.pad_top = p.pad_left = pad;
    p.out_h = (h + 2 * pad - k) / s + 1, p.out_w = (w + 2 * pad - k) / s + 1;
    p.out_c = o, p.out_pixel_stride = o;
    p.min = 0, p.max = INFINITY;
    kiln_pool_params q = {p.out_h, p.out_w, o, (p.out_h + 2 * ppad - pk) / ps + 1, (p.out_w + 2 * ppad - pk) / ps + 1,
                          pk, pk, ps, ps, ppad, ppad, 0, -INFINITY, 4};
    size_t taps = k * k, cn = p.out_h * p.out_w * o, yn = q.out_h * q.out_w * o, ring_n = pk * p.out_w * o;
    float *x = malloc(h * w * c * 4), *wt = malloc(o * taps * c * 4), *b = malloc(o * 4), *zeros = calloc(c + 16, 4);
    float *conv = malloc(cn * 4), *ref = malloc(yn * 4), *out = malloc(yn * 4), *ring = malloc(splits * ring_n * 4);
    for (size_t i = 0; i < h * w * c; i++) x[i] = rnd();
    for (size_t i = 0; i < o * taps * c; i++) wt[i] = rnd() * 0.5f;
    for (size_t i = 0; i < o; i++) b[i] = rnd();
    p.zeros = zeros;
    naive(&p, x, wt, b, conv, 0);
    for (size_t py = 0; py < q.out_h; py++)
        for (size_t px = 0; px < q.out_w; px++)
            for (size_t ch = 0; ch < o; ch++) {
                float m = -INFINITY;
                for (size_t ky = 0; ky < pk; ky++)
                    for (size_t kx = 0; kx < pk; kx++) {
                        long iy = (long)(py * ps + ky) - (long)ppad, ix = (long)(px * ps + kx) - (long)ppad;
                        if (iy < 0 || ix < 0 || iy >= (long)p.out_h || ix >= (long)p.out_w) continue;
                        float v = conv[((size_t)iy * p.out_w + (size_t)ix) * o + ch];
                        m = v > m ? v : m;
                    }
                ref[(py * q.out_w + px) * o + ch] = m < q.min ? q.min : (m > q.max ? q.max : m);
            }
    float *packed = malloc(kiln_conv_packed_count(o, taps, c) * 4);
    kiln_pack_conv_f32(o, taps, c, wt, b, packed);
    kiln_isa isas[2] = {KILN_ISA_NEON, KILN_ISA_PORTABLE};
    for (int i = 0; i < 2; i++) {
        memset(out, 0xff, yn * 4);
        for (size_t part = 0; part < splits; part++) {
            kiln_conv_max_pool_f32(isas[i], &p, &q, x, packed, ring + part * ring_n, out, q.out_h * part / splits,
                                   q.out_h * (part + 1) / splits);
        }
        char what[128];
        snprintf(what, sizeof what, "conv+max pool %zux%zux%zu->%zu k%zu s%zu p%zu, pool k%zu s%zu p%zu, %zu parts, isa %d", h, w,
                 c, o, k, s, pad, pk, ps, ppad, splits, isas[i]);
        check(what, out, ref, yn, 1e-4f);
    }
    free(x), free(wt), free(b), free(zeros), free(conv), free(ref), free(out), free(ring), free(packed);
}

static void float_checks(void) {
    size_t cs[] = {1, 3, 5, 8, 13, 16, 17, 24, 33}, os[] = {1, 7, 16, 24, 33, 49};
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++)
        for (size_t b = 0; b < sizeof os / sizeof *os; b++) {
            conv_case(5, 7, cs[a], os[b], 1, 1, 0, 0);
            conv_case(9, 8, cs[a], os[b], 3, 2, 1, 0);
        }
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++) {
        conv_case(7, 6, cs[a], 0, 3, 1, 1, 1);
        conv_case(9, 9, cs[a], 0, 5, 2, 2, 1);
    }
    conv_max_pool_case(12, 10, 3, 16, 3, 1, 1, 3, 2, 1, 1);
    conv_max_pool_case(12, 10, 3, 16, 3, 1, 1, 3, 2, 1, 3);
    conv_max_pool_case(11, 13, 5, 21, 3, 2, 1, 2, 2, 0, 2);
    conv_max_pool_case(9, 9, 8, 40, 1, 1, 0, 3, 1, 1, 4);
    conv_max_pool_case(16, 16, 1, 7, 5, 1, 2, 3, 3, 0, 2);
    // Pools, mean and elementwise: the NEON build against the portable one.
    float x[4096], y0[4096], y1[4096];
    for (int i = 0; i < 4096; i++) x[i] = rnd() * 10;
    kiln_pool_params pp = {9, 8, 37, 5, 4, 3, 3, 2, 2, 1, 1, 0, -INFINITY, INFINITY};
    kiln_max_pool_f32(KILN_ISA_NEON, &pp, x, y0, 0, 5);
    kiln_max_pool_f32(KILN_ISA_PORTABLE, &pp, x, y1, 0, 5);
    check("max pool", y0, y1, 5 * 4 * 37, 0);
    kiln_avg_pool_f32(KILN_ISA_NEON, &pp, x, y0, 0, 5);
    kiln_avg_pool_f32(KILN_ISA_PORTABLE, &pp, x, y1, 0, 5);
    check("avg pool", y0, y1, 5 * 4 * 37, 1e-6f);
    kiln_mean_pixels_f32(KILN_ISA_NEON, x, 49, 37, y0, 0, 37);
    kiln_mean_pixels_f32(KILN_ISA_PORTABLE, x, 49, 37, y1, 0, 37);
    check("mean", y0, y1, 37, 1e-6f);
    for (int op = 0; op <= KILN_UNARY_TANH; op++) {
        kiln_unary_f32(KILN_ISA_NEON, (kiln_unary_op)op, x, y0, 1001, 0, 6);
        kiln_unary_f32(KILN_ISA_PORTABLE, (kiln_unary_op)op, x, y1, 1001, 0, 6);
        check("unary", y0, y1, 1001, 1e-6f);
    }
    for (int op = 0; op <= KILN_BINARY_MIN; op++) {
        kiln_binary_f32(KILN_ISA_NEON, (kiln_binary_op)op, x, 1, x + 1500, 0, y0, 777, -3, 3);
        kiln_binary_f32(KILN_ISA_PORTABLE, (kiln_binary_op)op, x, 1, x + 1500, 0, y1, 777, -3, 3);
        check("binary", y0, y1, 777, 1e-6f);
    }
    printf("float: %d checks\n", passed + failed);
}

// MARK: - int8

static uint32_t rnext(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(state >> 32);
}
/// Uniform in [lo, hi] (inclusive).
static int irange(int lo, int hi) { return lo + (int)(rnext() % (uint32_t)(hi - lo + 1)); }
static size_t zrange(size_t lo, size_t hi) { return (size_t)irange((int)lo, (int)hi); }
static float urange(float lo, float hi) { return lo + (hi - lo) * (float)(rnext() >> 8) / 16777216.0f; }
static int chance(int percent) { return irange(0, 99) < percent; }

static const kiln_isa isas[2] = {KILN_ISA_NEON, KILN_ISA_PORTABLE};
static const char *isa_name(kiln_isa isa) { return isa == KILN_ISA_NEON ? "neon" : "portable"; }

/// Exact comparison; prints the first difference.
static void check_i8(const char *what, const int8_t *got, const int8_t *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            printf("FAIL %s: element %zu is %d, expected %d\n", what, i, got[i], want[i]);
            failed++;
            return;
        }
    }
    passed++;
}

/// Bytes that a kernel must not have written still hold `sentinel`.
static int untouched(const char *what, const int8_t *y, size_t n, int8_t sentinel) {
    for (size_t i = 0; i < n; i++) {
        if (y[i] != sentinel) {
            printf("FAIL %s: wrote byte %zu outside its output\n", what, i);
            failed++;
            return 0;
        }
    }
    return 1;
}

/// What runs now, for the message of a fault.
static char current[400];

static void on_fault(int sig) {
    (void)sig;
    const char *head = "FAIL (fault: read or wrote outside its buffers) ";
    ssize_t ignored = write(1, head, strlen(head));
    ignored = write(1, current, strlen(current));
    ignored = write(1, "\n", 1);
    (void)ignored;
    _exit(1);
}

/// `size` bytes next to an inaccessible page: right after them, or (`before`) right before them,
/// so that a kernel reading outside its input (the slack included) faults. munmap(*base, *len)
/// releases them.
static int8_t *guarded_alloc(size_t size, int before, void **base, size_t *len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (size + page - 1) / page * page;
    *len = body + 2 * page;
    uint8_t *b = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) {
        printf("mmap failed\n");
        exit(1);
    }
    mprotect(b, page, PROT_NONE);
    mprotect(b + page + body, page, PROT_NONE);
    *base = b;
    return (int8_t *)(before ? b + page : b + page + body - size);
}

// The reference arithmetic, written from TFLite's definitions (Requantize.swift) independently
// of int8_internal.h.

/// TFLite's QuantizeMultiplier: real = fraction * 2^exponent, fraction rounded to Q0.31.
static void quantize_multiplier(double real, int32_t *multiplier, int32_t *shift) {
    *multiplier = 0, *shift = 0;
    if (real == 0) return;
    int e;
    double f = frexp(real, &e);
    long long fixed = llround(f * 2147483648.0);
    if (fixed == 1LL << 31) fixed /= 2, e++;
    if (e < -31) return;
    *multiplier = (int32_t)fixed, *shift = e;
}

/// x * multiplier * 2^(shift - 31): left shift (wrapping), rounding doubling high multiply, then
/// a right shift rounding ties up (`round_up`) or away from zero.
static int32_t ref_multiply(int32_t x, int32_t multiplier, int32_t shift, int round_up) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int32_t a = left >= 32 ? 0 : (int32_t)(uint32_t)((uint64_t)(uint32_t)x << left);
    int32_t h;
    if (a == INT32_MIN && multiplier == INT32_MIN) {
        h = INT32_MAX;
    } else {
        int64_t ab = (int64_t)a * multiplier;
        h = (int32_t)((ab + (ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))) / (1LL << 31));
    }
    if (right == 0) return h;
    int64_t half = 1LL << (right - 1);
    if (round_up) return (int32_t)(((int64_t)h + half) >> right);
    return h >= 0 ? (int32_t)(((int64_t)h + half) >> right) : (int32_t)-((-(int64_t)h + half) >> right);
}

static int32_t clamp32(int64_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : (int32_t)v); }

/// An output zero point: mostly near 0, often an end of the range (-128 is every ReLU output's).
static int32_t random_output_zero_point(void) { return chance(25) ? (chance(70) ? -128 : 127) : irange(-60, 60); }

/// A random output clamp: none, ReLU-like or ReLU6-like around the zero point.
static void random_range(int32_t zo, int32_t *lo, int32_t *hi) {
    *lo = -128, *hi = 127;
    int kind = irange(0, 2);
    if (kind >= 1) *lo = zo > -128 ? zo : -128;
    int top = zo + irange(5, 120);
    if (kind == 2) *hi = top < 127 ? top : 127;
    if (*hi < *lo) *hi = *lo;
}

/// Per-channel multipliers of a layer whose accumulators have `fan_in` products: mostly in the
/// range that keeps outputs within int8 (TFLite's input_scale * filter_scale / output_scale),
/// sometimes anything from 2^-34 to 2^3 (left shifts, or zero).
static void random_multipliers(size_t n, size_t fan_in, int32_t *m, int32_t *s) {
    int wild = chance(12);
    double base = 40.0 / (5300.0 * sqrt((double)fan_in));
    for (size_t i = 0; i < n; i++) {
        double real = wild ? urange(0.5f, 1) * ldexp(1, irange(-34, 3)) : base * pow(2, urange(-2, 2));
        quantize_multiplier(real, m + i, s + i);
    }
}

/// Random int8 values; `extreme` keeps to the ends of the range (-128 or 127).
static void random_i8(int8_t *x, size_t n, int extreme, int lo) {
    for (size_t i = 0; i < n; i++) x[i] = (int8_t)(extreme ? (chance(50) ? lo : 127) : irange(lo, 127));
}

/// Splits [0, total) into consecutive ranges, written to `cuts` (cuts[0] = 0, cuts[count] = total):
/// one range, the runtime's split of 2 or 3 parts aligned to `align`, or random lengths 1..maxlen.
static size_t random_cuts(size_t total, size_t align, size_t maxlen, size_t *cuts) {
    size_t n = 0;
    cuts[n++] = 0;
    int mode = irange(0, 2);
    if (mode == 0 || total <= 1) {
        cuts[n++] = total;
    } else if (mode == 1) {
        size_t parts = zrange(2, 3), units = (total + align - 1) / align;
        for (size_t p = 1; p <= parts; p++) {
            size_t hi = units * p / parts * align;
            if (hi > total || p == parts) hi = total;
            if (hi > cuts[n - 1]) cuts[n++] = hi;
        }
    } else {
        while (cuts[n - 1] < total) {
            size_t len = zrange(1, maxlen), next = cuts[n - 1] + len;
            cuts[n++] = next < total ? next : total;
        }
    }
    return n - 1;
}

// MARK: Convolution

typedef struct {
    size_t h, w, groups, gc, go, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    /// Extra channels of the input and output pixels (a channel slice of wider tensors).
    size_t in_extra, out_extra;
} conv_spec;

static size_t conv_cases, conv_outputs;

/// One grouped convolution as the runtime lowers it (LoweringInt8.swift): group k reads input
/// channels [k gc, (k+1) gc) of pixels C + in_extra wide and writes output channels
/// [k go, (k+1) go), each group packed on its own; depthwise with a multiplier is gc = 1. The work
/// is split into pixel and panel ranges as threads split it (or into short random ranges: tiles
/// of 1...12 pixels starting anywhere). Every ISA against a naive reference, exactly.
static void conv_i8_case(conv_spec s) {
    const size_t C = s.groups * s.gc, O = s.groups * s.go, taps = s.kh * s.kw, fan_in = taps * s.gc;
    const size_t span_h = s.dh * (s.kh - 1) + 1, span_w = s.dw * (s.kw - 1) + 1;
    if (taps > KILN_MAX_TAPS || s.h + s.pt + s.pb < span_h || s.w + s.pl + s.pr < span_w) return;
    const size_t oh = (s.h + s.pt + s.pb - span_h) / s.sh + 1, ow = (s.w + s.pl + s.pr - span_w) / s.sw + 1, pixels = oh * ow;
    const size_t in_stride = C + s.in_extra, out_stride = O + s.out_extra;
    const size_t in_off = s.in_extra ? 1 : 0, out_off = s.out_extra ? 1 : 0;
    const int extreme = chance(8);
    const int32_t zx = extreme ? (chance(50) ? -128 : 127) : irange(-128, 127), zo = random_output_zero_point();
    int32_t lo, hi;
    random_range(zo, &lo, &hi);
    void *x_base;
    size_t x_len;
    int8_t *x = guarded_alloc(s.h * s.w * in_stride + 64, chance(50), &x_base, &x_len), *w = malloc(O * fan_in + 1);
    random_i8(x, s.h * s.w * in_stride + 64, extreme, -128);
    random_i8(w, O * fan_in, extreme, -127);
    int32_t *bias = NULL, *m = malloc(O * 4), *sh = malloc(O * 4);
    if (chance(80)) {
        bias = malloc(O * 4);
        int32_t big = chance(10) ? 1 << 24 : 20000;
        for (size_t o = 0; o < O; o++) bias[o] = irange(-big, big);
    }
    random_multipliers(O, fan_in, m, sh);
    // Ties upward below round_up[k] in group k: every channel (CONV_2D), TFLite's depthwise
    // blocks of 8 over all outputs (a depth multiplier), or a random count.
    size_t round_up[64];
    int ru_mode = irange(0, 2);
    for (size_t k = 0; k < s.groups; k++) {
        long all = (long)(O / 8 * 8) - (long)(k * s.go);
        size_t block = all < 0 ? 0 : (all > (long)s.go ? s.go : (size_t)all);
        round_up[k] = ru_mode == 0 ? s.go : (ru_mode == 1 ? block : zrange(0, s.go));
    }

    int8_t *ref = malloc(pixels * O + 1);
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t o = 0; o < O; o++) {
                size_t k = o / s.go;
                int64_t acc = bias ? bias[o] : 0;
                for (size_t ky = 0; ky < s.kh; ky++)
                    for (size_t kx = 0; kx < s.kw; kx++) {
                        long iy = (long)(oy * s.sh + ky * s.dh) - (long)s.pt, ix = (long)(ox * s.sw + kx * s.dw) - (long)s.pl;
                        if (iy < 0 || ix < 0 || iy >= (long)s.h || ix >= (long)s.w) continue;
                        const int8_t *px = x + ((size_t)iy * s.w + (size_t)ix) * in_stride + in_off + k * s.gc;
                        const int8_t *wt = w + ((o * s.kh + ky) * s.kw + kx) * s.gc;
                        for (size_t i = 0; i < s.gc; i++) acc += (int64_t)wt[i] * (px[i] - zx);
                    }
                int32_t a32 = (int32_t)(uint32_t)(uint64_t)acc;  // TFLite's int32 accumulator
                int32_t v = ref_multiply(a32, m[o], sh[o], o % s.go < round_up[k]);
                ref[(oy * ow + ox) * O + o] = (int8_t)clamp32((int64_t)v + zo, lo, hi);
            }

    // Work ranges, the same for both ISAs.
    size_t *pcuts = malloc((pixels + 2) * sizeof(size_t)), qcuts[64];
    const size_t panels = (s.go + KILN_I8_PANEL - 1) / KILN_I8_PANEL;
    size_t np = random_cuts(pixels, 12, 13, pcuts), nq;
    if (panels > 1 && chance(40)) {
        nq = panels;  // the runtime's split by panels (few pixels): one range of panels per thread
        for (size_t q = 0; q <= panels; q++) qcuts[q] = q;
    } else if (panels > 1 && chance(50)) {
        nq = 2, qcuts[0] = 0, qcuts[1] = zrange(1, panels - 1), qcuts[2] = panels;
    } else {
        nq = 1, qcuts[0] = 0, qcuts[1] = panels;
    }

    char what[320];
    int n = snprintf(what, sizeof what, "conv %zux%zux%zu groups %zu (%zu->%zu) k%zux%zu s%zux%zu d%zux%zu pad %zu,%zu,%zu,%zu "
                     "extra %zu/%zu zx %d zo %d [%d,%d] %s%s, %zu pixel ranges, %zu panel ranges",
                     s.h, s.w, C, s.groups, s.gc, s.go, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, s.pb, s.pr, s.in_extra,
                     s.out_extra, zx, zo, lo, hi, bias ? "bias" : "no bias", extreme ? " extreme" : "", np, nq);
    const size_t packed_one = (kiln_conv_i8_packed_bytes(s.go, taps, s.gc) + 63) / 64 * 64;
    uint8_t *packed = malloc(s.groups * packed_one);
    int8_t *out = malloc(pixels * out_stride + 8 * out_stride + 64), *dense = malloc(pixels * O + 1);
    for (int v = 0; v < 2; v++) {
        kiln_conv_i8_params p = {s.h, s.w, s.gc, in_stride, oh, ow, s.go, out_stride, s.kh, s.kw,
                                 s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, zx, zo, lo, hi};
        memset(packed, 0xAB, s.groups * packed_one);
        for (size_t k = 0; k < s.groups; k++) {
            kiln_pack_conv_i8(isas[v], &p, w + k * s.go * fan_in, bias ? bias + k * s.go : NULL, m + k * s.go, sh + k * s.go,
                              round_up[k], packed + k * packed_one);
        }
        memset(out, 0x5A, pixels * out_stride + 8 * out_stride + 64);
        snprintf(what + n, sizeof what - (size_t)n, ", %s", isa_name(isas[v]));
        snprintf(current, sizeof current, "%s", what);
        for (size_t k = 0; k < s.groups; k++)
            for (size_t a = 0; a < np; a++)
                for (size_t b = 0; b < nq; b++)
                    kiln_conv_i8(isas[v], &p, x + in_off + k * s.gc, packed + k * packed_one, out + out_off + k * s.go, pcuts[a],
                                 pcuts[a + 1], qcuts[b], qcuts[b + 1]);
        int clean = untouched(what, out + pixels * out_stride, 8 * out_stride + 64, 0x5A);
        for (size_t q = 0; q < pixels && clean; q++) {
            memcpy(dense + q * O, out + q * out_stride + out_off, O);
            clean = untouched(what, out + q * out_stride, out_off, 0x5A) &&
                    untouched(what, out + q * out_stride + out_off + O, out_stride - out_off - O, 0x5A);
        }
        if (clean) check_i8(what, dense, ref, pixels * O);
    }
    conv_cases++, conv_outputs += pixels * O;
    munmap(x_base, x_len);
    free(w), free(bias), free(m), free(sh), free(ref), free(packed), free(out), free(dense), free(pcuts);
}

/// A dense convolution (one group) of `k` x `k`, stride `st`, padding `pad` on every side.
static conv_spec dense(size_t h, size_t w, size_t c, size_t o, size_t k, size_t st, size_t pad) {
    conv_spec s = {h, w, 1, c, o, k, k, st, st, 1, 1, pad, pad, pad, pad, 0, 0};
    return s;
}

/// int8 conv (k x k, stride s, padding pad) then a 3x3 stride-2 max pool with padding 1: the
/// fused kernel (pooled rows in two parts, one ring each) equals kiln_conv_i8 + kiln_max_pool_i8,
/// and the NEON dot-product build equals the portable one.
static void conv_pool_i8_case(size_t h, size_t w, size_t c, size_t o, size_t k, size_t s, size_t pad) {
    kiln_conv_i8_params p = {0};
    p.in_h = h, p.in_w = w, p.in_c = c, p.in_pixel_stride = c;
    p.kernel_h = p.kernel_w = k, p.stride_h = p.stride_w = s, p.dilation_h = p.dilation_w = 1;
    p.pad_top = p.pad_left = pad;
    p.out_h = (h + 2 * pad - k) / s + 1, p.out_w = (w + 2 * pad - k) / s + 1, p.out_c = o, p.out_pixel_stride = o;
    p.input_zero_point = 5, p.output_zero_point = -3, p.output_min = -128, p.output_max = 127;
    kiln_pool_i8_params pp = {p.out_h, p.out_w, o, (p.out_h + 2 - 3) / 2 + 1, (p.out_w + 2 - 3) / 2 + 1, 3, 3, 2, 2, 1, 1, -100, 120};
    size_t taps = k * k, n_in = h * w * c + 64, n_conv = p.out_h * p.out_w * o + 64, n_out = pp.out_h * pp.out_w * o;
    int8_t *x = malloc(n_in), *wt = malloc(o * taps * c), *conv = malloc(n_conv), *ring = malloc(2 * kiln_conv_max_pool_i8_ring_bytes(&p, &pp));
    int8_t *y[4];
    int32_t *bias = malloc(o * 4), *mult = malloc(o * 4), *shift = malloc(o * 4);
    for (size_t i = 0; i < n_in; i++) x[i] = (int8_t)(rnd() * 127);
    for (size_t i = 0; i < o * taps * c; i++) wt[i] = (int8_t)(rnd() * 127);
    for (size_t i = 0; i < o; i++) {
        bias[i] = (int32_t)(rnd() * 20000);
        mult[i] = 1073741824 + (int32_t)((rnd() + 1) * 500000000);
        shift[i] = -6 - (int32_t)(i % 3);
    }
    kiln_isa isas[2] = {KILN_ISA_NEON, KILN_ISA_PORTABLE};
    for (int i = 0; i < 2; i++) {
        uint8_t *packed = malloc(kiln_conv_i8_packed_bytes(o, taps, c));
        kiln_pack_conv_i8(isas[i], &p, wt, bias, mult, shift, o, packed);
        y[2 * i] = malloc(n_out);
        y[2 * i + 1] = malloc(n_out);
        kiln_conv_i8(isas[i], &p, x, packed, conv, 0, p.out_h * p.out_w, 0, (o + 15) / 16);
        kiln_max_pool_i8(isas[i], &pp, conv, y[2 * i], 0, pp.out_h);
        size_t cut = pp.out_h / 2, ring_bytes = kiln_conv_max_pool_i8_ring_bytes(&p, &pp);
        kiln_conv_max_pool_i8(isas[i], &p, &pp, x, packed, ring, y[2 * i + 1], 0, cut);
        kiln_conv_max_pool_i8(isas[i], &p, &pp, x, packed, ring + ring_bytes, y[2 * i + 1], cut, pp.out_h);
        check_i8(i == 0 ? "int8 conv + max pool fused (neon)" : "int8 conv + max pool fused (portable)", y[2 * i + 1], y[2 * i], n_out);
        free(packed);
    }
    check_i8("int8 conv + max pool, neon vs portable", y[0], y[2], n_out);
    for (int i = 0; i < 4; i++) free(y[i]);
    free(x), free(wt), free(conv), free(ring), free(bias), free(mult), free(shift);
}

static void conv_i8_checks(void) {
    conv_pool_i8_case(17, 16, 3, 24, 3, 2, 1);
    conv_pool_i8_case(13, 11, 5, 33, 3, 1, 1);
    conv_pool_i8_case(9, 10, 16, 40, 1, 1, 0);
    // Pointwise (no pointer tables), fully connected rows, every channel remainder.
    size_t cs[] = {1, 3, 4, 5, 8, 13, 16, 31, 64}, os[] = {1, 7, 16, 17, 33, 50};
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++)
        for (size_t b = 0; b < sizeof os / sizeof *os; b++) conv_i8_case(dense(3 + a % 3, 5 + b % 4, cs[a], os[b], 1, 1, 0));
    conv_i8_case(dense(1, 1, 1024, 10, 1, 1, 0));
    conv_i8_case(dense(1, 3, 37, 11, 1, 1, 0));
    conv_i8_case(dense(1, 5, 130, 40, 1, 1, 0));
    // Typical layers: 3x3 stride 1 and 2, 5x5, a 7x7 stem (49 taps), an 8x8 (64 taps, every bit of
    // the skip mask), 1x7 and 7x1, dilation, SAME's asymmetric padding, 1x1 stride 2.
    conv_i8_case(dense(9, 8, 3, 24, 3, 2, 1));
    conv_i8_case(dense(7, 9, 16, 32, 3, 1, 1));
    conv_i8_case(dense(11, 9, 7, 33, 5, 2, 2));
    conv_i8_case(dense(15, 13, 3, 16, 7, 2, 3));
    conv_i8_case(dense(9, 10, 5, 18, 8, 1, 4));
    conv_i8_case(dense(3, 3, 6, 20, 8, 1, 4));
    conv_i8_case(dense(8, 8, 6, 17, 1, 2, 0));
    conv_spec s1 = {6, 11, 1, 9, 21, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3, 0, 0};
    conv_i8_case(s1);
    conv_spec s2 = {11, 5, 1, 9, 21, 7, 1, 2, 1, 1, 1, 3, 0, 3, 0, 0, 0};
    conv_i8_case(s2);
    conv_spec s3 = {9, 9, 1, 16, 16, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0};
    conv_i8_case(s3);
    conv_spec s4 = {8, 7, 1, 12, 24, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0};
    conv_i8_case(s4);
    // Small output maps: most taps of every tile read only padding (skipped, with their tap rows).
    size_t maps[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 3}, {3, 1}, {2, 3}, {3, 3}, {4, 4}};
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
        conv_i8_case(dense(maps[i][0], maps[i][1], 20, 72, 3, 1, 1));
        conv_i8_case(dense(maps[i][0], maps[i][1], 9, 40, 5, 1, 2));
        conv_i8_case(dense(maps[i][0], maps[i][1], 33, 64, 3, 2, 1));
        conv_spec d = {maps[i][0], maps[i][1], 1, 8, 20, 3, 3, 1, 1, 3, 3, 3, 3, 3, 3, 0, 0};
        conv_i8_case(d);
    }
    // Groups, channel slices, a depthwise conv with a multiplier (one input channel per group).
    conv_spec g1 = {7, 6, 4, 6, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    conv_i8_case(g1);
    conv_spec g2 = {8, 8, 2, 16, 24, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0};
    conv_i8_case(g2);
    conv_spec g3 = {6, 7, 8, 1, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    conv_i8_case(g3);
    conv_spec g4 = {5, 9, 3, 1, 3, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0};
    conv_i8_case(g4);
    conv_spec e1 = {6, 7, 1, 13, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2};
    conv_i8_case(e1);
    conv_spec e2 = {5, 5, 1, 32, 48, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5, 1};
    conv_i8_case(e2);
    // Random layers, mostly small maps.
    for (int i = 0; i < 1000; i++) {
        conv_spec r;
        size_t k = (size_t)(int[]){1, 1, 2, 3, 3, 3, 5, 7}[irange(0, 7)];
        r.kh = k, r.kw = chance(85) ? k : zrange(1, 5);
        r.h = zrange(1, chance(60) ? 4 : 12), r.w = zrange(1, chance(60) ? 4 : 12);
        r.sh = zrange(1, 2), r.sw = chance(80) ? r.sh : zrange(1, 3);
        r.dh = chance(85) ? 1 : 2, r.dw = chance(85) ? r.dh : zrange(1, 2);
        r.pt = zrange(0, r.kh - 1 > 3 ? 3 : r.kh - 1), r.pb = zrange(0, r.kh - 1 > 3 ? 3 : r.kh - 1);
        r.pl = zrange(0, r.kw - 1 > 3 ? 3 : r.kw - 1), r.pr = zrange(0, r.kw - 1 > 3 ? 3 : r.kw - 1);
        r.groups = chance(80) ? 1 : zrange(2, 4);
        r.gc = chance(15) ? 1 : zrange(1, r.groups > 1 ? 12 : 48);
        r.go = zrange(1, chance(30) ? 80 : 40);
        r.in_extra = chance(20) ? zrange(1, 5) : 0, r.out_extra = chance(20) ? zrange(1, 5) : 0;
        while (r.h + r.pt + r.pb < r.dh * (r.kh - 1) + 1) r.h++;  // the window fits
        while (r.w + r.pl + r.pr < r.dw * (r.kw - 1) + 1) r.w++;
        conv_i8_case(r);
    }
}

// MARK: Depthwise

static size_t dw_cases;

/// One depthwise conv (multiplier 1; `s.gc` channels, `s.groups` and `s.go` unused) over output
/// rows split as threads split them.
static void depthwise_i8_case(conv_spec s) {
    const size_t c = s.gc, taps = s.kh * s.kw, span_h = s.dh * (s.kh - 1) + 1, span_w = s.dw * (s.kw - 1) + 1;
    if (taps > KILN_MAX_TAPS || s.h + s.pt + s.pb < span_h || s.w + s.pl + s.pr < span_w) return;
    const size_t oh = (s.h + s.pt + s.pb - span_h) / s.sh + 1, ow = (s.w + s.pl + s.pr - span_w) / s.sw + 1, pixels = oh * ow;
    const size_t in_stride = c + s.in_extra, out_stride = c + s.out_extra;
    const int extreme = chance(8);
    const int32_t zx = extreme ? (chance(50) ? -128 : 127) : irange(-128, 127), zo = random_output_zero_point();
    int32_t lo, hi;
    random_range(zo, &lo, &hi);
    void *x_base;
    size_t x_len;
    int8_t *x = guarded_alloc(s.h * s.w * in_stride + 64, chance(50), &x_base, &x_len), *wt = malloc(taps * c);
    random_i8(x, s.h * s.w * in_stride + 64, extreme, -128);
    random_i8(wt, taps * c, extreme, -127);
    int32_t *bias = NULL, *m = malloc(c * 4), *sh = malloc(c * 4);
    if (chance(80)) {
        bias = malloc(c * 4);
        for (size_t i = 0; i < c; i++) bias[i] = irange(-20000, 20000);
    }
    random_multipliers(c, taps, m, sh);
    size_t round_up = chance(75) ? c / 8 * 8 : zrange(0, c);
    int8_t *ref = malloc(pixels * c);
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t ch = 0; ch < c; ch++) {
                int64_t acc = bias ? bias[ch] : 0;
                for (size_t ky = 0; ky < s.kh; ky++)
                    for (size_t kx = 0; kx < s.kw; kx++) {
                        long iy = (long)(oy * s.sh + ky * s.dh) - (long)s.pt, ix = (long)(ox * s.sw + kx * s.dw) - (long)s.pl;
                        if (iy < 0 || ix < 0 || iy >= (long)s.h || ix >= (long)s.w) continue;
                        int xv = x[((size_t)iy * s.w + (size_t)ix) * in_stride + ch];
                        acc += (int64_t)wt[(ky * s.kw + kx) * c + ch] * (xv - zx);
                    }
                ref[(oy * ow + ox) * c + ch] =
                    (int8_t)clamp32((int64_t)ref_multiply((int32_t)acc, m[ch], sh[ch], ch < round_up) + zo, lo, hi);
            }
    size_t *cuts = malloc((oh + 2) * sizeof(size_t)), nr = random_cuts(oh, 1, 3, cuts);
    char what[320];
    int n = snprintf(what, sizeof what,
                     "depthwise %zux%zux%zu k%zux%zu s%zux%zu d%zux%zu pad %zu,%zu,%zu,%zu extra %zu/%zu zx %d zo %d [%d,%d] "
                     "round up %zu%s, %zu row ranges",
                     s.h, s.w, c, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, s.pb, s.pr, s.in_extra, s.out_extra, zx, zo,
                     lo, hi, round_up, extreme ? " extreme" : "", nr);
    uint8_t *packed = malloc(kiln_depthwise_i8_packed_bytes(c, taps));
    int8_t *out = malloc(pixels * out_stride + 8 * out_stride + 64), *dense = malloc(pixels * c);
    for (int v = 0; v < 2; v++) {
        kiln_conv_i8_params p = {s.h, s.w, c, in_stride, oh, ow, c, out_stride, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl,
                                 zx, zo, lo, hi};
        kiln_pack_depthwise_i8(isas[v], &p, wt, bias, m, sh, round_up, packed);
        memset(out, 0x5A, pixels * out_stride + 8 * out_stride + 64);
        snprintf(what + n, sizeof what - (size_t)n, ", %s", isa_name(isas[v]));
        snprintf(current, sizeof current, "%s", what);
        for (size_t r = 0; r < nr; r++) kiln_depthwise_i8(isas[v], &p, x, packed, out, cuts[r], cuts[r + 1]);
        int clean = untouched(what, out + pixels * out_stride, 8 * out_stride + 64, 0x5A);
        for (size_t q = 0; q < pixels && clean; q++) {
            memcpy(dense + q * c, out + q * out_stride, c);
            clean = untouched(what, out + q * out_stride + c, out_stride - c, 0x5A);
        }
        if (clean) check_i8(what, dense, ref, pixels * c);
    }
    dw_cases++;
    munmap(x_base, x_len);
    free(wt), free(bias), free(m), free(sh), free(ref), free(packed), free(out), free(dense), free(cuts);
}

/// A depthwise layer of `c` channels, `k` x `k`, stride `st`, dilation `dil`, padding t, l, b, r.
static conv_spec dws(size_t h, size_t w, size_t c, size_t k, size_t st, size_t dil, size_t pt, size_t pl, size_t pb, size_t pr) {
    conv_spec s = {h, w, 1, c, c, k, k, st, st, dil, dil, pt, pl, pb, pr, 0, 0};
    return s;
}

static void depthwise_i8_checks(void) {
    size_t cs[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 21, 24, 40, 67};
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++) {
        depthwise_i8_case(dws(9, 7, cs[a], 3, 1, 1, 1, 1, 1, 1));
        depthwise_i8_case(dws(9, 7, cs[a], 3, 2, 1, 1, 1, 1, 1));
        depthwise_i8_case(dws(9, 8, cs[a], 3, 2, 1, 0, 0, 1, 1));
        depthwise_i8_case(dws(8, 9, cs[a], 5, 2, 1, 2, 2, 2, 2));
        depthwise_i8_case(dws(5, 5, cs[a], 3, 1, 2, 2, 2, 2, 2));
        depthwise_i8_case(dws(1, 1, cs[a], 3, 1, 1, 1, 1, 1, 1));
        depthwise_i8_case(dws(2, 3, cs[a], 5, 1, 1, 2, 2, 2, 2));
    }
    for (int i = 0; i < 300; i++) {
        conv_spec r;
        r.kh = (size_t)(int[]){1, 3, 3, 5, 7}[irange(0, 4)], r.kw = chance(85) ? r.kh : zrange(1, 5);
        r.pt = zrange(0, r.kh - 1 > 3 ? 3 : r.kh - 1), r.pb = zrange(0, r.kh - 1 > 3 ? 3 : r.kh - 1);
        r.pl = zrange(0, r.kw - 1 > 3 ? 3 : r.kw - 1), r.pr = zrange(0, r.kw - 1 > 3 ? 3 : r.kw - 1);
        r.sh = zrange(1, 2), r.sw = chance(85) ? r.sh : zrange(1, 3);
        r.dh = chance(85) ? 1 : 2, r.dw = chance(85) ? r.dh : zrange(1, 2);
        r.h = zrange(1, 10), r.w = zrange(1, 10);
        while (r.h + r.pt + r.pb < r.dh * (r.kh - 1) + 1) r.h++;
        while (r.w + r.pl + r.pr < r.dw * (r.kw - 1) + 1) r.w++;
        r.groups = 1, r.gc = r.go = zrange(1, 70);
        r.in_extra = chance(20) ? zrange(1, 4) : 0, r.out_extra = chance(20) ? zrange(1, 4) : 0;
        depthwise_i8_case(r);
    }
}

// MARK: Pools

static void pool_i8_case(size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t sh, size_t sw, size_t pt, size_t pl,
                         size_t pb, size_t pr) {
    if (h + pt + pb < kh || w + pl + pr < kw) return;
    const size_t oh = (h + pt + pb - kh) / sh + 1, ow = (w + pl + pr - kw) / sw + 1, n = oh * ow * c;
    int32_t lo, hi;
    random_range(irange(-100, 20), &lo, &hi);
    kiln_pool_i8_params p = {h, w, c, oh, ow, kh, kw, sh, sw, pt, pl, lo, hi};
    int8_t *x = malloc(h * w * c + 64), *ref_max = malloc(n), *ref_avg = malloc(n), *y = malloc(n + 1);
    random_i8(x, h * w * c + 64, chance(10), -128);
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t ch = 0; ch < c; ch++) {
                int mx = -1000, sum = 0, count = 0;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++) {
                        long iy = (long)(oy * sh + ky) - (long)pt, ix = (long)(ox * sw + kx) - (long)pl;
                        if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)w) continue;
                        int v = x[((size_t)iy * w + (size_t)ix) * c + ch];
                        mx = v > mx ? v : mx, sum += v, count++;
                    }
                size_t i = (oy * ow + ox) * c + ch;
                ref_max[i] = (int8_t)clamp32(mx, lo, hi);
                ref_avg[i] = (int8_t)clamp32(count ? lround((double)sum / count) : 0, lo, hi);  // half away from zero
            }
    size_t cuts[64], nr = random_cuts(oh, 1, 2, cuts);
    for (int v = 0; v < 2; v++) {
        for (int avg = 0; avg < 2; avg++) {
            memset(y, 0x5A, n + 1);
            for (size_t r = 0; r < nr; r++) {
                if (avg) kiln_avg_pool_i8(isas[v], &p, x, y, cuts[r], cuts[r + 1]);
                else kiln_max_pool_i8(isas[v], &p, x, y, cuts[r], cuts[r + 1]);
            }
            char what[200];
            snprintf(what, sizeof what, "%s pool %zux%zux%zu k%zux%zu s%zux%zu pad %zu,%zu,%zu,%zu [%d,%d], %s",
                     avg ? "avg" : "max", h, w, c, kh, kw, sh, sw, pt, pl, pb, pr, lo, hi, isa_name(isas[v]));
            if (untouched(what, y + n, 1, 0x5A)) check_i8(what, y, avg ? ref_avg : ref_max, n);
        }
    }
    free(x), free(ref_max), free(ref_avg), free(y);
}

static void pool_i8_checks(void) {
    size_t cs[] = {1, 3, 16, 31, 32, 33, 64, 65, 100, 257};
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++) {
        pool_i8_case(7, 6, cs[a], 3, 3, 2, 2, 1, 1, 1, 1);
        pool_i8_case(6, 6, cs[a], 2, 2, 2, 2, 0, 0, 0, 0);
        pool_i8_case(5, 7, cs[a], 3, 3, 1, 1, 1, 1, 1, 1);
    }
    pool_i8_case(7, 7, 40, 7, 7, 1, 1, 0, 0, 0, 0);  // a global average pool as a window
    for (int i = 0; i < 150; i++) {
        size_t kh = zrange(1, 4), kw = zrange(1, 4), sh = zrange(1, 3), sw = chance(80) ? sh : zrange(1, 3);
        size_t pt = zrange(0, kh - 1), pl = zrange(0, kw - 1), pb = zrange(0, kh - 1), pr = zrange(0, kw - 1);
        pool_i8_case(zrange(1, 9), zrange(1, 9), zrange(1, 80), kh, kw, sh, sw, pt, pl, pb, pr);
    }
}

// MARK: Element-wise

/// ADD (vector lanes on contiguous inputs, the scalar loop for broadcasts) and MUL, with
/// parameters formed as Requantize.addParameters / mulMultiplier do.
static void add_mul_checks(void) {
    for (int i = 0; i < 120; i++) {
        float sa = urange(0.002f, 0.2f), sb = chance(20) ? sa : urange(0.002f, 0.2f), so = urange(0.002f, 0.3f);
        if (chance(15)) sa *= 50, so /= 20;  // inputs far apart, output finer
        int32_t za = chance(10) ? -128 : irange(-128, 127), zb = chance(10) ? 127 : irange(-128, 127), zo = irange(-128, 127);
        int32_t lo, hi;
        random_range(zo, &lo, &hi);
        double twice_max = (double)(2 * (sa > sb ? sa : sb));
        kiln_add_i8_params p = {za, 0, 0, zb, 0, 0, 20, 0, 0, zo, lo, hi};
        quantize_multiplier((double)sa / twice_max, &p.a_multiplier, &p.a_shift);
        quantize_multiplier((double)sb / twice_max, &p.b_multiplier, &p.b_shift);
        quantize_multiplier(twice_max / ((double)(1 << 20) * (double)so), &p.output_multiplier, &p.output_shift);
        size_t n = chance(20) ? zrange(100, 600) : zrange(0, 40);
        int a_step = chance(20) ? 0 : 1, b_step = a_step == 0 ? 1 : (chance(20) ? 0 : 1);
        int8_t *a = malloc(n + 64), *b = malloc(n + 64), *ref = malloc(n + 1), *y = malloc(n + 1);
        random_i8(a, n + 64, 0, -128);
        random_i8(b, n + 64, 0, -128);
        for (size_t j = 0; j < n; j++) {
            int32_t x1 = a[j * (size_t)a_step] - za, x2 = b[j * (size_t)b_step] - zb;
            int32_t s1 = ref_multiply(x1 * (1 << 20), p.a_multiplier, p.a_shift, 0);
            int32_t s2 = ref_multiply(x2 * (1 << 20), p.b_multiplier, p.b_shift, 0);
            ref[j] = (int8_t)clamp32((int64_t)ref_multiply(s1 + s2, p.output_multiplier, p.output_shift, 0) + zo, lo, hi);
        }
        for (int v = 0; v < 2; v++) {
            memset(y, 0x5A, n + 1);
            kiln_add_i8(isas[v], &p, a, (size_t)a_step, b, (size_t)b_step, y, n);
            char what[200];
            snprintf(what, sizeof what, "add of %zu (steps %d,%d) scales %g,%g->%g zero points %d,%d->%d [%d,%d], %s", n,
                     a_step, b_step, sa, sb, so, za, zb, zo, lo, hi, isa_name(isas[v]));
            if (untouched(what, y + n, 1, 0x5A)) check_i8(what, y, ref, n);
        }
        // MUL (one C loop for every ISA), on the same operands.
        kiln_mul_i8_params q = {za, zb, 0, 0, zo, lo, hi};
        quantize_multiplier((double)(sa * sb / so), &q.multiplier, &q.shift);
        for (size_t j = 0; j < n; j++) {
            int32_t prod = (a[j * (size_t)a_step] - za) * (b[j * (size_t)b_step] - zb);
            ref[j] = (int8_t)clamp32((int64_t)ref_multiply(prod, q.multiplier, q.shift, 0) + zo, lo, hi);
        }
        memset(y, 0x5A, n + 1);
        kiln_mul_i8(&q, a, (size_t)a_step, b, (size_t)b_step, y, n);
        if (untouched("mul", y + n, 1, 0x5A)) check_i8("mul", y, ref, n);
        free(a), free(b), free(ref), free(y);
    }
}

/// The conv epilogue alone: every ISA's kiln_requantize_i32_i8 and the scalar
/// kiln_multiply_by_quantized_multiplier against ref_multiply, on typical accumulators, the whole
/// int32 range, ties (small right shifts) and multipliers from 2^-34 to 2^3.
static void requantize_checks(void) {
    enum { N = 4096 };
    static int32_t xs[N], ms[N], ss[N], up[N];
    static int8_t ref[N + 1], y[N + 1];
    for (int round = 0; round < 6; round++) {
        int scalar_bad = 0;
        for (int i = 0; i < N; i++) {
            switch (i % 4) {
            case 0: xs[i] = (int32_t)rnext(); break;
            case 1: xs[i] = irange(-100000, 100000); break;
            case 2: xs[i] = irange(-300, 300); break;
            default: xs[i] = (int32_t[]){INT32_MIN, INT32_MAX, -1, 0, 1, INT32_MIN + 1}[irange(0, 5)];
            }
            int e = round < 2 ? irange(-34, 3) : (round < 4 ? irange(-3, 3) : irange(-20, -5));
            quantize_multiplier(urange(0.5f, 1) * ldexp(1, e), ms + i, ss + i);
            up[i] = chance(60);
            int32_t got = kiln_multiply_by_quantized_multiplier(xs[i], ms[i], ss[i], up[i]);
            if (got != ref_multiply(xs[i], ms[i], ss[i], up[i])) scalar_bad++;
        }
        if (scalar_bad) {
            printf("FAIL kiln_multiply_by_quantized_multiplier: %d of %d differ\n", scalar_bad, N);
            failed++;
        } else {
            passed++;
        }
        int32_t zo = (int32_t[]){-128, -3, 0, 77, 127, 10}[round], lo = round == 3 ? 72 : -128, hi = round == 5 ? 40 : 127;
        for (int i = 0; i < N; i++) ref[i] = (int8_t)clamp32((int64_t)ref_multiply(xs[i], ms[i], ss[i], up[i]) + zo, lo, hi);
        for (int v = 0; v < 2; v++) {
            // Lengths that end inside a 4- and 16-lane block, and one long run.
            size_t lens[] = {1, 3, 5, 15, 17, 33, N - 200}, at = 0;
            for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
                size_t len = lens[l];
                y[at + len] = 0x5A;
                kiln_requantize_i32_i8(isas[v], xs + at, len, ms + at, ss + at, up + at, zo, lo, hi, y + at);
                char what[120];
                snprintf(what, sizeof what, "requantize %zu values, zero point %d [%d,%d], %s", len, zo, lo, hi,
                         isa_name(isas[v]));
                if (untouched(what, y + at + len, 1, 0x5A)) check_i8(what, y + at, ref + at, len);
                at += len;
            }
        }
    }
}

/// Tables (LOGISTIC, RELU, int8 QUANTIZE...): y[i] = table[x[i] + 128], also in place.
static void lookup_checks(void) {
    int8_t table[256], x[700], y[701], ref[700];
    for (int i = 0; i < 12; i++) {
        random_i8(table, 256, 0, -128);
        size_t n = i == 0 ? 256 : zrange(0, 700);
        for (size_t j = 0; j < n; j++) x[j] = (int8_t)(i == 0 ? (int)j - 128 : irange(-128, 127));
        for (size_t j = 0; j < n; j++) ref[j] = table[x[j] + 128];
        for (int v = 0; v < 2; v++) {
            char what[80];
            snprintf(what, sizeof what, "lookup of %zu, %s", n, isa_name(isas[v]));
            memset(y, 0x5A, n + 1);
            kiln_lookup_i8(isas[v], table, x, y, n);
            if (untouched(what, y + n, 1, 0x5A)) check_i8(what, y, ref, n);
            memcpy(y, x, n);
            kiln_lookup_i8(isas[v], table, y, y, n);
            check_i8(what, y, ref, n);
        }
    }
}

/// QUANTIZE float -> int8: round(x / scale) half away from zero, + zero point, saturated; NaN
/// gives the zero point. Exact halves, saturation, infinities, signed zeros.
static void quantize_checks(void) {
    static float x[1200];
    static int8_t ref[1200], y[1201];
    for (int i = 0; i < 10; i++) {
        float scale = urange(0.002f, 0.1f);
        int32_t zp = i == 0 ? -128 : (i == 1 ? 127 : irange(-128, 127));
        size_t n = 0;
        for (int k = 0; k < 300; k++) x[n++] = urange(-140, 140) * scale;
        for (int k = -140; k <= 140; k++) x[n++] = ((float)k + 0.5f) * scale;
        for (int k = -140; k <= 140; k++) x[n++] = (float)k * scale;
        float specials[] = {NAN, -NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 0.0f, -0.0f, 1e-30f, FLT_MAX, -FLT_MAX};
        for (size_t k = 0; k < sizeof specials / sizeof *specials; k++) x[n++] = specials[k];
        for (size_t j = 0; j < n; j++) {
            float v = x[j] / scale;
            if (v != v) {
                ref[j] = (int8_t)clamp32(zp, -128, 127);
            } else {
                float r = roundf(v);
                ref[j] = (int8_t)(r < -1000 ? -128 : (r > 1000 ? 127 : clamp32((int64_t)r + zp, -128, 127)));
            }
        }
        size_t start = (size_t)irange(0, 7);
        for (int v = 0; v < 2; v++) {
            char what[100];
            snprintf(what, sizeof what, "quantize %zu floats, scale %g zero point %d, %s", n - start, scale, zp,
                     isa_name(isas[v]));
            memset(y, 0x5A, n + 1);
            kiln_quantize_f32_i8(isas[v], x + start, y + start, n - start, scale, zp);
            if (untouched(what, y + n, 1, 0x5A)) check_i8(what, y + start, ref + start, n - start);
        }
    }
}

/// MEAN over pixels (one C loop for every ISA; TFLite's tie rule per block of 16 channels).
static void mean_checks(void) {
    for (int i = 0; i < 20; i++) {
        size_t pixels = zrange(1, 60), c = zrange(1, 140), n = pixels * c, round_up = chance(80) ? c / 16 * 16 : zrange(0, c);
        int8_t *x = malloc(n + 64), *ref = malloc(c), *y = malloc(c + 1);
        random_i8(x, n + 64, 0, -128);
        int32_t m, s, bias = irange(-100, 100);
        quantize_multiplier(urange(0.5f, 2) / (double)pixels, &m, &s);
        for (size_t ch = 0; ch < c; ch++) {
            int32_t sum = 0;
            for (size_t q = 0; q < pixels; q++) sum += x[q * c + ch];
            ref[ch] = (int8_t)clamp32((int64_t)ref_multiply(sum, m, s, ch < round_up) + bias, -128, 127);
        }
        memset(y, 0x5A, c + 1);
        size_t half = zrange(0, c);
        kiln_mean_i8(x, pixels, c, y, m, s, bias, round_up, 0, half);
        kiln_mean_i8(x, pixels, c, y, m, s, bias, round_up, half, c);
        char what[100];
        snprintf(what, sizeof what, "mean of %zu pixels x %zu channels", pixels, c);
        if (untouched(what, y + c, 1, 0x5A)) check_i8(what, y, ref, c);
        free(x), free(ref), free(y);
    }
}

static const char *path_name(kiln_i8_path p) {
    switch (p) {
    case KILN_I8_NEON_DOT: return "neon-dot";
    case KILN_I8_AVX2: return "avx2";
    case KILN_I8_AVX512_VNNI: return "avx512-vnni";
    default: return "portable";
    }
}

static void int8_checks(const char *expected_path) {
    const char *path = path_name(kiln_i8_path_for(KILN_ISA_NEON));
    printf("int8 kernels for NEON run the %s path\n", path);
    if (expected_path) {
        if (strcmp(path, expected_path) != 0) {
            printf("FAIL int8 dispatch: %s, expected %s on this CPU\n", path, expected_path);
            failed++;
        } else {
            passed++;
        }
    }
    int before = passed + failed;
    requantize_checks();
    conv_i8_checks();
    printf("int8 conv: %zu layers (%zu outputs each ISA)\n", conv_cases, conv_outputs);
    depthwise_i8_checks();
    printf("int8 depthwise: %zu layers\n", dw_cases);
    pool_i8_checks();
    add_mul_checks();
    lookup_checks();
    quantize_checks();
    mean_checks();
    printf("int8: %d checks\n", passed + failed - before);
}

int main(int argc, char **argv) {
    if (!kiln_isa_supported(KILN_ISA_NEON)) {
        printf("NEON is not supported here\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);  // every line out before a fault ends the process
    signal(SIGSEGV, on_fault);
    signal(SIGBUS, on_fault);
    float_checks();
    // A second argument reseeds the int8 cases (the default seed is what scripts/check-neon.sh runs).
    if (argc > 2) state = strtoull(argv[2], NULL, 10);
    int8_checks(argc > 1 ? argv[1] : NULL);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
