import Crypto
import Foundation

/// File steps shared by backups and exports, each failing with a readable ``BackupError``.
enum BackupFiles {
    /// `path` made absolute against the current directory, `..` and `.` resolved.
    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (full as NSString).standardizingPath
    }

    /// Refuses a path that exists and is not an empty directory.
    static func requireEmptyOrMissing(_ path: String, what: String) throws(BackupError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue, ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]).isEmpty else {
            throw BackupError(.targetNotEmpty, "\(what) \(path) already exists and is not empty. Choose a new path; nothing was written.")
        }
    }

    /// A new hidden directory next to `target` (same file system, so the final move is a rename), mode 0700.
    static func makeStagingDirectory(beside target: String) throws(BackupError) -> String {
        let parent = (target as NSString).deletingLastPathComponent
        let staging = "\(parent)/.\((target as NSString).lastPathComponent).partial-\(String(UInt32.random(in: .min ... .max), radix: 16))"
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError(.fileSystem, "Could not create \(staging): \(error). Check that \(parent) is writable.")
        }
        return staging
    }

    /// Renames `staging` to `target` (an empty `target` directory is replaced).
    static func moveIntoPlace(_ staging: String, _ target: String) throws(BackupError) {
        do {
            if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
            try FileManager.default.moveItem(atPath: staging, toPath: target)
        } catch {
            throw BackupError(.fileSystem, "Could not move the finished backup into \(target): \(error). It is complete in \(staging).")
        }
    }

    /// Writes `data` to `path` (mode 0600), replacing it atomically and durably (``DurableFile``).
    static func write(_ data: Data, to path: String) throws(BackupError) {
        try DurableFile.replace(path, with: data, mode: 0o600)
    }

    /// The file's size in bytes (0 when unreadable).
    static func size(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// ``size(_:)`` as the catalog counts bytes.
    static func fileSize(_ path: String) -> UInt64 { UInt64(max(0, size(path))) }

    /// The file's SHA-256, lowercase hex, read in 1 MiB chunks; `progress` gets the bytes read so far.
    static func sha256(_ path: String, progress: (UInt64) -> Void = { _ in }) throws(BackupError) -> String {
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            var hasher = SHA256()
            var done: UInt64 = 0
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                done += UInt64(chunk.count)
                progress(done)
            }
            return hex(hasher.finalize())
        } catch {
            throw BackupError(.fileSystem, "Could not read \(path): \(error).")
        }
    }

    /// A digest as lowercase hex.
    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
