import Foundation

/// What ``Transaction/recall(_:key:embedding:in:k:maxDistance:)`` found, and where.
public struct RecallAnswer: Sendable, Hashable {
    /// How far the answer can be trusted, strongest first.
    public enum Status: String, Sendable, Hashable {
        /// An exact fact from the verbatim chamber: deterministic.
        case fact
        /// Consecrated (verified) memories from the vectors chamber.
        case consecrated
        /// Speculative memories: no fact and no consecrated memory answered.
        case speculative
        /// Nothing answered.
        case none
    }

    /// The chamber that answered (``Chamber/verbatim`` or ``Chamber/vectors``), or `nil` when none did.
    public var chamber: Chamber?
    /// The answer's status.
    public var status: Status
    /// The fact, when verbatim answered.
    public var fact: Fact?
    /// The memories, nearest first, when the vectors chamber answered.
    public var memories: [VectorMemory.Match]

    /// True only for a fact: the same question gets the same answer until the fact is superseded.
    public var isDeterministic: Bool { self.status == .fact }
}

extension Transaction {
    /// Recalls what is known about `key`: the verbatim chamber first, similarity only when it has nothing.
    ///
    /// 1. The current fact `namespace`/`key`, if there is one, is the answer (``RecallAnswer/Status/fact``),
    ///    however close any memory's vector is.
    /// 2. Otherwise the `k` consecrated memories of `space` nearest to `embedding` (within
    ///    `maxDistance`, cosine, when given) are the answer.
    /// 3. Otherwise the nearest speculative ones; rejected memories are never recalled.
    ///
    /// The answer says which chamber answered and with what status.
    public func recall(
        _ namespace: String, key: String, embedding: Vector, in space: EmbeddingSpace, k: Int = 5, maxDistance: Double? = nil
    ) async throws -> RecallAnswer {
        if let fact = try await self.facts.get(namespace, key: key) {
            return RecallAnswer(chamber: .verbatim, status: .fact, fact: fact, memories: [])
        }
        for status in [MemoryStatus.consecrated, .speculative] {
            var matches = try await self.memory.search(embedding, in: space, options: .init(k: k, statuses: [status]))
            if let maxDistance { matches.removeAll { $0.distance > maxDistance } }
            if !matches.isEmpty {
                return RecallAnswer(chamber: .vectors, status: status == .consecrated ? .consecrated : .speculative, fact: nil, memories: matches)
            }
        }
        return RecallAnswer(chamber: nil, status: .none, fact: nil, memories: [])
    }
}
