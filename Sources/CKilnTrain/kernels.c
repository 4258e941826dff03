// Inner loops of Kiln's training kernels (see CKilnTrain.h for the layout legend).
//
// Each function is compiled twice on x86-64 (AVX2+FMA and baseline) and the loader picks the
// clone the CPU supports, so the library runs anywhere and vectorises where it can. Loops are
// written so that clang vectorises them: unit-stride inner loops over `restrict` pointers.
#include "CKilnTrain.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#define KT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KT_CLONES
#endif

/// Block length for float partial sums that are then added in double: long sums stay accurate
/// and the inner loops stay vectorised.
#define KT_BLOCK 2048

/// Runs `body` (a loop over `ox` using the stride `S`) with S a compile-time 1 or 2 when the
/// runtime stride is, so that strided loads vectorise.
#define KT_STRIDED(stride, body)        \
    do {                                \
        if ((stride) == 1) {            \
            const long S = 1;           \
            body                        \
        } else if ((stride) == 2) {     \
            const long S = 2;           \
            body                        \
        } else {                        \
            const long S = (stride);    \
            body                        \
        }                               \
    } while (0)

static inline long ceil_div_nonneg(long a, long b) { return a <= 0 ? 0 : (a + b - 1) / b; }

/// The output columns [*lo, *hi) whose input column ox*s + off lies in [0, w).
static inline void valid_range(long ow, long w, long s, long off, long *lo, long *hi) {
    *lo = ceil_div_nonneg(-off, s);
    long last = w - 1 - off;  // ox*s <= last
    *hi = last < 0 ? 0 : last / s + 1;
    if (*hi > ow) *hi = ow;
    if (*lo > *hi) *lo = *hi;
}

KT_CLONES
void kt_swap_outer(const float *restrict src, float *restrict dst, long a, long b, long inner, long j0, long j1) {
    for (long j = j0; j < j1; j++) {
        for (long i = 0; i < a; i++) {
            memcpy(dst + (j * a + i) * inner, src + (i * b + j) * inner, (size_t)inner * sizeof(float));
        }
    }
}

KT_CLONES
void kt_im2col(const float *restrict x, float *restrict col, const kt_conv_geometry *g, long row0, long row1) {
    const long n = g->n, h = g->h, w = g->w, oh = g->oh, ow = g->ow, kh = g->kh, kw = g->kw;
    const long plane = h * w, outPlane = oh * ow, rowLen = n * outPlane;
    for (long r = row0; r < row1; r++) {
        const long ci = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
        const long off = kx * g->dw - g->pl;
        long lo, hi;
        valid_range(ow, w, g->sw, off, &lo, &hi);
        float *restrict out = col + r * rowLen;
        for (long b = 0; b < n; b++) {
            const float *restrict xp = x + (ci * n + b) * plane;
            for (long oy = 0; oy < oh; oy++) {
                float *restrict o = out + b * outPlane + oy * ow;
                const long iy = oy * g->sh - g->pt + ky * g->dh;
                if (iy < 0 || iy >= h) {
                    memset(o, 0, (size_t)ow * sizeof(float));
                    continue;
                }
                const float *restrict xr = xp + iy * w + off;
                for (long ox = 0; ox < lo; ox++) o[ox] = 0;
                KT_STRIDED(g->sw, {
                    for (long ox = lo; ox < hi; ox++) o[ox] = xr[ox * S];
                });
                for (long ox = hi; ox < ow; ox++) o[ox] = 0;
            }
        }
    }
}

KT_CLONES
void kt_col2im(const float *restrict col, float *restrict dx, const kt_conv_geometry *g, long c0, long c1,
               int accumulate) {
    const long n = g->n, h = g->h, w = g->w, oh = g->oh, ow = g->ow, kh = g->kh, kw = g->kw;
    const long plane = h * w, outPlane = oh * ow, rowLen = n * outPlane;
    for (long ci = c0; ci < c1; ci++) {
        float *restrict dc = dx + ci * n * plane;
        if (!accumulate) memset(dc, 0, (size_t)(n * plane) * sizeof(float));
        for (long ky = 0; ky < kh; ky++) {
            for (long kx = 0; kx < kw; kx++) {
                const float *restrict in = col + ((ci * kh + ky) * kw + kx) * rowLen;
                const long off = kx * g->dw - g->pl;
                long lo, hi;
                valid_range(ow, w, g->sw, off, &lo, &hi);
                for (long b = 0; b < n; b++) {
                    for (long oy = 0; oy < oh; oy++) {
                        const long iy = oy * g->sh - g->pt + ky * g->dh;
                        if (iy < 0 || iy >= h) continue;
                        float *restrict d = dc + b * plane + iy * w + off;
                        const float *restrict c = in + b * outPlane + oy * ow;
                        if (g->sw == 1) {
                            for (long ox = lo; ox < hi; ox++) d[ox] += c[ox];
                        } else {
                            const long s = g->sw;
                            for (long ox = lo; ox < hi; ox++) d[ox * s] += c[ox];
                        }
                    }
                }
            }
        }
    }
}

KT_CLONES
void kt_depthwise_forward(const float *restrict x, const float *restrict wt, const float *restrict bias,
                          float *restrict y, const kt_conv_geometry *g, long c0, long c1) {
    const long n = g->n, h = g->h, w = g->w, oh = g->oh, ow = g->ow, kh = g->kh, kw = g->kw;
    const long plane = h * w, outPlane = oh * ow;
    long lo[64], hi[64];
    const int cacheRanges = kw <= 64;
    if (cacheRanges) {
        for (long kx = 0; kx < kw; kx++) valid_range(ow, w, g->sw, kx * g->dw - g->pl, &lo[kx], &hi[kx]);
    }
    for (long c = c0; c < c1; c++) {
        const float *restrict wc = wt + c * kh * kw;
        const float b0 = bias ? bias[c] : 0.0f;
        for (long b = 0; b < n; b++) {
            const float *restrict xp = x + (c * n + b) * plane;
            float *restrict yp = y + (c * n + b) * outPlane;
            for (long oy = 0; oy < oh; oy++) {
                float *restrict yr = yp + oy * ow;
                for (long ox = 0; ox < ow; ox++) yr[ox] = b0;
                for (long ky = 0; ky < kh; ky++) {
                    const long iy = oy * g->sh - g->pt + ky * g->dh;
                    if (iy < 0 || iy >= h) continue;
                    for (long kx = 0; kx < kw; kx++) {
                        const long off = kx * g->dw - g->pl;
                        long l, u;
                        if (cacheRanges) {
                            l = lo[kx];
                            u = hi[kx];
                        } else {
                            valid_range(ow, w, g->sw, off, &l, &u);
                        }
                        const float wv = wc[ky * kw + kx];
                        const float *restrict xr = xp + iy * w + off;
                        KT_STRIDED(g->sw, {
                            for (long ox = l; ox < u; ox++) yr[ox] += wv * xr[ox * S];
                        });
                    }
                }
            }
        }
    }
}

KT_CLONES
void kt_depthwise_backward_data(const float *restrict dy, const float *restrict wt, float *restrict dx,
                                const kt_conv_geometry *g, long c0, long c1, int accumulate) {
    const long n = g->n, h = g->h, w = g->w, oh = g->oh, ow = g->ow, kh = g->kh, kw = g->kw;
    const long plane = h * w, outPlane = oh * ow;
    for (long c = c0; c < c1; c++) {
        const float *restrict wc = wt + c * kh * kw;
        for (long b = 0; b < n; b++) {
            float *restrict dp = dx + (c * n + b) * plane;
            const float *restrict gp = dy + (c * n + b) * outPlane;
            if (!accumulate) memset(dp, 0, (size_t)plane * sizeof(float));
            for (long oy = 0; oy < oh; oy++) {
                const float *restrict gr = gp + oy * ow;
                for (long ky = 0; ky < kh; ky++) {
                    const long iy = oy * g->sh - g->pt + ky * g->dh;
                    if (iy < 0 || iy >= h) continue;
                    for (long kx = 0; kx < kw; kx++) {
                        const long off = kx * g->dw - g->pl;
                        long l, u;
                        valid_range(ow, w, g->sw, off, &l, &u);
                        const float wv = wc[ky * kw + kx];
                        float *restrict dr = dp + iy * w + off;
                        KT_STRIDED(g->sw, {
                            for (long ox = l; ox < u; ox++) dr[ox * S] += wv * gr[ox];
                        });
                    }
                }
            }
        }
    }
}

KT_CLONES
void kt_depthwise_backward_weight(const float *restrict dy, const float *restrict x, float *restrict dwt,
                                  float *restrict dbias, const kt_conv_geometry *g, long c0, long c1,
                                  int accumulate) {
    // Sums may be vectorised (reassociated); the order is fixed by the code, so results stay
    // reproducible run to run.
#pragma clang fp reassociate(on)
    const long n = g->n, h = g->h, w = g->w, oh = g->oh, ow = g->ow, kh = g->kh, kw = g->kw;
    const long plane = h * w, outPlane = oh * ow, taps = kh * kw;
    double acc[256];
    float part[256];
    const int small = taps <= 256;
    for (long c = c0; c < c1; c++) {
        double biasAcc = 0;
        if (small) {
            for (long k = 0; k < taps; k++) acc[k] = 0;
        }
        for (long b = 0; b < n; b++) {
            const float *restrict xp = x + (c * n + b) * plane;
            const float *restrict gp = dy + (c * n + b) * outPlane;
            if (dbias) {
                float s = 0;
                for (long i = 0; i < outPlane; i++) s += gp[i];
                biasAcc += s;
            }
            for (long k = 0; k < taps && small; k++) part[k] = 0;
            for (long ky = 0; ky < kh; ky++) {
                for (long kx = 0; kx < kw; kx++) {
                    const long off = kx * g->dw - g->pl;
                    long l, u;
                    valid_range(ow, w, g->sw, off, &l, &u);
                    float s = 0;
                    for (long oy = 0; oy < oh; oy++) {
                        const long iy = oy * g->sh - g->pt + ky * g->dh;
                        if (iy < 0 || iy >= h) continue;
                        const float *restrict gr = gp + oy * ow;
                        const float *restrict xr = xp + iy * w + off;
                        KT_STRIDED(g->sw, {
                            for (long ox = l; ox < u; ox++) s += gr[ox] * xr[ox * S];
                        });
                    }
                    if (small) {
                        part[ky * kw + kx] = s;
                    } else {
                        dwt[c * taps + ky * kw + kx] = (b == 0 && !accumulate ? 0.0f : dwt[c * taps + ky * kw + kx]) + s;
                    }
                }
            }
            if (small) {
                for (long k = 0; k < taps; k++) acc[k] += part[k];
            }
        }
        if (small) {
            for (long k = 0; k < taps; k++) {
                dwt[c * taps + k] = accumulate ? dwt[c * taps + k] + (float)acc[k] : (float)acc[k];
            }
        }
        if (dbias) dbias[c] = accumulate ? dbias[c] + (float)biasAcc : (float)biasAcc;
    }
}

/// Σ x[i] for i < m: float sums over blocks, added in double.
static inline double block_sum(const float *restrict x, long m) {
    // Sums may be vectorised (reassociated); the order is fixed by the code, so results stay
    // reproducible run to run.
#pragma clang fp reassociate(on)
    double total = 0;
    for (long start = 0; start < m; start += KT_BLOCK) {
        const long end = start + KT_BLOCK < m ? start + KT_BLOCK : m;
        float s = 0;
        for (long i = start; i < end; i++) s += x[i];
        total += s;
    }
    return total;
}

KT_CLONES
void kt_channel_sum(const float *restrict x, float *restrict out, long m, long c0, long c1, int accumulate) {
    for (long c = c0; c < c1; c++) {
        const float s = (float)block_sum(x + c * m, m);
        out[c] = accumulate ? out[c] + s : s;
    }
}

KT_CLONES
void kt_channel_add(float *restrict y, const float *restrict b, long m, long c0, long c1) {
    for (long c = c0; c < c1; c++) {
        float *restrict yc = y + c * m;
        const float v = b[c];
        for (long i = 0; i < m; i++) yc[i] += v;
    }
}

KT_CLONES
void kt_channel_affine(const float *restrict x, float *restrict y, long m, const float *restrict mul,
                       const float *restrict add, long c0, long c1, int relu) {
    for (long c = c0; c < c1; c++) {
        const float *restrict xc = x + c * m;
        float *restrict yc = y + c * m;
        const float a = mul[c], b = add[c];
        if (relu) {
            for (long i = 0; i < m; i++) {
                const float v = xc[i] * a + b;
                yc[i] = v > 0 ? v : 0;
            }
        } else {
            for (long i = 0; i < m; i++) yc[i] = xc[i] * a + b;
        }
    }
}

KT_CLONES
void kt_batchnorm_train_forward(const float *restrict x, float *restrict y, long m, const float *restrict gamma,
                                const float *restrict beta, float eps, float *restrict mean, float *restrict invstd,
                                float *restrict var, long c0, long c1, int relu) {
    // Sums may be vectorised (reassociated); the order is fixed by the code, so results stay
    // reproducible run to run.
#pragma clang fp reassociate(on)
    for (long c = c0; c < c1; c++) {
        const float *restrict xc = x + c * m;
        const double mu = block_sum(xc, m) / (double)m;
        const float muf = (float)mu;
        double ss = 0;
        for (long start = 0; start < m; start += KT_BLOCK) {
            const long end = start + KT_BLOCK < m ? start + KT_BLOCK : m;
            float s = 0;
            for (long i = start; i < end; i++) {
                const float d = xc[i] - muf;
                s += d * d;
            }
            ss += s;
        }
        const double v = ss / (double)m;
        const float is = (float)(1.0 / sqrt(v + (double)eps));
        mean[c] = muf;
        invstd[c] = is;
        var[c] = (float)v;
        const float a = gamma[c] * is;
        const float b = beta[c] - muf * a;
        float *restrict yc = y + c * m;
        if (relu) {
            for (long i = 0; i < m; i++) {
                const float t = xc[i] * a + b;
                yc[i] = t > 0 ? t : 0;
            }
        } else {
            for (long i = 0; i < m; i++) yc[i] = xc[i] * a + b;
        }
    }
}

KT_CLONES
void kt_batchnorm_backward(const float *restrict dy, const float *restrict x, const float *restrict y,
                           const float *restrict mean, const float *restrict invstd, const float *restrict gamma,
                           float *restrict dx, float *restrict dgamma, float *restrict dbeta, long m, long c0,
                           long c1, int accumulate) {
    // Sums may be vectorised (reassociated); the order is fixed by the code, so results stay
    // reproducible run to run.
#pragma clang fp reassociate(on)
    for (long c = c0; c < c1; c++) {
        const float *restrict gc = dy + c * m;
        const float *restrict xc = x + c * m;
        const float *restrict yc = y ? y + c * m : 0;
        const float mu = mean[c], is = invstd[c];
        double sumDy = 0, sumDyX = 0;
        for (long start = 0; start < m; start += KT_BLOCK) {
            const long end = start + KT_BLOCK < m ? start + KT_BLOCK : m;
            float s = 0, sx = 0;
            if (yc) {
                for (long i = start; i < end; i++) {
                    const float g = yc[i] > 0 ? gc[i] : 0;
                    s += g;
                    sx += g * (xc[i] - mu);
                }
            } else {
                for (long i = start; i < end; i++) {
                    s += gc[i];
                    sx += gc[i] * (xc[i] - mu);
                }
            }
            sumDy += s;
            sumDyX += sx;
        }
        const double dgam = sumDyX * is;  // Σ dy·xhat
        if (dgamma) dgamma[c] = (float)dgam;
        if (dbeta) dbeta[c] = (float)sumDy;
        if (!dx) continue;
        const float k1 = gamma[c] * is;
        const float k2 = (float)(-(double)k1 * is * dgam / (double)m);
        const float k3 = (float)(-(double)k1 * sumDy / (double)m);
        float *restrict dc = dx + c * m;
        if (yc) {
            if (accumulate) {
                for (long i = 0; i < m; i++) dc[i] += (yc[i] > 0 ? gc[i] : 0) * k1 + (xc[i] - mu) * k2 + k3;
            } else {
                for (long i = 0; i < m; i++) dc[i] = (yc[i] > 0 ? gc[i] : 0) * k1 + (xc[i] - mu) * k2 + k3;
            }
        } else {
            if (accumulate) {
                for (long i = 0; i < m; i++) dc[i] += gc[i] * k1 + (xc[i] - mu) * k2 + k3;
            } else {
                for (long i = 0; i < m; i++) dc[i] = gc[i] * k1 + (xc[i] - mu) * k2 + k3;
            }
        }
    }
}

KT_CLONES
void kt_channel_affine_backward(const float *restrict dy, const float *restrict y, const float *restrict mul,
                                float *restrict dx, long m, long c0, long c1, int accumulate) {
    for (long c = c0; c < c1; c++) {
        const float *restrict gc = dy + c * m;
        const float *restrict yc = y ? y + c * m : 0;
        float *restrict dc = dx + c * m;
        const float a = mul[c];
        for (long i = 0; i < m; i++) {
            const float g = (yc && !(yc[i] > 0)) ? 0.0f : gc[i] * a;
            dc[i] = accumulate ? dc[i] + g : g;
        }
    }
}

static inline float sigmoidf(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

KT_CLONES
void kt_activation_forward(int kind, const float *restrict x, float *restrict y, float lo, float hi, long i0,
                           long i1) {
    switch (kind) {
    case KT_RELU:
        for (long i = i0; i < i1; i++) y[i] = x[i] > 0 ? x[i] : 0;
        break;
    case KT_CLIP:
        for (long i = i0; i < i1; i++) {
            const float v = x[i] < lo ? lo : x[i];
            y[i] = v > hi ? hi : v;
        }
        break;
    case KT_SIGMOID:
        for (long i = i0; i < i1; i++) y[i] = sigmoidf(x[i]);
        break;
    case KT_SILU:
        for (long i = i0; i < i1; i++) y[i] = x[i] * sigmoidf(x[i]);
        break;
    case KT_HARDSWISH:
        for (long i = i0; i < i1; i++) {
            float r = x[i] + 3;
            r = r < 0 ? 0 : (r > 6 ? 6 : r);
            y[i] = x[i] * r / 6;
        }
        break;
    }
}

KT_CLONES
void kt_activation_backward(int kind, const float *restrict x, const float *restrict y, const float *restrict dy,
                            float *restrict dx, float lo, float hi, long i0, long i1, int accumulate) {
#define KT_STORE(expr)                                   \
    if (accumulate) {                                    \
        for (long i = i0; i < i1; i++) dx[i] += (expr);  \
    } else {                                             \
        for (long i = i0; i < i1; i++) dx[i] = (expr);   \
    }
    switch (kind) {
    case KT_RELU:
        KT_STORE(y[i] > 0 ? dy[i] : 0.0f)
        break;
    case KT_CLIP:
        // PyTorch's hardtanh backward: the gradient passes strictly inside (lo, hi).
        KT_STORE((x[i] > lo && x[i] < hi) ? dy[i] : 0.0f)
        break;
    case KT_SIGMOID:
        KT_STORE(dy[i] * y[i] * (1.0f - y[i]))
        break;
    case KT_SILU:
        for (long i = i0; i < i1; i++) {
            const float s = sigmoidf(x[i]);
            const float g = dy[i] * s * (1.0f + x[i] * (1.0f - s));
            dx[i] = accumulate ? dx[i] + g : g;
        }
        break;
    case KT_HARDSWISH:
        // PyTorch: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above.
        KT_STORE(x[i] < -3.0f ? 0.0f : (x[i] <= 3.0f ? dy[i] * (x[i] / 3.0f + 0.5f) : dy[i]))
        break;
    }
#undef KT_STORE
}

KT_CLONES
void kt_maxpool_forward(const float *restrict x, float *restrict y, int32_t *restrict argmax,
                        const kt_pool_geometry *g, long p0, long p1) {
    const long h = g->h, w = g->w, oh = g->oh, ow = g->ow;
    for (long p = p0; p < p1; p++) {
        const float *restrict xp = x + p * h * w;
        float *restrict yp = y + p * oh * ow;
        int32_t *restrict ap = argmax ? argmax + p * oh * ow : 0;
        for (long oy = 0; oy < oh; oy++) {
            const long y0 = oy * g->sh - g->pt;
            const long ya = y0 < 0 ? 0 : y0, yb = y0 + g->kh < h ? y0 + g->kh : h;
            float *restrict yr = yp + oy * ow;
            for (long ox = 0; ox < ow; ox++) yr[ox] = -INFINITY;
            // Max over the window, one (row, column offset) at a time across the output row:
            // unit-stride (or strided) loads that vectorise. Padded cells are never visited.
            for (long iy = ya; iy < yb; iy++) {
                const float *restrict xr = xp + iy * w;
                for (long kx = 0; kx < g->kw; kx++) {
                    long lo, hi;
                    valid_range(ow, w, g->sw, kx - g->pl, &lo, &hi);
                    const float *restrict xs = xr + kx - g->pl;
                    KT_STRIDED(g->sw, {
                        for (long ox = lo; ox < hi; ox++) {
                            const float v = xs[ox * S];
                            yr[ox] = v > yr[ox] ? v : yr[ox];
                        }
                    });
                }
            }
            if (!ap) continue;
            // The winner is the first cell (row-major) equal to the maximum: visit the cells in
            // reverse so that earlier ones overwrite later ones.
            int32_t *restrict ar = ap + oy * ow;
            for (long ox = 0; ox < ow; ox++) ar[ox] = -1;
            for (long iy = yb - 1; iy >= ya; iy--) {
                const float *restrict xr = xp + iy * w;
                for (long kx = g->kw - 1; kx >= 0; kx--) {
                    long lo, hi;
                    valid_range(ow, w, g->sw, kx - g->pl, &lo, &hi);
                    const float *restrict xs = xr + kx - g->pl;
                    const int32_t base = (int32_t)(iy * w + kx - g->pl);
                    KT_STRIDED(g->sw, {
                        for (long ox = lo; ox < hi; ox++) {
                            ar[ox] = xs[ox * S] == yr[ox] ? base + (int32_t)(ox * S) : ar[ox];
                        }
                    });
                }
            }
        }
    }
}

KT_CLONES
void kt_maxpool_backward(const float *restrict dy, const int32_t *restrict argmax, float *restrict dx,
                         const kt_pool_geometry *g, long p0, long p1, int accumulate) {
    const long hw = g->h * g->w, ohw = g->oh * g->ow;
    for (long p = p0; p < p1; p++) {
        float *restrict dp = dx + p * hw;
        if (!accumulate) memset(dp, 0, (size_t)hw * sizeof(float));
        const float *restrict gp = dy + p * ohw;
        const int32_t *restrict ap = argmax + p * ohw;
        for (long i = 0; i < ohw; i++) {
            if (ap[i] >= 0) dp[ap[i]] += gp[i];
        }
    }
}

/// The real cells [ya, yb) x [xa, xb) of an average-pool window and its divisor.
static inline float avg_window(const kt_pool_geometry *g, long oy, long ox, long *ya, long *yb, long *xa,
                               long *xb) {
    const long y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl;
    const long y1 = y0 + g->kh < g->h + g->pb ? y0 + g->kh : g->h + g->pb;
    const long x1 = x0 + g->kw < g->w + g->pr ? x0 + g->kw : g->w + g->pr;
    *ya = y0 < 0 ? 0 : y0;
    *yb = y1 < g->h ? y1 : g->h;
    *xa = x0 < 0 ? 0 : x0;
    *xb = x1 < g->w ? x1 : g->w;
    const long padded = (y1 - y0) * (x1 - x0);
    const long real = (*yb - *ya) * (*xb - *xa);
    return (float)(g->count_include_pad ? padded : real);
}

KT_CLONES
void kt_avgpool_forward(const float *restrict x, float *restrict y, const kt_pool_geometry *g, long p0, long p1) {
    const long h = g->h, w = g->w, oh = g->oh, ow = g->ow;
    for (long p = p0; p < p1; p++) {
        const float *restrict xp = x + p * h * w;
        float *restrict yp = y + p * oh * ow;
        for (long oy = 0; oy < oh; oy++) {
            for (long ox = 0; ox < ow; ox++) {
                long ya, yb, xa, xb;
                const float div = avg_window(g, oy, ox, &ya, &yb, &xa, &xb);
                float acc = 0;
                for (long iy = ya; iy < yb; iy++) {
                    for (long ix = xa; ix < xb; ix++) acc += xp[iy * w + ix];
                }
                yp[oy * ow + ox] = acc / div;
            }
        }
    }
}

KT_CLONES
void kt_avgpool_backward(const float *restrict dy, float *restrict dx, const kt_pool_geometry *g, long p0, long p1,
                         int accumulate) {
    const long h = g->h, w = g->w, oh = g->oh, ow = g->ow;
    for (long p = p0; p < p1; p++) {
        float *restrict dp = dx + p * h * w;
        if (!accumulate) memset(dp, 0, (size_t)(h * w) * sizeof(float));
        const float *restrict gp = dy + p * oh * ow;
        for (long oy = 0; oy < oh; oy++) {
            for (long ox = 0; ox < ow; ox++) {
                long ya, yb, xa, xb;
                const float div = avg_window(g, oy, ox, &ya, &yb, &xa, &xb);
                const float v = gp[oy * ow + ox] / div;
                for (long iy = ya; iy < yb; iy++) {
                    for (long ix = xa; ix < xb; ix++) dp[iy * w + ix] += v;
                }
            }
        }
    }
}

KT_CLONES
void kt_plane_mean(const float *restrict x, float *restrict y, long hw, long p0, long p1) {
    for (long p = p0; p < p1; p++) y[p] = (float)(block_sum(x + p * hw, hw) / (double)hw);
}

KT_CLONES
void kt_plane_mean_backward(const float *restrict dy, float *restrict dx, long hw, long p0, long p1, int accumulate) {
    const float inv = 1.0f / (float)hw;
    for (long p = p0; p < p1; p++) {
        float *restrict dp = dx + p * hw;
        const float v = dy[p] * inv;
        if (accumulate) {
            for (long i = 0; i < hw; i++) dp[i] += v;
        } else {
            for (long i = 0; i < hw; i++) dp[i] = v;
        }
    }
}

KT_CLONES
void kt_plane_scale(const float *restrict x, const float *restrict s, float *restrict y, long hw, long p0, long p1) {
    for (long p = p0; p < p1; p++) {
        const float v = s[p];
        const float *restrict xp = x + p * hw;
        float *restrict yp = y + p * hw;
        for (long i = 0; i < hw; i++) yp[i] = xp[i] * v;
    }
}

KT_CLONES
void kt_plane_scale_backward(const float *restrict dy, const float *restrict x, const float *restrict s,
                             float *restrict dx, float *restrict ds, long hw, long p0, long p1, int accumulate_dx,
                             int accumulate_ds) {
    // Sums may be vectorised (reassociated); the order is fixed by the code, so results stay
    // reproducible run to run.
#pragma clang fp reassociate(on)
    for (long p = p0; p < p1; p++) {
        const float *restrict gp = dy + p * hw;
        if (dx) {
            float *restrict dp = dx + p * hw;
            const float v = s[p];
            if (accumulate_dx) {
                for (long i = 0; i < hw; i++) dp[i] += gp[i] * v;
            } else {
                for (long i = 0; i < hw; i++) dp[i] = gp[i] * v;
            }
        }
        if (ds) {
            const float *restrict xp = x + p * hw;
            float acc = 0;
            for (long i = 0; i < hw; i++) acc += gp[i] * xp[i];
            ds[p] = accumulate_ds ? ds[p] + acc : acc;
        }
    }
}
