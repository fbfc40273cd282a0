import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

/// Streaming replicas of the embedded server on two real clusters (``ReplicatedPair``): what the
/// primary commits reaches the standby, the standby refuses writes, a synchronous primary waits for
/// the standby to apply each commit, and a promoted standby takes its former primary back as its
/// standby after a `pg_rewind`.
@Suite(.serialized) struct ReplicationTests {
    final class Committed: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// Plain connections: no chambers are created (a client that would create them cannot start on a
    /// standby, which is read-only).
    static var options: PhylacteryClient.Configuration.Options {
        var options = TestDatabase.defaultOptions
        options.createsChambers = false
        return options
    }

    static func one<T: PostgresDecodable & Sendable>(_ url: DatabaseURL, _ query: PostgresQuery, as type: T.Type) async throws -> T? {
        try await PhylacteryClient.withClient(configuration: .init(url: url, options: Self.options)) { client in
            try await client.query(query).collect().first?.decode(T.self)
        }
    }

    static func execute(_ url: DatabaseURL, _ query: PostgresQuery) async throws {
        try await PhylacteryClient.withClient(configuration: .init(url: url, options: Self.options)) { client in
            try await client.execute(query)
        }
    }

    @Test("an asynchronous standby streams what the primary commits and refuses writes")
    func asynchronousStandbyStreams() async throws {
        let pair = try await ReplicatedPair.start("async", mode: .asynchronous)
        do {
            #expect(try await Self.one(pair.standbyURL, "SELECT pg_is_in_recovery()", as: Bool.self) == true)
            #expect(try await Self.one(pair.primaryURL, "SELECT pg_is_in_recovery()", as: Bool.self) == false)
            try await Self.execute(pair.primaryURL, "CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
            try await Self.execute(pair.primaryURL, "INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 500) g")
            // Until the table's creation is replayed, the count fails: that counts as "not yet".
            try await eventually("the standby has replayed the 500 rows", retryingErrors: true) {
                try await Self.one(pair.standbyURL, "SELECT count(*) FROM public.notes", as: Int64.self) == 500
            }
            let refused = await #expect(throws: PhylacteryError.self) {
                try await Self.execute(pair.standbyURL, "INSERT INTO public.notes VALUES (501, 'on the standby')")
            }
            #expect(refused?.sqlState == "25006", "a read-only transaction: \(String(describing: refused))")

            let status = try await pair.primary.replicationStatus()
            #expect(status.role == .primary)
            let standby = try #require(status.standbys.first { $0.applicationName == ReplicatedPair.standbyName })
            #expect(standby.state == "streaming" && standby.syncState == "async", "\(standby)")
            #expect(status.slots.map(\.name) == [ReplicatedPair.standbyName] && status.slots.first?.active == true, "\(status.slots)")
            let upstream = try #require(try await pair.standby.replicationStatus().upstream)
            #expect(upstream.receiverStatus == "streaming" && upstream.slotName == ReplicatedPair.standbyName, "\(upstream)")
        } catch {
            await pair.stop()
            throw error
        }
        await pair.stop()
    }

    @Test("a synchronous primary's commit returns only once the standby has applied it")
    func synchronousCommitWaitsForReplay() async throws {
        let pair = try await ReplicatedPair.start("sync", mode: .synchronous)
        do {
            let status = try await pair.primary.replicationStatus()
            #expect(status.synchronousCommit == "remote_apply" && status.synchronousStandbyNames == "FIRST 1 (\"\(ReplicatedPair.standbyName)\")", "\(status)")
            #expect(status.standbys.first?.syncState == "sync", "\(status.standbys)")
            try await Self.execute(pair.primaryURL, "CREATE TABLE public.ledger (id int PRIMARY KEY)")
            // remote_apply: each commit is visible on the standby the moment it returns — no waiting here.
            for id in 1...20 {
                try await Self.execute(pair.primaryURL, "INSERT INTO public.ledger VALUES (\(id))")
                #expect(try await Self.one(pair.standbyURL, "SELECT count(*) FROM public.ledger WHERE id = \(id)", as: Int64.self) == 1)
            }

            // Replay paused: a commit waits (in SyncRep) and returns only after replay resumes.
            try await pair.pauseReplay()
            let committed = Committed()
            let writer = Task {
                try await Self.execute(pair.primaryURL, "INSERT INTO public.ledger VALUES (21)")
                committed.flag.store(true, ordering: .sequentiallyConsistent)
            }
            try await eventually("the commit waits for the standby (wait event SyncRep)") {
                try await Self.one(pair.primaryURL, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", as: Int64.self) == 1
            }
            let returned = committed.flag.load(ordering: .sequentiallyConsistent)
            #expect(!returned, "the commit must not return while the standby has not applied it")
            #expect(try await Self.one(pair.standbyURL, "SELECT count(*) FROM public.ledger WHERE id = 21", as: Int64.self) == 0)
            try await pair.resumeReplay()
            try await writer.value
            #expect(try await Self.one(pair.standbyURL, "SELECT count(*) FROM public.ledger WHERE id = 21", as: Int64.self) == 1)
        } catch {
            await pair.stop()
            throw error
        }
        await pair.stop()
    }

    @Test("after the primary is killed and the standby promoted, the former primary rejoins as its standby")
    func promoteAndRejoin() async throws {
        let pair = try await ReplicatedPair.start("rejoin", mode: .asynchronous)
        do {
            try await Self.execute(pair.primaryURL, "CREATE TABLE public.events (id int PRIMARY KEY)")
            try await Self.execute(pair.primaryURL, "INSERT INTO public.events SELECT generate_series(1, 100)")
            try await eventually("the standby has the 100 rows", retryingErrors: true) {
                try await Self.one(pair.standbyURL, "SELECT count(*) FROM public.events", as: Int64.self) == 100
            }
            try pair.killPrimary()
            try await pair.promoteStandby()
            #expect(try await Self.one(pair.standbyURL, "SELECT pg_is_in_recovery()", as: Bool.self) == false)
            let promotedAgain = await #expect(throws: EmbeddedServerError.self) { try await pair.standby.promote() }
            #expect(promotedAgain?.code == .notStandby)
            try await Self.execute(pair.standbyURL, "INSERT INTO public.events SELECT generate_series(101, 150)")

            // The killed primary: rewound onto the new timeline, streaming from the promoted standby.
            let rejoined = try await pair.primary.rejoin(from: .home(pair.standby.configuration), slot: "former_primary")
            #expect(rejoined.slot == "former_primary")
            #expect(try await pair.primary.replicationStatus().slots.isEmpty, "the former primary's slot for its old standby is gone")
            #expect(try await Self.one(pair.primaryURL, "SELECT pg_is_in_recovery()", as: Bool.self) == true)
            try await Self.execute(pair.standbyURL, "INSERT INTO public.events SELECT generate_series(151, 200)")
            try await eventually("the rejoined former primary has every row written on the new primary", retryingErrors: true) {
                try await Self.one(pair.primaryURL, "SELECT count(*) FROM public.events", as: Int64.self) == 200
            }
            let status = try await pair.standby.replicationStatus()
            #expect(status.timeline == 2, "\(status)")
            #expect(status.standbys.map(\.applicationName) == ["former_primary"] && status.standbys.first?.state == "streaming", "\(status.standbys)")

            // A second standby cannot take a slot that exists.
            let home = try TestDatabase.temporaryHome("third")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let third = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries(), port: try TestDatabase.freePort()))
            let taken = await #expect(throws: EmbeddedServerError.self) {
                try await third.createReplica(from: .home(pair.standby.configuration), slot: "former_primary", installIfNeeded: false)
            }
            #expect(taken?.code == .replicationSlotExists, "\(String(describing: taken))")
            let nonEmpty = await #expect(throws: EmbeddedServerError.self) {
                try await pair.primary.createReplica(from: .home(pair.standby.configuration), slot: "again", installIfNeeded: false)
            }
            #expect(nonEmpty?.code == .replicaHomeNotEmpty, "\(String(describing: nonEmpty))")
        } catch {
            await pair.stop()
            throw error
        }
        await pair.stop()
    }

    @Test("a former primary without data checksums or wal_log_hints cannot be rewound, and the error says what to do")
    func rejoinWithoutChecksumsIsRefused() async throws {
        let binaries = try TestDatabase.installedBinaries()
        let first = try TestDatabase.temporaryHome("nosumA"), second = try TestDatabase.temporaryHome("nosumB")
        let primary = EmbeddedServer(configuration: .init(home: first, pgBinOverride: binaries, port: try TestDatabase.freePort()))
        let standby = EmbeddedServer(configuration: .init(home: second, pgBinOverride: binaries, port: try TestDatabase.freePort()))
        defer {
            _ = try? standby.stop()
            _ = try? primary.stop()
            try? FileManager.default.removeItem(atPath: first)
            try? FileManager.default.removeItem(atPath: second)
        }
        _ = try await primary.start(installIfNeeded: false)
        _ = try primary.stop()
        // PostgreSQL 18's initdb turns checksums on; a cluster from before had them off.
        let user = ServerUser.isRoot ? try ServerUser.ensure(primary.configuration.serverUser) : nil
        let disable = try await primary.run(binaries + "/pg_checksums", ["--disable", "-D", primary.configuration.dataDirectory], user: user)
        #expect(disable.succeeded, "\(disable.output)")
        _ = try await primary.start(installIfNeeded: false)
        try await standby.createReplica(from: .home(primary.configuration), slot: "nosum", installIfNeeded: false)
        _ = try primary.stop()
        try await standby.promote()
        let refused = await #expect(throws: EmbeddedServerError.self) {
            try await primary.rejoin(from: .home(standby.configuration), slot: "nosum_back")
        }
        #expect(refused?.code == .rewindUnsupported, "\(String(describing: refused))")
        #expect(refused?.message.contains("neither data checksums nor wal_log_hints = on") == true, "\(String(describing: refused))")
        // The slot made for the rejoin is dropped again: nothing is left holding the new primary's WAL.
        #expect(try await standby.replicationStatus().slots.isEmpty)
    }
}
