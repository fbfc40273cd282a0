/// One page of the fact store's namespaces (``FactStore/namespaces(after:limit:)``).
public struct FactNamespacePage: Sendable, Hashable, Codable {
    /// The namespaces, by name.
    public var namespaces: [FactNamespace]
    /// Where the next page starts (pass it as `after`), `nil` on the last page.
    public var next: String?
}
