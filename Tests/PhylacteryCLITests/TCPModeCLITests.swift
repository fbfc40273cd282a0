import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `db start --tcp` and `db url --tcp`: a password for the superuser, kept mode 0600 in the home, and a
/// URL that logs in over TCP; the password is hidden unless asked for.
@Suite(.serialized) struct TCPModeCLITests {
    /// A TCP port on 127.0.0.1 that nothing listens on now.
    static func freePort() throws -> Int { try TestDatabase.freePort() }

    func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1
    }

    func currentUser(_ url: String) async throws -> [String] {
        try await PhylacteryClient.withClient(configuration: .init(url: try DatabaseURL(parsing: url))) { client in
            let row = try await client.query("SELECT current_user::text, host(inet_server_addr())").collect().first!
            let (user, address) = try row.decode((String, String).self)
            return [user, address]
        }
    }

    @Test func startWithTCPMakesAPasswordAndTheURLLogsIn() async throws {
        let home = try TestDatabase.temporaryHome("tcp")
        let port = String(try Self.freePort())
        let environment = ["PHYLACTERY_HOME": home, "PHYLACTERY_PG_BIN": try TestDatabase.installedBinaries(), "PHYLACTERY_DATABASE_URL": ""]
        func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
        defer {
            _ = try? run("db", "stop")
            try? FileManager.default.removeItem(atPath: home)
        }
        let passwordFile = home + "/superuser.password"

        let early = try run("db", "url", "--tcp", "--port", port)
        #expect(early.status == 1, "\(early.output)")
        #expect(early.output == "error: The server in \(home) has no TCP password yet. Start it with TCP: `phylactery db start --tcp`.\n", "\(early.output)")

        let start = try run("db", "start", "--tcp", "--port", port)
        #expect(start.status == 0, "\(start.output)")
        #expect(start.output.contains("made a password for 'phylactery' over TCP, stored in \(passwordFile) (mode 600)"), "\(start.output)")
        #expect(mode(passwordFile) == 0o600)
        let password = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count == 64 && password.allSatisfy(\.isHexDigit), "\(password)")

        let redacted = try run("db", "url", "--tcp", "--port", port)
        #expect(redacted.status == 0, "\(redacted.output)")
        #expect(redacted.output == "postgres://phylactery:***@127.0.0.1:\(port)/phylactery?sslmode=disable\n", "\(redacted.output)")
        #expect(!redacted.output.contains(password))
        let shown = try run("db", "url", "--tcp", "--port", port, "--show-password")
        #expect(shown.output == "postgres://phylactery:\(password)@127.0.0.1:\(port)/phylactery?sslmode=disable\n", "\(shown.output)")
        let socketOnly = try run("db", "url", "--show-password")
        #expect(socketOnly.status == 64 && socketOnly.output.contains("--show-password goes with --tcp"), "\(socketOnly.output)")

        // The URL logs in over TCP; without the password, or with another one, TCP refuses.
        let url = shown.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await currentUser(url) == ["phylactery", "127.0.0.1"])
        for wrong in [url.replacingOccurrences(of: ":\(password)@", with: "@"), url.replacingOccurrences(of: password, with: String(password.reversed()))] {
            let error = await #expect(throws: PhylacteryError.self) { try await currentUser(wrong) }
            #expect(error?.code == .authenticationFailed, "\(String(describing: error))")
        }

        // Restarted after the file was loosened: the same password, the file back to 0600.
        #expect(try run("db", "stop").status == 0)
        #expect(chmod(passwordFile, 0o644) == 0)
        let restart = try run("db", "start", "--tcp", "--port", port)
        #expect(restart.status == 0, "\(restart.output)")
        #expect(restart.output.contains("set \(passwordFile) back to mode 600"), "\(restart.output)")
        #expect(mode(passwordFile) == 0o600)
        #expect(try await currentUser(url) == ["phylactery", "127.0.0.1"])

        // The socket directory (whose 0700 is what makes the superuser's socket trust safe) is re-checked
        // by every start, a start of a running server included.
        #expect(chmod(home + "/run", 0o777) == 0)
        let again = try run("db", "start", "--tcp", "--port", port)
        #expect(again.status == 0 && again.output.contains("already running"), "\(again.output)")
        #expect(again.output.contains("set \(home)/run back to mode 700"), "\(again.output)")
        #expect(mode(home + "/run") == 0o700)
    }
}
