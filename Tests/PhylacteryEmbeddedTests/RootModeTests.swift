import Foundation
import PhylacteryEmbedded
import PhylacteryTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Root mode cannot be turned against the machine: the server's user (and so anyone who can run SQL
/// as the database superuser, with `COPY … TO PROGRAM`) can write inside the data directory, so root
/// must never follow what it finds there, and never loosen a directory it did not create.
///
/// These only mean something as root (CI runs as root); as another user they are skipped.
@Suite(.serialized, .enabled(if: geteuid() == 0, "root mode is only exercised when the tests run as root (CI does)"))
struct RootModeTests {
    struct Owner: Equatable, CustomStringConvertible {
        var uid: UInt32
        var mode: Int
        var description: String { "uid \(uid) mode \(String(mode, radix: 8))" }
    }

    func owner(_ path: String) throws -> Owner {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw EmbeddedServerError(.fileSystem, "cannot stat \(path)") }
        return Owner(uid: UInt32(info.st_uid), mode: Int(info.st_mode & 0o7777))
    }

    /// Every directory from `/` down to `path`'s parent, with its owner and mode.
    func ancestors(of path: String) throws -> [String: Owner] {
        var result: [String: Owner] = [:]
        var current = (path as NSString).deletingLastPathComponent
        while true {
            result[current] = try owner(current)
            if current == "/" { return result }
            current = (current as NSString).deletingLastPathComponent
        }
    }

    @Test func aHomeTheServerUserCannotReachIsRefusedAndNothingIsLoosened() async throws {
        let parent = try TestDatabase.temporaryHome("private")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        #expect(chmod(parent, 0o700) == 0)   // like /root
        let home = parent + "/home"
        let before = try ancestors(of: home)
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer { _ = try? server.stop() }

        let error = await #expect(throws: EmbeddedServerError.self) { try await server.start(installIfNeeded: false) }
        #expect(error?.code == .unreachableHome, "\(String(describing: error))")
        #expect(error?.description.contains("\(parent) (mode 700, owner root)") == true, "\(String(describing: error))")
        #expect(error?.description.contains(EmbeddedServer.Configuration.systemHome) == true)
        #expect(try ancestors(of: home) == before, "no directory above the home may change")
        #expect(!FileManager.default.fileExists(atPath: home))
        #expect(server.pidFileState() == .absent)
    }

    @Test func startingLeavesTheParentsAndAnExistingHomeAsTheyWere() async throws {
        let home = try TestDatabase.temporaryHome("parents")
        #expect(chmod(home, 0o711) == 0)   // the operator's choice: searchable, not listable
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer { _ = try? server.stop(); try? FileManager.default.removeItem(atPath: home) }
        let before = try ancestors(of: home + "/data")
        let outcome = try await server.start(installIfNeeded: false)
        #expect(try ancestors(of: home + "/data") == before, "\(outcome.notes)")
        #expect(try owner(home) == Owner(uid: 0, mode: 0o711))
        let serverUser = try #require(getpwnam("phylactery")).pointee.pw_uid
        #expect(try owner(server.configuration.dataDirectory) == Owner(uid: UInt32(serverUser), mode: 0o700))
        #expect(try owner(server.configuration.socketDirectory) == Owner(uid: UInt32(serverUser), mode: 0o700))
    }

    @Test func linksInsideTheServersDirectoriesRedirectNoOwnershipChange() async throws {
        let home = try TestDatabase.temporaryHome("links")
        let victim = try TestDatabase.temporaryHome("victim")   // stands for /etc: root's, 0755
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer {
            _ = try? server.stop()
            try? FileManager.default.removeItem(atPath: home)
            try? FileManager.default.removeItem(atPath: victim)
        }
        try FileManager.default.createDirectory(atPath: victim + "/sub", withIntermediateDirectories: true)
        try "root's own\n".write(toFile: victim + "/file", atomically: false, encoding: .utf8)
        try "root's own\n".write(toFile: victim + "/sub/file", atomically: false, encoding: .utf8)
        #expect(chmod(victim + "/file", 0o644) == 0)
        let victims = [victim, victim + "/sub", victim + "/file", victim + "/sub/file"]
        let before = try victims.map(owner)

        _ = try await server.start(installIfNeeded: false)
        _ = try server.stop()
        // What the server's user could do (ln -s, or COPY … TO PROGRAM 'ln -s …' as superuser): links in
        // each of its directories, to a directory and to a file, including where root writes a file.
        let serverUser = try #require(getpwnam("phylactery")).pointee
        for (link, target) in [
            (server.configuration.dataDirectory + "/x", victim),
            (server.configuration.socketDirectory + "/y", victim + "/sub"),
            ((server.configuration.logFile as NSString).deletingLastPathComponent + "/z", victim),
            (server.configuration.dataDirectory + "/phylactery.conf", victim + "/file"),
        ] {
            try? FileManager.default.removeItem(atPath: link)
            #expect(symlink(target, link) == 0, "\(link)")
            #expect(lchown(link, serverUser.pw_uid, serverUser.pw_gid) == 0)
        }

        let restarted = try await server.start(installIfNeeded: false)
        #expect(!restarted.wasAlreadyRunning)
        #expect(try victims.map(owner) == before, "a link inside the data directory redirected a chown or chmod")
        #expect(try String(contentsOfFile: victim + "/file", encoding: .utf8) == "root's own\n", "root wrote through a link")
        // The settings file is the server's own again, not the link.
        let settings = try owner(server.configuration.dataDirectory + "/phylactery.conf")
        #expect(settings == Owner(uid: UInt32(serverUser.pw_uid), mode: 0o600))
    }


    @Test func anExistingDirectoryOfSomeoneElseOrALinkIsRefusedNotTakenOver() async throws {
        let home = try TestDatabase.temporaryHome("foreign")
        let elsewhere = try TestDatabase.temporaryHome("elsewhere")
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer {
            _ = try? server.stop()
            try? FileManager.default.removeItem(atPath: home)
            try? FileManager.default.removeItem(atPath: elsewhere)
        }
        // data/ made by root, with a file in it: not handed over (that would be a recursive chown).
        try FileManager.default.createDirectory(atPath: server.configuration.dataDirectory + "/base", withIntermediateDirectories: true)
        let foreign = await #expect(throws: EmbeddedServerError.self) { try await server.start(installIfNeeded: false) }
        #expect(foreign?.description.contains("\(server.configuration.dataDirectory) belongs to root, but the server runs as 'phylactery'") == true, "\(String(describing: foreign))")
        #expect(foreign?.description.contains("chown -R phylactery: \(server.configuration.dataDirectory)") == true)
        #expect(try owner(server.configuration.dataDirectory + "/base").uid == 0)

        // run/ as a link to another directory: refused, and the directory it names is left alone.
        try FileManager.default.removeItem(atPath: server.configuration.dataDirectory)
        try FileManager.default.createSymbolicLink(atPath: server.configuration.socketDirectory, withDestinationPath: elsewhere)
        let before = try owner(elsewhere)
        let linked = await #expect(throws: EmbeddedServerError.self) { try await server.start(installIfNeeded: false) }
        #expect(linked?.description.contains("\(server.configuration.socketDirectory) is a symbolic link or not a directory") == true, "\(String(describing: linked))")
        #expect(try owner(elsewhere) == before)
        #expect(server.pidFileState() == .absent)
    }
}
