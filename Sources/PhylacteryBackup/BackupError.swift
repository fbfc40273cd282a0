/// Why a backup, restore, extension export, import or purge, or a server upgrade was refused or failed.
///
/// ``description`` is one or two sentences: what went wrong and the fix. Nothing a refusal names was
/// changed: a refused restore, import, purge or upgrade leaves the database and the data directory as
/// they were.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Compare with the static members; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// `pg_dump`, `pg_restore` or `pg_upgrade` is not installed where Phylactery looks for it.
        public static let toolUnavailable = Self("toolUnavailable")
        /// The tool is older than the server it would talk to (or than the archive it would read).
        public static let toolTooOld = Self("toolTooOld")
        /// The tool ran and failed; the message quotes its last line, ``BackupError/details`` all of it.
        public static let toolFailed = Self("toolFailed")
        /// A backup or export file is missing parts, or a part's checksum differs from its manifest.
        public static let invalidArchive = Self("invalidArchive")
        /// The exported tables do not have the shape the importing database gives them.
        public static let schemaMismatch = Self("schemaMismatch")
        /// The target already holds data that a restore or import would mix with.
        public static let targetNotEmpty = Self("targetNotEmpty")
        /// The owner is registered in the federation (purge), or is not (import).
        public static let ownerRegistration = Self("ownerRegistration")
        /// The owner has no tables and no registry rows in this database.
        public static let ownerUnknown = Self("ownerUnknown")
        /// An upgrade was refused: another major version without a verified backup, a downgrade, nothing to do.
        public static let upgradeRefused = Self("upgradeRefused")
        /// An upgrade step failed; the message says what state the cluster was left in.
        public static let upgradeFailed = Self("upgradeFailed")
        /// A file or directory could not be created, read or written.
        public static let fileSystem = Self("fileSystem")

        public var description: String { self.name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String
    /// The failing program's output, for `PHYLACTERY_VERBOSE` and bug reports. Never holds a password.
    public var details: String?

    public init(_ code: Code, _ message: String, details: String? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { self.message }
}
