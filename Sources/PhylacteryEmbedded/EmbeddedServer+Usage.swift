import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension EmbeddedServer {
    /// `home/phylactery.lock`: the file a process locks while it uses this home's cluster.
    ///
    /// A runtime (or `phylactery worker`) holds a shared lock for as long as it runs, and `db start`
    /// holds one while it starts the server; a restore takes it exclusively, so a restore never runs
    /// under a runtime that would restart the server, and no server starts while a restore swaps the
    /// data directory. The lock is `flock(2)`'s: it ends with the process that held it, however it ends.
    public var usageLockPath: String { configuration.home + "/phylactery.lock" }

    /// A held lock on ``usageLockPath``; released by ``release()`` or when the last reference goes.
    public final class UsageLease: Sendable {
        private let descriptor: Mutex<Int32>

        init(descriptor: Int32) { self.descriptor = Mutex(descriptor) }

        /// Gives the lock up (idempotent).
        public func release() {
            self.descriptor.withLock { fd in
                guard fd >= 0 else { return }
                flock(fd, LOCK_UN)
                close(fd)
                fd = -1
            }
        }

        deinit { self.release() }
    }

    /// Takes a shared hold on this home: many processes may hold one at a time, but not while a
    /// restore holds it exclusively.
    ///
    /// - Parameter purpose: what the holder does, for the error a restore reports (`runtime`, `worker`).
    /// - Throws: ``EmbeddedServerError/Code/inUse`` while a restore runs.
    public func holdUsage(for purpose: String) throws(EmbeddedServerError) -> UsageLease {
        try self.lockUsage(LOCK_SH, refusal: { holders in
            "A restore is in progress in \(self.configuration.home)\(Self.describe(holders)); \(purpose) must wait until it has finished (`phylactery db restore` prints when it is done)."
        })
    }

    /// Takes this home for oneself: refused while a runtime, a worker, a starting server or another
    /// restore holds it.
    ///
    /// - Throws: ``EmbeddedServerError/Code/inUse`` naming the processes that hold it.
    public func holdExclusiveUsage(for purpose: String) throws(EmbeddedServerError) -> UsageLease {
        try self.lockUsage(LOCK_EX, refusal: { holders in
            "\(purpose.prefix(1).uppercased() + purpose.dropFirst()) needs \(self.configuration.home) to itself, but a runtime or worker is using it\(Self.describe(holders)). Stop it first (SIGTERM, or stop the daemon's service), then run this again."
        })
    }

    private func lockUsage(_ operation: Int32, refusal: ([Int32]) -> String) throws(EmbeddedServerError) -> UsageLease {
        let path = self.usageLockPath
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw EmbeddedServerError(.fileSystem, "Could not open \(path): \(String(cString: strerror(errno))). Check the permissions of \(configuration.home).")
        }
        while flock(fd, operation | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let failure = errno
            close(fd)
            if failure == EWOULDBLOCK {
                throw EmbeddedServerError(.inUse, refusal(Self.lockHolders(of: path)))
            }
            throw EmbeddedServerError(.fileSystem, "Could not lock \(path): \(String(cString: strerror(failure))).")
        }
        return UsageLease(descriptor: fd)
    }

    static func describe(_ holders: [Int32]) -> String {
        holders.isEmpty ? "" : " (pid \(holders.map(String.init).joined(separator: ", ")))"
    }

    /// The processes holding a `flock` on `path`, read from `/proc/locks` (empty where there is none).
    package static func lockHolders(of path: String) -> [Int32] {
        guard let inode = (try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? NSNumber,
              let table = try? String(contentsOfFile: "/proc/locks", encoding: .utf8)
        else { return [] }
        var holders: [Int32] = []
        for line in table.split(separator: "\n") where !line.contains("->") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK",
                  let pid = Int32(fields[4]),
                  let node = fields[5].split(separator: ":").last.flatMap({ UInt64($0) }),
                  node == inode.uint64Value, pid != getpid()
            else { continue }
            if !holders.contains(pid) { holders.append(pid) }
        }
        return holders.sorted()
    }
}
