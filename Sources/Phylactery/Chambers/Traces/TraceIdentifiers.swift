public import Foundation
public import PostgresNIO
import Synchronization
public import Tracing

/// A W3C trace id: 16 bytes, never all zero; printed as 32 lowercase hex digits.
///
/// Stored in the `uuid` column `trace_id` (the same 16 bytes), so a query can name a trace by
/// its hex form: `WHERE trace_id = '4bf92f3577b34da6a3ce929d0e0e4736'`.
public struct TraceID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The first 8 bytes, big-endian.
    public var high: UInt64
    /// The last 8 bytes, big-endian.
    public var low: UInt64

    /// A trace id from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses 32 hex digits (W3C form) or a UUID with dashes; throws `.invalidArgument` otherwise,
    /// or when the id is all zeros (which W3C reserves for "invalid").
    public init(parsing text: String) throws(PhylacteryError) {
        let digits = text.utf8.count == 36 ? text.replacingOccurrences(of: "-", with: "") : text
        guard digits.utf8.count == 32, let high = UInt64(hex: digits.utf8.prefix(16)), let low = UInt64(hex: digits.utf8.dropFirst(16)) else {
            throw PhylacteryError(.invalidArgument, "'\(text)' is not a trace id: expected 32 hexadecimal digits, such as 4bf92f3577b34da6a3ce929d0e0e4736")
        }
        guard high != 0 || low != 0 else {
            throw PhylacteryError(.invalidArgument, "'\(text)' is not a trace id: the all-zero id is reserved as invalid")
        }
        self.init(high: high, low: low)
    }

    /// 32 lowercase hex digits.
    public var description: String { Hex.string(self.high) + Hex.string(self.low) }

    /// The same 16 bytes as a UUID (how the `trace_id` column stores them).
    public var uuid: UUID {
        let h = self.high, l = self.low
        return UUID(uuid: (
            UInt8(truncatingIfNeeded: h >> 56), UInt8(truncatingIfNeeded: h >> 48), UInt8(truncatingIfNeeded: h >> 40), UInt8(truncatingIfNeeded: h >> 32),
            UInt8(truncatingIfNeeded: h >> 24), UInt8(truncatingIfNeeded: h >> 16), UInt8(truncatingIfNeeded: h >> 8), UInt8(truncatingIfNeeded: h),
            UInt8(truncatingIfNeeded: l >> 56), UInt8(truncatingIfNeeded: l >> 48), UInt8(truncatingIfNeeded: l >> 40), UInt8(truncatingIfNeeded: l >> 32),
            UInt8(truncatingIfNeeded: l >> 24), UInt8(truncatingIfNeeded: l >> 16), UInt8(truncatingIfNeeded: l >> 8), UInt8(truncatingIfNeeded: l)))
    }

    /// The trace id whose bytes are `uuid`'s.
    public init(uuid: UUID) {
        let b = uuid.uuid
        self.high = UInt64(b.0) << 56 | UInt64(b.1) << 48 | UInt64(b.2) << 40 | UInt64(b.3) << 32 | UInt64(b.4) << 24 | UInt64(b.5) << 16 | UInt64(b.6) << 8 | UInt64(b.7)
        self.low = UInt64(b.8) << 56 | UInt64(b.9) << 48 | UInt64(b.10) << 40 | UInt64(b.11) << 32 | UInt64(b.12) << 24 | UInt64(b.13) << 16 | UInt64(b.14) << 8 | UInt64(b.15)
    }

    public static func < (lhs: TraceID, rhs: TraceID) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }
}

/// A W3C span id: 8 bytes, never zero; printed as 16 lowercase hex digits.
///
/// Stored in a `bigint` column with the same 64 bits (`to_hex(span_id)` prints the W3C form).
public struct SpanID: Sendable, Hashable, CustomStringConvertible {
    /// The 8 bytes as one big-endian number.
    public var rawValue: UInt64

    /// A span id from its bits.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// Parses 16 hex digits; throws `.invalidArgument` otherwise, or when the id is zero.
    public init(parsing text: String) throws(PhylacteryError) {
        guard text.utf8.count == 16, let value = UInt64(hex: text.utf8[...]), value != 0 else {
            throw PhylacteryError(.invalidArgument, "'\(text)' is not a span id: expected 16 hexadecimal digits, not all zero")
        }
        self.rawValue = value
    }

    /// 16 lowercase hex digits.
    public var description: String { Hex.string(self.rawValue) }

    /// The value the `bigint` column holds.
    public var storedValue: Int64 { Int64(bitPattern: self.rawValue) }
}

/// The trace and span a span belongs to, as carried in a ``ServiceContext`` and a `traceparent` header.
public struct SpanContext: Sendable, Hashable {
    /// The trace.
    public var traceID: TraceID
    /// The span itself.
    public var spanID: SpanID
    /// The W3C `sampled` flag. Spans of an unsampled context are not recorded.
    public var isSampled: Bool
    /// Whether the span ran in another process (the context came from a `traceparent` header), so
    /// spans started inside it are this process's entry into the trace.
    public var isRemote: Bool

    /// A span context.
    public init(traceID: TraceID, spanID: SpanID, isSampled: Bool = true, isRemote: Bool = false) {
        self.traceID = traceID
        self.spanID = spanID
        self.isSampled = isSampled
        self.isRemote = isRemote
    }

    /// The W3C `traceparent` header value: `00-<trace id>-<span id>-<flags>`.
    public var traceparent: String {
        "00-\(self.traceID)-\(self.spanID)-\(self.isSampled ? "01" : "00")"
    }

    /// Parses a `traceparent` header value, or returns `nil` when it is not one (as W3C asks: an
    /// invalid header is ignored and a new trace starts).
    public init?(traceparent: String) {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].utf8.count == 2, parts[0] != "ff", UInt8(parts[0], radix: 16) != nil,
              parts[3].utf8.count == 2, let flags = UInt8(parts[3], radix: 16),
              parts[0] != "00" || parts.count == 4,
              let trace = try? TraceID(parsing: String(parts[1])), parts[1].utf8.count == 32,
              let span = try? SpanID(parsing: String(parts[2]))
        else { return nil }
        self.init(traceID: trace, spanID: span, isSampled: flags & 1 == 1, isRemote: true)
    }
}

extension ServiceContext {
    /// The span this context is inside, if a ``PhylacteryTracer`` (or an extracted `traceparent`) put one there.
    public var spanContext: SpanContext? {
        get { self[SpanContextKey.self] }
        set { self[SpanContextKey.self] = newValue }
    }
}

/// The key under which ``SpanContext`` travels in a ``ServiceContext``.
public enum SpanContextKey: ServiceContextKey {
    public typealias Value = SpanContext
    public static var nameOverride: String? { "phylactery-span-context" }
}

/// Span and trace ids from a counter scrambled by SplitMix64: one atomic add and a few
/// multiplications per id, no system call. SplitMix64's finaliser is a bijection on 64 bits, so
/// ids made by one process never repeat before 2⁶⁴ of them; the seed comes from the system's
/// random source once, so two processes do not produce the same sequence.
enum SpanIDGenerator {
    private static let state = Atomic<UInt64>(SystemRandomNumberGenerator().nextSeed())
    private static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    static func next() -> UInt64 {
        var z = state.wrappingAdd(gamma, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        return z == 0 ? 1 : z
    }

    static func spanID() -> SpanID { SpanID(next()) }
    static func traceID() -> TraceID { TraceID(high: next(), low: next()) }
}

extension SystemRandomNumberGenerator {
    fileprivate func nextSeed() -> UInt64 {
        var generator = self
        return generator.next()
    }
}

/// Hexadecimal formatting and parsing without Foundation's formatters.
enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    static func string(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for i in 0..<16 { buffer[i] = digits[Int((value >> UInt64(60 - 4 * i)) & 0xF)] }
            return 16
        }
    }

    static func value(_ byte: UInt8) -> UInt64? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt64(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

extension UInt64 {
    /// Up to 16 hex digits, or `nil` when a byte is not one.
    fileprivate init?(hex bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty, bytes.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard let digit = Hex.value(byte) else { return nil }
            value = value << 4 | digit
        }
        self = value
    }
}

// MARK: - Columns

extension TraceID: ColumnCodable {
    public static var sqlType: SQLType { .uuid }
    public func bindColumn(to bindings: inout PostgresBindings) throws { bindings.append(self.uuid) }
    public static func decodeColumn(from cell: PostgresCell) throws -> TraceID { TraceID(uuid: try cell.decode(UUID.self)) }
}

extension SpanID: ColumnCodable {
    public static var sqlType: SQLType { .bigint }
    public func bindColumn(to bindings: inout PostgresBindings) throws { bindings.append(self.storedValue) }
    public static func decodeColumn(from cell: PostgresCell) throws -> SpanID { SpanID(UInt64(bitPattern: try cell.decode(Int64.self))) }
}

extension TraceID: Codable {
    /// Reads the 32 hex digits ``description`` writes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = try TraceID(parsing: try container.decode(String.self))
    }

    /// Writes the 32 hex digits of ``description``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}

extension SpanID: Codable {
    /// Reads the 16 hex digits ``description`` writes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = try SpanID(parsing: try container.decode(String.self))
    }

    /// Writes the 16 hex digits of ``description``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}
