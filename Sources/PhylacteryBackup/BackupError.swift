/// Why a backup, a verification, a restore, WAL archiving, an extension export, import or purge, or a
/// server upgrade was refused or failed.
///
/// ``description`` is one or two sentences: what went wrong and the fix. Nothing a refusal names was
/// changed: a refused restore, import, purge or upgrade leaves the database and the data directory as
/// they were.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Compare with the static members; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// `pg_dump`, `pg_restore`, `pg_basebackup`, `pg_upgrade`, … is not installed where Phylactery looks for it.
        public static let toolUnavailable = Self("toolUnavailable")
        /// The tool is older than the server it would talk to (or than the archive it would read).
        public static let toolTooOld = Self("toolTooOld")
        /// The tool ran and failed; the message quotes its last lines, ``BackupError/details`` all of it.
        public static let toolFailed = Self("toolFailed")
        /// A backup or export file is missing parts, damaged, or differs from what its manifest or the
        /// catalog recorded (or PostgreSQL's own verification of it failed).
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
        /// A file or directory could not be created, read, written or moved.
        public static let fileSystem = Self("fileSystem")
        /// Physical backups are not configured for this home (`phylactery db archive --to DIR` first).
        public static let notConfigured = Self("notConfigured")
        /// A setting or argument is invalid (the message names it).
        public static let invalidArgument = Self("invalidArgument")
        /// The server must run for this (a base backup), or must not (a restore); or another process
        /// holds what is needed (a runtime the home, another backup the backup directory).
        public static let serverState = Self("serverState")
        /// The backup is encrypted and no key was given.
        public static let keyRequired = Self("keyRequired")
        /// The key given is not the one the backup was encrypted with.
        public static let wrongKey = Self("wrongKey")
        /// No backup and WAL can reach the point asked for.
        public static let notRestorable = Self("notRestorable")
        /// The restored cluster failed a check; it was not swapped in.
        public static let checkFailed = Self("checkFailed")
        /// The database refused or failed a query the step needed.
        public static let database = Self("database")

        public var description: String { self.name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String
    /// The failing program's output, for `PHYLACTERY_VERBOSE` and bug reports. Never holds a password.
    public var details: String?

    /// An error of `code` saying `message` (what went wrong and the fix).
    public init(_ code: Code, _ message: String, details: String? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { self.message }
}
