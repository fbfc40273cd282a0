public import Foundation

/// One memory as an operator inspects it (``VectorMemory/detail(of:neighbours:in:historyLimit:visible:)``):
/// its fields, its status history, the spaces it has vectors in and its nearest neighbours.
public struct MemoryDetail: Sendable, Hashable, Codable {
    /// A memory near this one.
    public struct Neighbour: Sendable, Hashable, Codable {
        /// The neighbour's id.
        public var id: UUID
        /// Its content.
        public var content: String
        /// Its status.
        public var status: MemoryStatus
        /// Who wrote it.
        public var owner: String
        /// Its distance from this memory's vector (cosine).
        public var distance: Double
    }

    /// The memory's id.
    public var id: UUID
    /// The remembered text.
    public var content: String
    /// Its metadata, as JSON text.
    public var metadata: String
    /// Its status.
    public var status: MemoryStatus
    /// Who wrote it.
    public var owner: String
    /// Where it came from.
    public var source: String
    /// Its label.
    public var sensitivity: Sensitivity
    /// When it was stored.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date
    /// Who last changed its status, `nil` while it never changed.
    public var statusChangedBy: String?
    /// When its status last changed.
    public var statusChangedAt: Date?
    /// Its status changes, oldest first (the first ``historyLimit`` of ``historyCount``).
    public var history: [MemoryStatusChange]
    /// How many status changes it has.
    public var historyCount: Int
    /// The spaces it has a vector in, by model and fingerprint.
    public var spaces: [EmbeddingSpace]
    /// The space ``neighbours`` were searched in; `nil` when the memory has no vector there (or no
    /// space is the default).
    public var neighbourSpace: EmbeddingSpace?
    /// The memories nearest to it in ``neighbourSpace``, nearest first (itself left out), among those
    /// the caller may see, of any status.
    public var neighbours: [Neighbour]
}
