import Foundation
import KilnGraph
import KilnImage
import KilnModels
import KilnTensor

/// A recipe run end to end: datasets, model, trainer, final evaluation and files. What
/// `kiln train` does, as a library.
public final class TrainingRun {
    public let recipe: TrainRecipe
    public let splits: DataSplits
    public let trainer: Trainer
    /// The split the final evaluation uses (`eval.split`, default test, else valid).
    public let evalSplit: String?
    let evalSource: (any BatchSource)?

    public init(
        recipe: TrainRecipe, log: @escaping (String) -> Void = { _ in },
        progress: ProgressBar = ProgressBar(enabled: false)
    ) throws {
        self.recipe = recipe
        let t = recipe.train
        let wantedEval =
            recipe.eval.split ?? (recipe.data.test != nil || recipe.data.format == .fashionMNIST ? "test" : "valid")
        splits = try RecipeData.load(
            recipe.data, model: recipe.model, seed: t.seed, wanted: ["train", "valid", wantedEval])
        guard let trainSet = splits.train else {
            throw RecipeError("\(recipe.document.source): data.train is required to train")
        }
        for (name, d) in [("train", splits.train), ("valid", splits.valid), ("test", splits.test)] {
            if let d, !d.skipped.isEmpty {
                log("\(name): skipped \(d.skipped.count) bad rows (first: \(d.skipped[0]))")
            }
        }
        var graph = try Zoo.build(recipe.model)
        RecipeData.annotate(&graph, with: splits.heads)
        let evalBatch = recipe.eval.batchSize ?? t.batchSize
        let train = RecipeData.source(
            trainSet, model: recipe.model, data: recipe.data, batchSize: t.batchSize, training: true,
            dropLast: t.dropLast, seed: t.seed)
        let valid = splits.valid.map {
            RecipeData.source(
                $0, model: recipe.model, data: recipe.data, batchSize: evalBatch, training: false, dropLast: false,
                seed: t.seed)
        }
        let directory = RunDirectory(recipe.directory)
        trainer = try Trainer(graph: graph, settings: t, train: train, valid: valid, directory: directory)
        trainer.log = log
        trainer.progress = progress
        trainer.recipeText = recipe.document.yaml()
        if let d = splits.split(wantedEval) {
            evalSplit = wantedEval
            evalSource =
                wantedEval == "valid"
                ? valid
                : RecipeData.source(
                    d, model: recipe.model, data: recipe.data, batchSize: evalBatch, training: false, dropLast: false,
                    seed: t.seed)
        } else {
            evalSplit = nil
            evalSource = nil
        }
        log(
            "\(recipe.name): \(recipe.model.architecture.rawValue) \(recipe.model.inputHeight)x\(recipe.model.inputWidth), heads \(graph.metadata.heads.map { "\($0.name):\($0.classes)" }.joined(separator: ",")), \(trainSet.count) training images\(splits.valid.map { ", \($0.count) validation" } ?? "")\(evalSplit == "test" ? ", \(splits.test?.count ?? 0) test" : ""); writing \(directory.path)"
        )
    }

    /// Trains (optionally resuming, optionally stopping after `stopAfter` epochs), then, when
    /// every epoch is done, finishes: best weights, thresholds, evaluation, `model.kiln`.
    public func run(resume: String? = nil, stopAfter: Int? = nil) throws -> Trainer.Outcome? {
        try trainer.directory.create()
        try FileIO.writeAtomically(Array(recipe.document.yaml().utf8), to: trainer.directory.recipe)
        if let resume { try trainer.resume(from: resume) }
        try trainer.fit(stopAfter: stopAfter)
        guard trainer.epochsDone >= recipe.train.epochs else { return nil }
        return try trainer.finish(evalSource: evalSource, split: evalSplit, settings: recipe.eval)
    }
}

/// A model `kiln eval` measures, whatever runs it: its heads, the preprocessing it expects, and a
/// forward pass from a batch of NCHW float images `[N, C, H, W]` to every head's logits
/// `[N, classes]`.
public struct EvaluatedModel {
    public var heads: [HeadInfo]
    public var preprocessing: Preprocessing?
    public var forward: (Tensor) throws -> [String: Tensor]

    public init(heads: [HeadInfo], preprocessing: Preprocessing?, forward: @escaping (Tensor) throws -> [String: Tensor]) {
        self.heads = heads
        self.preprocessing = preprocessing
        self.forward = forward
    }
}

/// `kiln eval`: a trained model on a recipe's split.
public enum ModelEvaluation {
    /// A `.kiln` model, run by the training graph in inference mode.
    public static func run(
        model path: String, recipe: TrainRecipe, split: String?, threads: Int, thresholds: [String: [Float]] = [:]
    ) throws -> (result: EvaluationResult, split: String) {
        let graph = try KilnFile.read(path)
        guard !graph.metadata.heads.isEmpty else {
            throw TrainingError("\(path): the model has no head metadata to evaluate")
        }
        let net = try TrainableGraph(graph, threads: threads)
        guard graph.inputs.count == 1 else { throw TrainingError("\(path): evaluation needs a model with one input") }
        let inputName = graph.inputs[0].name
        let model = EvaluatedModel(heads: graph.metadata.heads, preprocessing: graph.metadata.preprocessing) { images in
            try net.forward([inputName: images], training: false)
        }
        return try run(model, recipe: recipe, split: split, thresholds: thresholds)
    }

    /// Any model (see ``EvaluatedModel``) on the recipe's split: the data is loaded and
    /// preprocessed as the model's metadata says (falling back to the recipe's), labels come
    /// from the recipe, and `thresholds` override the heads' own for sigmoid heads.
    public static func run(
        _ evaluated: EvaluatedModel, recipe: TrainRecipe, split: String?, thresholds: [String: [Float]] = [:]
    ) throws -> (result: EvaluationResult, split: String) {
        var heads = evaluated.heads
        for k in heads.indices {
            if let t = thresholds[heads[k].name] { heads[k].thresholds = t }
        }
        guard !heads.isEmpty else { throw TrainingError("the model has no heads to evaluate") }
        let chosen =
            split ?? recipe.eval.split
            ?? (recipe.data.test != nil || recipe.data.format == .fashionMNIST ? "test" : "valid")
        var model = recipe.model
        if let pre = evaluated.preprocessing {
            model.preprocessing = pre
            (model.inputHeight, model.inputWidth, model.channels) = (pre.height, pre.width, pre.channels)
        }
        model.heads = heads.map {
            HeadSpec(name: $0.name, classes: $0.classes, kind: $0.kind, classNames: $0.classNames)
        }
        let splits = try RecipeData.load(recipe.data, model: model, seed: recipe.train.seed, wanted: [chosen])
        guard let data = splits.split(chosen) else {
            throw RecipeError("\(recipe.document.source): the recipe's data has no '\(chosen)' split")
        }
        let batch = recipe.eval.batchSize ?? recipe.train.batchSize
        let source = RecipeData.source(
            data, model: model, data: recipe.data, batchSize: batch, training: false, dropLast: false, seed: 0)
        let loss = Trainer.makeLoss(heads: heads, settings: recipe.train)
        var result = try Evaluation.run(on: source, heads: heads, loss: loss, forward: evaluated.forward)
        result.applyThresholds(
            Dictionary(uniqueKeysWithValues: heads.compactMap { h in h.thresholds.map { (h.name, $0) } }))
        return (result, chosen)
    }
}
