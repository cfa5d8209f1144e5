/// Why a local service (the vector-search Redis or the local embedding model) could not start.
package struct LocalServicesError: Error, CustomStringConvertible, Sendable {
    /// What failed and what to do.
    package var description: String

    package init(_ description: String) { self.description = description }
}
