import Foundation
public import Phylactery
public import PhylacteryEmbedded
import PostgresNIO
import Tracing

/// What a runtime does with a restored cluster before any work resumes ("reanimation").
///
/// - **Jobs**: the jobs that were `running` at the restore point have no worker any more. They go
///   back to their queue by the queue's own lease rule: a running job whose lease expired is returned
///   (its attempt counted, `lease_expired` recorded, discarded if it was the last one). Reanimation
///   applies that rule at once (``QueueOperator/rescueExpiredLeases()``); a job whose lease had not
///   run out yet by the restore's clock is returned by the workers' rescuer when it does — at most one
///   lease (30 s by default) after the restore point.
/// - **Traces**: the day partitions of `traces.spans` from today on are created (the restore point
///   may be days old).
/// - **Record**: a `phylactery.restore` span covering the restore (target, backups, WAL replayed to,
///   timeline) and a fact, `phylactery` / `restore`, superseded at every restore so its history lists
///   them all (each where its chamber is migrated; a runtime migrates before it reanimates).
///
/// ``Restore`` leaves its outcome in `home/backup/reanimate.json`; ``runIfPending(for:client:tracer:)``
/// reanimates once and removes it, so a runtime calls it at every start.
public enum Reanimation {
    /// The namespace and key of the fact recording restores.
    public static let factNamespace = "phylactery"
    /// See ``factNamespace``.
    public static let factKey = "restore"

    /// What reanimation did.
    public struct Outcome: Sendable {
        /// The restore reanimated.
        public var restore: Restore.Outcome
        /// The running jobs the lease rule returned, discarded, or left to their lease.
        public var jobs: QueueOperator.RescueResult
        /// Day partitions of `traces.spans` created (0 when the traces chamber is not migrated).
        public var partitionsCreated: Int
        /// The fact recording the restore (`nil` when the verbatim chamber is not migrated).
        public var fact: Fact?
        /// Whether the `phylactery.restore` span was written (not when the traces chamber is not migrated).
        public var spanRecorded: Bool
    }

    /// What the fact's value holds.
    struct Record: Codable {
        var target: String
        var chain: [String]
        var recoveredTo: String?
        var timeline: UInt32
        var previousDataDirectory: String?
        var migrationHead: String?
        var restoreStartedAt: String
        var restoreFinishedAt: String
        var jobsRequeued: Int
        var jobsDiscarded: Int
        var jobsStillLeased: Int
    }

    /// The restore in `server`'s home that has not been reanimated yet, if any.
    public static func pending(for server: EmbeddedServer) -> Restore.Outcome? {
        guard let data = FileManager.default.contents(atPath: BackupHome(server.configuration).reanimationFile) else { return nil }
        return try? JSONDecoder().decode(Restore.Outcome.self, from: data)
    }

    /// Reanimates after the restore recorded in `server`'s home, if there is one, and clears the record.
    ///
    /// - Parameter tracer: where the `phylactery.restore` span goes; `nil` writes it through a tracer
    ///   of its own, flushed before returning.
    public static func runIfPending(for server: EmbeddedServer, client: PhylacteryClient, tracer: PhylacteryTracer? = nil) async throws -> Outcome? {
        guard let restore = pending(for: server) else { return nil }
        let outcome = try await run(after: restore, client: client, tracer: tracer)
        try? FileManager.default.removeItem(atPath: BackupHome(server.configuration).reanimationFile)
        return outcome
    }

    /// Reanimates `client`'s database after `restore`.
    public static func run(after restore: Restore.Outcome, client: PhylacteryClient, tracer: PhylacteryTracer? = nil, partitionsAhead: Int = 2) async throws -> Outcome {
        let hasQueue = try await exists("queue.jobs", client: client)
        let jobs = hasQueue ? try await client.jobs.rescueExpiredLeases() : QueueOperator.RescueResult(requeued: 0, discarded: 0, stillLeased: 0, latestLeaseExpiry: nil)
        var partitions = 0
        if try await exists("traces.spans", client: client) {
            let before = try await client.traces.partitions().count
            try await client.traces.createPartitions(from: Date(), days: partitionsAhead + 1)
            partitions = try await client.traces.partitions().count - before
        }
        let record = Record(
            target: restore.target, chain: restore.chain, recoveredTo: restore.recoveredTo?.description, timeline: restore.timeline,
            previousDataDirectory: restore.previousDataDirectory, migrationHead: restore.migrationHead,
            restoreStartedAt: restore.startedAt.description, restoreFinishedAt: restore.finishedAt.description,
            jobsRequeued: jobs.requeued, jobsDiscarded: jobs.discarded, jobsStillLeased: jobs.stillLeased)
        var fact: Fact?
        if try await exists("verbatim.facts", client: client) {
            fact = try await client.transaction { tx in
                if try await tx.facts.get(factNamespace, key: factKey) == nil {
                    return try await tx.facts.put(factNamespace, key: factKey, value: record, source: "phylactery.restore")
                }
                return try await tx.facts.supersede(factNamespace, key: factKey, value: record, source: "phylactery.restore")
            }
        }
        let spanRecorded = try await exists("traces.spans", client: client)
        if spanRecorded {
            let spans = tracer ?? PhylacteryTracer(client: client, configuration: .init(service: "phylactery"))
            let span = spans.startSpan("phylactery.restore", context: .topLevel, ofKind: .internal, at: instant(restore.startedAt))
            span.attributes["phylactery.restore.target"] = restore.target
            span.attributes["phylactery.restore.chain"] = restore.chain.joined(separator: ",")
            span.attributes["phylactery.restore.recovered_to"] = restore.recoveredTo?.description ?? "none"
            span.attributes["phylactery.restore.timeline"] = Int(restore.timeline)
            span.attributes["phylactery.restore.jobs_requeued"] = jobs.requeued
            if let fact { span.attributes["phylactery.restore.fact_version"] = fact.version }
            if let previous = restore.previousDataDirectory { span.attributes["phylactery.restore.previous"] = previous }
            span.end(at: instant(restore.finishedAt))
            if tracer == nil { _ = try await spans.flush() }
        }
        return Outcome(restore: restore, jobs: jobs, partitionsCreated: partitions, fact: fact, spanRecorded: spanRecorded)
    }

    static func instant(_ time: RecoveryTime) -> DefaultTracerClock.Instant {
        DefaultTracerClock.Instant(nanosecondsSinceEpoch: UInt64(max(0, time.microseconds)) * 1000)
    }

    static func exists(_ table: String, client: PhylacteryClient) async throws -> Bool {
        try await client.query("SELECT to_regclass(\(table)) IS NOT NULL").collect().first?.decode(Bool.self) ?? false
    }
}
