import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// The string paths of the parser and decoder against references that share none of their code:
/// UTF-8 validation against the standard library's, unescaping against the text that was escaped.
@Suite struct JSONStringTests {
    /// Whether the parser's validation accepts `bytes` (as a string's text).
    func parserAccepts(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return true }
            do {
                try JSONTape.Parser.validateUTF8(base, from: 0, to: raw.count)
                return true
            } catch {
                return false
            }
        }
    }

    func standardLibraryAccepts(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    @Test func everyOneAndTwoByteSequenceIsJudgedLikeTheStandardLibrary() {
        for first in 0...255 {
            #expect(parserAccepts([UInt8(first)]) == standardLibraryAccepts([UInt8(first)]), "\(first)")
            for second in 0...255 {
                let bytes = [UInt8(first), UInt8(second)]
                if parserAccepts(bytes) != standardLibraryAccepts(bytes) {
                    Issue.record("disagreement on \(bytes)")
                }
            }
        }
    }

    /// Every three-byte sequence whose bytes are drawn from the values where UTF-8's rules change,
    /// and every four-byte one from the lead bytes F0–F4, at every position of an ASCII word (so
    /// the word-at-a-time skip and the byte-at-a-time tail both see them).
    @Test func multiByteBoundariesAreJudgedLikeTheStandardLibrary() {
        let edges: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        var checked = 0
        for a in edges {
            for b in edges {
                for c in edges {
                    for prefix in [0, 3, 7, 8, 13] {
                        let bytes = Array(repeating: UInt8(ascii: "x"), count: prefix) + [a, b, c] + Array(repeating: UInt8(ascii: "y"), count: prefix % 5)
                        if parserAccepts(bytes) != standardLibraryAccepts(bytes) { Issue.record("disagreement on \(bytes)") }
                        checked += 1
                    }
                    for d in [UInt8(0x80), 0x8F, 0x90, 0xBF, 0xC0, 0x41] where (0xF0...0xF4).contains(a) {
                        let bytes = [UInt8(ascii: "q")] + [a, b, c, d]
                        if parserAccepts(bytes) != standardLibraryAccepts(bytes) { Issue.record("disagreement on \(bytes)") }
                    }
                }
            }
        }
        #expect(checked == 25 * 25 * 25 * 5)
    }

    /// Random runs of valid characters with one byte sometimes changed: the verdict matches the
    /// standard library's, and a rejected string's error names the first bad byte the way the
    /// sequence-by-sequence walk does.
    @Test func randomTextIsJudgedLikeTheStandardLibrary() {
        var rng = SeededRandom(seed: 0x5eed_0f_0ff)
        let pieces: [String] = ["a", "Z", " ", "é", "ß", "日本語", "🦀", "𝄞", "\u{7FF}", "\u{800}", "\u{FFFF}", "\u{10000}", "\u{10FFFF}", "\u{D7FF}", "\u{E000}"]
        for _ in 0..<20_000 {
            var bytes = Array((0..<Int.random(in: 0...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined().utf8)
            if !bytes.isEmpty, Bool.random(using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            #expect(parserAccepts(bytes) == standardLibraryAccepts(bytes), "\(bytes)")
        }
    }

    /// Strings whose characters are written raw or escaped at random (one-letter escapes, `\u`
    /// escapes of BMP scalars, surrogate pairs), in lengths that put escapes on every position of
    /// the eight-byte words: each decodes to the text that was escaped.
    @Test func escapedTextDecodesToWhatWasEscaped() throws {
        var rng = SeededRandom(seed: 0xe5ca_9e)
        let alphabet: [Unicode.Scalar] = ["a", "b", "0", " ", "\"", "\\", "/", "\u{08}", "\u{0C}", "\n", "\r", "\t", "\u{01}", "\u{1F}", "é", "漢", "🦀", "𝄞", "\u{FEFF}", "\u{7F}"]
        let decoder = JSONBDecoder()
        for _ in 0..<5_000 {
            let scalars = (0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            var json = "\""
            for scalar in scalars {
                json += Self.written(scalar, &rng)
            }
            json += "\""
            let expected = String(String.UnicodeScalarView(scalars))
            let decoded = try decoder.decode(String.self, from: Array(json.utf8))
            #expect(decoded == expected, "\(json)")
            // Known to be ASCII exactly when it is (a wrong claim would corrupt hashing and comparison).
            #expect(decoded.utf8Span.isKnownASCII == expected.utf8.allSatisfy { $0 < 0x80 }, "\(json)")
            // As an object key too (keys take the same path through the tape).
            #expect(try decoder.decode([String: Int].self, from: Array("{\(json):1}".utf8)) == [expected: 1], "\(json)")
        }
    }

    /// Object keys of every length around the parser's sixteen-byte key path, plain, escaped, with
    /// non-ASCII text or a raw control character at each position, with the document going on for
    /// more than sixteen bytes after them and ending right after them.
    @Test func keysOfEveryShapeAroundTheShortKeyPath() throws {
        let decoder = JSONBDecoder()
        for length in 0...20 {
            for position in 0...max(0, length - 1) {
                var plain = Array(repeating: "k", count: length)
                var escaped = plain, accented = plain, control = plain
                if length > 0 {
                    plain[position] = "q"
                    escaped[position] = "\\\""
                    accented[position] = "é"
                    control[position] = "\u{01}"
                }
                let expected: [(written: String, key: String)] = [
                    (plain.joined(), plain.joined()),
                    (escaped.joined(), escaped.joined().replacingOccurrences(of: "\\\"", with: "\"")),
                    (accented.joined(), accented.joined()),
                ]
                for (written, key) in expected {
                    for tail in ["", ",\"padding-padding-padding\":2"] {
                        let json = "{\"\(written)\":1\(tail)}"
                        let decoded = try decoder.decode([String: Int].self, from: Array(json.utf8))
                        #expect(decoded[key] == 1, "\(json)")
                        #expect(decoded.count == (tail.isEmpty ? 1 : 2), "\(json)")
                    }
                }
                if length > 0 {
                    let json = "{\"\(control.joined())\":1,\"padding-padding-padding\":2}"
                    #expect(throws: JSONBError.self, "\(json)") { try RawJSONB(validating: json) }
                }
            }
        }
    }

    /// Decoded strings too long to be stored inline carry whether they are ASCII: plain, escaped with
    /// ASCII escapes, with raw non-ASCII text, with a `\u` escape of a non-ASCII scalar.
    @Test func decodedStringsKnowWhetherTheyAreASCII() throws {
        let decoder = JSONBDecoder()
        let cases: [(json: String, ascii: Bool)] = [
            (#""a plain ASCII string, long enough""#, true),
            (#""an escaped \"quote\" and a \\ and \n, long enough""#, true),
            (#""\u0041n ASCII scalar escaped, long enough""#, true),
            (#""naïve text with an accent, long enough""#, false),
            (#""an escaped \u00e9 accent, long enough""#, false),
            (#""an escaped \uD83E\uDD80 crab, long enough""#, false),
        ]
        for (json, ascii) in cases {
            let decoded = try decoder.decode(String.self, from: Array(json.utf8))
            #expect(decoded.utf8.count > 15, "\(json)")
            #expect(decoded.utf8Span.isKnownASCII == ascii, "\(json)")
        }
    }

    /// `scalar` as JSON string text: raw when JSON allows it and a coin says so, else escaped in
    /// one of the forms that spell it.
    static func written(_ scalar: Unicode.Scalar, _ rng: inout SeededRandom) -> String {
        let mustEscape = scalar == "\"" || scalar == "\\" || scalar.value < 0x20
        if !mustEscape, Bool.random(using: &rng) { return String(scalar) }
        let oneLetter: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "/": "\\/", "\u{08}": "\\b", "\u{0C}": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"]
        if let short = oneLetter[scalar], Bool.random(using: &rng) { return short }
        func hex(_ unit: UInt32) -> String {
            let digits = String(unit, radix: 16, uppercase: Bool.random(using: &rng))
            return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
        }
        if scalar.value < 0x10000 { return hex(scalar.value) }
        let offset = scalar.value - 0x10000
        return hex(0xD800 + (offset >> 10)) + hex(0xDC00 + (offset & 0x3FF))
    }
}
