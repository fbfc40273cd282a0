import Foundation
import PostgresNIO

extension FactStore {
    /// A fact's name as text for trigram similarity: namespace and key with `.`, `_`, `-`, `/` and
    /// `:` read as spaces (`network gateway ip` for `network`/`gateway.ip`). Indexed (GIN,
    /// `gin_trgm_ops`) as `facts_name_trgm_idx`.
    static let nameSQL = "translate(namespace || ' ' || key, '._-/:', '     ')"

    /// A fact's words for full-text search: its name (as ``nameSQL``) and the strings and numbers of
    /// its value, with the `english` configuration (stemmed, stop words dropped). Indexed (GIN) as
    /// `facts_words_idx`; a retraction or an erased version has only its name's words.
    static let wordsSQL = """
        to_tsvector('english'::regconfig, \(nameSQL)) || COALESCE(jsonb_to_tsvector('english'::regconfig, value, '["string", "numeric"]'::jsonb), ''::tsvector)
        """

    /// How ``search(question:options:)`` finds and ranks facts by the words of a question.
    public struct TextSearchOptions: Sendable, Hashable {
        /// The lowest ``TextMatch/score`` that counts as a match (0…1). Default 0.3.
        public var minScore: Double
        /// At most this many matches, best first (1…1000). Default 5.
        public var limit: Int
        /// Only facts of this namespace, when set.
        public var namespace: String?

        /// Text search options; the defaults keep the 5 best matches scoring at least 0.3.
        public init(minScore: Double = 0.3, limit: Int = 5, namespace: String? = nil) {
            self.minScore = minScore
            self.limit = limit
            self.namespace = namespace
        }
    }

    /// A fact found by the words of a question, with why it matched.
    public struct TextMatch: Sendable, Hashable {
        /// The fact (its current version).
        public var fact: Fact
        /// The share of the question's words (lexemes, after stemming and without stop words) found
        /// among the fact's words: 0…1.
        public var wordCoverage: Double
        /// How well the fact's name (namespace and key) appears in the question: pg_trgm's
        /// `word_similarity(name, question)`, 0…1, forgiving of typos and word forms.
        public var trigramSimilarity: Double
        /// The rank: the mean of ``wordCoverage`` and ``trigramSimilarity``, 0…1.
        public var score: Double
    }

    /// The current facts whose namespace, key and value match the words of `question`, best first.
    ///
    /// Deterministic: the same question over the same facts gives the same list. Candidates are the
    /// facts whose words (full text, `english`) share a word with the question, or whose name is
    /// trigram-similar to it (pg_trgm's `%`, at its `pg_trgm.similarity_threshold`, 0.3 by default);
    /// both are index scans. Each candidate's current version (retracted, erased and hidden facts are
    /// left out) is scored as the mean of its word coverage and its name's trigram similarity
    /// (see ``TextMatch``); those below ``TextSearchOptions/minScore`` are dropped; ties are broken by
    /// namespace, then key.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for an empty question, a `minScore` outside
    ///   0…1 or a `limit` outside 1…1000.
    public func search(question: String, options: TextSearchOptions = TextSearchOptions(), visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> [TextMatch] {
        guard !question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw PhylacteryError(.invalidArgument, "a question needs at least one word")
        }
        guard (0...1).contains(options.minScore) else { throw PhylacteryError(.invalidArgument, "minScore must be between 0 and 1; got \(options.minScore)") }
        guard (1...1000).contains(options.limit) else { throw PhylacteryError(.invalidArgument, "limit must be between 1 and 1000; got \(options.limit)") }
        try StorableText.check(question, "The question")
        let labels = Self.labels(visible)
        // The question's lexemes become an OR query: each lexeme quoted as tsquery input wants it
        // (backslashes and quotes escaped), so no word of the question is read as an operator.
        let rows = try await self.transaction.rows("""
            WITH question AS (
                SELECT lexemes,
                       (SELECT string_agg('''' || replace(replace(word, '\\', '\\\\'), '''', '''''') || '''', ' | ')
                        FROM unnest(lexemes) AS word)::tsquery AS query
                FROM (SELECT tsvector_to_array(to_tsvector('english'::regconfig, \(question))) AS lexemes) AS parsed
            ),
            candidates AS (
                SELECT f.* FROM verbatim.facts AS f, question
                WHERE (\(unescaped: Self.wordsSQL)) @@ question.query OR (\(unescaped: Self.nameSQL)) % \(question)
            ),
            current AS (
                SELECT c.* FROM candidates AS c
                WHERE NOT c.retracted AND c.erased_at IS NULL AND c.sensitivity = ANY(\(labels)::text[])
                  AND (\(options.namespace)::text IS NULL OR c.namespace = \(options.namespace)::text)
                  AND NOT EXISTS (SELECT 1 FROM verbatim.facts AS newer
                                  WHERE newer.namespace = c.namespace AND newer.key = c.key AND newer.version > c.version)
            ),
            scored AS (
                SELECT current.*,
                       CASE WHEN cardinality(question.lexemes) = 0 THEN 0::float8
                            ELSE (SELECT count(*) FROM unnest(question.lexemes) AS word
                                  WHERE word = ANY(tsvector_to_array(\(unescaped: Self.wordsSQL))))::float8 / cardinality(question.lexemes)
                       END AS coverage,
                       word_similarity(\(unescaped: Self.nameSQL), \(question))::float8 AS trigram
                FROM current, question
            )
            SELECT \(unescaped: Self.columns), coverage, trigram, (coverage + trigram) / 2 AS score
            FROM scored WHERE (coverage + trigram) / 2 >= \(options.minScore)
            ORDER BY score DESC, namespace, key
            LIMIT \(options.limit)
            """, doing: "Searching facts by the words of a question")
        return try rows.map { row in
            var reader = ModelRowReader(row)
            do {
                let fact = try Fact(row: &reader)
                let coverage = try reader.read(Double.self)
                let trigram = try reader.read(Double.self)
                let score = try reader.read(Double.self)
                return TextMatch(fact: fact, wordCoverage: coverage, trigramSimilarity: trigram, score: score)
            } catch let error as PhylacteryError {
                throw error
            } catch {
                throw self.transaction.aborting(error, doing: "Searching facts by the words of a question", file: #fileID, line: #line)
            }
        }
    }
}
