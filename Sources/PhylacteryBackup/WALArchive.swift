import Foundation

/// The archived WAL in `DIR/wal`: what is there, reading it back (decrypting when sealed), and the
/// server's encrypting archive step.
public struct WALArchive: Sendable {
    /// 16 MB, initdb's default.
    static let defaultSegmentSize: UInt64 = 16 << 20

    let directory: String
    let segmentSize: UInt64
    var segmentsPerId: UInt64 { (UInt64(1) << 32) / segmentSize }

    /// PostgreSQL's name → the stored file's name (with `.enc` when sealed), for every archive file.
    func listing() -> [String: String] {
        var files: [String: String] = [:]
        for stored in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let name = stored.hasSuffix(SealedFile.suffix) ? String(stored.dropLast(SealedFile.suffix.count)) : stored
            if WALFileName(name, segmentsPerId: segmentsPerId) != nil { files[name] = stored }
        }
        return files
    }

    /// The plain bytes of the archived file `name`.
    func read(_ name: String, key: BackupKey?) throws(BackupError) -> Data {
        guard let stored = listing()[name] else {
            throw BackupError(.notRestorable, "\(name) is not in the WAL archive \(directory).")
        }
        guard let data = FileManager.default.contents(atPath: directory + "/" + stored) else {
            throw BackupError(.fileSystem, "Could not read \(directory)/\(stored).")
        }
        guard stored.hasSuffix(SealedFile.suffix) else { return data }
        guard let key else {
            throw BackupError(.keyRequired, "The archived WAL in \(directory) is encrypted; pass the key file (--key-file KEY).")
        }
        do {
            return try SealedFile.open(inflating: data, key: key, name: stored)
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.invalidArchive, "\(stored) cannot be decrypted: \(error).")
        }
    }

    /// The history of the newest timeline that has a history file among `names` — the timeline a
    /// recovery with `recovery_target_timeline = 'latest'` follows. `read` gives a file's contents.
    func newestHistory(names: some Sequence<String>, read: (String) throws(BackupError) -> Data) throws(BackupError) -> TimelineHistory {
        let histories = names.compactMap { WALFileName($0, segmentsPerId: segmentsPerId) }.filter { $0.kind == .history }
        guard let newest = histories.max(by: { $0.timeline < $1.timeline }) else { return .first }
        return TimelineHistory(timeline: newest.timeline, text: String(decoding: try read(newest.name), as: UTF8.self))
    }

    // MARK: - The server's archive step (encrypted)

    /// Seals the WAL file `source` (`%p`, relative to the data directory the server runs this in) as
    /// `directory/name.enc` (`%f`): deflated, encrypted, written to a temporary file, `fsync`ed,
    /// renamed into place and the directory `fsync`ed. A file already archived under that name is
    /// accepted when it holds the same WAL (a retry after a crash) and refused otherwise.
    public static func push(segment source: String, name: String, to directory: String, key: BackupKey) throws(BackupError) {
        guard WALFileName(name, segmentsPerId: 256) != nil || name.hasSuffix(".history") || name.hasSuffix(".backup") || name.hasSuffix(".partial") else {
            throw BackupError(.invalidArgument, "\(name) is not a WAL file name.")
        }
        guard let plain = FileManager.default.contents(atPath: source) else {
            throw BackupError(.fileSystem, "Could not read \(source) to archive it.")
        }
        let destination = directory + "/" + name + SealedFile.suffix
        if let existing = FileManager.default.contents(atPath: destination) {
            let archived: Data
            do {
                archived = try SealedFile.open(inflating: existing, key: key, name: name + SealedFile.suffix)
            } catch {
                throw BackupError(.invalidArchive, "\(destination) already exists but cannot be opened (\(error)); it is left alone. Move it aside after checking it.")
            }
            guard archived == plain else {
                throw BackupError(.invalidArchive, "\(destination) was already archived with other contents; it is never overwritten. Check that two servers do not archive into one directory.")
            }
            return
        }
        let sealed: Data
        do {
            sealed = try SealedFile.seal(deflating: plain, key: key)
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.fileSystem, "Could not encrypt \(name): \(error).")
        }
        try DurableFile.replace(destination, with: sealed, mode: 0o600)
    }
}
