import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A parsed JSON document: one entry per value (and per object key), in document order, pointing
/// back into the input bytes. Nothing is copied or converted until a decoder asks for it.
///
/// The parser is strict RFC 8259: no trailing commas, no leading zeros, no lone surrogates, no raw
/// control characters in strings, valid UTF-8 only, nothing after the top-level value. It is
/// iterative, so nesting depth is bounded by ``JSONTape/Parser/maximumDepth``, not by the stack.
struct JSONTape {
    enum Kind: UInt8 {
        case null, `true`, `false`, number, string, object, array
    }

    struct Entry {
        var kind: Kind
        /// For strings: the text holds escapes and must be unescaped. For numbers: not a plain integer.
        var flag: Bool
        /// Byte offset of the value's text (strings: after the opening quote).
        var start: UInt32
        /// Strings and numbers: byte length (strings without quotes). Objects and arrays: member count.
        var length: UInt32
        /// Objects and arrays: index of the first entry after the container. Others: own index + 1.
        var end: UInt32
    }

    var entries: [Entry]

    /// Parses `bytes`; throws ``JSONBError`` with the offset of the first problem.
    static func parse(_ bytes: UnsafeRawBufferPointer, maximumDepth: Int) throws(JSONBError) -> JSONTape {
        var entries: [Entry] = []
        try parse(bytes, maximumDepth: maximumDepth, into: &entries)
        return JSONTape(entries: entries)
    }

    /// Parses `bytes` into `entries`, replacing what they held but keeping their capacity: a loop
    /// over documents that passes the same array allocates (and faults in) the tape once.
    static func parse(_ bytes: UnsafeRawBufferPointer, maximumDepth: Int, into entries: inout [Entry]) throws(JSONBError) {
        var parser = Parser(bytes: bytes, maximumDepth: maximumDepth, recording: true)
        // The array is swapped into the parser and back, so it stays uniquely referenced: no copy
        // when it is emptied, reserved or appended to.
        swap(&parser.entries, &entries)
        defer { swap(&parser.entries, &entries) }
        parser.entries.removeAll(keepingCapacity: true)
        parser.entries.reserveCapacity(max(16, bytes.count / 8))
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
        var entries: [Entry] = []
        /// Where the first `\u0000` escape starts, if the document has one (jsonb refuses it).
        var nulEscapeOffset: Int?
        /// Open containers: tape index (or -1 when not recording) and whether it is an object.
        var stack: [(index: Int, isObject: Bool, count: UInt32)] = []

        /// A parser of `bytes`; when `recording`, the caller gives it entry storage (see `parse`).
        init(bytes: UnsafeRawBufferPointer, maximumDepth: Int, recording: Bool) {
            self.bytes = bytes
            self.maximumDepth = maximumDepth
            self.recording = recording
        }

        func fail(_ message: String, at offset: Int? = nil) -> JSONBError {
            JSONBError(.malformed, "Malformed JSON: \(message)", offset: offset ?? position)
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
        mutating func record(_ kind: Kind, flag: Bool = false, start: Int, length: Int) {
            guard recording else { return }
            let index = UInt32(truncatingIfNeeded: entries.count)
            entries.append(Entry(kind: kind, flag: flag, start: UInt32(truncatingIfNeeded: start), length: UInt32(truncatingIfNeeded: length), end: index + 1))
        }

        mutating func run() throws(JSONBError) {
            guard bytes.count < Int(UInt32.max) else {
                throw JSONBError(.malformed, "Documents of 4 GiB or more are not supported.")
            }
            skipWhitespace()
            try parseValue()
            // Members and elements until every container is closed.
            while !stack.isEmpty {
                skipWhitespace()
                guard position < bytes.count else { throw fail("the document ends inside \(stack.last!.isObject ? "an object" : "an array")") }
                let byte = bytes[position]
                let top = stack.count - 1
                if byte == UInt8(ascii: ",") {
                    position += 1
                    skipWhitespace()
                    if stack[top].isObject {
                        try parseKey()
                    }
                    stack[top].count += 1
                    try parseValue()
                } else if byte == (stack[top].isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position += 1
                    closeContainer()
                } else {
                    throw fail(stack[top].isObject ? "expected ',' or '}' after an object member" : "expected ',' or ']' after an array element")
                }
            }
            skipWhitespace()
            guard position == bytes.count else { throw fail("unexpected text after the end of the document") }
        }

        mutating func closeContainer() {
            let (index, _, count) = stack.removeLast()
            if recording {
                entries[index].length = count
                entries[index].end = UInt32(truncatingIfNeeded: entries.count)
            }
        }

        /// An object key and the colon after it.
        mutating func parseKey() throws(JSONBError) {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw fail(position < bytes.count && bytes[position] == UInt8(ascii: "}") ? "trailing comma before '}'" : "expected a string key")
            }
            try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
            position += 1
            skipWhitespace()
        }

        /// One value; containers are opened here and finished by `run`.
        mutating func parseValue() throws(JSONBError) {
            guard position < bytes.count else { throw fail("expected a value but the document ends") }
            switch bytes[position] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = bytes[position] == UInt8(ascii: "{")
                guard stack.count < maximumDepth else {
                    throw JSONBError(.tooDeep, "The document nests deeper than \(maximumDepth) levels.", offset: position)
                }
                record(isObject ? .object : .array, start: position, length: 0)
                position += 1
                stack.append((recording ? entries.count - 1 : -1, isObject, 0))
                skipWhitespace()
                guard position < bytes.count else { throw fail("the document ends inside \(isObject ? "an object" : "an array")") }
                if bytes[position] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position += 1
                    closeContainer()
                    return
                }
                if isObject { try parseKey() }
                stack[stack.count - 1].count = 1
                try parseValue()
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
            let start = position
            var plainInteger = true
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw fail("a number needs digits", at: start) }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
                if position < bytes.count, isDigit(bytes[position]) { throw fail("numbers cannot have leading zeros", at: start) }
            } else {
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                plainInteger = false
                position += 1
                guard position < bytes.count, isDigit(bytes[position]) else { throw fail("a decimal point must be followed by digits") }
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
                plainInteger = false
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard position < bytes.count, isDigit(bytes[position]) else { throw fail("an exponent must have digits") }
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            record(.number, flag: !plainInteger, start: start, length: position - start)
        }

        @inline(__always)
        func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

        /// A string literal starting at the opening quote: checks escapes, control characters and UTF-8.
        mutating func parseString() throws(JSONBError) {
            position += 1
            let start = position
            var escaped = false
            let count = bytes.count
            while true {
                // Eight bytes at a time while they are plain ASCII without quote, backslash or control.
                while position + 8 <= count {
                    let word = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 || JSONEscaping.wordNeedsEscaping(word) { break }
                    position += 8
                }
                guard position < count else { throw fail("unterminated string", at: start - 1) }
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    record(.string, flag: escaped, start: start, length: position - start)
                    position += 1
                    return
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                    try parseEscape()
                } else if byte < 0x20 {
                    throw fail("control character U+00\(byte < 16 ? "0" : "")\(String(byte, radix: 16, uppercase: true)) must be escaped in a string")
                } else if byte < 0x80 {
                    position += 1
                } else {
                    try parseUTF8Sequence()
                }
            }
        }

        mutating func parseEscape() throws(JSONBError) {
            let escapeStart = position
            position += 1
            guard position < bytes.count else { throw fail("unterminated escape", at: escapeStart) }
            switch bytes[position] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                 UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
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

        /// One multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
        mutating func parseUTF8Sequence() throws(JSONBError) {
            let lead = bytes[position]
            let start = position
            func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
                start + offset < bytes.count && range.contains(bytes[start + offset])
            }
            let length: Int
            switch lead {
            case 0xC2...0xDF:
                guard continuation(1) else { throw fail("invalid UTF-8") }
                length = 2
            case 0xE0:
                guard continuation(1, 0xA0...0xBF), continuation(2) else { throw fail("invalid UTF-8") }
                length = 3
            case 0xE1...0xEC, 0xEE...0xEF:
                guard continuation(1), continuation(2) else { throw fail("invalid UTF-8") }
                length = 3
            case 0xED:
                guard continuation(1, 0x80...0x9F), continuation(2) else { throw fail("invalid UTF-8 (encoded surrogate)") }
                length = 3
            case 0xF0:
                guard continuation(1, 0x90...0xBF), continuation(2), continuation(3) else { throw fail("invalid UTF-8") }
                length = 4
            case 0xF1...0xF3:
                guard continuation(1), continuation(2), continuation(3) else { throw fail("invalid UTF-8") }
                length = 4
            case 0xF4:
                guard continuation(1, 0x80...0x8F), continuation(2), continuation(3) else { throw fail("invalid UTF-8 (beyond U+10FFFF)") }
                length = 4
            default:
                throw fail("invalid UTF-8")
            }
            position += length
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
