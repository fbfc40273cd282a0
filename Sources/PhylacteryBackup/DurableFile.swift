import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, buffer, count)
    #else
    Darwin.write(fd, buffer, count)
    #endif
}

/// `open(2)`, callable where a type's own `open` member hides it.
func openFile(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) -> Int32 {
    open(path, flags, mode)
}

/// A file written so that a crash leaves either nothing or all of it: written, `fsync`ed, closed, and
/// only then renamed into place by its caller (``DurableFile/publish(_:as:)``), whose directory is then
/// `fsync`ed too. What the backup directory holds is always whole.
final class DurableFile {
    let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Creates `path` for writing (mode 0600), replacing a leftover of an interrupted run.
    static func create(_ path: String) throws(BackupError) -> DurableFile {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create", path) }
        return DurableFile(path: path, descriptor: fd)
    }

    func write(contentsOf data: Data) throws(BackupError) {
        var failed = false
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    return
                }
                offset += written
            }
        }
        if failed { throw Self.failure("write", path) }
    }

    /// Flushes the file to disk and closes it.
    func finish() throws(BackupError) {
        guard fsync(descriptor) == 0 else { throw Self.failure("flush", path) }
        close(descriptor)
        descriptor = -1
    }

    /// Closes and removes the file (after a failure).
    func abandon() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(path)
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    // MARK: - Whole files

    /// Writes `data` to `path` through a temporary file, atomically.
    static func replace(_ path: String, with data: Data, mode: mode_t = 0o600) throws(BackupError) {
        let temporary = path + ".tmp-\(getpid())"
        let file = try create(temporary)
        do {
            try file.write(contentsOf: data)
            try file.finish()
        } catch {
            file.abandon()
            throw error
        }
        chmod(temporary, mode)
        try publish(temporary, as: path)
    }

    /// Renames the finished file `temporary` to `path` and makes the rename durable.
    static func publish(_ temporary: String, as path: String) throws(BackupError) {
        guard rename(temporary, path) == 0 else {
            let error = failure("rename \(temporary) to", path)
            unlink(temporary)
            throw error
        }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// `fsync`s a directory, so the entries created or renamed in it survive a crash.
    static func syncDirectory(_ path: String) throws(BackupError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("flush", path) }
    }

    /// `fsync`s every file below `path` and the directories themselves (a tree written by a tool run
    /// with `--no-sync`, or unpacked by tar).
    static func syncTree(_ path: String) throws(BackupError) {
        let manager = FileManager.default
        var directories = [path]
        if let walker = manager.enumerator(atPath: path) {
            for case let relative as String in walker {
                let item = path + "/" + relative
                var isDirectory: ObjCBool = false
                guard manager.fileExists(atPath: item, isDirectory: &isDirectory) else { continue }
                if isDirectory.boolValue { directories.append(item); continue }
                let fd = open(item, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                defer { close(fd) }
                guard fsync(fd) == 0 else { throw failure("flush", item) }
            }
        }
        for directory in directories { try syncDirectory(directory) }
    }

    static func failure(_ action: String, _ path: String) -> BackupError {
        let reason = String(cString: strerror(errno))
        if errno == ENOSPC {
            return BackupError(.fileSystem, "The disk holding \(path) is full (could not \(action) it). Free some space (or remove old backups: phylactery db backups --keep-full N) and try again.")
        }
        return BackupError(.fileSystem, "Could not \(action) \(path): \(reason).")
    }
}
