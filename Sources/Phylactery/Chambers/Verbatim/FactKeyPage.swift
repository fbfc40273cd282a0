/// One page of a namespace's keys (``FactStore/keys(_:prefix:after:limit:visible:)``).
public struct FactKeyPage: Sendable, Hashable, Codable {
    /// The keys, in byte order.
    public var keys: [FactKeySummary]
    /// Where the next page starts (pass it as `after`), `nil` on the last page.
    public var next: String?

    /// A page of keys.
    public init(keys: [FactKeySummary], next: String?) {
        self.keys = keys
        self.next = next
    }
}
