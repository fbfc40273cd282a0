public import Foundation
#if canImport(Glibc)
public import Glibc
#elseif canImport(Darwin)
public import Darwin
#endif

/// A parsed JSON document: one entry per value (and per object key), in document order, pointing
/// back into the input bytes. Nothing is copied or converted until a decoder asks for it.
///
/// The parser is strict RFC 8259: no trailing commas, no leading zeros, no lone surrogates, no raw
/// control characters in strings, valid UTF-8 only, nothing after the top-level value. It is
/// iterative, so nesting depth is bounded by ``JSONTape/Parser/maximumDepth``, not by the stack.
@usableFromInline
struct JSONTape {
    @usableFromInline
    enum Kind: UInt8 {
        case null, `true`, `false`, number, string, object, array
    }

    /// (Visible to inlinable code: ``JSONBReader``'s key search reads entries in generated code.)
    @usableFromInline
    struct Entry {
        @usableFromInline var kind: Kind
        /// For strings: the text holds escapes and must be unescaped. For numbers: not a plain integer.
        @usableFromInline var flag: Bool
        /// For strings: the text has no byte above 0x7F (escapes may still spell other scalars).
        @usableFromInline var ascii: Bool = true
        /// Byte offset of the value's text (strings: after the opening quote).
        @usableFromInline var start: UInt32
        /// Strings and numbers: byte length (strings without quotes). Objects and arrays: member count.
        @usableFromInline var length: UInt32
        /// Objects and arrays: index of the first entry after the container. Others: own index + 1.
        @usableFromInline var end: UInt32
    }

    var entries: [Entry]

    /// Parses `bytes`; throws ``JSONBError`` with the offset of the first problem.
    static func parse(_ bytes: UnsafeRawBufferPointer, maximumDepth: Int) throws(JSONBError) -> JSONTape {
        let storage = Storage()
        try parse(bytes, maximumDepth: maximumDepth, into: storage)
        return JSONTape(entries: Array(storage.entries))
    }

    /// Parses `bytes` into `storage`, replacing the tape it held but keeping its memory: a loop over
    /// documents that passes the same storage allocates (and faults in) the tape once.
    static func parse(_ bytes: UnsafeRawBufferPointer, maximumDepth: Int, into storage: Storage) throws(JSONBError) {
        var parser = Parser(bytes: bytes, maximumDepth: maximumDepth, recording: true)
        parser.tape = storage.base
        parser.tapeCapacity = storage.capacity
        // The parser may have moved the entries to larger memory: the storage owns whatever it ends with.
        defer {
            storage.base = parser.tape
            storage.capacity = parser.tapeCapacity
            storage.count = parser.tapeCount
        }
        parser.reserve(max(16, bytes.count / 8))
        try parser.run()
    }

    /// Checks that `bytes` are one valid JSON document without building a tape.
    ///
    /// With `storable`, a document PostgreSQL's jsonb cannot hold — one with the escape `\u0000` —
    /// is refused too, with its JSON Pointer (see ``StorableText``).
    static func validate(_ bytes: UnsafeRawBufferPointer, maximumDepth: Int, storable: Bool = false) throws(JSONBError) {
        var parser = Parser(bytes: bytes, maximumDepth: maximumDepth, recording: false)
        try parser.run()
        if storable, let offset = parser.nulEscapeOffset {
            let place = Self.locateNul(in: bytes, maximumDepth: maximumDepth).map(\.description) ?? "in the document"
            throw JSONBError(
                .unstorableCharacter,
                "The document holds \\u0000 (U+0000) \(place), which PostgreSQL's jsonb cannot store. Remove the character before storing the document",
                offset: offset)
        }
    }

    /// Where the first string holding `\u0000` is: the path to it and whether the string is an object key.
    struct NulLocation: CustomStringConvertible {
        enum Component { case key(String), index(Int) }
        var path: [Component]
        var inKey: Bool
        /// The path as a JSON Pointer (RFC 6901): `~` written `~0`, `/` written `~1`.
        var pointer: String {
            path.map { component in
                switch component {
                case .key(let key): "/" + key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
                case .index(let index): "/\(index)"
                }
            }.joined()
        }
        /// The path as `Codable` keys, for an `EncodingError`.
        var codingPath: [any CodingKey] {
            path.map { component in
                switch component {
                case .key(let key): JSONKey(stringValue: key)
                case .index(let index): JSONKey(index: index)
                }
            }
        }
        var description: String { inKey ? "in a key of the object at '\(pointer)'" : "at '\(pointer)'" }
    }

    /// Finds the first string of a valid document that holds the escape `\u0000` (a cold path:
    /// only called once such an escape was seen).
    static func locateNul(in bytes: UnsafeRawBufferPointer, maximumDepth: Int) -> NulLocation? {
        guard let tape = try? parse(bytes, maximumDepth: maximumDepth) else { return nil }
        let entries = tape.entries
        func holdsNul(_ entry: Entry) -> Bool {
            guard entry.kind == .string, entry.flag else { return false }
            let text = UnsafeRawBufferPointer(rebasing: bytes[Int(entry.start)..<Int(entry.start + entry.length)])
            var i = 0
            while i + 1 < text.count {
                if text[i] == UInt8(ascii: "\\") {
                    if text[i + 1] == UInt8(ascii: "u"), i + 6 <= text.count,
                       text[(i + 2)..<(i + 6)].allSatisfy({ $0 == UInt8(ascii: "0") }) { return true }
                    i += 2
                } else {
                    i += 1
                }
            }
            return false
        }
        guard let target = entries.firstIndex(where: holdsNul) else { return nil }
        // Walk down from the root, into the child whose entries hold the target.
        var path: [NulLocation.Component] = []
        var index = 0
        while index != target {
            let container = entries[index]
            var child = index + 1
            var position = 0
            var descended = false
            while child < Int(container.end) {
                var valueIndex = child
                var component = NulLocation.Component.index(position)
                if container.kind == .object {
                    let key = entries[child]
                    if child == target { return NulLocation(path: path, inKey: true) }
                    component = .key(JSONTapeDecoder.unescape(UnsafeRawBufferPointer(rebasing: bytes[Int(key.start)..<Int(key.start + key.length)])))
                    valueIndex = child + 1
                }
                if target >= valueIndex && target < Int(entries[valueIndex].end) {
                    path.append(component)
                    index = valueIndex
                    descended = true
                    break
                }
                child = Int(entries[valueIndex].end)
                position += 1
            }
            if !descended { return nil }
        }
        return NulLocation(path: path, inKey: false)
    }

    struct Parser {
        let bytes: UnsafeRawBufferPointer
        let maximumDepth: Int
        let recording: Bool
        var position = 0
        /// The entries written so far (when `recording`): memory the caller lends and takes back
        /// (see `parse(_:maximumDepth:into:)`), grown here when the document needs more.
        var tape: UnsafeMutablePointer<Entry>?
        var tapeCapacity = 0
        var tapeCount = 0
        /// Where the first `\u0000` escape starts, if the document has one (jsonb refuses it).
        var nulEscapeOffset: Int?
        /// An open container: its tape index (-1 when not recording), whether it is an object, and
        /// how many members or elements it has so far.
        struct Frame {
            var index: Int
            var isObject: Bool
            var count: UInt32
        }
        /// The open containers, innermost last: `depth` frames of `frameCapacity`.
        var frames: UnsafeMutablePointer<Frame>?
        var frameCapacity = 0
        var depth = 0

        /// A parser of `bytes`; when `recording`, the caller gives it entry storage (see `parse`).
        init(bytes: UnsafeRawBufferPointer, maximumDepth: Int, recording: Bool) {
            self.bytes = bytes
            self.maximumDepth = maximumDepth
            self.recording = recording
        }

        /// Makes room for at least `minimum` entries.
        mutating func reserve(_ minimum: Int) {
            guard recording, minimum > tapeCapacity else { return }
            let grown = UnsafeMutablePointer<Entry>.allocate(capacity: minimum)
            if let tape {
                grown.moveInitialize(from: tape, count: tapeCount)
                tape.deallocate()
            }
            tape = grown
            tapeCapacity = minimum
        }

        func fail(_ message: String, at offset: Int? = nil) -> JSONBError {
            Self.malformed(message, at: offset ?? position)
        }

        static func malformed(_ message: String, at offset: Int) -> JSONBError {
            JSONBError(.malformed, "Malformed JSON: \(message)", offset: offset)
        }

        @inline(__always)
        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        @inline(__always)
        mutating func record(_ kind: Kind, flag: Bool = false, ascii: Bool = true, start: Int, length: Int) {
            guard recording else { return }
            if tapeCount == tapeCapacity { reserve(max(16, tapeCapacity * 2)) }
            let index = UInt32(truncatingIfNeeded: tapeCount)
            (tape! + tapeCount).initialize(to: Entry(
                kind: kind, flag: flag, ascii: ascii, start: UInt32(truncatingIfNeeded: start), length: UInt32(truncatingIfNeeded: length), end: index + 1))
            tapeCount += 1
        }

        mutating func run() throws(JSONBError) {
            guard bytes.count < Int(UInt32.max) else {
                throw JSONBError(.malformed, "Documents of 4 GiB or more are not supported.")
            }
            defer { frames?.deallocate() }
            skipWhitespace()
            // One loop for the whole document (no recursion, nothing but the frames grows with depth):
            // a value, then the commas and closing brackets after it until the next value is due.
            values: while true {
                if try parseValue() { continue values }  // a container's first member or element
                while depth > 0 {
                    skipWhitespace()
                    let top = frames! + (depth - 1)
                    guard position < bytes.count else { throw fail("the document ends inside \(top.pointee.isObject ? "an object" : "an array")") }
                    let byte = bytes[position]
                    if byte == UInt8(ascii: ",") {
                        position += 1
                        skipWhitespace()
                        if top.pointee.isObject {
                            try parseKey()
                        }
                        top.pointee.count += 1
                        continue values
                    } else if byte == (top.pointee.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        position += 1
                        closeContainer()
                    } else {
                        throw fail(top.pointee.isObject ? "expected ',' or '}' after an object member" : "expected ',' or ']' after an array element")
                    }
                }
                break
            }
            skipWhitespace()
            guard position == bytes.count else { throw fail("unexpected text after the end of the document") }
        }

        /// Opens a container whose entry (when recording) is the last one written.
        @inline(__always)
        mutating func openContainer(isObject: Bool) {
            if depth == frameCapacity {
                let grown = UnsafeMutablePointer<Frame>.allocate(capacity: max(32, frameCapacity * 2))
                if let frames {
                    grown.moveInitialize(from: frames, count: depth)
                    frames.deallocate()
                }
                frames = grown
                frameCapacity = max(32, frameCapacity * 2)
            }
            (frames! + depth).initialize(to: Frame(index: recording ? tapeCount - 1 : -1, isObject: isObject, count: 0))
            depth += 1
        }

        @inline(__always)
        mutating func closeContainer() {
            depth -= 1
            let frame = frames![depth]
            if recording {
                tape![frame.index].length = frame.count
                tape![frame.index].end = UInt32(truncatingIfNeeded: tapeCount)
            }
        }

        /// An object key and the colon after it.
        @inline(__always)
        mutating func parseKey() throws(JSONBError) {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw fail(position < bytes.count && bytes[position] == UInt8(ascii: "}") ? "trailing comma before '}'" : "expected a string key")
            }
            if !parsePlainKey() { try parseString() }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
            position += 1
            skipWhitespace()
        }

        /// The common key at `position` (its opening quote) without a call: up to 15 ASCII bytes,
        /// no escape, closed by a quote within the next sixteen bytes. False (nothing consumed) for
        /// anything else, which `parseString` reads.
        @inline(__always)
        mutating func parsePlainKey() -> Bool {
            let start = position + 1
            guard start + 16 <= bytes.count else { return false }
            let base = bytes.baseAddress!
            let first = base.loadUnaligned(fromByteOffset: start, as: UInt64.self)
            let special = JSONEscaping.specialBytes(first)
            let length: Int
            let passed: UInt64  // the bytes before the special one, for the high-bit test
            if special != 0 {
                length = special.trailingZeroBitCount >> 3
                passed = Self.leadingBytes(first, count: length)
            } else {
                let second = base.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self)
                let secondSpecial = JSONEscaping.specialBytes(second)
                guard secondSpecial != 0 else { return false }
                let more = secondSpecial.trailingZeroBitCount >> 3
                length = 8 + more
                passed = first | Self.leadingBytes(second, count: more)
            }
            guard passed & 0x8080_8080_8080_8080 == 0,
                  base.load(fromByteOffset: start + length, as: UInt8.self) == UInt8(ascii: "\"")
            else { return false }
            record(.string, start: start, length: length)
            position = start + length + 1
            return true
        }

        /// The first `count` (0…7) bytes of `word` (the first byte lowest), the others zero.
        @inline(__always)
        static func leadingBytes(_ word: UInt64, count: Int) -> UInt64 {
            word & ((1 &<< UInt64(count &* 8)) &- 1)
        }

        /// One value; containers are opened here and finished by `run`. True when it opened a
        /// container that is not empty: its first value (after the key, in an object) comes next.
        @inline(__always)
        mutating func parseValue() throws(JSONBError) -> Bool {
            guard position < bytes.count else { throw fail("expected a value but the document ends") }
            switch bytes[position] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = bytes[position] == UInt8(ascii: "{")
                guard depth < maximumDepth else {
                    throw JSONBError(.tooDeep, "The document nests deeper than \(maximumDepth) levels.", offset: position)
                }
                record(isObject ? .object : .array, start: position, length: 0)
                position += 1
                openContainer(isObject: isObject)
                skipWhitespace()
                guard position < bytes.count else { throw fail("the document ends inside \(isObject ? "an object" : "an array")") }
                if bytes[position] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position += 1
                    closeContainer()
                    return false
                }
                if isObject { try parseKey() }
                frames![depth - 1].count = 1
                return true
            case UInt8(ascii: "\""):
                try parseString()
            case UInt8(ascii: "t"):
                try literal("true", .true)
            case UInt8(ascii: "f"):
                try literal("false", .false)
            case UInt8(ascii: "n"):
                try literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try parseNumber()
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                throw fail("trailing comma or missing value")
            default:
                throw fail("unexpected character '\(Self.printable(bytes[position]))'")
            }
            return false
        }

        static func printable(_ byte: UInt8) -> String {
            byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }

        mutating func literal(_ word: StaticString, _ kind: Kind) throws(JSONBError) {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count,
                  memcmp(bytes.baseAddress! + position, word.utf8Start, count) == 0
            else { throw fail("invalid literal (expected \(word))") }
            record(kind, start: position, length: count)
            position += count
        }

        mutating func parseNumber() throws(JSONBError) {
            // Works on a local position (one register, not a store per digit) and writes it back.
            let start = position
            let base = bytes.baseAddress!  // there is a digit or '-' at `start`
            let count = bytes.count
            var p = start
            @inline(__always) func digit(at index: Int) -> Bool {
                index < count && base.load(fromByteOffset: index, as: UInt8.self) &- UInt8(ascii: "0") < 10
            }
            @inline(__always) func byte(at index: Int) -> UInt8 {
                index < count ? base.load(fromByteOffset: index, as: UInt8.self) : 0
            }
            var plainInteger = true
            if byte(at: p) == UInt8(ascii: "-") { p += 1 }
            guard digit(at: p) else { throw fail("a number needs digits", at: start) }
            if byte(at: p) == UInt8(ascii: "0") {
                p += 1
                if digit(at: p) { throw fail("numbers cannot have leading zeros", at: start) }
            } else {
                p = JSONNumber.digitRun(base, from: p + 1, limit: count)
            }
            if byte(at: p) == UInt8(ascii: ".") {
                plainInteger = false
                p += 1
                guard digit(at: p) else { position = p; throw fail("a decimal point must be followed by digits") }
                p = JSONNumber.digitRun(base, from: p + 1, limit: count)
            }
            if byte(at: p) | 0x20 == UInt8(ascii: "e") {
                plainInteger = false
                p += 1
                if byte(at: p) == UInt8(ascii: "+") || byte(at: p) == UInt8(ascii: "-") { p += 1 }
                guard digit(at: p) else { position = p; throw fail("an exponent must have digits") }
                p = JSONNumber.digitRun(base, from: p + 1, limit: count)
            }
            position = p
            record(.number, flag: !plainInteger, start: start, length: p - start)
        }

        /// A string literal starting at the opening quote: checks escapes, control characters and UTF-8.
        mutating func parseString() throws(JSONBError) {
            position += 1
            let start = position
            var escaped = false
            // The high bits of every byte passed: any set means the string has multi-byte characters,
            // validated in one pass once its end is known.
            var highBits: UInt64 = 0
            let base = bytes.baseAddress!  // there is a quote at `start - 1`
            let count = bytes.count
            while true {
                // Eight bytes at a time up to the next quote, backslash or control character.
                var special: UInt64 = 0
                while position + 8 <= count {
                    let word = base.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                    special = JSONEscaping.specialBytes(word)
                    if special != 0 {
                        let passed = special.trailingZeroBitCount >> 3
                        highBits |= Self.leadingBytes(word, count: passed)
                        position += passed
                        break
                    }
                    highBits |= word
                    position += 8
                }
                if special == 0 {
                    // The last few bytes of the document, one at a time.
                    while position < count {
                        let byte = base.load(fromByteOffset: position, as: UInt8.self)
                        if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                        highBits |= UInt64(byte)
                        position += 1
                    }
                    guard position < count else { throw fail("unterminated string", at: start - 1) }
                }
                let byte = base.load(fromByteOffset: position, as: UInt8.self)
                if byte == UInt8(ascii: "\"") {
                    let ascii = highBits & 0x8080_8080_8080_8080 == 0
                    if !ascii { try Self.validateUTF8(base, from: start, to: position) }
                    record(.string, flag: escaped, ascii: ascii, start: start, length: position - start)
                    position += 1
                    return
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                    // The one-letter escapes here, without a call; `\u` (and errors) in parseEscape.
                    if position + 1 < count, Self.isOneLetterEscape(base.load(fromByteOffset: position + 1, as: UInt8.self)) {
                        position += 2
                    } else {
                        try parseEscape()
                    }
                } else {
                    throw fail("control character U+00\(byte < 16 ? "0" : "")\(String(byte, radix: 16, uppercase: true)) must be escaped in a string")
                }
            }
        }

        /// Checks that `bytes[from..<end]` (a string's text, escapes included: they are ASCII) is
        /// UTF-8; throws at the first sequence that is not.
        ///
        /// Runs the table-driven automaton of ``UTF8Automaton`` over the string from its
        /// first word with a high bit: one load and one shift per byte whatever the characters, so
        /// text that mixes ASCII with accented, CJK and emoji characters costs no mispredicted
        /// branches. Only a string it rejects is walked again sequence by sequence, to name the
        /// offset of the first bad one.
        static func validateUTF8(_ base: UnsafeRawPointer, from: Int, to end: Int) throws(JSONBError) {
            var i = from
            while i + 8 <= end, base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            let table = UTF8Automaton.transitions
            var state = UTF8Automaton.accept
            while i + 8 <= end {
                let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                state = table[Int(truncatingIfNeeded: word & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: (word &>> 8) & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: (word &>> 16) & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: (word &>> 24) & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: (word &>> 32) & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: (word &>> 40) & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: (word &>> 48) & 0xFF)] &>> state
                state = table[Int(truncatingIfNeeded: word &>> 56)] &>> state
                i += 8
            }
            while i < end {
                state = table[Int(base.load(fromByteOffset: i, as: UInt8.self))] &>> state
                i += 1
            }
            if state & 63 != UTF8Automaton.accept { try locateUTF8Error(base, from: from, to: end) }
        }

        /// Walks `bytes[from..<end]` sequence by sequence and throws at the first one that is not
        /// UTF-8 (what ``validateUTF8(_:from:to:)`` calls once its automaton has rejected the text).
        static func locateUTF8Error(_ base: UnsafeRawPointer, from: Int, to end: Int) throws(JSONBError) {
            var i = from
            while i < end {
                i += base.load(fromByteOffset: i, as: UInt8.self) < 0x80 ? 1 : try utf8SequenceLength(base, at: i, end: end)
            }
            throw malformed("invalid UTF-8", at: end)  // not reached: the automaton rejects only what the walk does
        }

        /// `"`, `\`, `/`, `b`, `f`, `n`, `r` or `t`: what may follow a backslash on its own.
        @inline(__always)
        static func isOneLetterEscape(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                 UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): true
            default: false
            }
        }

        /// The length of the multi-byte UTF-8 sequence at `start`, which must end before `end`
        /// (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
        static func utf8SequenceLength(_ base: UnsafeRawPointer, at start: Int, end: Int) throws(JSONBError) -> Int {
            let lead = base.load(fromByteOffset: start, as: UInt8.self)
            func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
                start + offset < end && range.contains(base.load(fromByteOffset: start + offset, as: UInt8.self))
            }
            switch lead {
            case 0xC2...0xDF:
                guard continuation(1) else { throw malformed("invalid UTF-8", at: start) }
                return 2
            case 0xE0:
                guard continuation(1, 0xA0...0xBF), continuation(2) else { throw malformed("invalid UTF-8", at: start) }
                return 3
            case 0xE1...0xEC, 0xEE...0xEF:
                guard continuation(1), continuation(2) else { throw malformed("invalid UTF-8", at: start) }
                return 3
            case 0xED:
                guard continuation(1, 0x80...0x9F), continuation(2) else { throw malformed("invalid UTF-8 (encoded surrogate)", at: start) }
                return 3
            case 0xF0:
                guard continuation(1, 0x90...0xBF), continuation(2), continuation(3) else { throw malformed("invalid UTF-8", at: start) }
                return 4
            case 0xF1...0xF3:
                guard continuation(1), continuation(2), continuation(3) else { throw malformed("invalid UTF-8", at: start) }
                return 4
            case 0xF4:
                guard continuation(1, 0x80...0x8F), continuation(2), continuation(3) else { throw malformed("invalid UTF-8 (beyond U+10FFFF)", at: start) }
                return 4
            default:
                throw malformed("invalid UTF-8", at: start)
            }
        }

        mutating func parseEscape() throws(JSONBError) {
            let escapeStart = position
            position += 1
            guard position < bytes.count else { throw fail("unterminated escape", at: escapeStart) }
            let code = bytes[position]
            switch code {
            case _ where Self.isOneLetterEscape(code):
                position += 1
            case UInt8(ascii: "u"):
                position += 1
                let unit = try hex4()
                if (0xD800...0xDBFF).contains(unit) {
                    guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                        throw fail("lone high surrogate \\u\(String(unit, radix: 16, uppercase: true)) (a low surrogate must follow)", at: escapeStart)
                    }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw fail("high surrogate not followed by a low surrogate", at: escapeStart)
                    }
                } else if (0xDC00...0xDFFF).contains(unit) {
                    throw fail("lone low surrogate \\u\(String(unit, radix: 16, uppercase: true))", at: escapeStart)
                } else if unit == 0, nulEscapeOffset == nil {
                    nulEscapeOffset = escapeStart
                }
            default:
                throw fail("invalid escape '\\\(Self.printable(bytes[position]))'", at: escapeStart)
            }
        }

        mutating func hex4() throws(JSONBError) -> UInt16 {
            guard position + 4 <= bytes.count else { throw fail("\\u needs four hex digits") }
            var value: UInt16 = 0
            for _ in 0..<4 {
                guard let digit = JSONTape.hexValue(bytes[position]) else { throw fail("\\u needs four hex digits") }
                value = value << 4 | UInt16(digit)
                position += 1
            }
            return value
        }
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension JSONTape.Entry {
    /// Whether this object key, of the document whose text starts at `text`, is `wanted` byte for
    /// byte (after unescaping): the one key comparison of both decoding paths. Inlined into
    /// generated code, where `wanted` is a literal, so the `memcmp` of known length becomes a few
    /// loads; escaped keys (rare) are unescaped out of line.
    @inlinable @inline(__always)
    func keyEquals(_ wanted: UnsafeRawBufferPointer, text: UnsafeRawPointer) -> Bool {
        if !flag {
            return Int(length) == wanted.count
                && (wanted.count == 0 || memcmp(text + Int(start), wanted.baseAddress!, wanted.count) == 0)
        }
        return escapedKeyEquals(wanted, text: text)
    }

    @usableFromInline
    func escapedKeyEquals(_ wanted: UnsafeRawBufferPointer, text: UnsafeRawPointer) -> Bool {
        JSONTapeDecoder.unescape(UnsafeRawBufferPointer(start: text + Int(start), count: Int(length))).utf8.elementsEqual(wanted)
    }
}
