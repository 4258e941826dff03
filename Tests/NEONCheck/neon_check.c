// Checks the NEON kernels of CKilnKernels against naive C and against the portable build, on
// aarch64 (run under qemu-aarch64 on other machines: scripts/check-neon.sh). Prints one line
// per case and "N passed, M failed" at the end; exits 1 on any failure.
#include "CKilnKernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void check_i8(const char *what, const int8_t *a, const int8_t *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += a[i] != b[i];
    if (bad) {
        printf("FAIL %s: %zu of %zu bytes differ\n", what, bad, n);
        failed++;
    } else {
        passed++;
    }
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

int main(void) {
    if (!kiln_isa_supported(KILN_ISA_NEON)) {
        printf("NEON is not supported here\n");
        return 1;
    }
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
    conv_pool_i8_case(17, 16, 3, 24, 3, 2, 1);
    conv_pool_i8_case(13, 11, 5, 33, 3, 1, 1);
    conv_pool_i8_case(9, 10, 16, 40, 1, 1, 0);
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
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
