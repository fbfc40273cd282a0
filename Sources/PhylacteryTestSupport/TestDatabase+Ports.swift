import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PhylacteryEmbedded

extension TestDatabase {
    /// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice for port 0), for a
    /// test's own server or pooler: tests run in parallel, so none uses a fixed port. Someone may take
    /// it before the caller binds it; callers that can, try again with another.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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
