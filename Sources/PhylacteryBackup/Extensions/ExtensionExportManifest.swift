public import Foundation
import Phylactery

/// `manifest.json` of an extension export: the owner, its registry rows, and for every table the
/// columns it was exported with, the row count and the SHA-256 of its data entry.
public struct ExtensionExportManifest: Codable, Sendable, Hashable {
    /// Always ``ExtensionExportManifest/formatName``.
    public var format: String
    /// The layout's version; a reader refuses versions it does not know.
    public var formatVersion: Int
    /// The extension's slug.
    public var owner: String
    /// The extension's version as its registry rows recorded it.
    public var ownerVersion: String?
    /// When the export was taken.
    public var exportedAt: Date
    /// The database it was exported from.
    public var database: String
    /// `server_version` of that server.
    public var serverVersion: String
    /// The owner's rows of `public.phylactery_registry`.
    public var registry: [RegistryRow]
    /// The tables, in the order an import loads them (tables another one references come first).
    public var tables: [TableData]

    /// One row of the ownership registry.
    public struct RegistryRow: Codable, Sendable, Hashable {
        /// The extension's slug.
        public var owner: String
        /// The model's Swift name.
        public var model: String
        /// The table's chamber (schema) and name.
        public var schema: String
        public var table: String
        /// The extension's version when the model was last migrated.
        public var ownerVersion: String
        /// The model's schema fingerprint when it was last migrated.
        public var revision: String
        /// Names of the columns, indexes, constraints, storage settings and triggers the model declared.
        public var declaredColumns: [String]
        /// Index names the model declared.
        public var declaredIndexes: [String]
        /// Unique, check and foreign-key constraint names the model declared.
        public var declaredConstraints: [String]
        /// Storage parameters the model set (`fillfactor`, …).
        public var declaredStorage: [String]
        /// Trigger names the model declared, if any.
        public var declaredTriggers: [String]?
    }

    /// One exported column.
    public struct Column: Codable, Sendable, Hashable {
        /// The column's name.
        public var name: String
        /// The type as the server spelled it (`format_type`), e.g. `timestamp with time zone`.
        public var type: String
        /// Whether the column was NOT NULL.
        public var notNull: Bool
    }

    /// One table's data: an entry of COPY text format, one line per row, fields in ``columns`` order.
    public struct TableData: Codable, Sendable, Hashable {
        /// The model's Swift name.
        public var model: String
        /// The table's chamber (schema) and name.
        public var schema: String
        public var table: String
        /// The model's schema fingerprint (the registry row's revision).
        public var revision: String
        /// The exported columns, in the order of the entry's fields (generated columns are left out).
        public var columns: [Column]
        /// Rows in the entry.
        public var rows: Int
        /// The entry's path inside the export, `data/<schema>.<table>.copy`.
        public var entry: String
        /// The entry's (uncompressed) size.
        public var bytes: Int64
        /// SHA-256 of the entry's (uncompressed) content, lowercase hex.
        public var sha256: String

        /// `schema.table`.
        public var qualifiedName: String { "\(self.schema).\(self.table)" }
    }

    /// `phylactery-extension-export`.
    public static let formatName = "phylactery-extension-export"
    /// The version this code writes and reads.
    public static let currentVersion = 1
    /// The manifest's entry name.
    public static let entryName = "manifest.json"

    /// Total rows over every table.
    public var totalRows: Int { self.tables.reduce(0) { $0 + $1.rows } }
}
