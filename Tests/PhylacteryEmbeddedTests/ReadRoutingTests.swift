import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Read transactions on a real primary and streaming standby (``ReplicatedPair``): they land on the
/// standby while its replay lag is within the bound, and on the primary when it falls behind or stops.
@Suite(.serialized) struct ReadRoutingTests {
    /// Where a transaction ran, read inside it.
    struct Landing: Equatable, Sendable {
        var inRecovery: Bool
        var port: Int
    }

    static func landing(_ tx: Transaction) async throws -> Landing {
        let row = try await tx.query("SELECT pg_is_in_recovery(), inet_server_port()").collect().first!
        let (inRecovery, port) = try row.decode((Bool, Int32).self)
        return Landing(inRecovery: inRecovery, port: Int(port))
    }

    static func port(_ url: DatabaseURL) -> Int {
        if case .tcp(_, let port) = url.endpoint { return port }
        return -1
    }

    /// The client's log, at debug level with PHYLACTERY_VERBOSE set (each host's role and lag as they change).
    static let logger: Logger = {
        var logger = Logger(label: "phylactery.tests.routing")
        logger.logLevel = ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] == nil ? .notice : .debug
        return logger
    }()

    static func options(maximumReplicaLag: Duration) -> PhylacteryClient.Configuration.Options {
        var options = TestDatabase.defaultOptions
        options.maximumReplicaLag = maximumReplicaLag
        options.topologyCheckInterval = .milliseconds(200)
        options.failoverTimeout = .seconds(30)
        return options
    }

    /// Runs `body` on a started pair, and stops the pair whatever happens.
    static func withPair(_ label: String, mode: ReplicatedPair.Mode, _ body: (ReplicatedPair) async throws -> Void) async throws {
        let pair = try await ReplicatedPair.start(label, mode: mode)
        do {
            try await body(pair)
        } catch {
            await pair.stop()
            throw error
        }
        await pair.stop()
    }

    @Test("a read transaction lands on the standby, sees what the primary committed, and is read-only there")
    func readsLandOnTheStandby() async throws {
        try await Self.withPair("rr-land", mode: .asynchronous) { pair in
            try await PhylacteryClient.withClient(configuration: .init(url: pair.clusterURL, options: Self.options(maximumReplicaLag: .seconds(5))), logger: Self.logger) { client in
                try await client.execute("CREATE TABLE public.notes (n int)")
                try await client.execute("INSERT INTO public.notes VALUES (1)")
                // Writes always run on the primary.
                let written = try await client.transaction { tx in try await Self.landing(tx) }
                #expect(written == Landing(inRecovery: false, port: Self.port(pair.primaryURL)))
                // Reads move to the standby as soon as its first probe is in, and see the row once replayed.
                try await eventually("a read transaction on the standby sees the row", timeout: .seconds(30), retryingErrors: true) {
                    try await client.readTransaction { tx in
                        let landing = try await Self.landing(tx)
                        let count = try await tx.query("SELECT count(*) FROM public.notes").collect().first!.decode(Int64.self)
                        return landing.inRecovery && count == 1
                    }
                }
                let landing = try await client.readTransaction { tx in try await Self.landing(tx) }
                #expect(landing == Landing(inRecovery: true, port: Self.port(pair.standbyURL)))
                // It is READ ONLY, as a read transaction on the primary would be too.
                let refused = await #expect(throws: PhylacteryError.self) {
                    try await client.readTransaction { tx in try await tx.execute("INSERT INTO public.notes VALUES (2)") }
                }
                #expect(refused?.sqlState == "25006")
                // Everything else still goes to the primary.
                let plain = try await client.query("SELECT pg_is_in_recovery()").collect().first!.decode(Bool.self)
                #expect(plain == false)
            }
        }
    }

    @Test("reads fall back to the primary while the standby's replay is paused past the lag bound, and return after")
    func pausedReplayFallsBackToThePrimary() async throws {
        try await Self.withPair("rr-pause", mode: .asynchronous) { pair in
            try await PhylacteryClient.withClient(configuration: .init(url: pair.clusterURL, options: Self.options(maximumReplicaLag: .seconds(1))), logger: Self.logger) { client in
                try await client.execute("CREATE TABLE public.notes (n int)")
                try await client.execute("INSERT INTO public.notes VALUES (1)")
                try await eventually("reads land on the standby and see the row", timeout: .seconds(30), retryingErrors: true) {
                    try await client.readTransaction { tx in
                        let landing = try await Self.landing(tx)
                        let count = try await tx.query("SELECT count(*) FROM public.notes").collect().first!.decode(Int64.self)
                        return landing.inRecovery && count == 1
                    }
                }
                try await pair.pauseReplay()
                // A write the paused standby receives but does not replay: its lag grows past 1 s.
                try await client.execute("INSERT INTO public.notes VALUES (2)")
                try await eventually("reads land on the primary and see the new row", timeout: .seconds(30)) {
                    try await client.readTransaction { tx in
                        let landing = try await Self.landing(tx)
                        let count = try await tx.query("SELECT count(*) FROM public.notes").collect().first!.decode(Int64.self)
                        return !landing.inRecovery && count == 2
                    }
                }
                // Not a lucky moment: while paused, every read goes to the primary.
                for _ in 0..<20 {
                    let landing = try await client.readTransaction { tx in try await Self.landing(tx) }
                    #expect(landing == Landing(inRecovery: false, port: Self.port(pair.primaryURL)))
                }
                try await pair.resumeReplay()
                try await eventually("reads return to the standby once it caught up", timeout: .seconds(30)) {
                    try await client.readTransaction { tx in
                        let landing = try await Self.landing(tx)
                        let count = try await tx.query("SELECT count(*) FROM public.notes").collect().first!.decode(Int64.self)
                        return landing.inRecovery && count == 2
                    }
                }
            }
        }
    }

    @Test("reads fall back to the primary at once when the standby stops, without an error, and return when it starts")
    func stoppedStandbyFallsBackToThePrimary() async throws {
        try await Self.withPair("rr-stop", mode: .asynchronous) { pair in
            try await PhylacteryClient.withClient(configuration: .init(url: pair.clusterURL, options: Self.options(maximumReplicaLag: .seconds(5))), logger: Self.logger) { client in
                try await client.execute("CREATE TABLE public.notes (n int)")
                try await eventually("reads land on the standby", timeout: .seconds(30)) {
                    try await client.readTransaction { tx in try await Self.landing(tx).inRecovery }
                }
                try await pair.stopStandby()
                // The very next reads succeed, on the primary: a connection to the stopped standby
                // fails before anything is sent, and the request is routed again.
                let started = ContinuousClock.now
                for _ in 0..<10 {
                    let landing = try await client.readTransaction { tx in try await Self.landing(tx) }
                    #expect(landing == Landing(inRecovery: false, port: Self.port(pair.primaryURL)))
                }
                #expect(ContinuousClock.now - started < .seconds(15), "no read waited for the stopped standby's pool to give up")
                try await pair.startStandby()
                try await eventually("reads return to the restarted standby", timeout: .seconds(60)) {
                    try await client.readTransaction { tx in try await Self.landing(tx).inRecovery }
                }
            }
        }
    }

    @Test("the health report names each host's role and lag, fails while two hosts take writes, and warns when one is gone")
    func healthReportNamesEachHost() async throws {
        try await Self.withPair("rr-health", mode: .asynchronous) { pair in
            try await PhylacteryClient.withClient(configuration: .init(url: pair.clusterURL, options: Self.options(maximumReplicaLag: .seconds(5))), logger: Self.logger) { client in
                let (primary, standby) = (pair.primaryURL.endpointDescription, pair.standbyURL.endpointDescription)
                func hosts() async -> HealthReport.Check? { await client.healthReport().checks.first { $0.name == "hosts" } }
                try await eventually("the standby streams", timeout: .seconds(30)) { await hosts()?.status == .ok }
                let healthy = await hosts()
                #expect(healthy?.detail.contains("\(primary) primary (timeline 1)") == true, "\(String(describing: healthy))")
                #expect(healthy?.detail.contains("\(standby) standby, replay lag ") == true, "\(String(describing: healthy))")
                // Promoted while the former primary still runs: two hosts take writes, and diverge.
                try await pair.promoteStandby()
                let split = await client.healthReport()
                let splitHosts = split.checks.first { $0.name == "hosts" }
                #expect(splitHosts?.status == .failed && !split.isHealthy, "\(split)")
                #expect(splitHosts?.fix?.contains("rejoin") == true)
                try await pair.stopStandby()
                let gone = await hosts()
                #expect(gone?.status == .warning, "\(String(describing: gone))")
                #expect(gone?.detail.contains("\(standby) unreachable") == true, "\(String(describing: gone))")
            }
        }
    }
}
