import Foundation
import JournalExtension
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing
import Tracing

/// Version 1 of the guide's extension: the entry's text was called `body`.
struct JournalV1: PhylacteryExtension {
    let slug = "journal"
    let version = "1.0.0"
    func initialize(_ context: ExtensionContext) throws { context.register(JournalEntryV1.self) }
}

@Model(table: "journal_entries")
struct JournalEntryV1 {
    @Index var author: String
    var body: String
    @Column(default: "0") var words: Int32
}

/// The extension the author's guide builds, run as the guide says: version 1, then the rename, a
/// job with a transactional handler under a span, a fact, a memory, the weekly digest; and the
/// article's code is the compiled code.
@Suite struct JournalGuideTests {
    @Test func theGuidesExtensionMigratesRunsItsJobsAndKeepsItsPromises() async throws {
        try await TestDatabase.withFreshDatabase("journal_guide") { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [JournalV1()])).apply(allowing: [])
            let first = try await client.insert(JournalEntryV1(author: "ada", body: "the engine computes what we tell it", words: 0))

            // Version 2: the rename keeps every stored entry.
            let federation = try Federation.standard(extensions: [Journal()])
            let plan = try await Migrator(client: client, federation: federation).plan()
            #expect(plan.steps.map(\.summary).contains("rename column public.journal_entries.body to text"), "\(plan.steps.map(\.summary))")
            try await Migrator(client: client, federation: federation).apply(allowing: [])
            #expect(try await client.find(JournalEntry.self, id: first.id)?.text == "the engine computes what we tell it")
            #expect(federation.periodicJobs.map(\.name) == ["journal.weekly-digest"])

            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "journal"))
            var configuration = GhoulsConfiguration(queues: ["default": QueueConfiguration(concurrency: 4)], pollInterval: .milliseconds(100))
            configuration.periodicJobs = federation.periodicJobs
            // Two entries of one author may be reflected on at once: the second `put` of the author's
            // fact waits for the first and fails, and its job is retried (then it supersedes). Short
            // retries keep the test quick.
            configuration.backoff = RetryBackoff(initial: .milliseconds(50), maximum: .milliseconds(500), jitter: 0.1)
            let ghouls = Ghouls(client: client, handlers: federation.jobHandlers, configuration: configuration)
            let running = Task { try await withTracer(tracer) { try await ghouls.run() } }

            let reflect = try await client.enqueue(ReflectOnEntry(entryID: first.id))
            let second = try await client.insert(JournalEntry(author: "ada", text: "poetical science", words: 0))
            let reflectAgain = try await client.enqueue(ReflectOnEntry(entryID: second.id))
            try await eventually("the reflections to complete") {
                var states: [JobState] = []
                for id in [reflect.id, reflectAgain.id] { states.append(try await client.jobs.job(id).state) }
                return states.allSatisfy { $0 == .completed }
            }
            // The digest (what the schedule enqueues every Monday), once the words are counted.
            let digest = try await client.enqueue(WeeklyDigest())
            try await eventually("the digest to complete") { try await client.jobs.job(digest.id).state == .completed }
            ghouls.beginShutdown()
            try await running.value

            #expect(try await client.find(JournalEntry.self, id: first.id)?.words == 7)
            let memories = try await client.transaction { tx in
                try await tx.memory.search(Journal.embed("poetical science"), in: Journal.space, options: .init(k: 2, exact: true))
            }
            #expect(memories.first?.memory.content == "poetical science", "\(memories.map(\.memory.content))")
            let history = try await client.transaction { tx in try await tx.facts.history("journal", key: "latest.ada") }
            #expect(history.count == 2, "one fact, superseded once: \(history)")
            let result = try #require(try await client.jobs.job(digest.id).result).decode(WeeklyDigest.Digest.self)
            #expect(result.entries == 2 && result.words == 7 + 2, "\(result)")
            _ = try await tracer.flush()
            // One span per attempt (a retried attempt has its own), the effects once each.
            let attempts = try await client.query("SELECT sum(attempt)::bigint FROM queue.jobs WHERE kind = 'journal.reflect'").collect().first?.decode(Int64.self)
            let spans = try await client.query("SELECT count(*) FROM traces.spans WHERE name = 'journal.reflect'").collect().first?.decode(Int64.self)
            #expect(spans == attempts && (attempts ?? 0) >= 2, "spans \(String(describing: spans)), attempts \(String(describing: attempts))")
            let remembered = try await client.query("SELECT count(*) FROM vectors.memories WHERE owner = 'journal'").collect().first?.decode(Int64.self)
            #expect(remembered == 2, "each entry remembered once, however often its job ran")
        }
    }

    /// Every code block of the article is text of the compiled extension.
    @Test func theArticleShowsTheCompiledCode() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let source = try String(contentsOfFile: root + "/Examples/Journal/Journal.swift", encoding: .utf8)
        let article = try String(contentsOfFile: root + "/Sources/Phylactery/Documentation.docc/ExtensionGuide.md", encoding: .utf8)
        let sections = CheckedSnippets.sections(of: source)
        #expect(Set(sections.keys) == ["extension", "model", "job", "periodic"])
        for (name, text) in sections {
            #expect(article.contains("```swift\n" + text + "\n```"), "the article's \(name) block differs from Examples/Journal/Journal.swift")
        }
    }
}
