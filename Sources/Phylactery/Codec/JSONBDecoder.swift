public import Foundation
public import NIOCore

/// Decodes `Decodable` values straight from received JSON bytes: no `Data`, no `String` of the whole
/// document, no dictionary per object.
///
/// The bytes are first checked and indexed in one pass (strict RFC 8259, see ``JSONBError``); values
/// are then converted only when the `Decodable` type asks for them. Object keys are matched in place,
/// starting after the previous match, so the usual declaration-order decoding does one comparison per
/// key.
public struct JSONBDecoder: Sendable {
    /// How `Date` values are read.
    public enum DateDecodingStrategy: Sendable {
        /// ISO 8601 with or without fractional seconds, `Z` or a `±HH:MM` offset. The default.
        case iso8601
        /// Seconds since 1970 as a number.
        case secondsSince1970
        /// Milliseconds since 1970 as a number.
        case millisecondsSince1970
        /// `Date`'s own `Decodable` conformance (seconds since 2001).
        case deferredToDate
    }

    /// How `Data` values are read.
    public enum DataDecodingStrategy: Sendable {
        /// A base64 string. The default.
        case base64
        /// `Data`'s own `Decodable` conformance (an array of numbers).
        case deferredToData
    }

    public var dateDecodingStrategy: DateDecodingStrategy = .iso8601
    public var dataDecodingStrategy: DataDecodingStrategy = .base64
    /// The deepest nesting accepted; deeper documents fail with ``JSONBError/Code/tooDeep``. Default 512.
    public var maximumDepth: Int = 512
    /// Whether values of types with a generated fast path (``JSONBCodable()``) are read by it. The
    /// default is `true`; `false` reads them through their `Decodable` conformance.
    public var usesGeneratedCoding = true

    public init() {}

    /// Decodes a `T` from the readable bytes of `buffer` (JSON text, no version byte).
    public func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        try buffer.withUnsafeReadableBytes { bytes in
            try self.decode(type, fromBytes: bytes)
        }
    }

    /// Decodes a `T` from JSON text in `bytes`.
    public func decode<T: Decodable>(_ type: T.Type, fromBytes bytes: UnsafeRawBufferPointer) throws -> T {
        // The tape's storage comes from the previous document and goes back for the next one.
        let storage = JSONTape.Spares.take()
        defer { JSONTape.Spares.putBack(storage) }
        return try self.decode(type, fromBytes: bytes, tapeStorage: storage)
    }

    /// Decodes a `T` from JSON text in `bytes`, building the tape in `tapeStorage` (its tape is
    /// replaced, its memory kept for the caller's next document).
    func decode<T: Decodable>(_ type: T.Type, fromBytes bytes: UnsafeRawBufferPointer, tapeStorage: JSONTape.Storage) throws -> T {
        try JSONTape.parse(bytes, maximumDepth: self.maximumDepth, into: tapeStorage)
        let options = JSONDecodingOptions(date: dateDecodingStrategy, data: dataDecodingStrategy, generated: usesGeneratedCoding)
        // The decoder reads the tape through a pointer: no reference counting on every entry read.
        let decoder = JSONTapeDecoder(bytes: bytes, tape: tapeStorage.entries, options: options)
        return try decoder.decodeValue(type, at: 0)
    }

    /// Decodes a `T` from the readable bytes of `buffer`, building the tape in `tapeStorage`.
    func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer, tapeStorage: JSONTape.Storage) throws -> T {
        try buffer.withUnsafeReadableBytes { bytes in
            try self.decode(type, fromBytes: bytes, tapeStorage: tapeStorage)
        }
    }

    /// Decodes a `T` from JSON text in a byte array.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBytes { try self.decode(type, fromBytes: $0) }
    }
}

struct JSONDecodingOptions {
    var date: JSONBDecoder.DateDecodingStrategy
    var data: JSONBDecoder.DataDecodingStrategy
    /// Read ``JSONBFastDecodable`` values through their generated code.
    var generated = true
}

/// The `Decoder` behind ``JSONBDecoder``: reads values from the tape on demand.
final class JSONTapeDecoder: Decoder {
    let bytes: UnsafeRawBufferPointer
    let tape: UnsafeBufferPointer<JSONTape.Entry>
    let options: JSONDecodingOptions
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// Mutable state behind a pointer, so writes skip the dynamic exclusivity checks that class
    /// stored properties pay for.
    struct State {
        var codingPath: [any CodingKey] = []
        /// The tape index of the value `init(from:)` is reading.
        var current = 0
        /// The key or index being read from the current container. Kept apart from `codingPath` so
        /// reading a scalar never allocates; joined to it only for errors and nested values.
        var pendingKey: (any CodingKey)?
        var pendingIndex = -1
        /// Per nesting depth: the object last searched and the key entry after its last match.
        var hints: [(object: Int, next: Int)] = []
        /// Above zero while a value whose generated code threw is read again through `Decodable`.
        var generatedSuspended = 0
    }

    /// Where to start looking for the next key of `object` at `depth`.
    @inline(__always)
    func hint(depth: Int, object: Int) -> Int {
        if depth < state.pointee.hints.count, state.pointee.hints[depth].object == object {
            return state.pointee.hints[depth].next
        }
        return object + 1
    }

    @inline(__always)
    func setHint(depth: Int, object: Int, next: Int) {
        while state.pointee.hints.count <= depth { state.pointee.hints.append((-1, 0)) }
        state.pointee.hints[depth] = (object, next)
    }

    private let state: UnsafeMutablePointer<State> = {
        let pointer = UnsafeMutablePointer<State>.allocate(capacity: 1)
        pointer.initialize(to: State())
        return pointer
    }()

    deinit {
        self.state.deinitialize(count: 1)
        self.state.deallocate()
    }

    var codingPath: [any CodingKey] {
        get { state.pointee.codingPath }
        _modify { yield &state.pointee.codingPath }
        set { state.pointee.codingPath = newValue }
    }
    var current: Int {
        get { state.pointee.current }
        set { state.pointee.current = newValue }
    }
    var pendingKey: (any CodingKey)? {
        get { state.pointee.pendingKey }
        set { state.pointee.pendingKey = newValue }
    }
    var pendingIndex: Int {
        get { state.pointee.pendingIndex }
        set { state.pointee.pendingIndex = newValue }
    }

    @inline(__always)
    func withPending<R>(key: any CodingKey, containerPath: [any CodingKey], _ body: () throws -> R) rethrows -> R {
        if self.codingPath.count != containerPath.count { self.codingPath = containerPath }
        self.pendingKey = key
        defer { self.pendingKey = nil }
        return try body()
    }

    @inline(__always)
    func withPending<R>(index: Int, containerPath: [any CodingKey], _ body: () throws -> R) rethrows -> R {
        if self.codingPath.count != containerPath.count { self.codingPath = containerPath }
        self.pendingIndex = index
        defer { self.pendingIndex = -1 }
        return try body()
    }

    /// The coding path including the pending key or index.
    var fullPath: [any CodingKey] {
        if let pendingKey { return codingPath + [pendingKey] }
        if pendingIndex >= 0 { return codingPath + [JSONKey(index: pendingIndex)] }
        return codingPath
    }

    init(bytes: UnsafeRawBufferPointer, tape: UnsafeBufferPointer<JSONTape.Entry>, options: JSONDecodingOptions) {
        self.bytes = bytes
        self.tape = tape
        self.options = options
    }

    // MARK: Containers

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let entry = tape[current]
        guard entry.kind == .object else { throw self.mismatch([String: Any].self, at: current) }
        return KeyedDecodingContainer(JSONKeyedDecoder<Key>(decoder: self, object: current, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let entry = tape[current]
        guard entry.kind == .array else { throw self.mismatch([Any].self, at: current) }
        return JSONUnkeyedDecoder(decoder: self, array: current, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        JSONSingleValueDecoder(decoder: self, index: current, codingPath: codingPath)
    }

    // MARK: Values

    /// Decodes the value at tape `index`, with fast paths for the types JSON stores directly.
    func decodeValue<T: Decodable>(_ type: T.Type, at index: Int) throws -> T {
        if T.self == String.self { return try self.string(at: index) as! T }
        if T.self == Int.self { return try self.integer(Int.self, at: index) as! T }
        if T.self == Double.self { return try self.double(at: index) as! T }
        if T.self == Bool.self { return try self.bool(at: index) as! T }
        if T.self == Date.self { return try self.date(at: index) as! T }
        if T.self == UUID.self { return try self.uuid(at: index) as! T }
        if T.self == Data.self, case .base64 = options.data { return try self.base64(at: index) as! T }
        if T.self == URL.self { return try self.url(at: index) as! T }
        if T.self == Decimal.self { return try self.decimal(at: index) as! T }
        if T.self == [String].self { return try self.array(at: index) { try $0.string(at: $1) } as! T }
        if T.self == [Double].self { return try self.array(at: index) { try $0.double(at: $1) } as! T }
        if T.self == [Int].self { return try self.array(at: index) { try $0.integer(Int.self, at: $1) } as! T }
        if T.self == [String: String].self { return try self.stringDictionary(at: index) as! T }
        if options.generated, state.pointee.generatedSuspended == 0, let fast = T.self as? any JSONBFastDecodable.Type {
            do {
                return try fast.init(jsonb: JSONBReader(self), at: index) as! T
            } catch {
                // The generated code keeps no coding path: read the value again through Decodable,
                // which throws the same error with its path (or reads what the generated code refused).
                state.pointee.generatedSuspended += 1
                defer { state.pointee.generatedSuspended -= 1 }
                return try self.decodeWithDecodable(type, at: index)
            }
        }
        return try self.decodeWithDecodable(type, at: index)
    }

    /// Decodes the value at tape `index` through `T`'s own `init(from:)`.
    func decodeWithDecodable<T: Decodable>(_ type: T.Type, at index: Int) throws -> T {
        let savedCurrent = self.current
        let savedPath = self.codingPath
        let savedKey = self.pendingKey
        let savedIndex = self.pendingIndex
        self.codingPath = self.fullPath
        self.pendingKey = nil
        self.pendingIndex = -1
        self.current = index
        defer {
            self.current = savedCurrent
            self.codingPath = savedPath
            self.pendingKey = savedKey
            self.pendingIndex = savedIndex
        }
        return try T(from: self)
    }

    /// Arrays of scalars, read without the unkeyed-container machinery.
    @inline(__always)
    func array<Element>(at index: Int, _ element: (JSONTapeDecoder, Int) throws -> Element) throws -> [Element] {
        let entry = tape[index]
        guard entry.kind == .array else { throw mismatch([Element].self, at: index) }
        var result: [Element] = []
        result.reserveCapacity(Int(entry.length))
        var position = index + 1
        for offset in 0..<Int(entry.length) {
            do {
                result.append(try element(self, position))
            } catch let error as DecodingError {
                throw error.relocated(to: fullPath + [JSONKey(index: offset)])
            }
            position = Int(tape[position].end)
        }
        return result
    }

    func stringDictionary(at index: Int) throws -> [String: String] {
        let entry = tape[index]
        guard entry.kind == .object else { throw mismatch([String: String].self, at: index) }
        var result: [String: String] = [:]
        result.reserveCapacity(Int(entry.length))
        var position = index + 1
        for _ in 0..<Int(entry.length) {
            let key = try string(at: position)
            do {
                result[key] = try string(at: position + 1)
            } catch let error as DecodingError {
                throw error.relocated(to: fullPath + [JSONKey(stringValue: key)])
            }
            position = Int(tape[position + 1].end)
        }
        return result
    }

    func context(_ message: String, underlying: (any Error)? = nil) -> DecodingError.Context {
        DecodingError.Context(codingPath: fullPath, debugDescription: message, underlyingError: underlying)
    }

    func describe(_ kind: JSONTape.Kind) -> String {
        switch kind {
        case .null: "null"
        case .true, .false: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .object: "an object"
        case .array: "an array"
        }
    }

    func mismatch(_ type: Any.Type, at index: Int) -> DecodingError {
        let kind = tape[index].kind
        if kind == .null {
            return DecodingError.valueNotFound(type, context("Expected \(type) but found null instead."))
        }
        return DecodingError.typeMismatch(type, context("Expected to decode \(type) but found \(describe(kind)) instead."))
    }

    @inline(__always)
    func text(_ entry: JSONTape.Entry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(entry.start)..<Int(entry.start + entry.length)])
    }

    func bool(at index: Int) throws -> Bool {
        switch tape[index].kind {
        case .true: return true
        case .false: return false
        default: throw mismatch(Bool.self, at: index)
        }
    }

    func string(at index: Int) throws -> String {
        let entry = tape[index]
        guard entry.kind == .string else { throw mismatch(String.self, at: index) }
        let raw = text(entry)
        if !entry.flag {
            return JSONTapeDecoder.validatedString(raw, isASCII: entry.ascii)
        }
        return JSONTapeDecoder.unescape(raw, isASCII: entry.ascii)
    }

    /// A string of text the parser has already checked to be UTF-8 (every string of a tape is):
    /// copied without the second validation `String(decoding:as:)` would do.
    ///
    /// `isASCII` (the parser knows it) is passed on: a string the standard library knows to be ASCII
    /// hashes and compares without Unicode normalization; one it does not know about never learns it.
    @inline(__always)
    static func validatedString(_ raw: UnsafeRawBufferPointer, isASCII: Bool) -> String {
        #if os(Linux)
        return String(copying: UTF8Span(unchecked: Span<UInt8>(_unsafeBytes: raw), isKnownASCII: isASCII))
        #else
        if #available(macOS 26, iOS 26, watchOS 26, tvOS 26, visionOS 26, *) {
            return String(copying: UTF8Span(unchecked: Span<UInt8>(_unsafeBytes: raw), isKnownASCII: isASCII))
        }
        return String(decoding: raw, as: UTF8.self)
        #endif
    }

    /// The text of an escaped string literal (already validated by the parser).
    ///
    /// The result is UTF-8 by construction (the runs between escapes were validated, and the parser
    /// let through only escapes of scalars), so it is unescaped into scratch space and copied into
    /// the string without a second validation.
    ///
    /// `isASCII`: the escaped text has no byte above 0x7F (the result is ASCII when its `\u`
    /// escapes are too).
    static func unescape(_ raw: UnsafeRawBufferPointer, isASCII: Bool = false) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: raw.count) { scratch in
            let (count, escapesAreASCII) = unescape(raw, into: scratch)
            return validatedString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[..<count]), isASCII: isASCII && escapesAreASCII)
        }
    }

    /// Writes the unescaped text of `raw` into `out` (at least `raw.count` bytes: an escape never
    /// takes fewer bytes than its UTF-8 form) and returns how many bytes it wrote, and whether every
    /// `\u` escape spelled an ASCII scalar.
    ///
    /// The text between escapes moves eight bytes at a time: each word is stored before it is
    /// searched for a backslash, and the bytes stored past one are overwritten by what follows it.
    /// Output never runs ahead of input, so a word stored where eight input bytes remain fits in `out`.
    static func unescape(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) -> (count: Int, escapesAreASCII: Bool) {
        let source = raw.baseAddress!
        let target = UnsafeMutableRawPointer(out.baseAddress!)
        let count = raw.count
        var i = 0
        var o = 0
        var escapesAreASCII = true
        while i < count {
            // Copy up to the next backslash.
            var marks: UInt64 = 0
            while i + 8 <= count {
                let word = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                target.storeBytes(of: word, toByteOffset: o, as: UInt64.self)
                marks = JSONEscaping.bytes(of: word, equalTo: UInt8(ascii: "\\"))
                if marks != 0 { break }
                i += 8
                o += 8
            }
            if marks != 0 {
                let run = marks.trailingZeroBitCount >> 3
                i += run
                o += run
            } else {
                while i < count, source.load(fromByteOffset: i, as: UInt8.self) != UInt8(ascii: "\\") {
                    target.storeBytes(of: source.load(fromByteOffset: i, as: UInt8.self), toByteOffset: o, as: UInt8.self)
                    i += 1
                    o += 1
                }
                if i >= count { break }
            }
            let code = source.load(fromByteOffset: i + 1, as: UInt8.self)
            i += 2
            switch code {
            case UInt8(ascii: "b"): out[o] = 0x08; o += 1
            case UInt8(ascii: "f"): out[o] = 0x0C; o += 1
            case UInt8(ascii: "n"): out[o] = 0x0A; o += 1
            case UInt8(ascii: "r"): out[o] = 0x0D; o += 1
            case UInt8(ascii: "t"): out[o] = 0x09; o += 1
            case UInt8(ascii: "u"):
                var scalar = UInt32(hex4(raw, i))
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = UInt32(hex4(raw, i + 2))
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                if scalar >= 0x80 { escapesAreASCII = false }
                // An escape never takes fewer bytes than its UTF-8 form, so `out` is large enough.
                for unit in UTF8.encode(Unicode.Scalar(scalar)!)! {
                    out[o] = unit; o += 1
                }
            default: out[o] = code; o += 1  // \" \\ \/
            }
        }
        return (o, escapesAreASCII)
    }

    static func hex4(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        var value: UInt16 = 0
        for k in 0..<4 { value = value << 4 | UInt16(JSONTape.hexValue(raw[at + k])!) }
        return value
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type, at index: Int) throws -> I {
        let entry = tape[index]
        guard entry.kind == .number else { throw mismatch(type, at: index) }
        let raw = text(entry)
        if !entry.flag {
            // Plain digits: accumulate with overflow checks, negative numbers towards I.min.
            let negative = raw[0] == UInt8(ascii: "-")
            var value: I = 0
            var overflow = false
            for i in (negative ? 1 : 0)..<raw.count {
                let digit = I(raw[i] &- UInt8(ascii: "0"))
                let (multiplied, o1) = value.multipliedReportingOverflow(by: 10)
                let (next, o2) = negative ? multiplied.subtractingReportingOverflow(digit) : multiplied.addingReportingOverflow(digit)
                if o1 || o2 { overflow = true; break }
                value = next
            }
            if !overflow { return value }
            throw DecodingError.dataCorrupted(context("The number \(String(decoding: raw, as: UTF8.self)) does not fit in \(type).", underlying: JSONBError(.numberOutOfRange, "number out of range for \(type)", offset: Int(entry.start))))
        }
        // 1.0, 1e3: accepted when the value is an exact integer that fits.
        let text = String(decoding: raw, as: UTF8.self)
        if let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) {
            var rounded = Decimal()
            var source = decimal
            NSDecimalRound(&rounded, &source, 0, .plain)
            if rounded == decimal, let exact = I(exactly: NSDecimalNumber(decimal: decimal).int64Value), Decimal(Int64(exact)) == decimal {
                return exact
            }
        }
        throw DecodingError.dataCorrupted(context("The number \(text) is not an integer that fits in \(type).", underlying: JSONBError(.numberOutOfRange, "number out of range for \(type)", offset: Int(entry.start))))
    }

    func double(at index: Int) throws -> Double {
        let entry = tape[index]
        guard entry.kind == .number else { throw mismatch(Double.self, at: index) }
        let raw = text(entry)
        // Numbers too large become ±infinity, which we refuse.
        guard let value = JSONNumber.double(raw, readable: bytes.count - Int(entry.start)), value.isFinite else {
            throw DecodingError.dataCorrupted(context("The number \(String(decoding: raw, as: UTF8.self)) does not fit in Double.", underlying: JSONBError(.numberOutOfRange, "number out of range for Double", offset: Int(entry.start))))
        }
        return value
    }

    func float(at index: Int) throws -> Float {
        let entry = tape[index]
        guard entry.kind == .number else { throw mismatch(Float.self, at: index) }
        let raw = text(entry)
        guard let value = JSONNumber.float(raw, readable: bytes.count - Int(entry.start)), value.isFinite else {
            throw DecodingError.dataCorrupted(context("The number \(String(decoding: raw, as: UTF8.self)) does not fit in Float.", underlying: JSONBError(.numberOutOfRange, "number out of range for Float", offset: Int(entry.start))))
        }
        return value
    }

    func decimal(at index: Int) throws -> Decimal {
        let entry = tape[index]
        guard entry.kind == .number else { throw mismatch(Decimal.self, at: index) }
        let raw = String(decoding: text(entry), as: UTF8.self)
        guard let value = Decimal(string: raw, locale: Locale(identifier: "en_US_POSIX")) else {
            throw DecodingError.dataCorrupted(context("The number \(raw) does not fit in Decimal."))
        }
        return value
    }

    /// A string converted by `parse`; a string it rejects is `dataCorrupted` with `problem`.
    func parsedString<R>(at index: Int, _ problem: String, _ parse: (String) -> R?) throws -> R {
        guard let value = parse(try string(at: index)) else {
            throw DecodingError.dataCorrupted(context(problem))
        }
        return value
    }

    func uuid(at index: Int) throws -> UUID {
        try parsedString(at: index, "Invalid UUID string.") { UUID(uuidString: $0) }
    }

    func url(at index: Int) throws -> URL {
        try parsedString(at: index, "Invalid URL string.") { URL(string: $0) }
    }

    func base64(at index: Int) throws -> Data {
        try parsedString(at: index, "Encountered Data that is not valid base64.") { Data(base64Encoded: $0) }
    }

    func date(at index: Int) throws -> Date {
        switch options.date {
        case .deferredToDate:
            // What Date's own Codable conformance reads, without going through it.
            return Date(timeIntervalSinceReferenceDate: try double(at: index))
        case .secondsSince1970:
            return Date(timeIntervalSince1970: try double(at: index))
        case .millisecondsSince1970:
            return Date(timeIntervalSince1970: try double(at: index) / 1000)
        case .iso8601:
            let entry = tape[index]
            guard entry.kind == .string, !entry.flag, let date = ISO8601.parse(text(entry)) else {
                if entry.kind != .string { throw mismatch(Date.self, at: index) }
                throw DecodingError.dataCorrupted(context("Expected a date in ISO 8601 format."))
            }
            return date
        }
    }
}

/// Reading ISO 8601 timestamps without a formatter: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
enum ISO8601 {
    static func parse(_ text: UnsafeRawBufferPointer) -> Date? {
        var i = 0
        func number(_ digits: Int) -> Int? {
            guard i + digits <= text.count else { return nil }
            var value = 0
            for _ in 0..<digits {
                let d = text[i] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                value = value * 10 + Int(d)
                i += 1
            }
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard i < text.count, text[i] == byte || (byte == UInt8(ascii: "T") && text[i] == UInt8(ascii: "t")) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(UInt8(ascii: "-")), let month = number(2), expect(UInt8(ascii: "-")), let day = number(2),
              expect(UInt8(ascii: "T")), let hour = number(2), expect(UInt8(ascii: ":")), let minute = number(2),
              expect(UInt8(ascii: ":")), let second = number(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if i < text.count, text[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            var divisor = 1
            let start = i
            while i < text.count, text[i] &- UInt8(ascii: "0") < 10 {
                if divisor < 1_000_000_000 {
                    digits = digits * 10 + Int(text[i] - UInt8(ascii: "0"))
                    divisor *= 10
                }
                i += 1
            }
            guard i > start else { return nil }
            fraction = Double(digits) / Double(divisor)
        }
        var offsetSeconds = 0
        guard i < text.count else { return nil }
        if text[i] == UInt8(ascii: "Z") || text[i] == UInt8(ascii: "z") {
            i += 1
        } else if text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") {
            let sign = text[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let h = number(2), expect(UInt8(ascii: ":")), let m = number(2), h < 24, m < 60 else { return nil }
            offsetSeconds = sign * (h * 3600 + m * 60)
        } else {
            return nil
        }
        guard i == text.count else { return nil }
        let days = CivilTime.days(year: year, month: month, day: day)
        let seconds = Double(days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds)
        return Date(timeIntervalSince1970: seconds + fraction)
    }
}
