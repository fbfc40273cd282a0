import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

/// A server restart under load: every transaction in flight fails or commits, none waits forever,
/// and the client carries on with new connections. (PostgresNIO 1.33 can leave a statement queued
/// behind one that failed with FATAL waiting forever; the client must never send that statement.)
@Suite(.serialized) struct ServerRestartTests {
    final class LoadState: Sendable {
        let progress = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
    }

    @Test("transactions in flight when the server restarts end, and the client keeps working")
    func restartUnderLoad() async throws {
        let home = try TestDatabase.temporaryHome("restart")
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer { _ = try? server.stop(); try? FileManager.default.removeItem(atPath: home) }
        _ = try await server.start(installIfNeeded: false)
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 8
        try await PhylacteryClient.withClient(configuration: .init(url: server.url, options: options)) { client in
            try await client.execute("CREATE TABLE public.t (v int)")
            let state = LoadState()
            let workers = 12
            for worker in 0..<workers {
                Task {
                    defer { state.finished.add(1, ordering: .relaxed) }
                    while !state.stop.load(ordering: .relaxed) {
                        do {
                            try await client.transaction { tx in
                                try await tx.execute("SELECT pg_sleep(0.005)")
                                try await tx.execute("INSERT INTO public.t VALUES (\(worker))")
                            }
                            state.progress.add(1, ordering: .relaxed)
                        } catch {
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
            try await Task.sleep(for: .seconds(1))
            _ = try server.stop()
            try await Task.sleep(for: .milliseconds(500))
            _ = try await server.start(installIfNeeded: false)
            // Transactions commit again (generous deadline: these machines are shared).
            let before = state.progress.load(ordering: .relaxed)
            let recovery = ContinuousClock.now + .seconds(60)
            while state.progress.load(ordering: .relaxed) - before < 50 && ContinuousClock.now < recovery {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(state.progress.load(ordering: .relaxed) - before >= 50, "transactions commit again after the restart")
            state.stop.store(true, ordering: .relaxed)
            let deadline = ContinuousClock.now + .seconds(60)
            while state.finished.load(ordering: .relaxed) < workers && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(state.finished.load(ordering: .relaxed) == workers, "no transaction is left waiting on a dead connection")
        }
    }
}
