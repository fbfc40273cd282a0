public import Foundation
public import NIOCore

/// Encodes `Encodable` values as JSON, writing the bytes straight into a NIO `ByteBuffer`: the one
/// PostgresNIO sends to the server. No `Data`, no intermediate tree.
///
/// - Keys are written in the order the value encodes them (declaration order for synthesized
///   `Codable`); dictionaries with `String` or `Int` keys are written in sorted key order, so the same
///   value always gives the same bytes.
/// - Strings are escaped per RFC 8259, scanning their UTF-8 eight bytes at a time.
/// - `Double` and `Float` use the shortest representation that reads back to the same value; NaN and
///   infinity throw `EncodingError.invalidValue` (JSON cannot represent them).
/// - `Date` uses ``DateEncodingStrategy`` (ISO 8601 with fractional seconds by default), `Data` is
///   base64, `URL` its absolute string, `UUID` its string, `Decimal` a JSON number.
public struct JSONBEncoder: Sendable {
    /// How `Date` values are written.
    public enum DateEncodingStrategy: Sendable {
        /// `2026-11-26T16:29:00.123Z`: ISO 8601, UTC, milliseconds. The default.
        case iso8601WithFractionalSeconds
        /// `2026-11-26T16:29:00Z`: ISO 8601, UTC, whole seconds.
        case iso8601
        /// Seconds since 1970 as a number.
        case secondsSince1970
        /// Milliseconds since 1970 as a number.
        case millisecondsSince1970
        /// Whatever `Date`'s own `Encodable` conformance writes (seconds since 2001).
        case deferredToDate
    }

    /// How `Data` values are written.
    public enum DataEncodingStrategy: Sendable {
        /// A base64 string. The default.
        case base64
        /// Whatever `Data`'s own `Encodable` conformance writes (an array of numbers).
        case deferredToData
    }

    /// What happens to U+0000 (NUL) in a string: PostgreSQL's jsonb cannot store it (``StorableText``).
    public enum NulCharacterStrategy: Sendable {
        /// Throw `EncodingError.invalidValue` naming the coding path: a user's value is never
        /// silently changed. The default.
        case refuse
        /// Write U+FFFD instead: for text the library writes on its own (span attributes, error texts).
        case replace
    }

    public var dateEncodingStrategy: DateEncodingStrategy = .iso8601WithFractionalSeconds
    public var dataEncodingStrategy: DataEncodingStrategy = .base64
    public var nulCharacterStrategy: NulCharacterStrategy = .refuse
    /// Whether values of types with a generated fast path (``JSONBCodable()``) are written by it.
    /// The default is `true`; `false` writes them through their `Codable` conformance (the bytes are
    /// the same either way).
    public var usesGeneratedCoding = true

    public init() {}

    /// Appends the JSON text of `value` to `buffer`. On error, `buffer` is left as it was.
    public func encode<T: Encodable>(_ value: T, into buffer: inout ByteBuffer) throws {
        try self.encode(value, into: &buffer, copyText: false)
    }

    /// Appends `value` as one field of a text-format COPY row (backslashes doubled).
    func encodeCopyField<T: Encodable>(_ value: T, into buffer: inout ByteBuffer) throws {
        try self.encode(value, into: &buffer, copyText: true)
    }

    private func encode<T: Encodable>(_ value: T, into buffer: inout ByteBuffer, copyText: Bool) throws {
        let writerIndex = buffer.writerIndex
        let impl = JSONStreamEncoder(buffer: buffer, options: .init(
            date: dateEncodingStrategy, data: dataEncodingStrategy, copyText: copyText, replacesNul: nulCharacterStrategy == .replace,
            generated: usesGeneratedCoding))
        buffer = ByteBuffer()  // hand the storage over, so appending does not copy it
        do {
            try impl.encodeTopLevel(value)
            if impl.nulSeen { throw self.unstorableNul(value) }
            buffer = impl.takeBuffer()
        } catch {
            buffer = impl.takeBuffer()
            buffer.moveWriterIndex(to: writerIndex)
            throw error
        }
    }

    /// The error for a value holding U+0000, with the coding path of the first string that does
    /// (found by encoding the value once more as plain JSON: a cold path).
    private func unstorableNul<T: Encodable>(_ value: T) -> EncodingError {
        let location: JSONTape.NulLocation? = {
            let impl = JSONStreamEncoder(buffer: ByteBuffer(), options: .init(date: dateEncodingStrategy, data: dataEncodingStrategy, copyText: false, replacesNul: false))
            guard (try? impl.encodeTopLevel(value)) != nil else { return nil }
            let bytes = impl.takeBuffer()
            return bytes.withUnsafeReadableBytes { JSONTape.locateNul(in: $0, maximumDepth: .max) }
        }()
        let place = location.map { " \($0)" } ?? ""
        return EncodingError.invalidValue(value, EncodingError.Context(
            codingPath: location?.codingPath ?? [],
            debugDescription: "A string\(place) contains U+0000 (NUL), which PostgreSQL cannot store in jsonb; nothing was written. Remove the character (or keep such bytes as Data, which is written as base64)"))
    }

    /// The JSON text of `value` in a new buffer.
    public func encodeToBuffer<T: Encodable>(_ value: T) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try self.encode(value, into: &buffer)
        return buffer
    }

    /// The JSON text of `value` as bytes.
    public func encodeToBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
        return Array(try self.encodeToBuffer(value).readableBytesView)
    }
}

/// The settings an encoding run needs, copied once.
struct JSONEncodingOptions {
    var date: JSONBEncoder.DateEncodingStrategy
    var data: JSONBEncoder.DataEncodingStrategy
    /// Write for COPY's text format: every backslash doubled. (Compact JSON has no raw tab, newline
    /// or carriage return, so the backslashes of escapes are all COPY needs changed.)
    var copyText = false
    /// Write U+FFFD for U+0000 (``JSONBEncoder/NulCharacterStrategy/replace``).
    var replacesNul = false
    /// Write ``JSONBFastEncodable`` values through their generated code.
    var generated = true
}

/// The `Encoder` behind ``JSONBEncoder``: one object per encoding run, streaming into its buffer.
///
/// Codable has no "container finished" call, so open containers live on a stack: writing into a
/// container first closes every container opened after it (they are finished by then), and a nested
/// value's containers are closed as soon as its `encode(to:)` returns.
final class JSONStreamEncoder: Encoder {
    struct Frame {
        var isObject: Bool
        var count: Int
    }

    /// The mutable state lives behind a pointer: stored properties of a class pay for a dynamic
    /// exclusivity check on every write, which cost a third of the encoding time.
    struct State {
        var buffer: ByteBuffer
        var frames: [Frame] = []
        var codingPath: [any CodingKey] = []
        /// True while a value slot (top level, after a key, after an array comma) waits for its value.
        var slotPending = false
        /// The frame opened for the value being encoded, so a second `container(…)` call returns it again.
        var valueFrame: Int?
        /// Small writes gather here and reach the ByteBuffer in one `writeBytes` per 16 KiB: each
        /// ByteBuffer call checks capacity and uniqueness, too much per comma or quote.
        var staging: UnsafeMutableRawPointer = .allocate(byteCount: JSONStreamEncoder.stagingCapacity, alignment: 8)
        var stagingCount = 0
        /// A string held U+0000 and the strategy refuses it: the run throws once it ends.
        var nulSeen = false
        /// Above zero while a value whose generated code threw is written again through `Codable`.
        var generatedSuspended = 0
    }

    static let stagingCapacity = 16 << 10

    private let state: UnsafeMutablePointer<State>
    let options: JSONEncodingOptions
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var buffer: ByteBuffer {
        get { state.pointee.buffer }
        _modify { yield &state.pointee.buffer }
        set { state.pointee.buffer = newValue }
    }
    var frames: [Frame] {
        get { state.pointee.frames }
        _modify { yield &state.pointee.frames }
        set { state.pointee.frames = newValue }
    }
    var codingPath: [any CodingKey] {
        get { state.pointee.codingPath }
        _modify { yield &state.pointee.codingPath }
        set { state.pointee.codingPath = newValue }
    }
    var slotPending: Bool {
        get { state.pointee.slotPending }
        set { state.pointee.slotPending = newValue }
    }
    var valueFrame: Int? {
        get { state.pointee.valueFrame }
        set { state.pointee.valueFrame = newValue }
    }

    init(buffer: ByteBuffer, options: JSONEncodingOptions) {
        self.state = .allocate(capacity: 1)
        self.state.initialize(to: State(buffer: buffer))
        self.options = options
        
    }

    deinit {
        self.state.pointee.staging.deallocate()
        self.state.deinitialize(count: 1)
        self.state.deallocate()
    }

    // MARK: Writing

    /// Moves the staged bytes into the buffer.
    @inline(__always)
    func flush() {
        if state.pointee.stagingCount > 0 {
            state.pointee.buffer.writeBytes(UnsafeRawBufferPointer(start: state.pointee.staging, count: state.pointee.stagingCount))
            state.pointee.stagingCount = 0
        }
    }

    @inline(__always)
    func put(_ byte: UInt8) {
        if state.pointee.stagingCount == Self.stagingCapacity { flush() }
        state.pointee.staging.storeBytes(of: byte, toByteOffset: state.pointee.stagingCount, as: UInt8.self)
        state.pointee.stagingCount += 1
    }

    @inline(__always)
    func put(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        if count > Self.stagingCapacity - state.pointee.stagingCount {
            flush()
            if count > Self.stagingCapacity / 2 {
                state.pointee.buffer.writeBytes(bytes)
                return
            }
        }
        if count > 0 {
            (state.pointee.staging + state.pointee.stagingCount).copyMemory(from: bytes.baseAddress!, byteCount: count)
            state.pointee.stagingCount += count
        }
    }

    @inline(__always)
    func put(_ text: StaticString) {
        self.put(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Lets `body` write up to `count` bytes in place; it returns how many it wrote.
    @inline(__always)
    func withStaging(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) {
        if count > Self.stagingCapacity {
            flush()
            state.pointee.buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count, body)
            return
        }
        if count > Self.stagingCapacity - state.pointee.stagingCount { flush() }
        let written = body(UnsafeMutableRawBufferPointer(start: state.pointee.staging + state.pointee.stagingCount, count: count))
        state.pointee.stagingCount += written
    }

    var nulSeen: Bool { state.pointee.nulSeen }

    func takeBuffer() -> ByteBuffer {
        self.flush()
        let buffer = self.buffer
        self.buffer = ByteBuffer()
        return buffer
    }

    func encodeTopLevel<T: Encodable>(_ value: T) throws {
        self.slotPending = true
        try self.encodeValue(value)
        self.settleSlot()
        self.close(downTo: 0)
    }

    // MARK: Containers

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if !self.slotPending, let frame = self.valueFrame, self.frames.indices.contains(frame), self.frames[frame].isObject {
            return KeyedEncodingContainer(JSONKeyedEncoder<Key>(encoder: self, depth: frame, codingPath: self.codingPath))
        }
        let depth = self.openFrame(isObject: true)
        return KeyedEncodingContainer(JSONKeyedEncoder<Key>(encoder: self, depth: depth, codingPath: self.codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if !self.slotPending, let frame = self.valueFrame, self.frames.indices.contains(frame), !self.frames[frame].isObject {
            return JSONUnkeyedEncoder(encoder: self, depth: frame, codingPath: self.codingPath)
        }
        let depth = self.openFrame(isObject: false)
        return JSONUnkeyedEncoder(encoder: self, depth: depth, codingPath: self.codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        JSONSingleValueEncoder(encoder: self, codingPath: self.codingPath)
    }

    /// Writes `{` or `[` into the pending slot and pushes a frame; returns its index.
    func openFrame(isObject: Bool) -> Int {
        // A container asked for without a pending slot (a misbehaving encode(to:)) still gets a
        // syntactically valid place: it is written where the stream stands.
        self.slotPending = false
        self.put(isObject ? UInt8(ascii: "{") : UInt8(ascii: "["))
        self.frames.append(Frame(isObject: isObject, count: 0))
        self.valueFrame = self.frames.count - 1
        return self.frames.count - 1
    }

    /// A slot left empty (a `superEncoder()` nobody wrote to) gets `{}`, so the output stays JSON.
    @inline(__always)
    func settleSlot() {
        if self.slotPending {
            self.put("{}")
            self.slotPending = false
        }
    }

    /// Closes frames until `count` remain.
    @inline(__always)
    func close(downTo count: Int) {
        while self.frames.count > count {
            let frame = self.frames.removeLast()
            self.put(frame.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }
    }

    /// Starts a member of the object at `depth`: closes deeper frames, writes `,"key":`.
    @inline(__always)
    func beginMember(depth: Int, key: String) {
        self.settleSlot()
        self.close(downTo: depth + 1)
        if self.frames[depth].count > 0 { self.put(UInt8(ascii: ",")) }
        self.frames[depth].count += 1
        self.writeString(key)
        self.put(UInt8(ascii: ":"))
        self.slotPending = true
    }

    /// Starts an element of the array at `depth`.
    @inline(__always)
    func beginElement(depth: Int) {
        self.settleSlot()
        self.close(downTo: depth + 1)
        if self.frames[depth].count > 0 { self.put(UInt8(ascii: ",")) }
        self.frames[depth].count += 1
        self.slotPending = true
    }

    // MARK: Values

    /// Encodes any value into the pending slot, taking the fast path for types JSON knows directly.
    func encodeValue<T: Encodable>(_ value: T) throws {
        if T.self == String.self {
            self.writeString(value as! String)
        } else if T.self == Int.self {
            self.writeInteger(value as! Int)
        } else if T.self == Double.self {
            try self.writeDouble(value as! Double)
        } else if T.self == Bool.self {
            self.writeBool(value as! Bool)
        } else if T.self == Date.self {
            try self.writeDate(value as! Date, self.options.date)
        } else if T.self == UUID.self {
            self.writeUUID(value as! UUID)
        } else if T.self == Data.self, case .base64 = self.options.data {
            self.writeBase64(value as! Data)
        } else if T.self == URL.self {
            self.writeString((value as! URL).absoluteString)
        } else if T.self == Decimal.self {
            self.writeDecimal(value as! Decimal)
        } else if T.self == [String].self {
            self.writeArray(value as! [String]) { $0.writeString($1) }
        } else if T.self == [Double].self {
            try self.writeArray(value as! [Double]) { try $0.writeDouble($1) }
        } else if T.self == [Int].self {
            self.writeArray(value as! [Int]) { $0.writeInteger($1) }
        } else if T.self == [String: String].self {
            let dictionary = value as! [String: String]
            self.put(UInt8(ascii: "{"))
            var first = true
            for key in dictionary.keys.sorted() {
                if !first { self.put(UInt8(ascii: ",")) }
                first = false
                self.writeString(key)
                self.put(UInt8(ascii: ":"))
                self.writeString(dictionary[key]!)
            }
            self.put(UInt8(ascii: "}"))
        } else if self.options.generated, state.pointee.generatedSuspended == 0, let fast = value as? any JSONBFastEncodable {
            try self.encodeGenerated(fast, value)
        } else if let dictionary = value as? any JSONSortedKeysEncodable {
            try self.withNestedValue { try dictionary.encodeSortedKeys(into: self) }
        } else if let dictionary = value as? any JSONSortedIntKeysEncodable {
            try self.withNestedValue { try dictionary.encodeSortedKeys(into: self) }
        } else {
            try self.withNestedValue { try value.encode(to: self) }
        }
        self.slotPending = false
    }

    /// Writes a value through its generated code (``JSONBCodable()``). If that throws, what it wrote
    /// is taken back and the value is written again through `Codable`, which throws the error with
    /// its coding path (errors are rare; the generated code keeps no path).
    func encodeGenerated<T: Encodable>(_ fast: any JSONBFastEncodable, _ value: T) throws {
        let mark = state.pointee.buffer.writerIndex + state.pointee.stagingCount
        let frameCount = self.frames.count
        let pathCount = self.codingPath.count
        let pending = self.slotPending
        do {
            try fast.encodeJSONB(to: JSONBWriter(self))
        } catch {
            self.flush()
            state.pointee.buffer.moveWriterIndex(to: mark)
            if self.frames.count > frameCount { self.frames.removeLast(self.frames.count - frameCount) }
            if self.codingPath.count > pathCount { self.codingPath.removeLast(self.codingPath.count - pathCount) }
            self.slotPending = pending
            state.pointee.generatedSuspended += 1
            defer { state.pointee.generatedSuspended -= 1 }
            try self.withNestedValue { try value.encode(to: self) }
        }
    }

    /// Arrays of scalars, written without the unkeyed-container machinery.
    @inline(__always)
    func writeArray<Element>(_ array: [Element], _ write: (JSONStreamEncoder, Element) throws -> Void) rethrows {
        self.put(UInt8(ascii: "["))
        var first = true
        for element in array {
            if !first { self.put(UInt8(ascii: ",")) }
            first = false
            try write(self, element)
        }
        self.put(UInt8(ascii: "]"))
    }

    /// Runs a nested value's `encode(to:)`, then closes what it opened; an empty value becomes `{}`.
    @inline(__always)
    func withNestedValue(_ body: () throws -> Void) throws {
        let depth = self.frames.count
        let savedFrame = self.valueFrame
        self.valueFrame = nil
        defer { self.valueFrame = savedFrame }
        try body()
        if self.slotPending {
            // Foundation writes an empty object for a value that encoded nothing; so do we.
            self.put("{}")
            self.slotPending = false
        }
        self.close(downTo: depth)
    }

    func invalid(_ value: Any, _ message: String) -> EncodingError {
        EncodingError.invalidValue(value, .init(codingPath: self.codingPath, debugDescription: message))
    }

    // MARK: Scalars

    @inline(__always)
    func writeBool(_ value: Bool) {
        if value { self.put("true") } else { self.put("false") }
    }

    @inline(__always)
    func writeNull() {
        self.put("null")
    }

    func writeInteger<I: FixedWidthInteger>(_ value: I) {
        // Digits are produced backwards into a 40-byte stack buffer (enough for any 128-bit value).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { digits in
            var index = 40
            var magnitude = value.magnitude
            repeat {
                let (quotient, remainder) = magnitude.quotientAndRemainder(dividingBy: 10)
                index -= 1
                digits[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remainder)
                magnitude = quotient
            } while magnitude != 0
            if value < 0 {
                index -= 1
                digits[index] = UInt8(ascii: "-")
            }
            self.put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(digits)[index..<40]))
        }
    }

    func writeDouble(_ value: Double) throws {
        guard value.isFinite else { throw self.invalid(value, "\(value) cannot be written as JSON: JSON has no NaN or infinity.") }
        let written = withUnsafeTemporaryAllocation(byteCount: 24, alignment: 8) { buffer -> Bool in
            guard let count = JSONNumber.plainDecimal(value, into: buffer.baseAddress!) else { return false }
            self.put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[..<count]))
            return true
        }
        if written { return }
        self.writeFloatingDescription(value.description, isIntegral: value == value.rounded(.towardZero) && abs(value) < 1e16)
    }

    func writeFloat(_ value: Float) throws {
        guard value.isFinite else { throw self.invalid(value, "\(value) cannot be written as JSON: JSON has no NaN or infinity.") }
        self.writeFloatingDescription(value.description, isIntegral: value == value.rounded(.towardZero) && abs(value) < 1e7)
    }

    /// Swift's `description` is already the shortest round-trip form ("0.1", "1e-05", "5e-324");
    /// integral values drop the ".0" the way Foundation's encoder does.
    @inline(__always)
    func writeFloatingDescription(_ text: String, isIntegral: Bool) {
        var text = text
        text.withUTF8 { bytes in
            var count = bytes.count
            if isIntegral, count >= 2, bytes[count - 2] == UInt8(ascii: "."), bytes[count - 1] == UInt8(ascii: "0") {
                count -= 2
            }
            self.put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[0..<count]))
        }
    }

    func writeDecimal(_ value: Decimal) {
        // Decimal's description is a plain decimal number ("3.14", "-0.001"), valid JSON as is.
        var text = value.description
        text.withUTF8 { self.put(UnsafeRawBufferPointer($0)) }
    }

    func writeUUID(_ value: UUID) {
        let hex: StaticString = "0123456789ABCDEF"
        let bytes = value.uuid
        withUnsafeBytes(of: bytes) { raw in
            hex.withUTF8Buffer { digits in
                self.withStaging(38) { out in
                    var o = 0
                    out[o] = UInt8(ascii: "\""); o += 1
                    for i in 0..<16 {
                        if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                        out[o] = digits[Int(raw[i] >> 4)]
                        out[o + 1] = digits[Int(raw[i] & 0x0f)]
                        o += 2
                    }
                    out[o] = UInt8(ascii: "\""); o += 1
                    return o
                }
            }
        }
    }

    func writeBase64(_ data: Data) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        let outputCount = ((data.count + 2) / 3) * 4 + 2
        data.withUnsafeBytes { input in
            alphabet.withUTF8Buffer { table in
                self.withStaging(outputCount) { out in
                    var o = 0
                    out[o] = UInt8(ascii: "\""); o += 1
                    var i = 0
                    let n = input.count
                    while i + 3 <= n {
                        let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                        out[o] = table[Int(v >> 18)]
                        out[o + 1] = table[Int((v >> 12) & 63)]
                        out[o + 2] = table[Int((v >> 6) & 63)]
                        out[o + 3] = table[Int(v & 63)]
                        o += 4
                        i += 3
                    }
                    if n - i == 1 {
                        let v = UInt32(input[i]) << 16
                        out[o] = table[Int(v >> 18)]
                        out[o + 1] = table[Int((v >> 12) & 63)]
                        out[o + 2] = UInt8(ascii: "=")
                        out[o + 3] = UInt8(ascii: "=")
                        o += 4
                    } else if n - i == 2 {
                        let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
                        out[o] = table[Int(v >> 18)]
                        out[o + 1] = table[Int((v >> 12) & 63)]
                        out[o + 2] = table[Int((v >> 6) & 63)]
                        out[o + 3] = UInt8(ascii: "=")
                        o += 4
                    }
                    out[o] = UInt8(ascii: "\""); o += 1
                    return o
                }
            }
        }
    }

    func writeDate(_ date: Date, _ strategy: JSONBEncoder.DateEncodingStrategy) throws {
        switch strategy {
        case .iso8601WithFractionalSeconds:
            try self.writeISO8601(date, fractional: true)
        case .iso8601:
            try self.writeISO8601(date, fractional: false)
        case .secondsSince1970:
            try self.writeDouble(date.timeIntervalSince1970)
        case .millisecondsSince1970:
            try self.writeDouble((date.timeIntervalSince1970 * 1000).rounded())
        case .deferredToDate:
            // What Date's own Codable conformance writes, without going through it.
            try self.writeDouble(date.timeIntervalSinceReferenceDate)
        }
    }

    func writeISO8601(_ date: Date, fractional: Bool) throws {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, abs(interval) < 253_402_300_800 else {
            throw self.invalid(date, "\(date) is outside the years 0001…9999 that ISO 8601 dates can be written in.")
        }
        var milliseconds = Int64((interval * 1000).rounded(.down))
        if !fractional { milliseconds = milliseconds - ((milliseconds % 1000) + 1000) % 1000 }
        let parts = CivilTime(millisecondsSince1970: milliseconds)
        self.withStaging(32) { out in
            var o = 0
            func put(_ byte: UInt8) { out[o] = byte; o += 1 }
            func two(_ v: Int) { put(UInt8(ascii: "0") + UInt8(v / 10)); put(UInt8(ascii: "0") + UInt8(v % 10)) }
            put(UInt8(ascii: "\""))
            two(parts.year / 100); two(parts.year % 100)
            put(UInt8(ascii: "-")); two(parts.month)
            put(UInt8(ascii: "-")); two(parts.day)
            put(UInt8(ascii: "T")); two(parts.hour)
            put(UInt8(ascii: ":")); two(parts.minute)
            put(UInt8(ascii: ":")); two(parts.second)
            if fractional {
                put(UInt8(ascii: "."))
                put(UInt8(ascii: "0") + UInt8(parts.millisecond / 100))
                two(parts.millisecond % 100)
            }
            put(UInt8(ascii: "Z"))
            put(UInt8(ascii: "\""))
            return o
        }
    }

    /// Writes `string` as a JSON string literal, copying runs that need no escaping in one go.
    func writeString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            self.writeQuoted(UnsafeRawBufferPointer(utf8))
        }
    }

    func writeQuoted(_ bytes: UnsafeRawBufferPointer) {
        self.put(UInt8(ascii: "\""))
        let count = bytes.count
        var runStart = 0
        var i = 0
        while i < count {
            // Eight bytes at a time: skip words holding no quote, backslash or control character.
            while i + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if JSONEscaping.wordNeedsEscaping(word) { break }
                i += 8
            }
            while i < count, !JSONEscaping.needsEscaping(bytes[i]) { i += 1 }
            if i >= count { break }
            if i > runStart {
                self.put(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
            }
            self.writeEscape(bytes[i])
            i += 1
            runStart = i
        }
        if count > runStart {
            self.put(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
        }
        self.put(UInt8(ascii: "\""))
    }

    func writeEscape(_ byte: UInt8) {
        if byte == 0 {
            if self.options.replacesNul {
                self.put("\u{FFFD}")
                return
            }
            state.pointee.nulSeen = true
        }
        if self.options.copyText {
            // The same escape with its backslash doubled for COPY; \\ becomes four.
            self.put(UInt8(ascii: "\\"))
            if byte == UInt8(ascii: "\\") { self.put("\\\\\\"); return }
        }
        switch byte {
        case UInt8(ascii: "\""): self.put("\\\"")
        case UInt8(ascii: "\\"): self.put("\\\\")
        case 0x0A: self.put("\\n")
        case 0x0D: self.put("\\r")
        case 0x09: self.put("\\t")
        case 0x08: self.put("\\b")
        case 0x0C: self.put("\\f")
        default:
            let hex: StaticString = "0123456789abcdef"
            hex.withUTF8Buffer { digits in
                self.put("\\u00")
                self.put(digits[Int(byte >> 4)])
                self.put(digits[Int(byte & 0x0f)])
            }
        }
    }
}

/// Which bytes of a string need an escape in JSON.
enum JSONEscaping {
    @inline(__always)
    static func needsEscaping(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// True when any of the eight bytes is `"`, `\` or below 0x20 (SWAR: no per-byte branch).
    @inline(__always)
    static func wordNeedsEscaping(_ word: UInt64) -> Bool { specialBytes(word) != 0 }

    /// The eight bytes of `word` (little-endian: the first byte lowest) with the high bit of each
    /// byte that is `"`, `\` or below 0x20 set, and no other bits — except that a byte above a
    /// marked one may be marked wrongly (a borrow), so the lowest set bit always marks the first such
    /// byte: `trailingZeroBitCount / 8` is its index. Bytes of 0x80 and above are never marked.
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let hasControl = (word &- ones &* 0x20) & ~word & 0x8080_8080_8080_8080
        return bytes(of: word, equalTo: UInt8(ascii: "\"")) | bytes(of: word, equalTo: UInt8(ascii: "\\")) | hasControl
    }

    /// The eight bytes of `word` with the high bit of each byte equal to `byte` set (below 0x80; a
    /// byte above a marked one may be marked wrongly, so the lowest set bit marks the first match).
    @inline(__always)
    static func bytes(of word: UInt64, equalTo byte: UInt8) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let zeroWhereEqual = word ^ (ones &* UInt64(byte))
        return (zeroWhereEqual &- ones) & ~zeroWhereEqual & 0x8080_8080_8080_8080
    }
}

/// A Gregorian UTC date and time, computed without Calendar (days-from-civil, H. Hinnant).
struct CivilTime {
    var year, month, day, hour, minute, second, millisecond: Int

    init(millisecondsSince1970 ms: Int64) {
        let msPerDay: Int64 = 86_400_000
        var days = ms / msPerDay
        var rest = ms % msPerDay
        if rest < 0 { rest += msPerDay; days -= 1 }
        self.millisecond = Int(rest % 1000)
        let seconds = Int(rest / 1000)
        self.hour = seconds / 3600
        self.minute = (seconds / 60) % 60
        self.second = seconds % 60
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        self.day = doy - (153 * mp + 2) / 5 + 1
        self.month = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (self.month <= 2 ? 1 : 0)
    }

    /// Days since 1970-01-01 for a Gregorian date.
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// Dictionaries whose keys are sorted before writing, so output does not depend on hash order.
protocol JSONSortedKeysEncodable {
    func encodeSortedKeys(into encoder: JSONStreamEncoder) throws
}

extension Dictionary: JSONSortedKeysEncodable where Key == String, Value: Encodable {
    func encodeSortedKeys(into encoder: JSONStreamEncoder) throws {
        try encoder.encodeMembersInKeyOrder(self) { JSONKey(stringValue: $0) }
    }
}

extension Dictionary: JSONSortedIntKeysEncodable where Key == Int, Value: Encodable {
    func encodeSortedKeys(into encoder: JSONStreamEncoder) throws {
        try encoder.encodeMembersInKeyOrder(self) { JSONKey(intValue: $0) }
    }
}

extension JSONStreamEncoder {
    /// Writes `dictionary` as an object with its members in ascending key order.
    func encodeMembersInKeyOrder<Key: Comparable, Value: Encodable>(_ dictionary: [Key: Value], codingKey: (Key) -> JSONKey) throws {
        let depth = self.openFrame(isObject: true)
        for key in dictionary.keys.sorted() {
            let codingKey = codingKey(key)
            self.beginMember(depth: depth, key: codingKey.stringValue)
            self.codingPath.append(codingKey)
            try self.encodeValue(dictionary[key]!)
            self.codingPath.removeLast()
        }
    }
}

/// Dictionaries with `Int` keys: written in ascending key order (keys as strings, as Foundation does).
protocol JSONSortedIntKeysEncodable {
    func encodeSortedKeys(into encoder: JSONStreamEncoder) throws
}

/// A coding key made at run time (dictionary keys, array indices, `super`).
struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
    init(index: Int) {
        self.stringValue = "Index \(index)"
        self.intValue = index
    }
    static let `super` = JSONKey(stringValue: "super")
}
