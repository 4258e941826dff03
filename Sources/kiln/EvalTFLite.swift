import Foundation
import KilnGraph
import KilnRuntime
import KilnTensor
import KilnTrain

/// `kiln eval` on a `.tflite` file (float32 or int8): Kiln's runtime runs the file image by
/// image, and the logits go through the same metrics as a `.kiln` model's, so the two reports
/// compare line by line (what quantization cost).
enum RuntimeEvaluation {
    /// The file as an ``EvaluatedModel``: heads and preprocessing from Kiln's metadata (the
    /// recipe's `model:` section for files without it), and a forward pass through an
    /// ``Interpreter`` with `threads` threads.
    ///
    /// A batch `[N, C, H, W]` is transposed to the file's NHWC input `[B, H, W, C]` in chunks
    /// of B images (the last chunk padded with zeros); int8 inputs are quantized with their
    /// parameters and int8 outputs dequantized. Files whose heads end in SOFTMAX / LOGISTIC
    /// (exported `--with-softmax`) give probabilities, which become logits again: `log p` for
    /// softmax heads (softmax(log p) = p), `log(p / (1 - p))` for sigmoid heads, with p kept
    /// off 0 and 1 so that an int8 probability of exactly 0 stays finite.
    static func model(_ path: String, recipe: TrainRecipe, threads: Int) throws -> EvaluatedModel {
        let file = try KilnModel(path: path)
        let heads: [HeadInfo]
        if let info = file.info, !info.heads.isEmpty {
            heads = try info.heads.map { h in
                guard let kind = HeadInfo.Kind(rawValue: h.kind) else {
                    throw CLIError("\(path): head '\(h.name)' has kind '\(h.kind)'; expected softmax or sigmoid")
                }
                return HeadInfo(name: h.name, kind: kind, classes: h.classes, classNames: h.classNames, thresholds: h.thresholds)
            }
        } else {
            heads = recipe.model.heads.map { $0.info }
        }
        guard file.inputs.count == 1 else {
            throw CLIError("\(path) has \(file.inputs.count) inputs; kiln eval feeds one image input")
        }
        let input = file.inputs[0]
        guard input.shape.count == 4, input.shape.allSatisfy({ $0 > 0 }), input.dtype == .f32 || input.dtype == .i8 else {
            throw CLIError("\(path): the input is \(input), not an NHWC image tensor (float32 or int8)")
        }
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        var outputs = [(head: HeadInfo, name: String)]()
        for h in heads {
            guard let o = file.outputs.first(where: { $0.name == h.name }) else {
                throw CLIError(
                    "\(path) has no output named '\(h.name)' (outputs: \(file.outputs.map(\.name).joined(separator: ", ")))")
            }
            guard o.elementCount == batch * h.classes else {
                throw CLIError("\(path): output '\(o.name)' is \(Shape(o.shape)); head '\(h.name)' has \(h.classes) classes")
            }
            outputs.append((h, o.name))
        }
        var preprocessing: Preprocessing? = nil
        if let p = file.info?.preprocessing {
            preprocessing = Preprocessing(
                height: p.height, width: p.width, channels: p.channels,
                resize: Preprocessing.Resize(rawValue: p.resize) ?? .stretch, mean: p.mean, std: p.std)
        }
        let expected = preprocessing.map { ($0.height, $0.width, $0.channels) }
            ?? (recipe.model.inputHeight, recipe.model.inputWidth, recipe.model.channels)
        guard expected == (height, width, channels) else {
            throw CLIError(
                "\(path) takes \(height)x\(width)x\(channels) images; its preprocessing says \(expected.0)x\(expected.1)x\(expected.2)")
        }
        let probabilities = file.outputsAreProbabilities
        let interpreter = try Interpreter(model: file, threads: threads)
        let plane = height * width
        var scratch = [Float](repeating: 0, count: input.elementCount)
        return EvaluatedModel(heads: heads, preprocessing: preprocessing) { images in
            let dims = images.shape.dims
            guard dims.count == 4, dims[1] == channels, dims[2] == height, dims[3] == width else {
                throw CLIError("\(path) takes [N, \(channels), \(height), \(width)] images; the data gives \(images.shape)")
            }
            let n = dims[0]
            let pixels = images.floats
            var logits = outputs.map { [Float](repeating: 0, count: n * $0.head.classes) }
            for first in stride(from: 0, to: n, by: batch) {
                let count = min(batch, n - first)
                // NCHW → NHWC, one chunk of the file's batch.
                scratch.withUnsafeMutableBufferPointer { dst in
                    pixels.withUnsafeBufferPointer { src in
                        for b in 0..<batch {
                            let out = b * plane * channels
                            guard b < count else {
                                for i in 0..<(plane * channels) { dst[out + i] = 0 }
                                continue
                            }
                            let image = (first + b) * channels * plane
                            for c in 0..<channels {
                                for i in 0..<plane { dst[out + i * channels + c] = src[image + c * plane + i] }
                            }
                        }
                    }
                }
                try interpreter.setInput(input.name, scratch)
                try interpreter.invoke()
                for (k, o) in outputs.enumerated() {
                    let values = try interpreter.realOutput(o.name)
                    let classes = o.head.classes
                    for i in 0..<(count * classes) {
                        var v = values[i]
                        if probabilities {
                            let p = min(max(v, 1e-30), 1)
                            v = o.head.kind == .sigmoid ? logf(p) - logf(max(1 - p, 1e-30)) : logf(p)
                        }
                        logits[k][first * classes + i] = v
                    }
                }
            }
            var result = [String: Tensor]()
            for (k, o) in outputs.enumerated() {
                result[o.head.name] = Tensor(shape: Shape([n, o.head.classes]), floats: logits[k])
            }
            return result
        }
    }
}
