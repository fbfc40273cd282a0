/// How many memories there are, by status and by embedding space (``VectorMemory/statistics()``):
/// what the console's memory page shows at its top.
public struct MemoryStatistics: Sendable, Hashable, Codable {
    /// How many memories have one status.
    public struct StatusCount: Sendable, Hashable, Codable {
        /// The status.
        public var status: MemoryStatus
        /// How many memories have it.
        public var count: Int
    }

    /// One embedding space: its vectors by the status of their memory.
    public struct SpaceCount: Sendable, Hashable, Codable {
        /// The space.
        public var space: EmbeddingSpace
        /// Whether searches without a space use it.
        public var isDefault: Bool
        /// Vectors in the space by the status of their memory, in ``MemoryStatus`` order (statuses
        /// without a vector there are left out).
        public var byStatus: [StatusCount]
        /// Vectors in the space.
        public var vectors: Int
    }

    /// Every memory stored.
    public var total: Int
    /// Memories by status, in ``MemoryStatus`` order, every status present (with 0 when none has it).
    public var byStatus: [StatusCount]
    /// The registered spaces, by model and fingerprint.
    public var spaces: [SpaceCount]
    /// Memories forgotten so far (their audit records, ``ForgottenMemory``).
    public var forgotten: Int

    /// Memories not embedded in `space` (waiting for an embedding job or never asked for one).
    public func withoutVector(in space: EmbeddingSpace) -> Int {
        self.total - (self.spaces.first { $0.space == space }?.vectors ?? 0)
    }
}
