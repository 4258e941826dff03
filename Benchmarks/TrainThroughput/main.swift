// Training throughput (images/s) of the two-headed ShuffleNetV2 x0.5: forward in training
// mode, loss (2·CE + CE), backward, SGD step, on random data, batch 32.
//
//   swift run -c release train-throughput-bench [--size 64] [--threads 2] [--steps 10] [--json]
//
// Benchmarks/train_throughput.sh runs it at 64x64 and 256x256 beside PyTorch (if installed).
import Foundation
import KilnGraph
import KilnModels
import KilnTensor
import KilnTrain

var size = 64
var threads = 2
var steps = 10
var batch = 32
var json = false
var arch = Architecture.shufflenetV2x0_5
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--size": size = Int(args.popFirst() ?? "") ?? size
    case "--threads": threads = Int(args.popFirst() ?? "") ?? threads
    case "--steps": steps = Int(args.popFirst() ?? "") ?? steps
    case "--batch": batch = Int(args.popFirst() ?? "") ?? batch
    case "--arch": arch = Architecture(rawValue: args.popFirst() ?? "") ?? arch
    case "--json": json = true
    default:
        FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8))
        exit(2)
    }
}

let spec = ModelSpec(
    architecture: arch, heads: try Zoo.parseHeads("screen:2,not_document:2"), inputHeight: size, inputWidth: size,
    batch: batch)
let graph = try Zoo.build(spec)
let net = try TrainableGraph(graph, threads: threads)
let optimizer = Optimizer(.sgd(momentum: 0.9, dampening: 0, nesterov: false), learningRate: 0.01)
let loss = MultiHeadLoss(heads: [
    HeadLoss(head: "screen", kind: .crossEntropy(CrossEntropy()), weight: 2),
    HeadLoss(head: "not_document", kind: .crossEntropy(CrossEntropy()), weight: 1),
])
var rng = SeededRandom(seed: 1)
let images = rng.uniformTensor([batch, 3, size, size])
let labels: [String: HeadTargets] = [
    "screen": .classes((0..<batch).map { $0 % 2 }), "not_document": .classes((0..<batch).map { ($0 / 2) % 2 }),
]

@MainActor func step(_ k: Int) throws {
    let outputs = try net.forward(["input": images], training: true, dropoutSeed: UInt64(k))
    let value = try loss.evaluate(outputs, labels)
    try net.backward(value.gradients)
    optimizer.step(net.parameters)
}

try step(0)  // warm-up: builds the program, touches every buffer
var times = [Double]()
for k in 0..<steps {
    let t = Date()
    try step(k + 1)
    times.append(Date().timeIntervalSince(t))
}
times.sort()
let median = times[times.count / 2]
let best = times[0]
let rate = Double(batch) / median
if json {
    print(
        "{\"framework\": \"kiln\", \"arch\": \"\(arch.rawValue)\", \"size\": \(size), \"batch\": \(batch), \"threads\": \(threads), \"images_per_second\": \(String(format: "%.1f", rate)), \"median_step_ms\": \(String(format: "%.1f", median * 1000)), \"best_step_ms\": \(String(format: "%.1f", best * 1000))}"
    )
} else {
    print(
        "kiln  \(arch.rawValue) \(size)x\(size) batch \(batch) threads \(threads): \(String(format: "%.1f", rate)) img/s (median step \(String(format: "%.1f", median * 1000)) ms, best \(String(format: "%.1f", best * 1000)) ms)"
    )
}
