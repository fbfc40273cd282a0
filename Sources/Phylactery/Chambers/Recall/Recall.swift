import Foundation

/// What a recall found, where, and why.
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

    /// Why the answering chamber answered.
    public enum Reason: Sendable, Hashable, CustomStringConvertible {
        /// The fact recorded under the exact namespace and key asked for.
        case exactKey
        /// Facts whose words match the question's; the best one's score (see ``FactStore/TextMatch``).
        case textMatch(score: Double)
        /// Memories near the question's embedding; the nearest one's distance.
        case vectorDistance(Double)
        /// Nothing matched.
        case nothing

        public var description: String {
            switch self {
            case .exactKey: "exact key"
            case .textMatch(let score): "text match, score \(String(format: "%.3f", score))"
            case .vectorDistance(let distance): "vector distance \(String(format: "%.4f", distance))"
            case .nothing: "nothing matched"
            }
        }
    }

    /// The chamber that answered (``Chamber/verbatim`` or ``Chamber/vectors``), or `nil` when none did.
    public var chamber: Chamber?
    /// The answer's status.
    public var status: Status
    /// The fact, when verbatim answered: the exact key's, or the best text match.
    public var fact: Fact?
    /// Every fact that matched the question's words, best first (empty for an exact key and when
    /// verbatim did not answer).
    public var facts: [FactStore.TextMatch] = []
    /// The memories, nearest first, when the vectors chamber answered.
    public var memories: [VectorMemory.Match]
    /// Why this chamber answered: exact key, text match with its score, or vector distance.
    public var reason: Reason = .nothing

    /// True only for facts: the same question over the same facts gets the same answer.
    public var isDeterministic: Bool { self.status == .fact }
}

/// A fact's exact address: namespace and key.
public struct FactKey: Sendable, Hashable {
    /// The namespace.
    public var namespace: String
    /// The key within it.
    public var key: String
    /// A fact's address.
    public init(_ namespace: String, _ key: String) {
        self.namespace = namespace
        self.key = key
    }
}

/// How ``Transaction/recall(question:key:embedding:in:options:)`` searches each chamber.
public struct RecallOptions: Sendable, Hashable {
    /// How facts are matched by the question's words (threshold, how many, one namespace).
    public var text: FactStore.TextSearchOptions
    /// How many memories at most. Default 5.
    public var k: Int
    /// Memories farther than this (cosine distance) are not recalled, when set.
    public var maxDistance: Double?
    /// The labels the caller may see: facts and memories with another label read as absent. Default
    /// `Sensitivity.visible(upTo: .private)`.
    public var visible: Set<Sensitivity>
    /// How memories are searched: `nil` (the default) searches by vector and words fused (hybrid)
    /// when both an embedding and a question are given, by vector alone without a question, and by
    /// the question's words alone without an embedding. Set it to force one mode.
    public var memorySearch: VectorMemory.SearchMode?

    /// Recall options; the defaults: text matches scoring at least 0.3 (5 at most), 5 memories, no
    /// distance bound, public and private labels.
    public init(text: FactStore.TextSearchOptions = .init(), k: Int = 5, maxDistance: Double? = nil,
                visible: Set<Sensitivity> = FactStore.defaultVisible, memorySearch: VectorMemory.SearchMode? = nil) {
        self.memorySearch = memorySearch
        self.text = text
        self.k = k
        self.maxDistance = maxDistance
        self.visible = visible
    }
}

extension Transaction {
    /// Recalls what is known about `key`: the verbatim chamber first, similarity only when it has nothing.
    ///
    /// 1. The current fact `namespace`/`key`, if there is one the caller may see (`visible`), is the
    ///    answer (``RecallAnswer/Status/fact``, ``RecallAnswer/Reason/exactKey``), however close any
    ///    memory's vector is.
    /// 2. Otherwise the `k` consecrated memories of `space` nearest to `embedding` (within
    ///    `maxDistance`, cosine, when given) are the answer.
    /// 3. Otherwise the nearest speculative ones; rejected memories are never recalled.
    ///
    /// The answer says which chamber answered, with what status and why.
    public func recall(
        _ namespace: String, key: String, embedding: Vector, in space: EmbeddingSpace, k: Int = 5, maxDistance: Double? = nil,
        visible: Set<Sensitivity> = FactStore.defaultVisible
    ) async throws -> RecallAnswer {
        try await self.recall(
            question: nil, key: FactKey(namespace, key), embedding: embedding, in: space,
            options: RecallOptions(k: k, maxDistance: maxDistance, visible: visible))
    }

    /// Recalls what is known about a question: facts first, deterministically, then memories.
    ///
    /// The order of questions:
    /// 1. **The exact key**, when `key` is given: its current fact, if the caller may see it
    ///    (``RecallAnswer/Reason/exactKey``).
    /// 2. **The question's words**: the current facts whose namespace, key and value match them by
    ///    full text and trigram similarity, ranked and thresholded as
    ///    ``FactStore/search(question:options:visible:)`` does (``RecallAnswer/Reason/textMatch(score:)``,
    ///    all of them in ``RecallAnswer/facts``, the best in ``RecallAnswer/fact``). A fact that
    ///    answers by its words wins over any memory, however close its vector.
    /// 3. **Consecrated memories** of `space`: with both an embedding and a question, ranked by the
    ///    fusion of vector distance and full-text relevance (hybrid, see ``RecallOptions/memorySearch``);
    ///    with an embedding alone, nearest first; with a question alone, by its words
    ///    (``RecallAnswer/Reason/vectorDistance(_:)`` for the best one's distance, or
    ///    ``RecallAnswer/Reason/textMatch(score:)`` when found by words alone), within
    ///    ``RecallOptions/maxDistance`` when set.
    /// 4. **Speculative memories**, the same way. Rejected memories are never recalled.
    ///
    /// Facts answer the same way for the same question and data (ties broken by namespace and key);
    /// memories come from an approximate index. Only memories with one of ``RecallOptions/visible``'s
    /// labels are recalled.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` when neither a question nor a key is given,
    ///   or for the text options ``FactStore/search(question:options:visible:)`` refuses;
    ///   ``PhylacteryError/Code/dimensionMismatch`` when `embedding` does not fit `space`.
    public func recall(
        question: String?, key: FactKey? = nil, embedding: Vector?, in space: EmbeddingSpace?, options: RecallOptions = RecallOptions()
    ) async throws -> RecallAnswer {
        let hasQuestion = question.map { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } ?? false
        guard hasQuestion || key != nil || embedding != nil else {
            throw PhylacteryError(.invalidArgument, "recall needs a question, a fact key or an embedding")
        }
        if let key, let fact = try await self.facts.get(key.namespace, key: key.key, visible: options.visible) {
            return RecallAnswer(chamber: .verbatim, status: .fact, fact: fact, memories: [], reason: .exactKey)
        }
        if hasQuestion, let question {
            let matches = try await self.facts.search(question: question, options: options.text, visible: options.visible)
            if let best = matches.first {
                return RecallAnswer(chamber: .verbatim, status: .fact, fact: best.fact, facts: matches, memories: [], reason: .textMatch(score: best.score))
            }
        }
        let words = hasQuestion ? question : nil
        guard (embedding != nil && space != nil) || words != nil else {
            return RecallAnswer(chamber: nil, status: .none, fact: nil, memories: [])
        }
        for status in [MemoryStatus.consecrated, .speculative] {
            let matches = try await self.recallMemories(question: words, embedding: embedding, in: space, status: status, options: options)
            if let best = matches.first {
                return RecallAnswer(
                    chamber: .vectors, status: status == .consecrated ? .consecrated : .speculative, fact: nil, memories: matches,
                    reason: best.distance.isFinite ? .vectorDistance(best.distance) : .textMatch(score: best.score))
            }
        }
        return RecallAnswer(chamber: nil, status: .none, fact: nil, memories: [])
    }

    /// The memory step of recall, in one place: memories of one status the caller may see, within the
    /// distance bound. With an embedding and a question, the search is hybrid (vector and full-text
    /// ranks fused) unless ``RecallOptions/memorySearch`` says otherwise, in the fused order; by vector
    /// alone, nearest first; with a question and no embedding, by the question's words. Ties go by id,
    /// so the order is stable.
    func recallMemories(question: String?, embedding: Vector?, in space: EmbeddingSpace?, status: MemoryStatus, options: RecallOptions) async throws -> [VectorMemory.Match] {
        var search = VectorMemory.SearchOptions(k: options.k, statuses: [status], sensitivities: options.visible)
        guard let embedding, let space else {
            guard let question, options.memorySearch != .vector else { return [] }
            return try await self.memory.search(text: question, options: search)
        }
        search.mode = options.memorySearch ?? (question == nil ? .vector : .hybrid)
        search.text = question
        var matches = try await self.memory.search(embedding, in: space, options: search)
        if search.mode != .text, let maxDistance = options.maxDistance { matches.removeAll { $0.distance > maxDistance } }
        if search.mode == .vector {
            matches.sort { ($0.distance, $0.memory.id.uuidString) < ($1.distance, $1.memory.id.uuidString) }
        }
        return matches
    }
}
