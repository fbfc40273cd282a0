import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
@testable import PhylacteryRuntime
import PhylacteryTestSupport
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing

// MARK: - The test extension

/// An effect row a handler writes in its job's transaction: one per token, so a second run of the
/// same job cannot go unnoticed.
@Model(table: "rtx_effects", unique: [UniqueConstraint(columns: ["token"])])
struct RtxEffect {
    var token: String
}

/// Writes its effect in the job's transaction.
struct RtxEffectJob: Job {
    static let kind = "rtx.effect"
    var token: String
}

/// Says it started, waits until the test opens its gate, then writes its effect.
struct RtxGatedJob: Job {
    static let kind = "rtx.gated"
    var token: String
}

/// Tokens whose jobs started, and gates the tests open.
final class Gates: Sendable {
    static let shared = Gates()
    private let state = Mutex<(started: [String: Int], open: Set<String>)>(([:], []))

    func markStarted(_ token: String) { self.state.withLock { $0.started[token, default: 0] += 1 } }
    func starts(_ token: String) -> Int { self.state.withLock { $0.started[token] ?? 0 } }
    func open(_ token: String) { _ = self.state.withLock { $0.open.insert(token) } }

    /// Returns once `token`'s gate is open, checking every 50 ms (a handler's wait, not the test's).
    func waitOpen(_ token: String) async throws {
        while !self.state.withLock({ $0.open.contains(token) }) {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// The extension the runtime tests host.
struct Rtx: PhylacteryExtension {
    let slug = "rtx"
    let version = "1.0.0"

    func initialize(_ context: ExtensionContext) throws {
        context.register(RtxEffect.self)
        context.handle(RtxEffectJob.self) { job, context in
            try await context.transaction { tx in _ = try await tx.insert(RtxEffect(token: job.token)) }
        }
        context.handle(RtxGatedJob.self) { job, context in
            Gates.shared.markStarted(job.token)
            try await Gates.shared.waitOpen(job.token)
            try await context.transaction { tx in _ = try await tx.insert(RtxEffect(token: job.token)) }
        }
    }
}

/// A job of the `dormantx` extension.
struct DormantTouch: Job {
    static let kind = "dormantx.touch"
    var token: String
}

/// An extension in two versions: the second adds a column to its table.
struct Dormantx: PhylacteryExtension {
    let slug = "dormantx"
    let secondVersion: Bool
    var version: String { self.secondVersion ? "2.0.0" : "1.0.0" }

    static func schema(secondVersion: Bool) -> ModelSchema {
        var columns = [ModelSchema.column("title", String.self)]
        if secondVersion { columns.append(ModelSchema.column("body", String?.self)) }
        return ModelSchema(modelName: "DormantNote", table: "dormantx_notes", chamber: .public, columns: columns)
    }

    func initialize(_ context: ExtensionContext) throws {
        context.append(ModelRegistration(schema: Self.schema(secondVersion: self.secondVersion)))
        context.handle(DormantTouch.self) { job, _ in Gates.shared.markStarted(job.token) }
    }
}

/// An extension with a foreign key into `dormantx`'s table.
struct Danglex: PhylacteryExtension {
    let slug = "danglex"
    let version = "1.0.0"
    func initialize(_ context: ExtensionContext) throws {
        context.append(ModelRegistration(schema: ModelSchema(
            modelName: "DangleNote", table: "danglex_notes", chamber: .public,
            columns: [ModelSchema.column("note", UUID.self, references: ForeignKey(table: "dormantx_notes"))])))
    }
}

// MARK: - Logs

// `CapturedLogs` (every line a logger wrote, what the secret tests search) is in PhylacteryTestSupport.

// MARK: - Running

enum RuntimeFixture {
    /// Settings that make the tests quick: fast polling, a short grace period, quick restarts.
    static func quick(_ configuration: inout PhylacteryConfiguration) {
        configuration.queue.pollInterval = .milliseconds(200)
        configuration.queue.shutdownGracePeriod = .seconds(5)
        configuration.server.restartDelay = .milliseconds(200)
        configuration.server.restartMaximumDelay = .seconds(2)
        configuration.database.maximumConnections = 6
    }

    /// The pinned wheel the test command downloaded into its home, if there is one: a fresh home
    /// installs from it, offline.
    static func pinnedWheel() -> String? {
        guard let home = ProcessInfo.processInfo.environment["PHYLACTERY_HOME"] else { return nil }
        let downloads = home + "/downloads"
        let prefix = Distribution.wheelProject.replacingOccurrences(of: "-", with: "_") + "-" + Distribution.wheelVersion + "-"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: downloads)) ?? []
        return files.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".whl") && $0.contains(Distribution.machineArchitecture) }.sorted().first.map { downloads + "/" + $0 }
    }

    /// What a run of the runtime in a service group took.
    struct Run: Sendable {
        /// From the graceful shutdown to the end of `run()`.
        var shutdown: Duration
    }

    /// Runs `runtime` in a `ServiceGroup` while `body` runs (after it is ready, unless `untilReady` is
    /// false), then shuts the group down gracefully and waits for it — at most `stopDeadline`, so a
    /// shutdown that hangs fails. On a failure of `body` the group is shut down the same way.
    @discardableResult
    static func running(
        _ runtime: PhylacteryRuntime, untilReady: Bool = true, readyWithin: Duration = .seconds(180), stopDeadline: Duration = .seconds(60),
        _ body: () async throws -> Void
    ) async throws -> Run {
        let group = ServiceGroup(configuration: .init(services: [runtime], logger: Logger(label: "test.group")))
        let task = Task { try await group.run() }
        do {
            if untilReady {
                try await withDeadline(readyWithin, "the runtime was not ready") { try await runtime.health.waitUntilReady() }
            }
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await withDeadline(stopDeadline, "the runtime did not stop") { try await task.value }
            throw error
        }
        let clock = ContinuousClock()
        let start = clock.now
        await group.triggerGracefulShutdown()
        try await withDeadline(stopDeadline, "the runtime did not stop after its graceful shutdown") { try await task.value }
        return Run(shutdown: clock.now - start)
    }

    struct DeadlinePassed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body`, failing with `message` if it takes longer than `limit`. A body that is stuck is
    /// left behind (and cancelled), not waited for: the test fails instead of hanging.
    static func withDeadline<T: Sendable>(_ limit: Duration, _ message: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let first = FirstResult<T>()
        let work = Task {
            do {
                first.deliver(.success(try await body()))
            } catch {
                first.deliver(.failure(error))
            }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            first.deliver(.failure(DeadlinePassed(description: "\(message) within \(limit)")))
        }
        let result = await first.value()
        work.cancel()
        timer.cancel()
        return try result.get()
    }

    /// The first of several results delivered; later ones are ignored.
    final class FirstResult<T: Sendable>: Sendable {
        private let state = Mutex<(result: Result<T, any Error>?, waiter: CheckedContinuation<Result<T, any Error>, Never>?)>((nil, nil))

        func deliver(_ result: Result<T, any Error>) {
            let waiter = self.state.withLock { state -> CheckedContinuation<Result<T, any Error>, Never>? in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: result)
        }

        func value() async -> Result<T, any Error> {
            await withCheckedContinuation { continuation in
                let ready = self.state.withLock { state -> Result<T, any Error>? in
                    if state.result == nil { state.waiter = continuation }
                    return state.result
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    /// Waits until `condition` holds, checking every 100 ms, failing after `limit` — also when one
    /// check hangs. Errors count as "not yet" (the server may be restarting); the last one is reported.
    static func eventually(_ what: String, within limit: Duration = .seconds(60), _ condition: @escaping @Sendable () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var lastError: (any Error)?
        while clock.now < deadline {
            do {
                if try await withDeadline(deadline - clock.now, "one check of '\(what)' returned", condition) { return }
                lastError = nil
            } catch let error as DeadlinePassed {
                throw DeadlinePassed(description: "\(what) did not happen within \(limit): \(error.description)")
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DeadlinePassed(description: "\(what) did not happen within \(limit)\(lastError.map { "; last error: \($0)" } ?? "")")
    }

    /// The state and attempt of job `id`, read on a connection of its own (not a pool that may
    /// still hold connections of a server that was killed).
    static func job(_ url: DatabaseURL, _ id: UUID) async throws -> (state: String, attempt: Int, claims: Int, errors: Int) {
        try await self.admin(url) { connection in
            let row = try await connection.query(
                "SELECT state, attempt::int8, claims, jsonb_array_length(errors)::int8 FROM queue.jobs WHERE id = \(id)", logger: logger).collect().first
            guard let row else { return ("missing", 0, 0, 0) }
            let (state, attempt, claims, errors) = try row.decode((String, Int, Int, Int).self)
            return (state, attempt, claims, errors)
        }
    }

    // MARK: Databases of the test server

    /// A new database on the test command's server, dropped by `body`'s end; `body` gets its URL.
    static func withFreshDatabase(_ label: String, _ body: (DatabaseURL) async throws -> Void) async throws {
        try await TestDatabase.withFreshDatabaseURL("rt_" + label, body)
    }

    /// A fresh database whose ownership `body` may give to another role: it is given back to the test
    /// role (the administrator does it) before the database is dropped, since only its owner may drop it.
    static func withFreshDatabaseOwnedByAnother(_ label: String, _ body: (DatabaseURL) async throws -> Void) async throws {
        try await withFreshDatabase(label) { database in
            func giveBack() async throws {
                let owner = try TestDatabase.serverURL().username
                try await admin(try TestDatabase.adminURL().with(database: database.database)) { connection in
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(SQLIdentifier.quote(database.database)) OWNER TO \(SQLIdentifier.quote(owner))"), logger: logger).collect()
                }
            }
            do {
                try await body(database)
            } catch {
                try? await giveBack()
                throw error
            }
            try await giveBack()
        }
    }

    static let logger = Logger(label: "test.runtime.admin")

    /// One connection to `url`'s server (database `url.database`) as `url`'s user, outside any pool.
    static func admin<R: Sendable>(_ url: DatabaseURL, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        var options = PhylacteryClient.Configuration.Options()
        options.createsChambers = false
        return try await PhylacteryClient(configuration: .init(url: url, options: options), logger: logger).withDirectConnection(body)
    }

    /// `SELECT count(*)` of `sql` on `url`.
    static func count(_ url: DatabaseURL, _ query: PostgresQuery) async throws -> Int {
        try await self.admin(url) { connection in
            try await connection.query(query, logger: logger).collect().first?.decode(Int.self) ?? 0
        }
    }

    /// A configuration for the test server's database `url`, as an external server.
    static func external(_ url: DatabaseURL) -> PhylacteryConfiguration {
        var configuration = PhylacteryConfiguration()
        configuration.server.mode = .external
        configuration.database.url = url
        configuration.database.waitTimeout = .seconds(30)
        self.quick(&configuration)
        return configuration
    }
}
