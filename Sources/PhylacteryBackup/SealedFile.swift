import Crypto
import Foundation
import ZIPFoundation

/// The encrypted-file format of backups (`*.enc` in the backup directory).
///
/// ```
/// header  "PHYLSEAL" · version 1 · flags (bit 0: deflated) · key id (8 bytes) · salt (32 bytes) · chunk size (UInt32)
/// chunks  length (UInt32, ciphertext bytes) · ciphertext · GCM tag (16 bytes), until the chunk marked final
/// ```
///
/// The plaintext is cut into chunks of 1 MiB, each sealed with AES-256-GCM under the file's own key
/// (``BackupKey/fileKey(salt:)``); the nonce is the chunk's index, and the authenticated data is the
/// header, the index and whether the chunk is the last — so a chunk that is altered, moved, dropped,
/// or a file cut short, fails to open. WAL segments are deflated first (a segment switched by
/// `archive_timeout` is mostly zeros); base backups are already gzip-compressed by pg_basebackup.
enum SealedFile {
    static let magic = Array("PHYLSEAL".utf8)
    static let version: UInt8 = 1
    static let headerSize = 8 + 1 + 1 + 8 + 32 + 4
    static let chunkSize = 1 << 20
    static let tagSize = 16
    /// The suffix sealed files carry in the backup directory.
    static let suffix = ".enc"

    struct Header {
        var deflated: Bool
        var keyID: [UInt8]
        var salt: [UInt8]
        var chunkSize: Int

        var bytes: [UInt8] {
            var out = SealedFile.magic
            out.append(SealedFile.version)
            out.append(deflated ? 1 : 0)
            out += keyID
            out += salt
            out += withUnsafeBytes(of: UInt32(chunkSize).bigEndian, Array.init)
            return out
        }

        init(deflated: Bool, keyID: [UInt8], salt: [UInt8], chunkSize: Int) {
            self.deflated = deflated
            self.keyID = keyID
            self.salt = salt
            self.chunkSize = chunkSize
        }

        init(parsing bytes: [UInt8], name: String) throws(BackupError) {
            guard bytes.count == SealedFile.headerSize, Array(bytes[0..<8]) == SealedFile.magic else {
                throw BackupError(.invalidArchive, "\(name) is not an encrypted Phylactery backup file (its header is missing or damaged).")
            }
            guard bytes[8] == SealedFile.version else {
                throw BackupError(.invalidArchive, "\(name) was written by a newer format (version \(bytes[8])); use a newer phylactery to read it.")
            }
            self.deflated = bytes[9] & 1 != 0
            self.keyID = Array(bytes[10..<18])
            self.salt = Array(bytes[18..<50])
            self.chunkSize = Int(bytes[50..<54].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard chunkSize > 0, chunkSize <= 64 << 20 else {
                throw BackupError(.invalidArchive, "\(name) has a damaged header (chunk size \(chunkSize)).")
            }
        }
    }

    static func keyID(_ key: BackupKey) -> [UInt8] { BackupKey.hexBytes(key.id) ?? [] }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The authenticated data of chunk `index`.
    static func aad(header: [UInt8], index: UInt64, final: Bool) -> [UInt8] {
        header + withUnsafeBytes(of: index.bigEndian, Array.init) + [final ? 1 : 0]
    }

    static func nonce(_ index: UInt64) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: [0, 0, 0, 0] + withUnsafeBytes(of: index.bigEndian, Array.init))
    }

    // MARK: - Writing

    /// Seals `plaintext` chunk by chunk: `next()` gives the plaintext in order (empty at the end),
    /// `write` receives the sealed bytes.
    static func seal(
        key: BackupKey, deflated: Bool,
        next: () throws -> Data, write: (Data) throws -> Void
    ) throws {
        let salt = (0..<32).map { _ in UInt8.random(in: .min ... .max) }
        let header = Header(deflated: deflated, keyID: keyID(key), salt: salt, chunkSize: chunkSize).bytes
        let fileKey = key.fileKey(salt: salt)
        try write(Data(header))
        var index: UInt64 = 0
        var current = try next()
        while true {
            let following = current.isEmpty ? Data() : try next()
            let final = following.isEmpty
            let box = try AES.GCM.seal(current, using: fileKey, nonce: try nonce(index), authenticating: aad(header: header, index: index, final: final))
            var chunk = Data(withUnsafeBytes(of: UInt32(box.ciphertext.count).bigEndian, Array.init))
            chunk.append(box.ciphertext)
            chunk.append(box.tag)
            try write(chunk)
            if final { return }
            index += 1
            current = following
        }
    }

    /// Seals the file at `source` into `destination` (created; the caller renames it into place).
    /// `progress` gets the plaintext bytes done so far.
    static func seal(file source: String, to destination: String, key: BackupKey, progress: (UInt64) -> Void = { _ in }) throws {
        try stream(source, to: destination, doing: "encrypt", progress: progress) { read, write in
            try seal(key: key, deflated: false, next: { try read(chunkSize) }, write: write)
        }
    }

    /// Runs `body` with a reader of `source` and a writer of a new file at `destination`, which is
    /// flushed when `body` returns and removed when it throws.
    private static func stream(
        _ source: String, to destination: String, doing action: String, progress: (UInt64) -> Void,
        _ body: (_ read: (Int) throws -> Data, _ write: (Data) throws -> Void) throws -> Void
    ) throws {
        guard let input = FileHandle(forReadingAtPath: source) else {
            throw BackupError(.fileSystem, "Could not read \(source) to \(action) it.")
        }
        defer { try? input.close() }
        let output = try DurableFile.create(destination)
        var done: UInt64 = 0
        do {
            try withoutActuallyEscaping(progress) { progress in
                try body({ count in
                    let data = try input.read(upToCount: count) ?? Data()
                    done += UInt64(data.count)
                    progress(done)
                    return data
                }, { try output.write(contentsOf: $0) })
            }
            try output.finish()
        } catch {
            output.abandon()
            throw error
        }
    }

    /// Deflates and seals `data` (a WAL segment) in memory.
    static func seal(deflating data: Data, key: BackupKey) throws -> Data {
        let compressed = try deflate(data)
        var out = Data()
        var offset = 0
        try seal(key: key, deflated: true, next: {
            let end = min(offset + chunkSize, compressed.count)
            defer { offset = end }
            return compressed.subdata(in: offset..<end)
        }, write: { out.append($0) })
        return out
    }

    // MARK: - Reading

    /// Opens a sealed stream: `read(n)` gives up to `n` sealed bytes (fewer only at the end), `write`
    /// receives the plaintext (still deflated if the header says so). Returns whether it is deflated.
    @discardableResult
    static func open(
        name: String, key: BackupKey,
        read: (Int) throws -> Data, write: (Data) throws -> Void
    ) throws -> Bool {
        let headerBytes = Array(try read(headerSize))
        let header = try Header(parsing: headerBytes, name: name)
        guard header.keyID == keyID(key) else {
            throw BackupError(.wrongKey, "\(name) was encrypted with key \(hex(header.keyID)), not with the key given (\(key.id)). Pass the key file the backups were made with.")
        }
        let fileKey = key.fileKey(salt: header.salt)
        var index: UInt64 = 0
        while true {
            let lengthBytes = try read(4)
            guard lengthBytes.count == 4 else {
                throw BackupError(.invalidArchive, "\(name) is cut short: it ends after chunk \(index) without its final chunk.")
            }
            let length = Int(lengthBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard length <= header.chunkSize else {
                throw BackupError(.invalidArchive, "\(name): chunk \(index) is damaged (it claims \(length) bytes).")
            }
            let body = try read(length + tagSize)
            guard body.count == length + tagSize else {
                throw BackupError(.invalidArchive, "\(name) is cut short inside chunk \(index).")
            }
            let ciphertext = body.prefix(length)
            let tag = body.suffix(tagSize)
            var opened: Data?
            var final = false
            for candidate in [false, true] {
                let box = try AES.GCM.SealedBox(nonce: try nonce(index), ciphertext: ciphertext, tag: tag)
                if let plain = try? AES.GCM.open(box, using: fileKey, authenticating: aad(header: headerBytes, index: index, final: candidate)) {
                    opened = plain
                    final = candidate
                    break
                }
            }
            guard let opened else {
                throw BackupError(.invalidArchive, "\(name): chunk \(index) (bytes from \(UInt64(index) * UInt64(header.chunkSize)) of the plaintext) fails authentication: the file was altered or damaged.")
            }
            try write(opened)
            if final {
                guard try read(1).isEmpty else {
                    throw BackupError(.invalidArchive, "\(name) has bytes after its final chunk: the file was altered.")
                }
                return header.deflated
            }
            index += 1
        }
    }

    /// Opens the sealed file at `source` into `destination`; `progress` gets sealed bytes read so far.
    static func open(file source: String, to destination: String, key: BackupKey, name: String, progress: (UInt64) -> Void = { _ in }) throws {
        try stream(source, to: destination, doing: "decrypt", progress: progress) { read, write in
            try open(name: name, key: key, read: read, write: write)
        }
    }

    /// Opens a sealed, deflated WAL segment held in memory.
    static func open(inflating sealed: Data, key: BackupKey, name: String) throws -> Data {
        var offset = sealed.startIndex
        var plain = Data()
        let deflated = try open(name: name, key: key, read: { count in
            let end = min(offset + count, sealed.endIndex)
            defer { offset = end }
            return sealed.subdata(in: offset..<end)
        }, write: { plain.append($0) })
        return deflated ? try inflate(plain, name: name) : plain
    }

    // MARK: - Deflate (zlib, through ZIPFoundation)

    static func deflate(_ data: Data) throws -> Data {
        var out = Data()
        _ = try Data.compress(size: Int64(data.count), bufferSize: 1 << 20, provider: { position, size in
            data.subdata(in: Int(position)..<min(Int(position) + size, data.count))
        }, consumer: { out.append($0) })
        return out
    }

    static func inflate(_ data: Data, name: String) throws -> Data {
        // ZIPFoundation's decoder hands zlib `bufferSize` bytes of input whatever the chunk holds, so
        // the whole stream goes in as one chunk of exactly that size; a second request means the
        // stream ended early (deflate's largest ratio, ~1000:1, bounds the output loop).
        var out = Data()
        var requests = 0
        do {
            _ = try Data.decompress(size: Int64(data.count), bufferSize: max(data.count, 1), skipCRC32: true, provider: { _, _ in
                requests += 1
                guard requests == 1 else { throw BackupError(.invalidArchive, "\(name): the compressed stream ends early.") }
                return data
            }, consumer: { out.append($0) })
        } catch {
            throw BackupError(.invalidArchive, "\(name) decrypted but does not inflate (\(error)): the file was damaged before it was sealed.")
        }
        return out
    }
}
