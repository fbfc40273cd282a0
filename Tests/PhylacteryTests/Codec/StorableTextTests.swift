import Foundation
import NIOCore
@testable import Phylactery
import Testing

/// The one rule for U+0000: a user's value is refused before anything is sent, naming where it is;
/// text the library writes itself becomes U+FFFD.
@Suite struct StorableTextTests {
    struct Note: Codable, Equatable {
        var title: String
        var tags: [String]
        var meta: [String: String]
    }

    @Test func theEncoderRefusesNulAndNamesTheCodingPath() throws {
        let cases: [(Note, String)] = [
            (Note(title: "a\u{0}b", tags: [], meta: [:]), "/title"),
            (Note(title: "ok", tags: ["x", "y\u{0}"], meta: [:]), "/tags/1"),
            (Note(title: "ok", tags: [], meta: ["k": "v\u{0}"]), "/meta/k"),
        ]
        for (note, pointer) in cases {
            var buffer = ByteBuffer(string: "prefix")
            let error = #expect(throws: EncodingError.self) { try JSONBEncoder().encode(note, into: &buffer) }
            guard case .invalidValue(_, let context)? = error else { Issue.record("not invalidValue"); continue }
            #expect(context.debugDescription.contains("'\(pointer)'"), "\(context.debugDescription)")
            #expect(context.debugDescription.contains("U+0000"))
            #expect("/" + context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: "/") == pointer)
            #expect(String(buffer: buffer) == "prefix", "nothing is written on error")
        }
        // A key holding NUL is named as a key of its object.
        let keyed = #expect(throws: EncodingError.self) { try JSONBEncoder().encodeToBytes(["a\u{0}": 1]) }
        guard case .invalidValue(_, let context)? = keyed else { Issue.record("not invalidValue"); return }
        #expect(context.debugDescription.contains("in a key of the object at ''"))
        // COPY's text form (backslashes doubled) is refused the same way.
        var copy = ByteBuffer()
        #expect(throws: EncodingError.self) { try JSONBEncoder().encodeCopyField(Note(title: "\u{0}", tags: [], meta: [:]), into: &copy) }
        #expect(copy.readableBytes == 0)
    }

    @Test func theReplacingStrategyWritesTheReplacementCharacter() throws {
        var encoder = JSONBEncoder()
        encoder.nulCharacterStrategy = .replace
        let bytes = try encoder.encodeToBytes(["k\u{0}": "a\u{0}b"])
        #expect(String(decoding: bytes, as: UTF8.self) == "{\"k\u{FFFD}\":\"a\u{FFFD}b\"}")
        // Other control characters keep their escapes.
        #expect(String(decoding: try encoder.encodeToBytes("\u{1}"), as: UTF8.self) == "\"\\u0001\"")
    }

    @Test func rawJSONBRefusesTheNulEscapeWithItsPointer() throws {
        let cases: [(String, String)] = [
            (#""\u0000""#, "at ''"),
            (#"{"a":{"b":[1,"x\u0000"]}}"#, "at '/a/b/1'"),
            (#"{"we/ird~":"\u0000"}"#, "at '/we~1ird~0'"),
            (#"{"a":{"k\u0000":1}}"#, "in a key of the object at '/a'"),
        ]
        for (text, place) in cases {
            let error = #expect(throws: JSONBError.self) { try RawJSONB(validating: text) }
            #expect(error?.code == .unstorableCharacter, "\(text)")
            #expect(error?.message.contains(place) == true, "\(error?.message ?? "") should say \(place)")
        }
        // An escaped backslash followed by the letters u0000 is plain text, and fine.
        _ = try RawJSONB(validating: #"["\\u0000", "\\\\u0000"]"#)
        // The decoder still reads \u0000: only storing refuses it.
        #expect(try JSONBDecoder().decode(String.self, from: Array(#""a\u0000""#.utf8)) == "a\u{0}")
    }

    @Test func libraryTextIsSanitizedAndUserTextIsChecked() throws {
        #expect(StorableText.containsNul("a\u{0}"))
        #expect(!StorableText.containsNul(""))
        #expect(!StorableText.containsNul("é漢字🦀"))
        #expect(StorableText.sanitized("a\u{0}b\u{0}") == "a\u{FFFD}b\u{FFFD}")
        #expect(StorableText.sanitized("plain") == "plain")
        let error = #expect(throws: PhylacteryError.self) { try StorableText.check("x\u{0}", "The fact's key") }
        #expect(error?.code == .unstorableValue)
        #expect(error?.message.hasPrefix("The fact's key contains the character U+0000") == true)
        let column = ColumnDescription(property: "content", name: "content", type: .text, isNullable: false)
        let refused = #expect(throws: PhylacteryError.self) { try "bad\u{0}".validate(for: column) }
        #expect(refused?.message.contains("content") == true)
        try "good".validate(for: column)
    }

    @Test func copyTextSanitizesWhatTheLibraryWrites() {
        var buffer = ByteBuffer()
        CopyText.escape("a\u{0}\t".utf8, into: &buffer)
        #expect(String(buffer: buffer) == "a\u{FFFD}\\t")
    }
}
