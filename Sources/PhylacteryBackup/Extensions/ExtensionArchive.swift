import Crypto
import Foundation
import NIOCore
import Phylactery
import PostgresNIO
import ZIPFoundation

/// The file an extension export is: a zip archive holding `manifest.json` (an
/// ``ExtensionExportManifest``) and one entry per table, `data/<schema>.<table>.copy`, in
/// PostgreSQL's COPY text format (one line per row, fields separated by tabs, `\N` for NULL, the
/// columns in the manifest's order). Any `COPY … FROM STDIN` reads an entry as it is.
enum ExtensionArchive {
    /// Settings under which every value is written as text that reads back the same on any server:
    /// ISO dates in UTC, all float digits, hex bytea. Set for the exporting and the importing transaction.
    static let textSettings: [(String, String)] = [
        ("DateStyle", "ISO, MDY"), ("IntervalStyle", "postgres"), ("TimeZone", "UTC"),
        ("extra_float_digits", "3"), ("bytea_output", "hex"),
    ]

    static func applyTextSettings(in tx: Transaction) async throws {
        for (name, value) in Self.textSettings {
            try await tx.execute("SELECT set_config(\(name), \(value), true)")
        }
    }

    // MARK: - Writing

    /// Writes the owner's tables as they are in `tx` into a new file at `path`.
    ///
    /// The file is assembled next to `path` and renamed into place once complete.
    /// - Throws: ``BackupError/Code/targetNotEmpty`` when `path` exists.
    static func write(_ inventory: OwnerInventory, in tx: Transaction, to path: String) async throws -> ExtensionExportManifest {
        let target = BackupFiles.absolute(path)
        guard !FileManager.default.fileExists(atPath: target) else {
            throw BackupError(.targetNotEmpty, "\(target) already exists. Choose a new file for the export; nothing was written.")
        }
        let staging = try BackupFiles.makeStagingDirectory(beside: target)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try FileManager.default.createDirectory(atPath: staging + "/data", withIntermediateDirectories: true)

        let info = try await tx.query("SELECT current_database(), current_setting('server_version')").collect().first
        let (database, serverVersion) = try info?.decode((String, String).self) ?? ("", "")
        try await Self.applyTextSettings(in: tx)
        var tables: [ExtensionExportManifest.TableData] = []
        for table in inventory.tables where table.exists {
            let entry = "data/\(table.name.schema).\(table.name.name).copy"
            let (rows, bytes, digest) = try await Self.writeRows(of: table, in: tx, to: staging + "/" + entry)
            tables.append(.init(
                model: table.record.model, schema: table.name.schema, table: table.name.name, revision: table.record.revision,
                columns: table.columns.map { .init(name: $0.name, type: $0.type, notNull: $0.notNull) },
                rows: rows, entry: entry, bytes: bytes, sha256: digest))
        }
        let manifest = ExtensionExportManifest(
            format: ExtensionExportManifest.formatName, formatVersion: ExtensionExportManifest.currentVersion,
            owner: inventory.owner, ownerVersion: inventory.ownerVersion, exportedAt: ManifestCoding.now(), database: database,
            serverVersion: serverVersion.split(separator: " ").first.map(String.init) ?? serverVersion,
            registry: inventory.tables.map { table in
                let record = table.record
                return .init(
                    owner: record.owner, model: record.model, schema: record.schema, table: record.table,
                    ownerVersion: record.ownerVersion, revision: record.revision,
                    declaredColumns: record.declared.columns, declaredIndexes: record.declared.indexes,
                    declaredConstraints: record.declared.constraints, declaredStorage: record.declared.storage,
                    declaredTriggers: record.declared.triggers)
            },
            tables: tables)

        let zipPath = staging + "/export.zip"
        do {
            let archive = try Archive(url: URL(fileURLWithPath: zipPath), accessMode: .create)
            let manifestData = try ManifestCoding.encode(manifest)
            try archive.addEntry(with: ExtensionExportManifest.entryName, type: .file, uncompressedSize: Int64(manifestData.count), compressionMethod: .deflate) { position, size in
                manifestData.subdata(in: Int(position)..<Int(position) + size)
            }
            for table in tables {
                try archive.addEntry(with: table.entry, fileURL: URL(fileURLWithPath: staging + "/" + table.entry), compressionMethod: .deflate)
            }
        } catch {
            throw BackupError(.fileSystem, "Could not write the export archive next to \(target): \(error).")
        }
        try BackupFiles.moveIntoPlace(zipPath, target)
        return manifest
    }

    /// Streams `SELECT col::text, …` into a COPY text file; returns rows, bytes and SHA-256.
    private static func writeRows(of table: OwnerInventory.Table, in tx: Transaction, to path: String) async throws -> (Int, Int64, String) {
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: path)
        else {
            throw BackupError(.fileSystem, "Could not create \(path).")
        }
        defer { try? handle.close() }
        let selectList = table.columns.map { "\(SQLIdentifier.quote($0.name))::text" }.joined(separator: ", ")
        var hasher = SHA256()
        var buffer = ByteBuffer()
        var rows = 0
        var bytes: Int64 = 0
        func flush() throws {
            guard buffer.readableBytes > 0 else { return }
            let chunk = Data(buffer.readableBytesView)
            hasher.update(data: chunk)
            try handle.write(contentsOf: chunk)
            bytes += Int64(chunk.count)
            buffer.clear()
        }
        let sequence = try await tx.query(PostgresQuery(unsafeSQL: "SELECT \(selectList) FROM \(table.name.sql)"))
        for try await row in sequence {
            var first = true
            for cell in row {
                if !first { buffer.writeInteger(UInt8(ascii: "\t")) }
                first = false
                // A text value's binary form is its UTF-8 bytes.
                if let value = cell.bytes {
                    CopyText.escape(value.readableBytesView, into: &buffer)
                } else {
                    buffer.writeStaticString("\\N")
                }
            }
            buffer.writeInteger(UInt8(ascii: "\n"))
            rows += 1
            if buffer.readableBytes >= 1 << 20 { try flush() }
        }
        try flush()
        return (rows, bytes, BackupFiles.hex(hasher.finalize()))
    }

    // MARK: - Reading

    /// Reads an export back: its manifest, and every table entry's size, SHA-256 and row count.
    /// With `directory`, each entry is also written there as `<index>.copy` (in manifest order).
    ///
    /// - Throws: ``BackupError/Code/invalidArchive`` naming the first thing that does not match.
    static func read(_ path: String, extractingTo directory: String? = nil) throws(BackupError) -> ExtensionExportManifest {
        let source = BackupFiles.absolute(path)
        guard FileManager.default.fileExists(atPath: source) else {
            throw BackupError(.invalidArchive, "\(source) does not exist.")
        }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: source), accessMode: .read)
        } catch {
            throw BackupError(.invalidArchive, "\(source) is not an extension export (not a readable zip archive: \(error)).")
        }
        guard let manifestEntry = archive[ExtensionExportManifest.entryName] else {
            throw BackupError(.invalidArchive, "\(source) has no \(ExtensionExportManifest.entryName): it is not an extension export.")
        }
        let manifest: ExtensionExportManifest
        do {
            var data = Data()
            _ = try archive.extract(manifestEntry) { data.append($0) }
            manifest = try ManifestCoding.decode(ExtensionExportManifest.self, from: data)
        } catch {
            throw BackupError(.invalidArchive, "The manifest of \(source) cannot be read: \(error).")
        }
        guard manifest.format == ExtensionExportManifest.formatName else {
            throw BackupError(.invalidArchive, "\(source) holds a '\(manifest.format)', not an extension export.")
        }
        guard manifest.formatVersion <= ExtensionExportManifest.currentVersion else {
            throw BackupError(.invalidArchive, "\(source) was written in export format \(manifest.formatVersion), newer than this phylactery reads (\(ExtensionExportManifest.currentVersion)). Use a newer phylactery.")
        }
        for (index, table) in manifest.tables.enumerated() {
            guard let entry = archive[table.entry] else {
                throw BackupError(.invalidArchive, "\(source) lacks \(table.entry), the data of \(table.qualifiedName).")
            }
            var hasher = SHA256()
            var bytes: Int64 = 0
            var rows = 0
            var output: FileHandle?
            if let directory {
                let file = "\(directory)/\(index).copy"
                guard FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw BackupError(.fileSystem, "Could not create \(file).")
                }
                output = FileHandle(forWritingAtPath: file)
            }
            do {
                defer { try? output?.close() }
                _ = try archive.extract(entry) { chunk in
                    hasher.update(data: chunk)
                    bytes += Int64(chunk.count)
                    for byte in chunk where byte == 0x0A { rows += 1 }
                    try output?.write(contentsOf: chunk)
                }
            } catch {
                throw BackupError(.invalidArchive, "\(table.entry) in \(source) cannot be read: \(error).")
            }
            let digest = BackupFiles.hex(hasher.finalize())
            guard digest == table.sha256, bytes == table.bytes, rows == table.rows else {
                throw BackupError(.invalidArchive, "\(table.entry) in \(source) does not match its manifest (\(rows) rows, \(bytes) bytes, SHA-256 \(digest.prefix(16))…; the manifest says \(table.rows) rows, \(table.bytes) bytes, \(table.sha256.prefix(16))…). The export is damaged.")
            }
        }
        return manifest
    }
}
