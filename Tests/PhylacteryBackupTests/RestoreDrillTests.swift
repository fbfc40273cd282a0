import Foundation
import Phylactery
@testable import PhylacteryBackup
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import TasksExtension
import Testing
import Tracing
#if canImport(Glibc)
import Glibc
#endif

/// A job kind of the drill; its argument names the phase and the state it is put in.
struct DrillJob: Job {
    static let kind = "drill.job"
    var mark: String
}

/// Everything the drill reads back from every chamber, compared whole before and after a restore.
struct DrillState: Equatable, CustomStringConvertible {
    var workspaces: [String: [String: String]] = [:]
    var jobs: [String: String] = [:]
    var facts: [String] = []
    var memories: [String: String] = [:]
    var statusChanges = 0
    var spans: [String] = []
    var ledger: [String] = []
    var registry: [String] = []
    var neighbours: [String] = []

    var description: String {
        "workspaces \(workspaces.keys.sorted()), jobs \(jobs.sorted { $0.key < $1.key }), facts \(facts), memories \(memories.count) (\(statusChanges) changes), spans \(spans), ledger \(ledger), registry \(registry.count), neighbours \(neighbours)"
    }

    /// The marks of every phase present anywhere.
    var phases: Set<String> {
        var marks = Set<String>()
        for name in workspaces.keys { marks.insert(String(name.prefix(1))) }
        for mark in jobs.keys { marks.insert(String(mark.prefix(1))) }
        for content in memories.keys { marks.insert(String(content.prefix(1))) }
        for span in spans { marks.insert(String(span.dropFirst("drill.".count).prefix(1))) }
        return marks
    }
}

/// The restore drill: marked rows in every chamber, a full backup, more rows, an incremental, more
/// rows, the time T, more rows (and a migration), then `restore --at T` — exactly what committed at or
/// before T is back, in every chamber — and `restore --latest` after the server was killed with SIGKILL.
@Suite(.serialized) struct RestoreDrillTests {
    static let space = EmbeddingSpace(model: "drill-embedder", fingerprint: "v1", dimensions: 384)

    static func vector(_ seed: UInt64) throws -> Vector {
        var random = SeededRandom(seed: seed)
        let centre = Double(seed % 4)
        return try Vector((0..<384).map { index in Float(sin(centre + Double(index) / 7) + Double.random(in: -0.05...0.05, using: &random)) })
    }

    /// One phase's writes: state rows with a jsonb snapshot, jobs in each state, facts (one superseding
    /// the first phase's), memories with status changes, spans.
    static func write(phase: String, index: UInt64, client: PhylacteryClient, longLease: Bool = false) async throws {
        try await client.transaction { tx in
            for number in 1...3 {
                var settings = (0..<40).reduce(into: [String: String]()) { $0["key\($1)"] = "\(phase)-value-\($1)" }
                settings["snapshot"] = String(repeating: "\(phase)\(number)", count: 3000)  // a large jsonb document (TOASTed)
                _ = try await tx.insert(Workspace(name: "\(phase)-workspace-\(number)", settings: settings))
            }
            try await tx.facts.put("drill", key: "phase-\(phase)", value: ["phase": phase], source: "drill")
            if phase != "A" {
                try await tx.facts.supersede("drill", key: "phase-A", value: ["superseded-in": phase], source: "drill")
            }
        }
        var ids: [String: UUID] = [:]
        for state in ["available", "running", "completed", "cancelled", "discarded"] {
            ids[state] = try await client.enqueue(DrillJob(mark: "\(phase)-\(state)")).id
        }
        try await client.execute("UPDATE queue.jobs SET state = 'running', attempt = 1, claims = 1, worker = 'drill', lease_expires_at = now() - interval '1 second' WHERE id = \(ids["running"]!)")
        try await client.execute("UPDATE queue.jobs SET state = 'completed', attempt = 1, finalized_at = now() WHERE id = \(ids["completed"]!)")
        try await client.jobs.cancel(ids["cancelled"]!)
        try await client.execute("UPDATE queue.jobs SET state = 'discarded', attempt = 25, finalized_at = now() WHERE id = \(ids["discarded"]!)")
        if longLease {
            let id = try await client.enqueue(DrillJob(mark: "\(phase)-running-leased")).id
            try await client.execute("UPDATE queue.jobs SET state = 'running', attempt = 1, claims = 1, worker = 'drill', lease_expires_at = now() + interval '1 hour' WHERE id = \(id)")
        }
        try await client.transaction { tx in
            var stored: [Memory] = []
            for number in 0..<8 {
                stored.append(try await tx.memory.remember(Memory(content: "\(phase)-memory-\(number)", embedding: try vector(index * 100 + UInt64(number)),
                                                                 space: space, owner: "drill", source: "drill")))
            }
            _ = try await tx.memory.consecrate(stored[0].id, by: "drill")
            _ = try await tx.memory.consecrate(stored[1].id, by: "drill")
            _ = try await tx.memory.reject(stored[2].id, by: "drill")
            // A status change of an earlier phase's memory.
            if let earlier = try await tx.fetch(Memory.self, where: "owner = 'drill' AND content LIKE '%-memory-3' AND status = 'speculative'", limit: 1).first {
                _ = try await tx.memory.consecrate(earlier.id, by: "drill-\(phase)")
            }
        }
        let tracer = PhylacteryTracer(client: client, configuration: .init(service: "drill"))
        let span = tracer.startSpan("drill.\(phase)", context: .topLevel)
        span.attributes["drill.phase"] = phase
        tracer.startSpan("drill.\(phase).child", context: span.context).end()
        span.end()
        #expect(try await tracer.flush() == 2)
    }

    static func read(_ client: PhylacteryClient) async throws -> DrillState {
        var state = DrillState()
        for workspace in try await client.fetch(Workspace.self, where: "name LIKE '%-workspace-%'") {
            state.workspaces[workspace.name] = workspace.settings
        }
        for row in try await client.query("SELECT args->>'mark', state FROM queue.jobs WHERE kind = 'drill.job'").collect() {
            let (mark, job) = try row.decode((String, String).self)
            state.jobs[mark] = job
        }
        state.facts = try await client.query("SELECT key || ' v' || version || ' ' || value::text FROM verbatim.facts WHERE namespace = 'drill' ORDER BY key, version")
            .collect().map { try $0.decode(String.self) }
        for row in try await client.query("SELECT content, status FROM vectors.memories WHERE owner = 'drill'").collect() {
            let (content, status) = try row.decode((String, String).self)
            state.memories[content] = status
        }
        state.statusChanges = try await client.query("SELECT count(*) FROM vectors.status_changes c JOIN vectors.memories m ON m.id = c.memory_id WHERE m.owner = 'drill'")
            .collect().first!.decode(Int.self)
        state.spans = try await client.query("SELECT name FROM traces.spans WHERE name LIKE 'drill.%' ORDER BY name").collect().map { try $0.decode(String.self) }
        state.ledger = try await client.query("SELECT revision FROM public.phylactery_migrations ORDER BY position").collect().map { try $0.decode(String.self) }
        state.registry = try await client.query("SELECT owner || '/' || model || '/' || table_name || '@' || revision FROM public.phylactery_registry ORDER BY 1")
            .collect().map { try $0.decode(String.self) }
        state.neighbours = try await client.transaction { tx in
            try await tx.memory.search(try vector(105), in: space, options: .init(k: 8)).map { "\($0.memory.content) \(String(format: "%.12f", $0.distance))" }
        }
        return state
    }

    @Test("restore --at T brings back exactly what committed at or before T, in every chamber; restore --latest after SIGKILL brings back every commit")
    func drill() async throws {
        let fixture = try await BackupFixture.make("drill")
        defer { fixture.cleanUp() }
        let crypt = try Crypt.open(fixture.server)
        let events = EventLog()

        // A: the federation, first rows, a full backup.
        try await fixture.withClient { client in
            _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [])).auto()
            try await Self.write(phase: "A", index: 1, client: client)
        }
        let full = try await crypt.backup(.full, progress: events.record)
        #expect(full.record.kind == .full && full.record.migrationHead != nil && full.notes.isEmpty, "\(full.notes)")
        #expect(events.steps.contains { $0.contains("pg_basebackup") } && events.steps.contains { $0.contains("pg_verifybackup") })

        // B: more rows, an incremental backup on the full one.
        try await fixture.withClient { try await Self.write(phase: "B", index: 2, client: $0) }
        let incremental = try await crypt.backup(.incremental)
        #expect(incremental.record.kind == .incremental && incremental.record.parent == full.record.label, "\(incremental.notes)")
        #expect(incremental.record.size < full.record.size)

        // C: more rows (and a job whose lease runs for an hour), then T; D: more rows and a migration.
        let (atT, time) = try await fixture.withClient { client in
            try await Self.write(phase: "C", index: 3, client: client, longLease: true)
            let state = try await Self.read(client)
            return (state, try await BackupFixture.serverNow(client))
        }
        #expect(atT.phases == ["A", "B", "C"])
        try await fixture.withClient { client in
            try await Self.write(phase: "D", index: 4, client: client)
            _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [Tasks()])).auto()
        }
        // Unencrypted, archived WAL holds the rows in plain text (what the encryption test rules out).
        try await fixture.withClient { try await fixture.archiveCurrentWAL($0) }
        #expect(try !directoryContains(fixture.backupDirectory + "/wal", marker: "D-workspace-").isEmpty)
        _ = try fixture.server.stop()

        // restore --at T
        let restored = try await Restore(crypt: crypt).run(to: .time(time, inclusive: true), progress: events.record)
        #expect(restored.chain == [full.record.label, incremental.record.label])
        #expect(restored.timeline == 2)
        #expect(restored.recoveredTo.map { $0 <= time } == true, "\(String(describing: restored.recoveredTo)) ≤ \(time)")
        #expect(restored.checks.contains { $0.hasPrefix("pg_amcheck:") } && restored.checks.contains { $0.contains("facts: immutability triggers") })
        let previous = try #require(restored.previousDataDirectory)
        #expect(FileManager.default.fileExists(atPath: previous + "/PG_VERSION"))
        #expect(events.steps.contains { $0.contains("Replaying WAL") } && events.steps.contains { $0.contains("pg_combinebackup") })
        #expect(Reanimation.pending(for: fixture.server) != nil)

        _ = try await fixture.server.start(installIfNeeded: false)
        let beforeKill = try await fixture.withClient { client in
            let state = try await Self.read(client)
            #expect(state == atT, "every chamber as it was at T, nothing after:\n\(state)\nvs\n\(atT)")
            #expect(try await client.query("SELECT to_regclass('public.tasks_items') IS NULL").collect().first!.decode(Bool.self), "the migration after T is undone")
            // Facts are still immutable.
            let refused = await #expect(throws: (any Error).self) { try await client.execute("UPDATE verbatim.facts SET source = 'x' WHERE namespace = 'drill'") }
            #expect(String(reflecting: refused as Any).contains("PF001"))

            // Reanimation: the running jobs whose lease expired go back to their queue; the one
            // leased for an hour stays until its lease runs out; the restore is recorded.
            let reanimated = try #require(try await Reanimation.runIfPending(for: fixture.server, client: client))
            #expect(reanimated.jobs.requeued == 3 && reanimated.jobs.stillLeased == 1, "\(reanimated.jobs)")
            #expect(reanimated.fact?.version == 1 && reanimated.spanRecorded)
            let requeued = try await client.query("SELECT count(*) FROM queue.jobs WHERE kind = 'drill.job' AND state = 'available' AND errors::text LIKE '%lease_expired%'")
                .collect().first!.decode(Int.self)
            #expect(requeued == 3)
            #expect(try await client.query("SELECT count(*) FROM traces.spans WHERE name = 'phylactery.restore'").collect().first!.decode(Int.self) == 1)
            #expect(try await client.traces.partitions().contains { $0.end > Date() })
            #expect(Reanimation.pending(for: fixture.server) == nil)
            // The new timeline is archived like any other: its history, then its segments.
            try await fixture.archiveCurrentWAL(client)
            #expect(FileManager.default.fileExists(atPath: fixture.backupDirectory + "/wal/00000002.history"))
            #expect(await WALArchiving.status(of: fixture.server).check.status == .ok)

            // E: more rows on the new timeline, then the server dies.
            try await Self.write(phase: "E", index: 5, client: client)
            return try await Self.read(client)
        }
        #expect(beforeKill.phases == ["A", "B", "C", "E"])
        guard case .running(let pid, _) = fixture.server.pidFileState() else { Issue.record("the server is not running"); return }
        #expect(kill(pid, SIGKILL) == 0)
        try await eventually("the killed server to be gone") { !isRunning(fixture.server) }

        // restore --latest: every committed row is back, the WAL the archive lacked from the killed
        // server's own pg_wal.
        let latest = try await Restore(crypt: crypt).run(to: .latest)
        #expect(latest.notes.contains { $0.contains("current data directory") }, "\(latest.notes)")
        _ = try await fixture.server.start(installIfNeeded: false)
        try await fixture.withClient { client in
            let state = try await Self.read(client)
            #expect(state == beforeKill, "every committed row is back:\n\(state)\nvs\n\(beforeKill)")
            let reanimated = try #require(try await Reanimation.runIfPending(for: fixture.server, client: client))
            #expect(reanimated.fact?.version == 2)
            let history = try await client.transaction { try await $0.facts.history(Reanimation.factNamespace, key: Reanimation.factKey) }
            #expect(history.count == 2)
        }
        #expect(Restore.previousDataDirectories(of: fixture.server).count == 2)
        #expect(try Restore.discardPrevious(of: fixture.server).count == 2)
    }

    func isRunning(_ server: EmbeddedServer) -> Bool {
        if case .running = server.pidFileState() { return true }
        return false
    }
}

/// Collects progress events (the library calls it from one task at a time).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [BackupProgressEvent] = []

    var record: BackupProgress { { event in self.lock.withLock { self.events.append(event) } } }

    var steps: [String] {
        lock.withLock { events.compactMap { if case .step(let text) = $0 { text } else { nil } } }
    }
}
