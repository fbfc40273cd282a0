import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing
import Logging

@Suite(.serialized) struct ServerRestartTests {
    @Test("clients keep working after the server restarts under load")
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
                        try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<12 {
                    group.addTask {
                        while !state.stop.load(ordering: .relaxed) {
                            do {
                                if ProcessInfo.processInfo.environment["RAW"] != nil {
                                    state.phase(worker, "lease")
                                    try await client.postgres.withConnection { conn in
                                        state.phase(worker, "begin")
                                        _ = try await conn.query("BEGIN", logger: .init(label: "x")).collect()
                                        state.phase(worker, "sleep")
                                        _ = try await conn.query("SELECT pg_sleep(0.005)", logger: .init(label: "x")).collect()
                                        state.phase(worker, "insert")
                                        _ = try await conn.query("INSERT INTO public.t VALUES (\(worker))", logger: .init(label: "x")).collect()
                                        state.phase(worker, "commit")
                                        _ = try await conn.query("COMMIT", logger: .init(label: "x")).collect()
                                        state.phase(worker, "done")
                                    }
                                } else {
                                    state.phase(worker, "tx")
                                    try await client.transaction { tx in
                                        state.phase(worker, "sleep")
                                        try await tx.execute("SELECT pg_sleep(0.005)")
                                        state.phase(worker, "insert")
                                        try await tx.execute("INSERT INTO public.t VALUES (\(worker))")
                                        state.phase(worker, "commit")
                                    }
                                    state.phase(worker, "done")
                                }
                                state.progress.add(1, ordering: .relaxed)
                            } catch {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                        }
                    }
                }
                try await Task.sleep(for: .seconds(1))
                _ = try server.stop()
                try await Task.sleep(for: .milliseconds(500))
                _ = try await server.start(installIfNeeded: false)
                try await Task.sleep(for: .seconds(2))
                let before = state.progress.load(ordering: .relaxed)
                try await Task.sleep(for: .seconds(3))
                let after = state.progress.load(ordering: .relaxed)
                print("restart: progress \(before) -> \(after); phases \(state.phases.withLock { $0 }.sorted { $0.key < $1.key })")
                FileHandle.standardError.write(Data("restart: progress \(before) -> \(after); phases \(state.phases.withLock { $0 }.sorted { $0.key < $1.key })\n".utf8))
                #expect(after - before > 100)
                state.stop.store(true, ordering: .relaxed)
                try await Task.sleep(for: .seconds(2))
                FileHandle.standardError.write(Data("restart: after stop: phases \(state.phases.withLock { $0 }.sorted { $0.key < $1.key })\n".utf8))
                try await group.waitForAll()
            }
        }
    }
}

final class LoadState: Sendable {
    let progress = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    let phases = Mutex<[Int: String]>([:])
    func phase(_ worker: Int, _ name: String) { self.phases.withLock { $0[worker] = name } }
}
