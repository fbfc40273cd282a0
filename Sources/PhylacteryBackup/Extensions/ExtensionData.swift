public import Foundation
public import Phylactery
import NIOCore
import PostgresNIO

/// One extension's tables, taken out of a database and put into another: export, import, purge.
///
/// ```swift
/// let data = ExtensionData(client: client)
/// try await data.export("tasks", to: "tasks.phylactery-export")            // the owner's tables and registry rows
/// try await ExtensionData(client: other).importArchive(at: "tasks.phylactery-export", federation: federation)
/// try await data.purge("tasks", federation: federation, safeguard: .exportTo("tasks-final.phylactery-export"))
/// ```
///
/// The file is described by ``ExtensionExportManifest`` (a zip of `manifest.json` and one COPY
/// text entry per table). Only the owner's own tables travel; rows it keeps in the core's chambers
/// (memories with `owner` set to its slug, its queued jobs, facts) stay where they are.
public struct ExtensionData: Sendable {
    /// The database exported from, imported into, or purged.
    public let client: PhylacteryClient

    /// Works on the database of `client` (which must be running).
    public init(client: PhylacteryClient) {
        self.client = client
    }

    // MARK: - Export

    /// Writes the tables of `owner` (registered or not) and its registry rows into a new file at
    /// `path`, from one consistent snapshot, and reads the file back to verify it.
    ///
    /// - Throws: ``BackupError/Code/ownerUnknown`` when the database has no registry rows for
    ///   `owner`; ``BackupError/Code/targetNotEmpty`` when `path` exists.
    @discardableResult
    public func export(_ owner: String, to path: String) async throws -> ExtensionExportManifest {
        let manifest = try await self.client.transaction(options: .init(isolationLevel: .repeatableRead, readOnly: true)) { tx in
            let inventory = try await OwnerInventory.read(owner: owner, in: tx)
            guard !inventory.isEmpty else { throw Self.unknown(owner, database: self.client.configuration.url.database) }
            return try await ExtensionArchive.write(inventory, in: tx, to: path)
        }
        let reread = try ExtensionArchive.read(path)
        guard reread == manifest else {
            throw BackupError(.invalidArchive, "\(path) does not read back as it was written; the disk may be failing.")
        }
        return manifest
    }

    /// Reads an export and checks every entry against its manifest (sizes, SHA-256, row counts),
    /// without touching a database.
    public static func verify(_ path: String) throws(BackupError) -> ExtensionExportManifest {
        try ExtensionArchive.read(path)
    }

    // MARK: - Import

    /// What ``importArchive(at:federation:)`` did.
    public struct ImportOutcome: Sendable {
        /// The export's manifest.
        public var manifest: ExtensionExportManifest
        /// The migration applied first to create or update the owner's tables, if one was needed.
        public var migration: MigrationFile?
        /// Rows loaded per table (`schema.table`), in load order.
        public var rows: [(table: String, rows: Int)]
    }

    /// Loads an export into this database.
    ///
    /// 1. The file is read and verified whole before anything else.
    /// 2. The owner must be registered in `federation` (its extension installed here), and its
    ///    models must declare the exported tables and columns; otherwise it is refused before any DDL.
    /// 3. The owner's tables are migrated (``Migrator/auto(message:)`` over the owner, the core and
    ///    the owners it references); a plan with hazards is refused, naming the steps.
    /// 4. In one transaction: every exported column must exist with the same type (else
    ///    ``BackupError/Code/schemaMismatch`` with each difference), the owner's tables must be empty
    ///    (else ``BackupError/Code/targetNotEmpty``), and every table is loaded with COPY and its row
    ///    count checked. Any failure rolls all of it back.
    @discardableResult
    public func importArchive(at path: String, federation: Federation) async throws -> ImportOutcome {
        let scratch = try PostgresTools.privateDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let manifest = try ExtensionArchive.read(path, extractingTo: scratch)
        let slug = manifest.owner
        guard let owner = federation.owner(slug), slug != Federation.coreSlug else {
            throw BackupError(.ownerRegistration, "The export holds the tables of '\(slug)', which is not registered here (registered: \(federation.owners.map(\.slug).filter { $0 != Federation.coreSlug }.joined(separator: ", "))). Install that extension first, so its models say what its tables are; nothing was changed.")
        }
        try Self.checkDeclarations(manifest, against: owner)
        let migration = try await Migrator(client: self.client, federation: try federation.restricted(to: slug))
            .auto(message: "import extension \(slug)")
        let rows = try await self.client.transaction { tx in
            try await tx.holdMigrationLock()
            let inventory = try await OwnerInventory.read(owner: slug, in: tx)
            try Self.checkShapes(manifest, against: inventory, ownerVersion: owner.version)
            for table in manifest.tables {
                let filled = try await tx.rows(PostgresQuery(unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(SQLIdentifier.quote(schema: table.schema, name: table.table)))"), doing: "Looking into \(table.qualifiedName)")
                    .first?.decode(Bool.self) ?? false
                if filled {
                    throw BackupError(.targetNotEmpty, "\(table.qualifiedName) already holds rows; an import loads into empty tables only. Purge or empty the owner's tables first; nothing was imported.")
                }
            }
            try await ExtensionArchive.applyTextSettings(in: tx)
            var loaded: [(table: String, rows: Int)] = []
            for (index, table) in manifest.tables.enumerated() {
                let file = "\(scratch)/\(index).copy"
                try await tx.copyFrom(table: table.table, schema: table.schema, columns: table.columns.map(\.name)) { writer in
                    try await Self.send(file: file, to: writer)
                }
                let count = try await tx.rows(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(SQLIdentifier.quote(schema: table.schema, name: table.table))"), doing: "Counting \(table.qualifiedName)")
                    .first?.decode(Int.self) ?? -1
                guard count == table.rows else {
                    throw BackupError(.invalidArchive, "\(table.qualifiedName) holds \(count) rows after loading, the export says \(table.rows); nothing was imported.")
                }
                loaded.append((table.qualifiedName, count))
            }
            return loaded
        }
        return ImportOutcome(manifest: manifest, migration: migration, rows: rows)
    }

    /// Streams a COPY text file to the server in 1 MiB chunks.
    private static func send(file: String, to writer: PostgresCopyFromWriter) async throws {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw BackupError(.fileSystem, "Could not read \(file).")
        }
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            try await writer.write(ByteBuffer(bytes: chunk))
        }
    }

    /// Before any DDL: the owner's models must declare the exported tables and, for each, the
    /// exported columns (names only; types are compared once the tables exist).
    static func checkDeclarations(_ manifest: ExtensionExportManifest, against owner: Federation.Owner) throws(BackupError) {
        var problems: [String] = []
        let declared = Dictionary(owner.models.map { ("\($0.schema.chamber.schema).\($0.schema.table)", Set($0.schema.allColumns.map(\.name))) }, uniquingKeysWith: { first, _ in first })
        for table in manifest.tables {
            guard let columns = declared[table.qualifiedName] else {
                problems.append("no model of '\(owner.slug)' \(owner.version) declares \(table.qualifiedName)")
                continue
            }
            let exported = Set(table.columns.map(\.name))
            let missing = exported.subtracting(columns).sorted()
            let extra = columns.subtracting(exported).sorted()
            if !missing.isEmpty { problems.append("\(table.qualifiedName): the export has column(s) \(missing.joined(separator: ", ")) that the model does not declare") }
            if !extra.isEmpty { problems.append("\(table.qualifiedName): the model declares column(s) \(extra.joined(separator: ", ")) that the export lacks") }
        }
        guard problems.isEmpty else {
            throw BackupError(.schemaMismatch, "The export of '\(manifest.owner)' \(manifest.ownerVersion ?? "") does not fit '\(owner.slug)' \(owner.version) as registered here: \(problems.joined(separator: "; ")). Import it with the extension version that exported it; nothing was changed.")
        }
    }

    /// Inside the import transaction: every exported column exists with the type the export has.
    static func checkShapes(_ manifest: ExtensionExportManifest, against inventory: OwnerInventory, ownerVersion: String) throws(BackupError) {
        var problems: [String] = []
        let live = Dictionary(inventory.tables.map { ($0.name.description, $0) }, uniquingKeysWith: { first, _ in first })
        for table in manifest.tables {
            guard let target = live[table.qualifiedName], target.exists else {
                problems.append("\(table.qualifiedName) does not exist here")
                continue
            }
            let types = Dictionary(target.columns.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
            for column in table.columns {
                switch types[column.name] {
                case nil: problems.append("\(table.qualifiedName).\(column.name) does not exist here")
                case let type? where type != column.type: problems.append("\(table.qualifiedName).\(column.name) is \(type) here, \(column.type) in the export")
                default: break
                }
            }
        }
        guard problems.isEmpty else {
            throw BackupError(.schemaMismatch, "The export of '\(manifest.owner)' \(manifest.ownerVersion ?? "") does not match the tables of '\(inventory.owner)' \(ownerVersion) here: \(problems.joined(separator: "; ")). Nothing was imported.")
        }
    }

    static func unknown(_ owner: String, database: String) -> BackupError {
        BackupError(.ownerUnknown, "The database \(database) has no tables of '\(owner)': the ownership registry has no row for it. `phylactery migrate status` lists the owners it knows.")
    }
}
