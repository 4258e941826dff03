import KilnGraph
import KilnKernels
import KilnTensor

extension QuantizedModel {
    /// Runs the float graph and the QDQ graph (simulated int8) on up to `count` samples and
    /// records, for every op of the report, the error of its simulated outputs against the float
    /// ones: max and mean absolute error and the SQNR. Samples have the float graph's input types
    /// (an i8 graph input is fed the quantized sample).
    public mutating func measureErrors(_ source: SampleSource, count: Int) throws {
        let floatEvaluator = try Evaluator(floatGraph)
        let quantizedEvaluator = try Evaluator(graph)
        // Simulated value name → the float values (of the float graph) it stands for.
        var wanted = [String: [String]]()
        var opOf = [String: String]()
        for node in floatGraph.nodes {
            for o in node.outputs {
                guard let s = simulated[o] else { continue }
                wanted[s, default: []].append(o)
                opOf[o] = node.name
            }
        }
        var accumulators = [String: ErrorAccumulator]()
        let graph = self.graph
        let n = try source.forEach(limit: count) { sample in
            var floats = [String: [Float]]()
            _ = try floatEvaluator.run(sample) { node, outputs in
                for (name, t) in zip(node.outputs, outputs) where t.dtype == .f32 && opOf[name] != nil {
                    floats[name] = t.floats
                }
            }
            var inputs = sample
            for i in graph.inputs where i.type.dtype == .i8 {
                inputs[i.name] = Reference.quantize(sample[i.name]!, params: i.type.quant!, dtype: .i8)
            }
            _ = try quantizedEvaluator.run(inputs) { node, outputs in
                for (name, t) in zip(node.outputs, outputs) {
                    guard let originals = wanted[name] else { continue }
                    let values = t.dtype == .f32 ? t.floats : Reference.dequantize(t).floats
                    for o in originals {
                        guard let f = floats[o], let op = opOf[o] else { continue }
                        accumulators[op, default: ErrorAccumulator()].add(float: f, simulated: values)
                    }
                }
            }
        }
        for k in report.ops.indices { report.ops[k].error = accumulators[report.ops[k].node]?.result }
        report.errorSamples = n
    }
}
