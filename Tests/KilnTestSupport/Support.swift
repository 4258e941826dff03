/// Shared helpers for Kiln's test targets.
///
/// Numerics (this file, `Assertions.swift`, `Inputs.swift`) — kept deliberately small:
/// - `assertClose(_ actual: Tensor, _ expected: Tensor, atol:rtol:)`: same dtype and shape,
///   float values within `atol + rtol * |expected|` (NumPy `allclose`), integer values exactly;
///   on failure, the number of differing elements and the worst one with its index.
/// - `assertClose(_ actual: [Float], _ expected: [Float], atol:rtol:)`: the same for arrays.
/// - `testSeed`: the fixed seed for random shapes and values (ncnn's `SRAND(7767517)`).
/// - `patternTensor(_:multiplier:modulus:)` and `iota(_:start:step:)`: deterministic inputs
///   that NumPy rebuilds exactly when goldens are generated offline.
/// - `SeededRandom.int(in:)` and `SeededRandom.int8Tensor(_:quant:)`: random integers and int8
///   tensors from a seeded stream (float tensors: `SeededRandom.uniformTensor`/`normalTensor`).
import KilnTensor

/// The seed every test uses for random shapes and values, so that failures reproduce.
public let testSeed: UInt64 = 7_767_517
