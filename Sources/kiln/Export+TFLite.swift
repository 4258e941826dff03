import Foundation
import KilnGraph
import KilnQuant
import KilnRuntime
import KilnTFLite
import KilnTensor
import KilnTFLiteSchema

extension Kiln.Export {
    /// Writes `graph` as TFLite and prints the size report: the file and its split into
    /// weights (constant tensor data), graph (operators, tensors, names) and metadata.
    func exportTFLite(_ graph: Graph) throws {
        var options = TFLiteExportOptions(withHeadActivations: withSoftmax)
        let r: TFLiteExportResult
        var quantized: QuantizedModel? = nil
        var input = graph
        if int8 && !TFLiteExporter.isQuantized(graph) {
            // Calibrate and quantize the NHWC graph the file will hold (head activations included).
            let g = try TFLiteExporter.int8Graph(graph, withHeadActivations: withSoftmax)
            let samples = try quantization.sampleSource(for: try Quantizer.prepare(graph))
            let table = try quantization.table(calibrating: g, samples: samples.map { LayoutAdaptedSamples($0, for: g) })
            let model = try Quantizer.quantize(g, table: table, options: quantization.options)
            quantized = model
            input = model.graph
            options.headActivationsIncluded = withSoftmax
            options.withHeadActivations = false
        }
        do {
            if selfTest {
                r = try TFLiteSelfTest.export(input, options: options)
                try FileIO.writeAtomically(r.bytes, to: output)
            } else {
                r = try TFLiteExporter.write(input, to: output, options: options)
            }
        } catch let e as TFLiteExportError {
            throw CLIError("cannot export \(source.model ?? graph.name) to TFLite: \(e)")
        }
        // The same split as any file's (read back through the verified reader).
        let file = try TFLiteModelFile(bytes: r.bytes, source: output)
        let report = TFLiteSizeReport(file.model)
        var baseline: TFLiteSizeReport? = nil
        if let compare { baseline = TFLiteSizeReport(try TFLiteModelFile(contentsOf: compare).model) }
        let types = try r.legalized.verify()
        let outputs = r.legalized.outputs.map { (name: $0, shape: types[$0]!.shape.description) }
        let kind = withSoftmax ? "probabilities" : "logits"
        func figures(_ s: TFLiteSizeReport) -> [String: Int] {
            [
                "bytes": s.fileBytes, "weight_bytes": s.weightBytes, "graph_bytes": s.graphBytes,
                "metadata_bytes": s.metadataBytes, "operators": s.operators, "tensors": s.tensors,
            ]
        }
        // What Kiln's runtime will allocate for the file: the planned arena (exact) and the
        // packed weights and constants; nil when the runtime cannot run the file.
        func runtimeFigures(_ bytes: [UInt8], _ path: String) -> (arena: Int, prepared: Int)? {
            guard let m = try? KilnModel(bytes: bytes, source: path) else { return nil }
            return (m.arenaBytes, m.preparedBytes)
        }
        let runtime = runtimeFigures(r.bytes, output)
        let baselineRuntime = try compare.flatMap { runtimeFigures(try FileIO.read($0), $0) }
        // Ops the quantizer left in float by --float-heads, with its reason (the file alone
        // cannot tell them from ops without an int8 form).
        let headReason = QuantizationReport.floatHeadReason
        var floatReasons = [String: String]()
        for op in quantized?.report.floatOps ?? [] where op.floatReason == headReason { floatReasons[op.node] = headReason }
        if json {
            var object: [String: Any] = figures(report)
            if let runtime {
                object["arena_bytes"] = runtime.arena
                object["prepared_bytes"] = runtime.prepared
            }
            object["self_test"] = selfTest
            object["int8"] = r.isInt8
            object["float_operators"] = r.floatOperators.map { ["node": $0.node, "op": $0.op, "reason": floatReasons[$0.node] ?? $0.reason] }
            if let quantized { object["quantization_warnings"] = quantized.report.warnings }
            object["path"] = output
            object["format"] = "tflite"
            object["outputs"] = outputs.map { ["name": $0.name, "shape": $0.shape] }
            object["output_kind"] = kind
            if let baseline, let compare {
                var other: [String: Any] = figures(baseline)
                other["path"] = compare
                var delta = figures(report).merging(figures(baseline)) { $0 - $1 }
                if let runtime, let baselineRuntime {
                    other["arena_bytes"] = baselineRuntime.arena
                    delta["arena_bytes"] = runtime.arena - baselineRuntime.arena
                }
                object["compare"] = other
                object["delta"] = delta
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func share(_ n: Int) -> String {
            let tenths = report.fileBytes == 0 ? 0 : (n * 1000 + report.fileBytes / 2) / report.fileBytes
            return "\(tenths / 10).\(tenths % 10)%"
        }
        let rows = [
            ["weights", grouped(report.weightBytes), share(report.weightBytes), "constant tensors"],
            ["graph", grouped(report.graphBytes), share(report.graphBytes), "\(report.operators) operators, \(report.tensors) tensors"],
            ["metadata", grouped(report.metadataBytes), share(report.metadataBytes), "heads, preprocessing, node names"],
        ]
        let w0 = rows.map { $0[0].count }.max()!, w1 = rows.map { $0[1].count }.max()!, w2 = rows.map { $0[2].count }.max()!
        print("wrote \(output): \(grouped(report.fileBytes)) bytes (TFLite, \(r.isInt8 ? "int8" : "float32"))")
        for row in rows {
            let name = row[0].padding(toLength: w0, withPad: " ", startingAt: 0)
            let bytes = String(repeating: " ", count: w1 - row[1].count) + row[1]
            let pct = String(repeating: " ", count: w2 - row[2].count) + row[2]
            print("  \(name)  \(bytes) bytes  \(pct)  \(row[3])")
        }
        print("outputs (\(kind)): " + outputs.map { "\($0.name) \($0.shape)" }.joined(separator: ", "))
        if let runtime {
            print("Kiln runtime: arena \(grouped(runtime.arena)) bytes (planned activations), \(grouped(runtime.prepared)) bytes of packed weights and constants")
        }
        if selfTest { print("self-test embedded: kiln verify \(output)") }
        if let quantized { print(quantized.report.text(details: false), terminator: "") }
        if r.isInt8 {
            if r.floatOperators.isEmpty {
                print("int8: every operator is int8 (inputs quantized and outputs dequantized at the edges)")
            } else {
                if r.floatOperators.allSatisfy({ floatReasons[$0.node] != nil }) {
                    print("int8 except the heads: \(r.floatOperators.count) op(s) in float after a DEQUANTIZE (--float-heads):")
                } else {
                    print("WARNING: \(r.floatOperators.count) op(s) left in FLOAT between DEQUANTIZE and QUANTIZE (no int8 form):")
                }
                for f in r.floatOperators { print("  FLOAT \(f.node) (\(f.op)): \(floatReasons[f.node] ?? f.reason)") }
            }
        }
        if let baseline, let compare {
            func delta(_ a: Int, _ b: Int) -> String { (a >= b ? "+" : "-") + grouped(abs(a - b)) }
            print("compared with \(compare) (\(grouped(baseline.fileBytes)) bytes):")
            let lines = [
                ("file", delta(report.fileBytes, baseline.fileBytes)),
                ("weights", delta(report.weightBytes, baseline.weightBytes)),
                ("graph", delta(report.graphBytes, baseline.graphBytes)),
                ("metadata", delta(report.metadataBytes, baseline.metadataBytes)),
            ]
            let width = lines.map(\.1.count).max()!
            for (name, d) in lines {
                print("  \(name.padding(toLength: 8, withPad: " ", startingAt: 0))  \(String(repeating: " ", count: width - d.count))\(d) bytes")
            }
            print("  operators \(delta(report.operators, baseline.operators)), tensors \(delta(report.tensors, baseline.tensors))")
            if baseline.fileBytes > 0 {
                print(String(format: "  ratio     %.2fx (this file / %@)", Double(report.fileBytes) / Double(baseline.fileBytes), compare))
            }
            if let runtime, let baselineRuntime {
                print("  arena     \(delta(runtime.arena, baselineRuntime.arena)) bytes (Kiln runtime)")
            }
        }
    }
}
