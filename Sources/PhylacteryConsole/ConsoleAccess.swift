import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The console's secrets: the access token (kept in the home, mode 0600, reused on every start) and
/// the CSRF token derived from it.
///
/// Every request must carry the access token (a cookie set on the first visit, or
/// `Authorization: Bearer`); every POST must also carry the CSRF token (the `csrf` form field, or the
/// `X-CSRF-Token` header), which only pages served to a holder of the access token contain.
public struct ConsoleAccess: Sendable, Hashable {
    /// The access token: 32 random bytes, hex.
    public let token: String
    /// The CSRF token: an HMAC of a fixed label under the access token, hex.
    public let csrfToken: String

    /// The name of the token file in the home.
    public static let fileName = "console-token"
    /// The cookie that carries the token after the first visit.
    public static let cookieName = "phylactery_console"

    /// Access with a known token (tests, or a daemon that keeps its own).
    public init(token: String) {
        self.token = token
        let mac = HMAC<SHA256>.authenticationCode(for: Data("phylactery-console-csrf".utf8), using: SymmetricKey(data: Data(token.utf8)))
        self.csrfToken = Data(mac).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads the token file in `home`, or creates it (mode 0600, exclusively, so two consoles starting
    /// at once agree on one token). Refuses a file others can read.
    public static func loadOrCreate(home: String) throws(ConsoleError) -> ConsoleAccess {
        let path = home.hasSuffix("/") ? home + fileName : home + "/" + fileName
        do {
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConsoleError(.tokenFile, "cannot create the home \(home) for the console's token (\(error)); pass --home with a writable directory")
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            var bytes = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
            let token = bytes.map { String(format: "%02x", $0) }.joined()
            let written = Array((token + "\n").utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            let synced = fsync(descriptor)
            close(descriptor)
            guard written == token.utf8.count + 1, synced == 0 else {
                unlink(path)
                throw ConsoleError(.tokenFile, "cannot write the console's token to \(path) (errno \(errno)); check the disk and the directory's permissions")
            }
            return ConsoleAccess(token: token)
        }
        guard errno == EEXIST else {
            throw ConsoleError(.tokenFile, "cannot create the console's token file \(path) (errno \(errno)); check the directory's permissions or pass --home")
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConsoleError(.tokenFile, "cannot read the console's token file \(path) (errno \(errno))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw ConsoleError(.tokenFile, "the console's token file \(path) is readable by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run `chmod 600 \(path)` or delete it to make a new token")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConsoleError(.tokenFile, "cannot read the console's token file \(path); check its permissions or delete it to make a new token")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 32, token.allSatisfy(\.isHexDigit) else {
            throw ConsoleError(.tokenFile, "the console's token file \(path) does not hold a token; delete it and start the console again to make a new one")
        }
        return ConsoleAccess(token: token)
    }

    /// Compares in time independent of where the strings differ.
    static func constantTimeEqual(_ a: some StringProtocol, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    /// Whether `candidate` is the access token.
    public func accepts(token candidate: some StringProtocol) -> Bool { Self.constantTimeEqual(candidate, self.token) }
    /// Whether `candidate` is the CSRF token.
    public func accepts(csrf candidate: some StringProtocol) -> Bool { Self.constantTimeEqual(candidate, self.csrfToken) }
}
