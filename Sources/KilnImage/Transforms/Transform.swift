#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import KilnTensor

/// One step of an image pipeline, named and parameterised like its torchvision transform.
///
/// Random steps draw their parameters from the generator passed to ``apply(to:using:)`` with
/// the distributions torchvision uses (the numbers differ, since the generator is Kiln's own).
public enum Transform: Sendable, Hashable, Codable {
    /// `Resize(size)` (antialiased bilinear).
    case resize(ResizeSize)
    /// `CenterCrop((height, width))`.
    case centerCrop(height: Int, width: Int)
    /// `RandomResizedCrop((height, width), scale, ratio)`: a random region of `scale` of the
    /// area with aspect ratio (w/h) in `ratio` (log-uniform), resized to the output size.
    case randomResizedCrop(height: Int, width: Int, scale: Range2 = Range2(0.08, 1), ratio: Range2 = Range2(0.75, 4.0 / 3))
    /// `RandomHorizontalFlip(p)`.
    case horizontalFlip(probability: Double = 0.5)
    /// `RandomRotation(degrees)`: an angle uniform in `[-degrees, degrees]`, counter-clockwise.
    case rotation(degrees: Double, interpolation: Interpolation = .nearest, fill: [UInt8] = [0])
    /// `ColorJitter(brightness, contrast, saturation, hue)`: factors uniform in
    /// `[max(0, 1 - b), 1 + b]` (and likewise), hue shift uniform in `[-hue, hue]` (≤ 0.5),
    /// applied in a random order; a zero parameter disables its adjustment.
    case colorJitter(brightness: Double = 0, contrast: Double = 0, saturation: Double = 0, hue: Double = 0)
    /// `RandomAffine(degrees, translate, scale, shear)`; see ``AffineParameters``.
    case affine(AffineParameters)
    /// `Grayscale(num_output_channels)`: luma, replicated to `channels` (1 or 3).
    case grayscale(channels: Int = 1)

    /// A closed range of doubles (`lower...upper`), Codable.
    public struct Range2: Sendable, Hashable, Codable {
        public var lower: Double
        public var upper: Double
        public init(_ lower: Double, _ upper: Double) {
            self.lower = lower
            self.upper = upper
        }
    }

    /// The parameters of `RandomAffine`.
    public struct AffineParameters: Sendable, Hashable, Codable {
        /// Rotation uniform in `[-degrees, degrees]` (clockwise, as torchvision's affine).
        public var degrees: Double
        /// Maximum translation as fractions of width and height: `tx = round(uniform(-fx W, fx W))`.
        public var translate: Range2?
        /// Scale uniform in this range; 1 when nil.
        public var scale: Range2?
        /// Shear in degrees: x uniform in `shearX`, y uniform in `shearY` (nil: none).
        public var shearX: Range2?
        public var shearY: Range2?
        public var interpolation: Interpolation
        public var fill: [UInt8]

        public init(
            degrees: Double, translate: (Double, Double)? = nil, scale: (Double, Double)? = nil, shear: Double? = nil,
            shearY: (Double, Double)? = nil, interpolation: Interpolation = .nearest, fill: [UInt8] = [0]
        ) {
            self.degrees = degrees
            self.translate = translate.map { Range2($0.0, $0.1) }
            self.scale = scale.map { Range2($0.0, $0.1) }
            self.shearX = shear.map { Range2(-$0, $0) }
            self.shearY = shearY.map { Range2($0.0, $0.1) }
            self.interpolation = interpolation
            self.fill = fill
        }
    }

    /// Whether the step draws random numbers.
    public var isRandom: Bool {
        switch self {
        case .resize, .centerCrop, .grayscale: return false
        default: return true
        }
    }

    /// Applies the step, drawing its random parameters from `rng`.
    public func apply(to image: Image, using rng: inout SeededRandom) -> Image {
        switch self {
        case .resize(let size):
            return image.resized(size)
        case .centerCrop(let h, let w):
            return image.centerCropped(width: w, height: h)
        case .randomResizedCrop(let h, let w, let scale, let ratio):
            let box = Transform.randomResizedCropBox(width: image.width, height: image.height, scale: scale, ratio: ratio, rng: &rng)
            return image.cropped(left: box.left, top: box.top, width: box.width, height: box.height).resized(width: w, height: h)
        case .horizontalFlip(let p):
            return rng.uniform(0, 1) < Float(p) ? image.flippedHorizontally() : image
        case .rotation(let degrees, let interpolation, let fill):
            let angle = Double(rng.uniform(Float(-degrees), Float(degrees)))
            return image.rotated(degrees: angle, interpolation: interpolation, fill: fill)
        case .colorJitter(let b, let c, let s, let h):
            // torchvision draws a permutation, then every factor, then applies them in that order.
            var order = [0, 1, 2, 3]
            for i in stride(from: 3, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
            let bf = b > 0 ? Double(rng.uniform(Float(max(0, 1 - b)), Float(1 + b))) : nil
            let cf = c > 0 ? Double(rng.uniform(Float(max(0, 1 - c)), Float(1 + c))) : nil
            let sf = s > 0 ? Double(rng.uniform(Float(max(0, 1 - s)), Float(1 + s))) : nil
            let hf = h > 0 ? Double(rng.uniform(Float(-min(h, 0.5)), Float(min(h, 0.5)))) : nil
            var out = image
            for step in order {
                switch step {
                case 0: if let bf { out = out.adjustingBrightness(Float(bf)) }
                case 1: if let cf { out = out.adjustingContrast(Float(cf)) }
                case 2: if let sf { out = out.adjustingSaturation(Float(sf)) }
                default: if let hf { out = out.adjustingHue(Float(hf)) }
                }
            }
            return out
        case .affine(let a):
            let angle = Double(rng.uniform(Float(-a.degrees), Float(a.degrees)))
            var tx = 0.0, ty = 0.0
            if let t = a.translate {
                let mx = t.lower * Double(image.width), my = t.upper * Double(image.height)
                tx = Double(Image.pythonRound(Double(rng.uniform(Float(-mx), Float(mx)))))
                ty = Double(Image.pythonRound(Double(rng.uniform(Float(-my), Float(my)))))
            }
            let scale = a.scale.map { Double(rng.uniform(Float($0.lower), Float($0.upper))) } ?? 1
            let shx = a.shearX.map { Double(rng.uniform(Float($0.lower), Float($0.upper))) } ?? 0
            let shy = a.shearY.map { Double(rng.uniform(Float($0.lower), Float($0.upper))) } ?? 0
            return image.affine(
                degrees: angle, translate: (tx, ty), scale: scale, shear: (shx, shy), interpolation: a.interpolation,
                fill: a.fill)
        case .grayscale(let channels):
            let g = image.grey()
            return channels == 3 ? g.rgb() : g
        }
    }

    /// torchvision `RandomResizedCrop.get_params`: up to 10 tries at a random area and
    /// log-uniform aspect ratio; otherwise the whole image cropped to the nearest allowed ratio.
    public static func randomResizedCropBox(
        width: Int, height: Int, scale: Range2, ratio: Range2, rng: inout SeededRandom
    ) -> (left: Int, top: Int, width: Int, height: Int) {
        let area = Double(width * height)
        let logLo = log(ratio.lower), logHi = log(ratio.upper)
        for _ in 0..<10 {
            let target = area * Double(rng.uniform(Float(scale.lower), Float(scale.upper)))
            let aspect = exp(Double(rng.uniform(Float(logLo), Float(logHi))))
            let w = Image.pythonRound((target * aspect).squareRoot())
            let h = Image.pythonRound((target / aspect).squareRoot())
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = Int(rng.next() % UInt64(height - h + 1))
                let left = Int(rng.next() % UInt64(width - w + 1))
                return (left, top, w, h)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lower {
            h = max(1, Image.pythonRound(Double(w) / ratio.lower))
        } else if inRatio > ratio.upper {
            w = max(1, Image.pythonRound(Double(h) * ratio.upper))
        }
        return ((width - w) / 2, (height - h) / 2, w, h)
    }
}

/// A sequence of transforms applied in order (torchvision `Compose`).
public struct Augmentation: Sendable, Hashable, Codable {
    public var transforms: [Transform]
    public init(_ transforms: [Transform]) { self.transforms = transforms }

    public var isRandom: Bool { transforms.contains { $0.isRandom } }

    public func apply(to image: Image, using rng: inout SeededRandom) -> Image {
        var out = image
        for t in transforms { out = t.apply(to: out, using: &rng) }
        return out
    }
}
