// Inner loops of Kiln's training kernels. The orchestration (threads, buffers, graph) is Swift
// (KilnTrainKernels); these functions only loop over memory they are given.
//
// Layout legend. Activations are channel-major: a logical NCHW tensor is stored as
// [C][N][H][W] ("CNHW"), so one channel of the whole batch is one contiguous block of
// N*H*W floats, and a "plane" is one (channel, image) pair of H*W floats. Weights are OIHW.
// N = batch, C = channels, H, W = input height and width, OH, OW = output height and width,
// KH, KW = kernel extent.
//
// Every function works on a range of channels (or planes, or rows) so that callers can split
// the work between threads with a fixed partition: each output element is computed by exactly
// one call, in a fixed order, which keeps results bitwise reproducible for any thread count.
// `accumulate` = 0 overwrites the destination, 1 adds to it (gradients of values with several
// consumers are summed).
#ifndef CKILNTRAIN_H
#define CKILNTRAIN_H

#include <stdint.h>

/// Geometry of a 2-D convolution over channel-major activations.
typedef struct {
    long n, h, w;       // batch, input height, width
    long oh, ow;        // output height, width
    long kh, kw;        // kernel
    long sh, sw;        // stride
    long dh, dw;        // dilation
    long pt, pl;        // top and left padding (bottom/right follow from the output size)
} kt_conv_geometry;

/// Geometry of a 2-D pool over channel-major activations.
typedef struct {
    long h, w, oh, ow;
    long kh, kw, sh, sw;
    long pt, pl, pb, pr;
    int count_include_pad;
} kt_pool_geometry;

/// dst[j][i][k] = src[i][j][k] for i < a, j < b, k < inner (swaps the two outer axes), for j in [j0, j1).
void kt_swap_outer(const float *src, float *dst, long a, long b, long inner, long j0, long j1);

/// Unfolds input channels into the rows of `col`: row (ci*KH + ky)*KW + kx holds, for every
/// image and output position, x[ci][n][oy*sh - pt + ky*dh][ox*sw - pl + kx*dw] (0 outside).
/// `x` points at the first channel of the group; rows [row0, row1) are written, each N*OH*OW long.
void kt_im2col(const float *x, float *col, const kt_conv_geometry *g, long row0, long row1);

/// The adjoint of kt_im2col: sums the rows of `col` back into input channels [c0, c1).
void kt_col2im(const float *col, float *dx, const kt_conv_geometry *g, long c0, long c1, int accumulate);

/// Depthwise convolution (one filter per channel, weight [C][1][KH][KW]) for channels [c0, c1).
void kt_depthwise_forward(const float *x, const float *w, const float *bias, float *y, const kt_conv_geometry *g,
                          long c0, long c1);
/// dx = the transposed depthwise convolution of dy, for channels [c0, c1).
void kt_depthwise_backward_data(const float *dy, const float *w, float *dx, const kt_conv_geometry *g, long c0,
                                long c1, int accumulate);
/// dw[c] = Σ over images and positions of dy * x (shifted), and dbias[c] = Σ dy when dbias is not null.
void kt_depthwise_backward_weight(const float *dy, const float *x, float *dw, float *dbias,
                                  const kt_conv_geometry *g, long c0, long c1, int accumulate);

/// Sums each channel block of m floats (in double, returned as float): out[c] (+)= Σ x[c][i].
void kt_channel_sum(const float *x, float *out, long m, long c0, long c1, int accumulate);
/// y[c][i] += b[c] for channel blocks of m floats.
void kt_channel_add(float *y, const float *b, long m, long c0, long c1);

/// Batch normalisation with batch statistics, per channel block of m = N*H*W floats:
/// mean = Σx/m, var = Σ(x-mean)²/m (biased), y = (x-mean)/sqrt(var+eps)*gamma + beta, then
/// max(y, 0) when relu != 0. Writes mean, invstd = 1/sqrt(var+eps) and the biased var.
void kt_batchnorm_train_forward(const float *x, float *y, long m, const float *gamma, const float *beta, float eps,
                                float *mean, float *invstd, float *var, long c0, long c1, int relu);
/// y = x*mul[c] + add[c] (then max(y, 0) when relu != 0): batch norm with fixed statistics.
void kt_channel_affine(const float *x, float *y, long m, const float *mul, const float *add, long c0, long c1,
                       int relu);
/// Backward of kt_batchnorm_train_forward. With `y` not null (a fused ReLU), dy is first masked
/// by y > 0. dgamma[c] = Σ dy·xhat, dbeta[c] = Σ dy (written, not accumulated, when not null);
/// dx = gamma·invstd·(dy - dbeta/m - xhat·dgamma/m) when dx is not null.
void kt_batchnorm_backward(const float *dy, const float *x, const float *y, const float *mean, const float *invstd,
                           const float *gamma, float *dx, float *dgamma, float *dbeta, long m, long c0, long c1,
                           int accumulate);
/// Backward of kt_channel_affine for the input: dx = dy·mul[c] (masked by y > 0 when y is not null).
void kt_channel_affine_backward(const float *dy, const float *y, const float *mul, float *dx, long m, long c0,
                                long c1, int accumulate);

/// Elementwise activations.
enum { KT_RELU = 0, KT_CLIP = 1, KT_SIGMOID = 2, KT_SILU = 3, KT_HARDSWISH = 4 };
/// y = act(x) for elements [i0, i1). `lo`, `hi` are the clip bounds.
void kt_activation_forward(int kind, const float *x, float *y, float lo, float hi, long i0, long i1);
/// dx (+)= dy · act'(x) for elements [i0, i1); relu and sigmoid read y (the output), the others x.
void kt_activation_backward(int kind, const float *x, const float *y, const float *dy, float *dx, float lo, float hi,
                            long i0, long i1, int accumulate);

/// Max pool over planes [p0, p1); argmax (may be null) receives the winning input offset within the
/// plane: the first maximal cell in row-major order, -1 when the window has no real cell.
void kt_maxpool_forward(const float *x, float *y, int32_t *argmax, const kt_pool_geometry *g, long p0, long p1);
void kt_maxpool_backward(const float *dy, const int32_t *argmax, float *dx, const kt_pool_geometry *g, long p0,
                         long p1, int accumulate);
/// Average pool over planes [p0, p1), PyTorch's divisor rule (see Reference.avgPool2d).
void kt_avgpool_forward(const float *x, float *y, const kt_pool_geometry *g, long p0, long p1);
void kt_avgpool_backward(const float *dy, float *dx, const kt_pool_geometry *g, long p0, long p1, int accumulate);
/// y[p] = mean of plane p (hw floats), for planes [p0, p1).
void kt_plane_mean(const float *x, float *y, long hw, long p0, long p1);
/// dx[p][i] (+)= dy[p] / hw.
void kt_plane_mean_backward(const float *dy, float *dx, long hw, long p0, long p1, int accumulate);

/// y[p][i] = x[p][i] * s[p] (a per-plane scale, e.g. squeeze-excitation), planes [p0, p1).
void kt_plane_scale(const float *x, const float *s, float *y, long hw, long p0, long p1);
/// dx[p][i] (+)= dy[p][i]·s[p] when dx is not null; ds[p] (+)= Σ_i dy[p][i]·x[p][i] when ds is not null.
void kt_plane_scale_backward(const float *dy, const float *x, const float *s, float *dx, float *ds, long hw, long p0,
                             long p1, int accumulate_dx, int accumulate_ds);

#endif
