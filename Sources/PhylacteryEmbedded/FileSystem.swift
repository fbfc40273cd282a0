import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system steps of the embedded server, each failing with a readable ``EmbeddedServerError``.
///
/// When Phylactery runs as root, the server's own user (and so anyone who can run SQL as the database
/// superuser, through `COPY … TO PROGRAM`) can write inside the data directory. Everything root does
/// there therefore works on file descriptors opened without following links: a symbolic link or a hard
/// link the server's user placed is never followed, written through or handed over; the mode of a
/// directory this process did not create is never changed; and ownership is never changed recursively.
package enum FileSystem {
    // File-type bits of `st_mode` (macros in C).
    static let typeMask: UInt32 = 0o170_000
    static let directoryType: UInt32 = 0o040_000
    static let regularType: UInt32 = 0o100_000

    /// What `stat(2)` says about one path.
    package struct Metadata: Sendable, Equatable {
        /// The permission bits (`0o755`).
        package var mode: Int
        package var uid: UInt32
        package var gid: UInt32
        package var isDirectory: Bool
        package var isRegularFile: Bool
        /// How many directory entries name this file.
        package var links: Int
    }

    /// The metadata of `path`, following a final symbolic link only when `followingLinks`; `nil` when it does not exist.
    package static func metadata(_ path: String, followingLinks: Bool = false) -> Metadata? {
        var info = Glibc.stat()
        let result = followingLinks ? stat(path, &info) : lstat(path, &info)
        guard result == 0 else { return nil }
        return Metadata(info)
    }

    static func metadata(descriptor: Int32) -> Metadata? {
        var info = Glibc.stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        return Metadata(info)
    }

    /// Creates `path` with `mode` when it does not exist, and each missing parent with mode 0755 (the
    /// umask does not apply to either). A directory that already exists keeps its mode and owner.
    ///
    /// - Returns: whether `path` itself was created.
    @discardableResult
    package static func createDirectory(_ path: String, mode: Int) throws(EmbeddedServerError) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        var current = ""
        for (index, component) in components.enumerated() {
            current += "/" + component
            let isLast = index == components.count - 1
            let wanted = mode_t(isLast ? mode : 0o755)
            if mkdir(current, wanted) == 0 {
                // mkdir applied the umask; the directory is ours, so set the mode we meant.
                chmod(current, wanted)
                if isLast { return true }
                continue
            }
            let error = errno
            guard error == EEXIST else {
                throw failure(errno: error, creating: current)
            }
            guard metadata(current, followingLinks: true)?.isDirectory == true else {
                throw EmbeddedServerError(.fileSystem, "Could not create \(path): \(current) exists and is not a directory. Move it aside, or choose another PHYLACTERY_HOME.")
            }
        }
        return false
    }

    /// Checks one of the server's own directories (data, socket, log) without following a link: it must
    /// be a real directory owned by `owner`; its mode is set to `mode`, when given, if it differs.
    ///
    /// A directory this process has just created (`created`) is handed to `owner` (that directory
    /// alone, through its descriptor). An existing directory that belongs to someone else is refused
    /// with the fix: it is never chowned, let alone recursively.
    ///
    /// - Returns: whether the mode had to be corrected.
    @discardableResult
    package static func secureDirectory(
        _ path: String, owner: (uid: UInt32, gid: UInt32), mode: Int?, created: Bool, ownerName: String
    ) throws(EmbeddedServerError) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = errno
            if error == ELOOP || error == ENOTDIR {
                throw EmbeddedServerError(.fileSystem, "\(path) is a symbolic link or not a directory; Phylactery only uses a real directory there. Remove it (rm \(path)) and start again.")
            }
            throw EmbeddedServerError(.fileSystem, "Could not open \(path): \(String(cString: strerror(error))).")
        }
        defer { close(fd) }
        guard let info = metadata(descriptor: fd) else {
            throw EmbeddedServerError(.fileSystem, "Could not inspect \(path): \(String(cString: strerror(errno))).")
        }
        if created, info.uid != owner.uid || info.gid != owner.gid {
            guard fchown(fd, uid_t(owner.uid), gid_t(owner.gid)) == 0 else {
                throw EmbeddedServerError(.fileSystem, "Could not give \(path) to '\(ownerName)': \(String(cString: strerror(errno))).")
            }
        } else if info.uid != owner.uid {
            let holder = getpwuid(uid_t(info.uid)).map { String(cString: $0.pointee.pw_name) } ?? "uid \(info.uid)"
            throw EmbeddedServerError(.fileSystem, "\(path) belongs to \(holder), but the server runs as '\(ownerName)'. Phylactery does not hand over files it did not create; if this directory really is the server's, run `chown -R \(ownerName): \(path)` yourself, or choose another PHYLACTERY_HOME.")
        }
        guard let mode, info.mode != mode else { return false }
        guard fchmod(fd, mode_t(mode)) == 0 else {
            throw EmbeddedServerError(.fileSystem, "Could not set the mode of \(path) to \(String(mode, radix: 8)): \(String(cString: strerror(errno))).")
        }
        return true
    }

    /// Writes `contents` to a new file beside `path` (created exclusively, never through a link) with
    /// `mode` and, when given, `owner`, then renames it over `path`. Whatever was at `path` (a file, a
    /// symbolic or a hard link) is replaced as a directory entry; its target is never written.
    package static func replaceFile(
        _ path: String, contents: String, mode: Int = 0o600, owner: (uid: UInt32, gid: UInt32)? = nil
    ) throws(EmbeddedServerError) {
        let temporary = path + ".phylactery-" + String(UInt64.random(in: .min ... .max), radix: 36)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw failure(errno: errno, creating: path) }
        var failed: Int32?
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count, failed == nil {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno != EINTR { failed = errno }
            } else {
                written += count
            }
        }
        if failed == nil, fchmod(fd, mode_t(mode)) != 0 { failed = errno }
        if failed == nil, let owner, fchown(fd, uid_t(owner.uid), gid_t(owner.gid)) != 0 { failed = errno }
        if failed == nil, fsync(fd) != 0 { failed = errno }
        close(fd)
        if failed == nil, rename(temporary, path) != 0 { failed = errno }
        if let failed {
            unlink(temporary)
            throw failure(errno: failed, creating: path)
        }
    }

    /// Opens the regular file at `path` for appending (the server's log, as `pg_ctl -l` does), creating
    /// it with mode 0600 for `owner` when it does not exist. Never through a symbolic link, never a FIFO,
    /// and never a file that belongs to someone other than `owner` or has a second name (a hard link the
    /// server's user made to a file of root's): root writes into the server user's directory.
    ///
    /// - Returns: the descriptor (close-on-exec); the caller closes it.
    package static func openForAppending(_ path: String, owner: (uid: UInt32, gid: UInt32)) throws(EmbeddedServerError) -> Int32 {
        let flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
        var fd = open(path, flags | O_CREAT | O_EXCL, mode_t(0o600))
        let created = fd >= 0
        if !created {
            guard errno == EEXIST else { throw failure(errno: errno, creating: path) }
            fd = open(path, flags)
            guard fd >= 0 else {
                throw EmbeddedServerError(.fileSystem, "Could not open the server log \(path): \(String(cString: strerror(errno))). If it is a link or not a file, remove it.")
            }
        }
        if created, fchown(fd, uid_t(owner.uid), gid_t(owner.gid)) != 0 {
            let error = errno
            close(fd)
            throw failure(errno: error, creating: path)
        }
        guard let info = metadata(descriptor: fd), info.isRegularFile, info.links == 1, info.uid == owner.uid else {
            close(fd)
            throw EmbeddedServerError(.fileSystem, "The server log \(path) is not a plain file of the server's user (a link, or another owner's file); it was not written. Remove it and start again.")
        }
        _ = fcntl(fd, F_SETFL, O_WRONLY | O_APPEND)
        return fd
    }

    /// The contents of the regular file at `path`, read without following a symbolic link and without
    /// blocking on a FIFO; `nil` when there is no such file. With `owner`, a file that belongs to
    /// anyone else (say, a hard link to a file of root's) is not read either. Reads from `offset`, at
    /// most `limit` bytes.
    package static func readFile(_ path: String, owner: UInt32? = nil, from offset: UInt64 = 0, limit: Int = 1 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let info = metadata(descriptor: fd), info.isRegularFile, owner.map({ $0 == info.uid }) ?? true else { return nil }
        if offset > 0, lseek(fd, off_t(offset), SEEK_SET) < 0 { return nil }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while data.count < limit {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, limit - data.count)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            data.append(contentsOf: buffer[..<count])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Throws, naming the directory in the way and the fix, when `user` cannot reach `path`: every
    /// existing directory on the way (links resolved, as the kernel does) must let it search. Missing
    /// directories do not count: ``createDirectory(_:mode:)`` creates them with mode 0755.
    package static func requireReachable(_ path: String, by user: ServerUser) throws(EmbeddedServerError) {
        var existing = path
        while metadata(existing, followingLinks: true) == nil, existing != "/" {
            existing = (existing as NSString).deletingLastPathComponent
        }
        guard let resolved = realpath(existing, nil) else { return }
        let real = String(cString: resolved)
        free(resolved)
        let groups = user.groups
        var current = ""
        for component in [""] + real.split(separator: "/").map(String.init) {
            current = component.isEmpty ? "/" : (current == "/" ? "" : current) + "/" + component
            guard let info = metadata(current) else { continue }
            let searchable: Bool
            if info.uid == user.uid {
                searchable = info.mode & 0o100 != 0
            } else if groups.contains(info.gid) {
                searchable = info.mode & 0o010 != 0
            } else {
                searchable = info.mode & 0o001 != 0
            }
            guard searchable else {
                let holder = getpwuid(uid_t(info.uid)).map { String(cString: $0.pointee.pw_name) } ?? "uid \(info.uid)"
                throw EmbeddedServerError(.unreachableHome, "The server runs as '\(user.name)', which cannot reach \(path): \(current) (mode \(String(info.mode, radix: 8)), owner \(holder)) does not let it in, and Phylactery does not loosen directories it did not create. Leave PHYLACTERY_HOME unset to use \(EmbeddedServer.Configuration.systemHome), choose a directory '\(user.name)' can reach, or allow it yourself (chmod o+x \(current)).")
            }
        }
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

    static func failure(errno error: Int32, creating path: String) -> EmbeddedServerError {
        if error == ENOSPC {
            return EmbeddedServerError(.diskFull, "The disk holding \(path) is full. Free some space and try again.")
        }
        return EmbeddedServerError(.fileSystem, "Could not create \(path): \(String(cString: strerror(error))). Check the permissions, or choose another PHYLACTERY_HOME.")
    }
}

extension FileSystem.Metadata {
    init(_ info: stat) {
        self.mode = Int(info.st_mode & 0o7777)
        self.uid = UInt32(info.st_uid)
        self.gid = UInt32(info.st_gid)
        self.isDirectory = info.st_mode & FileSystem.typeMask == FileSystem.directoryType
        self.isRegularFile = info.st_mode & FileSystem.typeMask == FileSystem.regularType
        self.links = Int(info.st_nlink)
    }
}
