/// Why a backup, a verification, a restore or WAL archiving failed.
///
/// ``description`` says what went wrong and what to do; ``details`` carries the failing program's
/// output for `PHYLACTERY_VERBOSE=1` and bug reports.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Compare with the static members; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// Backups are not configured for this home (`phylactery db archive --to DIR` first).
        public static let notConfigured = Self("notConfigured")
        /// A setting or argument is invalid (the message names it).
        public static let invalidArgument = Self("invalidArgument")
        /// The server must run for this (a base backup), or must not (a restore).
        public static let serverState = Self("serverState")
        /// A PostgreSQL tool (pg_basebackup, pg_verifybackup, pg_combinebackup, pg_amcheck, …) failed.
        public static let toolFailed = Self("toolFailed")
        /// A stored file does not match what was recorded, or PostgreSQL's verification failed.
        public static let corrupted = Self("corrupted")
        /// The backup is encrypted and no key, or another key, was given.
        public static let keyRequired = Self("keyRequired")
        /// The key given is not the one the backup was encrypted with.
        public static let wrongKey = Self("wrongKey")
        /// No backup and WAL can reach the point asked for.
        public static let notRestorable = Self("notRestorable")
        /// WAL archiving is not working (failing, or configured but not active).
        public static let archiving = Self("archiving")
        /// The restored cluster failed a check; it was not swapped in.
        public static let checkFailed = Self("checkFailed")
        /// A file or directory could not be read, written or moved.
        public static let fileSystem = Self("fileSystem")
        /// The database refused or failed a query the step needed.
        public static let database = Self("database")

        public var description: String { self.name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String
    /// The failing program's output, when there is one.
    public var details: String?

    /// An error of `code` saying `message` (what went wrong and the fix).
    public init(_ code: Code, _ message: String, details: String? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { self.message }
}
