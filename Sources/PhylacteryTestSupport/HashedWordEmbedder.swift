public import Phylactery

/// A deterministic embedder for tests: a hashed bag of words, normalised.
///
/// `seed` makes another model (the same words land elsewhere); `synonyms` folds words the way a
/// semantic model would; tokens holding a digit are dropped, as a model sees codes like `E4017`
/// poorly (what hybrid search is for).
public struct HashedWordEmbedder: MemoryEmbedder {
    /// Changes where words land: another seed is another space.
    public var seed: UInt64
    /// Words replaced before hashing (`fault` → `error`).
    public var synonyms: [String: String]

    /// An embedder.
    public init(seed: UInt64 = 0, synonyms: [String: String] = [:]) {
        self.seed = seed
        self.synonyms = synonyms
    }

    /// The vector of `text` with `dimensions` elements.
    public func vector(_ text: String, dimensions: Int) throws -> Vector {
        var values = [Float](repeating: 0, count: dimensions)
        let words = text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
        for word in words where !word.contains(where: \.isNumber) {
            let folded = self.synonyms[String(word)] ?? String(word)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ self.seed
            for byte in folded.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            values[Int(hash % UInt64(dimensions))] += (hash >> 63) == 0 ? 1 : -1
        }
        values[dimensions - 1] += 0.01  // never the zero vector (cosine is undefined there)
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return try Vector(values.map { $0 / norm })
    }

    public func embed(_ texts: [String], in space: EmbeddingSpace) async throws -> [Vector] {
        try texts.map { try self.vector($0, dimensions: space.dimensions) }
    }
}
