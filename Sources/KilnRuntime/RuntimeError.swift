/// A model the runtime cannot load or run, with the reason: a file that is not TFLite, fails
/// verification, or describes something inconsistent or unsupported; an unknown input or
/// output name; a thread pool that cannot start.
public struct RuntimeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
