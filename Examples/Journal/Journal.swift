public import Foundation
public import Phylactery
import Tracing

// The extension the author's guide (Phylactery's DocC article "Writing an extension") builds, piece
// by piece. The article's code blocks are this file's text, checked by a test; the test command
// compiles it and runs it against a real server (JournalGuideTests).

// MARK: extension
/// A journal: entries an author writes, reflected on in the background, with a weekly digest.
public struct Journal: PhylacteryExtension {
    public let slug = "journal"
    public let version = "2.0.0"

    public init() {}

    public func initialize(_ context: ExtensionContext) throws {
        context.register(JournalEntry.self)
        context.handle(ReflectOnEntry.self, ReflectOnEntry.handle)
        context.handle(WeeklyDigest.self, WeeklyDigest.handle)
        context.schedule(try PeriodicJob(name: "journal.weekly-digest", cron: "0 6 * * 1") { WeeklyDigest() })
    }
}
// MARK: end

// MARK: model
/// One entry. Version 1 called `text` `body`: `renamedFrom` makes the migration a RENAME COLUMN,
/// so every stored entry keeps its text.
@Model(table: "journal_entries")
public struct JournalEntry: Hashable {
    @Index public var author: String
    @Column(renamedFrom: ["body"]) public var text: String
    @Column(default: "0") public var words: Int32
}
// MARK: end

// MARK: job
/// Reflects on one entry: counts its words, remembers it, and records the author's latest entry as
/// a fact — all in the job's own transaction, so however often the job is retried, it happens once.
public struct ReflectOnEntry: Job {
    public static let kind = "journal.reflect"
    public var entryID: UUID

    public init(entryID: UUID) { self.entryID = entryID }

    @Sendable public static func handle(_ job: ReflectOnEntry, _ context: JobContext) async throws {
        try await withSpan("journal.reflect") { span in
            span.attributes["journal.entry"] = job.entryID.uuidString
            try await context.transaction { tx in
                guard var entry = try await tx.find(JournalEntry.self, id: job.entryID) else {
                    throw JobControl.discard("entry \(job.entryID) no longer exists")
                }
                entry.words = Int32(entry.text.split(whereSeparator: \.isWhitespace).count)
                try await tx.update(entry)
                let memory = try Memory(content: entry.text, embedding: Journal.embed(entry.text), space: Journal.space,
                                        owner: "journal", source: "entry \(entry.id)")
                _ = try await tx.memory.remember(memory)
                let latest = ["entry": entry.id.uuidString]
                if try await tx.facts.get("journal", key: "latest.\(entry.author)") == nil {
                    _ = try await tx.facts.put("journal", key: "latest.\(entry.author)", value: latest, source: "journal")
                } else {
                    _ = try await tx.facts.supersede("journal", key: "latest.\(entry.author)", value: latest, source: "journal")
                }
            }
        }
    }
}
// MARK: end

// MARK: periodic
/// Once a week: how many entries and words there are, as the job's result.
public struct WeeklyDigest: Job {
    public static let kind = "journal.weekly_digest"

    public init() {}

    public struct Digest: Codable, Sendable {
        public var entries: Int
        public var words: Int
    }

    @Sendable public static func handle(_ job: WeeklyDigest, _ context: JobContext) async throws -> Digest {
        let entries = try await context.client.fetch(JournalEntry.self)
        return Digest(entries: entries.count, words: entries.reduce(0) { $0 + Int($1.words) })
    }
}
// MARK: end

extension Journal {
    /// The embedding space of the journal's memories. A real daemon embeds with a model (the
    /// upstream daemon uses all-MiniLM-L6-v2, 384 dimensions); this example hashes words into 8
    /// dimensions, so the guide runs anywhere.
    public static let space = EmbeddingSpace(model: "journal-words", fingerprint: "v1", dimensions: 8)

    /// A deterministic stand-in for an embedding model: word hashes folded into 8 dimensions.
    public static func embed(_ text: String) throws -> Vector {
        var sums = [Float](repeating: 0, count: 8)
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter }) {
            var hash: UInt32 = 2_166_136_261
            for byte in word.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
            sums[Int(hash % 8)] += 1
        }
        if sums.allSatisfy({ $0 == 0 }) { sums[0] = 1 }
        return try Vector(sums)
    }
}
