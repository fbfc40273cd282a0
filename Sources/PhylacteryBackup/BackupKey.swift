import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The key backups are encrypted with: 32 random bytes in a file the operator keeps (never in the
/// backup directory). `phylactery db archive --new-key FILE` makes one.
///
/// Each sealed file gets its own AES-256-GCM key, derived from this one and a random salt with
/// HKDF-SHA256, so nonces never repeat across files. The key's ``id`` (an HMAC of a fixed label, not
/// the key) is stored with each backup, so a wrong key is named as such before anything is decrypted.
public struct BackupKey: Sendable {
    let master: SymmetricKey
    /// 16 hex digits naming the key (safe to print and store).
    public let id: String

    init(bytes: [UInt8]) {
        self.master = SymmetricKey(data: bytes)
        let tag = HMAC<SHA256>.authenticationCode(for: Array("phylactery backup key id".utf8), using: self.master)
        self.id = Array(tag).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads a key file: 32 raw bytes, or 64 hex digits (surrounding whitespace ignored).
    public static func load(from path: String) throws(BackupError) -> BackupKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError(.keyRequired, "The key file \(path) cannot be read. Check the path and its permissions.")
        }
        if data.count == 32 { return BackupKey(bytes: Array(data)) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 64, let bytes = Self.hexBytes(text) { return BackupKey(bytes: bytes) }
        throw BackupError(.invalidArgument, "The key file \(path) must hold 32 random bytes (or 64 hex digits); it holds \(data.count) bytes. Make one with: phylactery db archive --new-key FILE.")
    }

    /// Writes a new random key to `path` (mode 0600); refuses to overwrite an existing file.
    @discardableResult
    public static func generate(at path: String) throws(BackupError) -> BackupKey {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists (a key is never overwritten)" : String(cString: strerror(errno))
            throw BackupError(.fileSystem, "Could not create the key file \(path): \(reason).")
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw BackupError(.fileSystem, "Could not write the key file \(path): \(String(cString: strerror(errno))).")
        }
        return BackupKey(bytes: bytes)
    }

    /// The AES-256-GCM key of one sealed file.
    func fileKey(salt: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: self.master, salt: salt, info: Array("phylactery-backup-file-v1".utf8), outputByteCount: 32)
    }

    /// The raw key bytes (to install the server's copy).
    var bytes: [UInt8] { self.master.withUnsafeBytes { Array($0) } }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = hexValue(high), let l = hexValue(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
