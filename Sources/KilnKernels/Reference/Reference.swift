import KilnTensor

/// The reference float32 kernels: plain loops that define what every op computes.
///
/// They are the executable specification. Accelerated kernels (runtime, training) are tested
/// against them and they are never optimised in place. Shapes are validated by the graph
/// verifier before a kernel runs; a kernel only states its assumptions as preconditions.
///
/// Legend used in every file: N = batch, C = channels, H = height, W = width, O = output
/// channels, I = input channels, K = kernel extent.
public enum Reference {}

/// Element strides of the logical (n, c, h, w) axes of a 4-D tensor in a given layout.
struct Strides4 {
    var n: Int, c: Int, h: Int, w: Int
    init(_ layout: Layout, c: Int, h: Int, w: Int) {
        switch layout {
        case .nchw: self.n = c * h * w; self.c = h * w; self.h = w; self.w = 1
        case .nhwc: self.n = h * w * c; self.c = 1; self.h = w * c; self.w = c
        }
    }
}
