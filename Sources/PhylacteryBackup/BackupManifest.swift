import Foundation

/// The parts of PostgreSQL's `backup_manifest` backups need: the cluster, the files' sizes and the WAL
/// range the backup must replay to be consistent.
struct BackupManifest: Decodable, Sendable {
    struct File: Decodable, Sendable {
        var size: UInt64
        enum CodingKeys: String, CodingKey { case size = "Size" }
    }

    struct WALRange: Decodable, Sendable {
        var timeline: UInt32
        var start: LSN
        var end: LSN
        enum CodingKeys: String, CodingKey {
            case timeline = "Timeline"
            case start = "Start-LSN"
            case end = "End-LSN"
        }
    }

    var systemIdentifier: UInt64
    var files: [File]
    var walRanges: [WALRange]

    enum CodingKeys: String, CodingKey {
        case systemIdentifier = "System-Identifier"
        case files = "Files"
        case walRanges = "WAL-Ranges"
    }

    /// Bytes of the files the backup covers (incremental files count with their stored size).
    var dataSize: UInt64 { files.reduce(0) { $0 + $1.size } }

    static func read(_ path: String) throws(BackupError) -> BackupManifest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError(.invalidArchive, "The backup manifest \(path) is missing.")
        }
        do {
            let manifest = try JSONDecoder().decode(BackupManifest.self, from: data)
            guard !manifest.walRanges.isEmpty else { throw BackupError(.invalidArchive, "The backup manifest \(path) names no WAL range.") }
            return manifest
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.invalidArchive, "The backup manifest \(path) cannot be read: \(error).")
        }
    }
}
