/// One namespace of the fact store with its counts (``FactStore/namespaces(after:limit:)``).
public struct FactNamespace: Sendable, Hashable, Codable {
    /// The namespace.
    public var name: String
    /// Keys recorded in it (current, retracted or erased alike).
    public var keys: Int
    /// Versions recorded in it.
    public var versions: Int
}
