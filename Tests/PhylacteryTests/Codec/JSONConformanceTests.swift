import Foundation
@testable import Phylactery
import Testing

/// Our own RFC 8259 corpus: every valid case accepted by the validator and the decoder, every
/// invalid case rejected with ``JSONBError`` (code `.malformed`, or `.tooDeep`).
@Suite struct JSONConformanceTests {
    static let valid: [String] = [
        "null", "true", "false", "0", "-0", "1", "-1", "123456789", "0.5", "-0.5", "1e10", "1E10", "1e+10", "1e-10",
        "1.5e300", "-1.25E-7", "9007199254740993", "100000000000000000000000000000", "\"\"", "\"a\"",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\"\\u0000\"", "\"\\u00e9\"", "\"\\uD83E\\uDD80\"", "\"\\uFFFF\"",
        "\"é漢字🦀\"", "\"\u{7F}\"", "[]", "{}", "[1]", "[1,2,3]", "[[]]", "[[[[]]]]", "{\"a\":1}",
        "{\"a\":{\"b\":[null,true,{}]}}", "{\"\":0}", "{\"a\":1,\"a\":2}", " \t\r\n[ 1 , 2 ] \n", "{ \"k\" : \"v\" }",
        "[\"\\u002F\", \"\\uDBFF\\uDFFF\"]", "-0.0e-0", "[0,-0,0.0,-0.0]",
    ]

    static let invalid: [(String, String)] = [
        ("", "empty document"), (" ", "only whitespace"), ("nul", "truncated literal"), ("True", "capitalised literal"),
        ("NaN", "NaN"), ("Infinity", "infinity"), ("-", "lone minus"), ("+1", "plus sign"), ("01", "leading zero"),
        ("-01", "negative leading zero"), ("1.", "no fraction digits"), (".5", "no integer part"), ("1e", "no exponent digits"),
        ("1e+", "signless exponent digits"), ("0x10", "hex"), ("1 2", "two values"), ("[1,]", "trailing comma in array"),
        ("{\"a\":1,}", "trailing comma in object"), ("[,1]", "leading comma"), ("[1 2]", "missing comma"),
        ("{\"a\" 1}", "missing colon"), ("{a:1}", "unquoted key"), ("{1:1}", "number key"), ("{'a':1}", "single quotes"),
        ("[1", "unclosed array"), ("{\"a\":1", "unclosed object"), ("]", "stray bracket"), ("[1]]", "extra bracket"),
        ("\"abc", "unterminated string"), ("\"a\nb\"", "raw newline in string"), ("\"a\u{01}b\"", "raw control character"),
        ("\"\\x41\"", "invalid escape"), ("\"\\u12\"", "short unicode escape"), ("\"\\uZZZZ\"", "non-hex escape"),
        ("\"\\uD800\"", "lone high surrogate"), ("\"\\uDC00\"", "lone low surrogate"), ("\"\\uD800\\u0041\"", "high surrogate + non-low"),
        ("\"\\uD800x\"", "high surrogate + text"), ("[1]x", "text after document"), ("{\"a\":1}{}", "two objects"),
        ("\u{FEFF}[]", "byte order mark"), ("/* c */ 1", "comment"), ("[1,\n]", "trailing comma before newline"),
        ("\"\\\"", "escaped closing quote"), ("{\"a\":}", "missing value"), ("[-]", "minus without digits"),
    ]

    /// Invalid UTF-8 inside strings, as raw bytes.
    static let invalidUTF8: [([UInt8], String)] = [
        ([0x22, 0xFF, 0x22], "byte 0xFF"), ([0x22, 0xC0, 0xAF, 0x22], "overlong '/'"), ([0x22, 0xE0, 0x80, 0xAF, 0x22], "overlong 3-byte"),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], "UTF-8 encoded surrogate"), ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "beyond U+10FFFF"),
        ([0x22, 0xC3, 0x22], "truncated sequence"), ([0x22, 0x80, 0x22], "lone continuation byte"), ([0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22], "5-byte form"),
        // The same inside long strings, where the parser scans and validates eight bytes at a time.
        ([0x22] + Array("aaaaaaaaaa".utf8) + [0xE6, 0x97, 0x22], "truncated 3-byte sequence at a long string's end"),
        ([0x22] + Array("aaaaaaaaaaaa".utf8) + [0x80] + Array("aaaaaaaa".utf8) + [0x22], "lone continuation byte in a long string"),
        ([0x22] + Array("aaaaaaaaa".utf8) + [0xED, 0xBF, 0xBF] + Array("aaaaaaaaa".utf8) + [0x22], "encoded surrogate in a long string"),
        ([0x22] + Array("aaaaaaaaa".utf8) + [0xC3] + Array("aaaaaaaaa".utf8) + [0x22], "two-byte lead followed by ASCII"),
        ([0x22] + Array("aaaaaaaaa".utf8) + [0xE0, 0x9F, 0xBF] + Array("aaaaaaaaa".utf8) + [0x22], "overlong 3-byte in a long string"),
        ([0x22] + Array("日本語日本語".utf8) + [0xE6, 0x97] + Array("語aaaaaaaa".utf8) + [0x22], "truncated sequence among valid ones"),
    ]

    @Test(arguments: valid)
    func validIsAccepted(_ text: String) throws {
        _ = try JSONBDecoder().decode(JSONValue.self, from: Array(text.utf8))
        if text.contains("\\u0000") {
            // Valid JSON that jsonb cannot store: refused for storage, with where it is.
            let error = #expect(throws: JSONBError.self) { try RawJSONB(validating: text) }
            #expect(error?.code == .unstorableCharacter)
        } else {
            _ = try RawJSONB(validating: text)
        }
    }

    @Test(arguments: invalid)
    func invalidIsRejected(_ text: String, _ why: String) {
        let error = #expect(throws: JSONBError.self, "\(why)") { try RawJSONB(validating: text) }
        #expect(error?.code == .malformed, "\(why)")
        #expect(throws: JSONBError.self, "\(why)") { try JSONBDecoder().decode(JSONValue.self, from: Array(text.utf8)) }
    }

    @Test(arguments: invalidUTF8)
    func invalidUTF8IsRejected(_ bytes: [UInt8], _ why: String) {
        let error = #expect(throws: JSONBError.self, "\(why)") { try RawJSONB(validating: bytes) }
        #expect(error?.code == .malformed, "\(why)")
    }

    @Test func escapesDecodeToTheRightText() throws {
        let text = try JSONBDecoder().decode(String.self, from: Array(#""\"\\\/\b\f\n\r\t\u0041\u00e9\uD83E\uDD80""#.utf8))
        #expect(text == "\"\\/\u{08}\u{0C}\n\r\tAé🦀")
        let key = try JSONBDecoder().decode([String: Int].self, from: Array(#"{"caf\u00e9":1}"#.utf8))
        #expect(key == ["café": 1])
    }

    @Test func errorsSayWhere() {
        let error = #expect(throws: JSONBError.self) { try RawJSONB(validating: "[1, 2,]") }
        #expect(error?.offset == 6)
        #expect(error?.description.contains("at byte 6") == true)
    }
}
