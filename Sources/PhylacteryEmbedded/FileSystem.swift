import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system steps of the embedded server, each failing with a readable ``EmbeddedServerError``.
package enum FileSystem {
    /// Creates `path` (and parents) if missing and sets its mode.
    package static func createDirectory(_ path: String, mode: Int) throws(EmbeddedServerError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        } catch {
            throw failure(error, creating: path)
        }
    }

    /// Hands `path` (recursively) to the user `uid`/`gid`.
    package static func chown(_ path: String, uid: UInt32, gid: UInt32) throws(EmbeddedServerError) {
        var failed: String?
        func visit(_ item: String) {
            if lchown(item, uid_t(uid), gid_t(gid)) != 0 { failed = item; return }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: item, isDirectory: &isDirectory), isDirectory.boolValue {
                for child in (try? FileManager.default.contentsOfDirectory(atPath: item)) ?? [] {
                    visit(item + "/" + child)
                }
            }
        }
        visit(path)
        if let failed {
            throw EmbeddedServerError(.fileSystem, "Could not give \(failed) to the server user: \(String(cString: strerror(errno))).")
        }
    }

    /// Makes every directory above `path` traversable (`o+x`) so a server running as another user can
    /// reach its data directory. Only the search bit is added, never read or write.
    ///
    /// - Returns: the directories that were changed, to tell the operator.
    package static func makeAncestorsTraversable(_ path: String) throws(EmbeddedServerError) -> [String] {
        var changed: [String] = []
        var current = (path as NSString).deletingLastPathComponent
        var ancestors: [String] = []
        while current != "/" && !current.isEmpty {
            ancestors.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for directory in ancestors.reversed() {
            // FileManager rather than stat(2): the C struct is visible through several modules.
            guard let mode = (try? FileManager.default.attributesOfItem(atPath: directory))?[.posixPermissions] as? Int else { continue }
            if mode & 0o001 == 0 {
                guard chmod(directory, mode_t(mode | 0o001)) == 0 else {
                    throw EmbeddedServerError(.fileSystem, "The server user cannot reach \(path) because \(directory) is not traversable, and adding o+x failed: \(String(cString: strerror(errno))). Choose another PHYLACTERY_HOME.")
                }
                changed.append(directory)
            }
        }
        return changed
    }

    /// Adds read (and, for directories, search) permission for others below `path`.
    package static func makeWorldReadable(_ path: String) throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: path) else { return }
        for case let relative as String in walker {
            let item = path + "/" + relative
            guard let attributes = try? fm.attributesOfItem(atPath: item),
                  let type = attributes[.type] as? FileAttributeType, type != .typeSymbolicLink,
                  var mode = attributes[.posixPermissions] as? Int
            else { continue }
            mode |= 0o044
            if type == .typeDirectory || mode & 0o100 != 0 { mode |= 0o011 }
            chmod(item, mode_t(mode))
        }
        chmod(path, 0o755)
    }

    /// Throws ``EmbeddedServerError/Code/diskFull`` when fewer than `bytes` are free at `path`.
    package static func requireFreeSpace(at path: String, bytes: UInt64) throws(EmbeddedServerError) {
        guard let free = (try? FileManager.default.attributesOfFileSystem(forPath: path))?[.systemFreeSize] as? NSNumber else { return }
        if free.uint64Value < bytes {
            throw EmbeddedServerError(.diskFull, "Only \(free.uint64Value >> 20) MB are free on the disk holding \(path); the server needs about \(bytes >> 20) MB. Free some space or choose another PHYLACTERY_HOME.")
        }
    }

    /// Total size in bytes of the files below `path`.
    package static func size(of path: String) -> UInt64 {
        var total: UInt64 = 0
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        for case let relative as String in walker {
            if let size = (try? FileManager.default.attributesOfItem(atPath: path + "/" + relative))?[.size] as? NSNumber {
                total += size.uint64Value
            }
        }
        return total
    }

    static func failure(_ error: any Error, creating path: String) -> EmbeddedServerError {
        if (error as NSError).code == Int(ENOSPC) || "\(error)".contains("No space left") {
            return EmbeddedServerError(.diskFull, "The disk holding \(path) is full. Free some space and try again.")
        }
        return EmbeddedServerError(.fileSystem, "Could not create \(path): \(error). Check the permissions, or choose another PHYLACTERY_HOME.")
    }
}

/// The unprivileged account the server runs as when Phylactery runs as root (PostgreSQL refuses root).
package struct ServerUser: Sendable {
    package var name: String
    package var uid: UInt32
    package var gid: UInt32

    /// True when this process runs as root and must hand the server to another user.
    package static var isRoot: Bool { geteuid() == 0 }

    /// Looks the user up, creating it as a system user without a login shell when it does not exist.
    package static func ensure(_ name: String) throws(EmbeddedServerError) -> ServerUser {
        if let existing = lookup(name) { return existing }
        let useradd = ["/usr/sbin/useradd", "/sbin/useradd"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let useradd else {
            throw EmbeddedServerError(.fileSystem, "PostgreSQL refuses to run as root, and there is no useradd to create the unprivileged user '\(name)'. Create it yourself, or run phylactery as a normal user.")
        }
        let outcome = try? Subprocess.run(useradd, [
            "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", "/usr/sbin/nologin", "--comment", "Phylactery embedded PostgreSQL", name,
        ])
        // Another process may have created it at the same moment: look again before failing.
        if let created = lookup(name) { return created }
        throw EmbeddedServerError(.fileSystem, "Could not create the system user '\(name)' the server runs as: \(outcome?.output.trimmingCharacters(in: .whitespacesAndNewlines) ?? "useradd did not run").")
    }

    static func lookup(_ name: String) -> ServerUser? {
        guard let entry = getpwnam(name) else { return nil }
        return ServerUser(name: name, uid: UInt32(entry.pointee.pw_uid), gid: UInt32(entry.pointee.pw_gid))
    }
}
