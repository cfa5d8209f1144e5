/// A failure of `stampede tune semantic` or `stampede bench semantic`, with what to do.
struct SemanticTuneError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
