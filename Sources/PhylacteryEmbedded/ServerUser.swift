import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// The user named `name`, or `nil` when there is none.
    package static func lookup(_ name: String) -> ServerUser? {
        guard let entry = getpwnam(name) else { return nil }
        return ServerUser(name: name, uid: UInt32(entry.pointee.pw_uid), gid: UInt32(entry.pointee.pw_gid))
    }

    /// The user's primary and supplementary groups, as the kernel checks them when it runs as this user.
    package var groups: Set<UInt32> {
        var count: Int32 = 64
        while true {
            var buffer = [gid_t](repeating: 0, count: Int(count))
            let wanted = count
            if getgrouplist(self.name, gid_t(self.gid), &buffer, &count) >= 0 {
                return Set(buffer.prefix(Int(count)).map { UInt32($0) }).union([self.gid])
            }
            // Too small: `count` now holds the number needed.
            if count <= wanted { return [self.gid] }
        }
    }
}
