public import Foundation

/// The three columns every model has: a time-ordered UUID primary key and the times the core
/// keeps for it.
///
/// `id` is a version 7 UUID (RFC 9562): its first 48 bits are the creation time in milliseconds,
/// so new rows land at the right-hand end of the primary-key index instead of at random pages.
/// `createdAt` is set by the database when the row is inserted and never changes; `updatedAt` is
/// set by the database on insert and on every update made through Phylactery.
public protocol UUIDBase: Sendable {
    /// The primary key, a version 7 UUID unless the model chose otherwise.
    var id: UUID { get set }
    /// When the row was inserted (set by the database).
    var createdAt: Date { get set }
    /// When the row was last written through Phylactery (set by the database).
    var updatedAt: Date { get set }
}

extension UUID {
    /// A new version 7 UUID: 48 bits of Unix time in milliseconds, 12 bits of sub-millisecond time
    /// (so ids made by one process in one millisecond still sort in creation order), then 62 random bits.
    public static func v7(at date: Date = Date()) -> UUID {
        let nanoseconds = UInt64(max(0, date.timeIntervalSince1970) * 1_000_000_000)
        let milliseconds = nanoseconds / 1_000_000
        // The fraction of the millisecond, scaled to 12 bits (RFC 9562 §6.2, method 3).
        let fraction = UInt16(((nanoseconds % 1_000_000) * 4096) / 1_000_000)
        var random = SystemRandomNumberGenerator()
        let tail = random.next() as UInt64
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        bytes.0 = UInt8(truncatingIfNeeded: milliseconds >> 40)
        bytes.1 = UInt8(truncatingIfNeeded: milliseconds >> 32)
        bytes.2 = UInt8(truncatingIfNeeded: milliseconds >> 24)
        bytes.3 = UInt8(truncatingIfNeeded: milliseconds >> 16)
        bytes.4 = UInt8(truncatingIfNeeded: milliseconds >> 8)
        bytes.5 = UInt8(truncatingIfNeeded: milliseconds)
        bytes.6 = 0x70 | UInt8(truncatingIfNeeded: fraction >> 8)
        bytes.7 = UInt8(truncatingIfNeeded: fraction)
        bytes.8 = 0x80 | UInt8(truncatingIfNeeded: tail >> 56) & 0x3F
        bytes.9 = UInt8(truncatingIfNeeded: tail >> 48)
        bytes.10 = UInt8(truncatingIfNeeded: tail >> 40)
        bytes.11 = UInt8(truncatingIfNeeded: tail >> 32)
        bytes.12 = UInt8(truncatingIfNeeded: tail >> 24)
        bytes.13 = UInt8(truncatingIfNeeded: tail >> 16)
        bytes.14 = UInt8(truncatingIfNeeded: tail >> 8)
        bytes.15 = UInt8(truncatingIfNeeded: tail)
        return UUID(uuid: bytes)
    }
}
