public import Foundation

/// One key of a namespace as its newest version stands (``FactStore/keys(_:prefix:after:limit:visible:)``).
public struct FactKeySummary: Sendable, Hashable, Codable {
    /// The namespace.
    public var namespace: String
    /// The key.
    public var key: String
    /// The newest version's number (versions are numbered from 1 without gaps, so also how many there are).
    public var version: Int
    /// The newest version is a retraction: the fact no longer holds.
    public var isRetracted: Bool
    /// The newest version's value was erased.
    public var isErased: Bool
    /// The newest version's label.
    public var sensitivity: Sensitivity
    /// Who recorded the newest version.
    public var source: String
    /// When the newest version was recorded.
    public var recordedAt: Date
    /// The start of the newest value's JSON text (at most 200 characters), `nil` without a value.
    public var valuePreview: String?
}
