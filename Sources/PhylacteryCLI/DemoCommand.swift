import ArgumentParser
import Foundation
import Phylactery
import NotebookExtension
import PhylacteryCommands
import PhylacteryEmbedded
import PostgresNIO
import TasksExtension
import Tracing

/// `phylactery demo`: the tour a newcomer runs first.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Bring up the local server, migrate the federation, and show commits and rollbacks across chambers.")

    @OptionGroup var server: ServerOptions

    /// Thrown on purpose inside the second transaction.
    struct ChangedMyMind: Error {}

    func run() async throws {
        try await PhylacteryCommands.reportingErrors {
            let url: DatabaseURL
            if let external = try PhylacteryClient.Configuration.fromEnvironment() {
                url = external.url
                print("1. Using the server named by PHYLACTERY_DATABASE_URL: \(url)")
            } else {
                let outcome = try await EmbeddedServer(configuration: server.configuration).start()
                for note in outcome.notes { print("   · \(note)") }
                print("1. Local PostgreSQL \(outcome.installation.version) \(outcome.wasAlreadyRunning ? "was already running" : "started") (pid \(outcome.pid)) on \(server.configuration.socketPath)")
                url = outcome.url
            }
            try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                try await self.tour(client)
            }
        }
    }

    func tour(_ client: PhylacteryClient) async throws {
        try await client.prepare()
        let report = await client.healthReport()
        let version = report.checks.first { $0.name == "server version" }?.detail ?? "?"
        let vector = report.checks.first { $0.name == "pgvector" }?.detail ?? "?"
        print("2. Chambers ready: \(Chamber.allCases.map(\.schema).joined(separator: ", ")) — \(version), \(vector)")

        // Two tables made by hand for steps 3 and 4, one in `public` (state) and one in `traces` (what
        // happened); dropped again after step 4, so no later plan finds tables no model declares.
        try await Self.dropHandMadeTables(client)
        try await client.execute("CREATE TABLE IF NOT EXISTS public.demo_visits (id bigserial PRIMARY KEY, visitor text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        try await client.execute("CREATE TABLE IF NOT EXISTS traces.demo_events (id bigserial PRIMARY KEY, visit_id bigint NOT NULL, event text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        let before = try await self.counts(client)

        let visitor = "newcomer-\(Int.random(in: 1000...9999))"
        let visitID = try await client.transaction { tx in
            let id = try await tx.query("INSERT INTO public.demo_visits (visitor) VALUES (\(visitor)) RETURNING id")
                .collect().first!.decode(Int.self)
            try await tx.execute("INSERT INTO traces.demo_events (visit_id, event) VALUES (\(id), 'arrived')")
            return id
        }
        let afterCommit = try await self.counts(client)
        print("3. Committed one transaction across public and traces: visit #\(visitID) for \(visitor) — rows \(before) → \(afterCommit)")

        do {
            try await client.transaction { tx in
                let id = try await tx.query("INSERT INTO public.demo_visits (visitor) VALUES ('ghost') RETURNING id")
                    .collect().first!.decode(Int.self)
                try await tx.execute("INSERT INTO traces.demo_events (visit_id, event) VALUES (\(id), 'haunted')")
                throw ChangedMyMind()
            }
        } catch is ChangedMyMind {
            let afterRollback = try await self.counts(client)
            guard afterRollback == afterCommit else {
                throw PhylacteryError(.transactionFailed, "The rolled-back transaction left rows behind: \(afterCommit) → \(afterRollback)")
            }
            print("4. Rolled back a transaction that wrote to both chambers and then threw — rows still \(afterRollback)")
        }
        try await client.execute("DROP TABLE public.demo_visits, traces.demo_events")
        print("   (the two tables made by hand for steps 3 and 4 are dropped again; everything from step 6 on is declared as models)")
        try await self.snapshot(client)
        try await self.federation(client)
        try await self.chambers(client)
        try await self.queue(client)
        print("Done. Look around with: phylactery db psql   Stop the server with: phylactery db stop")
    }

    /// A daemon's state snapshot: a few megabytes of nested JSON, saved as jsonb and read back.
    struct StateSnapshot: Codable, Equatable {
        struct Entry: Codable, Equatable {
            var sequence: Int
            var actor: String
            var message: String
            var at: Date
            var scores: [Double]
        }
        var takenAt: Date
        var log: [Entry]
    }

    func snapshot(_ client: PhylacteryClient) async throws {
        let log = (0..<20_000).map { i in
            StateSnapshot.Entry(sequence: i, actor: "ghoul-\(i % 8)", message: "step \(i): recalled \"fact #\(i * 7)\" ✓",
                                at: Date(timeIntervalSince1970: 1_764_000_000 + Double(i)), scores: [Double(i) / 3, 0.5, -1e-3])
        }
        let snapshot = StateSnapshot(takenAt: Date(timeIntervalSince1970: 1_764_000_000), log: log)
        try await client.execute("CREATE TABLE IF NOT EXISTS public.demo_snapshots (id bigserial PRIMARY KEY, doc jsonb NOT NULL)")
        let clock = ContinuousClock()
        let saveStart = clock.now
        let id = try await client.transaction { tx in
            try await tx.query("INSERT INTO public.demo_snapshots (doc) VALUES (\(jsonb: snapshot)) RETURNING id").collect().first!.decode(Int.self)
        }
        let saved = clock.now - saveStart
        let readStart = clock.now
        let row = try await client.query("SELECT doc, pg_column_size(doc), octet_length(doc::text) FROM public.demo_snapshots WHERE id = \(id)").collect().first!
        let (back, stored, text) = try row.decode((JSONB<StateSnapshot>, Int, Int).self)
        let read = clock.now - readStart
        try await client.execute("DROP TABLE public.demo_snapshots")
        guard back.value == snapshot else {
            throw PhylacteryError(.queryFailed, "The snapshot read back differs from the one saved.")
        }
        func ms(_ d: Duration) -> String { String(format: "%.0f ms", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
        print("5. Saved a state snapshot of \(snapshot.log.count) entries (\(String(format: "%.1f", Double(text) / 1e6)) MB of JSON, \(String(format: "%.1f", Double(stored) / 1e6)) MB on disk as compressed jsonb) in \(ms(saved)); read it back into Swift types, identical, in \(ms(read))")
    }

    /// The federation: the core's models and the hosted extensions', planned and migrated by the
    /// core, then used through typed access in one transaction.
    func federation(_ client: PhylacteryClient) async throws {
        let federation = try Extensions.federation()
        let owners = federation.owners.map { owner in "\(owner.slug) (\(owner.models.map(\.schema.modelName).joined(separator: ", ")))" }
        print("6. Federation: \(owners.joined(separator: ", "))")
        let migrator = Migrator(client: client, federation: federation)
        let plan = try await migrator.plan()
        if plan.isEmpty {
            print("   The database already matches the models (\(plan.catalogQueries) catalog queries).")
        } else {
            print("   Plan (\(plan.catalogQueries) catalog queries): \(plan.steps.count) steps\(plan.isAdditive ? ", all additive" : "")")
            for step in plan.steps { print("     · \(step.summary) [\(step.owner)]\(step.hazards.isEmpty ? "" : "  !! " + step.hazards.map(\.rawValue).sorted().joined(separator: ", "))") }
            if let applied = try await migrator.auto(message: "demo") {
                print("   Applied migration \(applied.revision) (\(applied.up.count) statements); planning again: \(try await migrator.plan().isEmpty ? "nothing to do" : "differences remain")")
            }
        }
        for notice in plan.notices { print("   notice: \(notice)") }

        let name = "demo-\(Int.random(in: 1000...9999))"
        let (workspace, tasks, page) = try await client.transaction { tx in
            let workspace = try await tx.insert(Workspace(name: name))
            try await tx.insert(contentsOf: (1...3).map { i in
                TaskItem(workspaceID: workspace.id, title: "task \(i)", status: i == 1 ? .done : .open, priority: Int32(i), dueAt: nil)
            })
            let page = try await tx.insert(NotebookPage(
                title: "Why one database",
                document: PageDocument(blocks: [.heading(level: 1, text: "One commit"), .paragraph("State, jobs, facts and traces commit together."), .list(["no broker", "no second store"])]),
                tags: ["design"], archived: false))
            let open = try await tx.fetch(TaskItem.self, where: "workspace_id = \(workspace.id) AND status = 'open'", orderBy: "priority DESC")
            return (workspace, open, page)
        }
        print("7. One transaction through typed models: workspace \(workspace.name) (id \(workspace.id)), \(tasks.count) open tasks (\(tasks.map(\.title).joined(separator: ", "))), page \"\(page.title)\" with \(page.document.wordCount) words as jsonb")
    }

    /// Fails its first attempt, then succeeds.
    struct FlakyJob: Job {
        static let kind = "demo.flaky"
        static let queue = "demo"
    }

    /// Always fails: discarded after its two attempts, both errors kept.
    struct DoomedJob: Job {
        static let kind = "demo.doomed"
        static let queue = "demo"
        static let maxAttempts = 2
    }

    struct DemoFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The queue: jobs enqueued in the same transaction as a state change, then run by ghouls in
    /// this process — one retried after a failure, one discarded after its attempts.
    func queue(_ client: PhylacteryClient) async throws {
        let (task, jobs) = try await client.transaction { tx in
            let workspace = try await tx.insert(Workspace(name: "demo-queue-\(Int.random(in: 1000...9999))"))
            let task = try await tx.insert(TaskItem(workspaceID: workspace.id, title: "close me in the background", status: .open, priority: 1, dueAt: nil))
            let close = try await tx.enqueue(CloseTask(taskID: task.id))
            let flaky = try await tx.enqueue(FlakyJob())
            let doomed = try await tx.enqueue(DoomedJob())
            return (task, [close, flaky, doomed])
        }
        print("9. Queue: one transaction created task \"\(task.title)\" and enqueued \(jobs.map(\.kind).joined(separator: ", ")); ghouls run them:")
        var handlers = try Extensions.federation().jobHandlers
        handlers.register(FlakyJob.self) { _, context in
            if context.attempt == 1 { throw DemoFailure(description: "the network blinked (attempt \(context.attempt))") }
        }
        handlers.register(DoomedJob.self) { _, context in
            throw DemoFailure(description: "the file is not there (attempt \(context.attempt))")
        }
        // Every job leaves a trace through the process's tracer (swift-distributed-tracing).
        let tracer = PhylacteryTracer(client: client, configuration: .init(service: "phylactery-demo"))
        InstrumentationSystem.bootstrap(tracer)
        let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
            queues: [JobOptions.defaultQueue: QueueConfiguration(concurrency: 4), "demo": QueueConfiguration(concurrency: 4)],
            pollInterval: .milliseconds(200), backoff: RetryBackoff(initial: .milliseconds(200), maximum: .seconds(1)), retention: nil,
            workerName: "demo"))
        let running = Task { try await ghouls.run() }
        let deadline = ContinuousClock.now + .seconds(30)
        var records = [JobRecord]()
        while ContinuousClock.now < deadline {
            records = []
            for job in jobs { records.append(try await client.jobs.job(job.id)) }
            if records.allSatisfy(\.state.isFinal) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        ghouls.beginShutdown()
        try await running.value
        for record in records {
            let errors = record.errors.map { "attempt \($0.attempt): \($0.message)" }.joined(separator: "; ")
            print("   · \(record.kind): \(record.state.rawValue) after \(record.attempt) attempt\(record.attempt == 1 ? "" : "s")\(errors.isEmpty ? "" : " — errors kept: " + errors)")
        }
        guard let closed = try await client.find(TaskItem.self, id: task.id), closed.status == .done else {
            throw PhylacteryError(.queryFailed, "The task was not closed by its job.")
        }
        print("   The task is \(closed.status.rawValue): its job's effect and completion committed together. See them with: phylactery queue list")
        try await self.tracedJob(client, tracer: tracer, job: jobs[1])
    }

    /// The trace one job left: the ghouls ran under this process's tracer, which writes spans
    /// into `traces.spans`; the job's root span carries its id.
    func tracedJob(_ client: PhylacteryClient, tracer: PhylacteryTracer, job: EnqueuedJob) async throws {
        let written = try await tracer.flush()
        let rows = try await client.query("""
            SELECT trace_id FROM traces.spans WHERE parent_span_id IS NULL AND attributes ->> 'phylactery.job.id' = \(job.id.uuidString)
            ORDER BY start_us DESC LIMIT 1
            """).collect()
        guard let traceUUID = try rows.first?.decode(UUID.self) else {
            throw PhylacteryError(.notFound, "the trace of job \(job.id) was not stored")
        }
        let traceID = TraceID(uuid: traceUUID)
        let trace = try await client.traces.trace(traceID)
        print("10. Traces: the ghouls ran under the tracer; \(written) spans flushed into traces.spans (partitioned by day). The last attempt of \(job.kind), read back as a tree:")
        for line in TraceTimeline.render(trace).split(separator: "\n") { print("   \(line)") }
        print("   All traces: phylactery traces list; this one again: phylactery traces show \(traceID)")
    }

    /// Drops the tables the tour makes by hand, left by an interrupted earlier run (or an older tour,
    /// which kept them).
    static func dropHandMadeTables(_ client: PhylacteryClient) async throws {
        try await client.execute("DROP TABLE IF EXISTS public.demo_visits, traces.demo_events, public.demo_snapshots")
    }

    /// (visits, events) row counts.
    func counts(_ client: PhylacteryClient) async throws -> String {
        let row = try await client.query("SELECT (SELECT count(*) FROM public.demo_visits), (SELECT count(*) FROM traces.demo_events)")
            .collect().first!.decode((Int, Int).self)
        return "public.demo_visits=\(row.0), traces.demo_events=\(row.1)"
    }
}
