import Foundation
import NIOCore
@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// A record with one property of every kind the codec special-cases.
struct Everything: Codable, Equatable {
    enum Mood: String, Codable { case calm, wrathful }
    struct Inner: Codable, Equatable { var name: String; var tags: [String] }

    var int: Int, int8: Int8, int16: Int16, int32: Int32, int64: Int64
    var uint: UInt, uint8: UInt8, uint16: UInt16, uint32: UInt32, uint64: UInt64
    var double: Double, float: Float
    var bool: Bool
    var string: String
    var optionalPresent: String?
    var optionalAbsent: Int?
    var date: Date
    var data: Data
    var url: URL
    var uuid: UUID
    var decimal: Decimal
    var mood: Mood
    var inner: Inner
    var list: [Inner]
    var byName: [String: Int]
    var byNumber: [Int: String]
    var nested: [[Double]]

    static let sample = Everything(
        int: .min, int8: .min, int16: .max, int32: .min, int64: .max,
        uint: .max, uint8: .max, uint16: .max, uint32: .max, uint64: .max,
        double: 0.30000000000000004, float: 3.4028235e38, bool: true,
        string: "quote \" backslash \\ newline \n tab \t unit separator \u{1F} bell \u{07} é 漢字 🦀",
        optionalPresent: "here", optionalAbsent: nil,
        date: Date(timeIntervalSince1970: 1_764_174_540.123),
        data: Data([0, 1, 2, 253, 254, 255, 42]),
        url: URL(string: "https://example.com/a%20b?q=1#frag")!,
        uuid: UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F")!,
        decimal: Decimal(string: "12345678901234567890.123456789")!,
        mood: .wrathful,
        inner: Inner(name: "inner", tags: ["a", "b"]),
        list: [Inner(name: "x", tags: []), Inner(name: "y", tags: ["z"])],
        byName: ["zeta": 1, "alpha": 2, "mid": 3],
        byNumber: [10: "ten", 2: "two"],
        nested: [[1, 2.5], [], [-0.0, 1e-300]])
}

@Suite struct JSONBCodecTests {
    let encoder = JSONBEncoder()
    let decoder = JSONBDecoder()

    func ours<T: Encodable>(_ value: T) throws -> [UInt8] { try encoder.encodeToBytes(value) }

    func foundationEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            try container.encode(formatter.string(from: date))
        }
        return encoder
    }

    func foundationDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: text)!
        }
        return decoder
    }

    @Test func everythingRoundTripsThroughOursAndFoundation() throws {
        let value = Everything.sample
        let bytes = try ours(value)
        #expect(try decoder.decode(Everything.self, from: bytes) == value)
        #expect(try foundationDecoder().decode(Everything.self, from: Data(bytes)) == value)
        let theirs = try foundationEncoder().encode(value)
        #expect(try decoder.decode(Everything.self, from: Array(theirs)) == value)
    }

    @Test func outputIsDeterministicWithKeysInDeclarationOrderAndSortedDictionaries() throws {
        let first = try ours(Everything.sample)
        for _ in 0..<5 { #expect(try ours(Everything.sample) == first) }
        let text = String(decoding: first, as: UTF8.self)
        #expect(text.hasPrefix(#"{"int":-9223372036854775808,"int8":-128,"#))
        #expect(text.contains(#""byName":{"alpha":2,"mid":3,"zeta":1}"#))
        #expect(text.contains(#""byNumber":{"2":"two","10":"ten"}"#))
        // Hash order differs between processes; sorted keys make the bytes the same anyway.
        let big = Dictionary(uniqueKeysWithValues: (0..<200).map { ($0 * 7919 % 1000, "v\($0)") })
        let bigText = String(decoding: try ours(big), as: UTF8.self)
        let keys = try JSONSerialization.jsonObject(with: Data(bigText.utf8)) as! [String: String]
        #expect(keys.count == 200)
        let order = bigText.split(separator: ",").map { Int($0.drop { !$0.isNumber }.prefix { $0.isNumber })! }
        #expect(order == order.sorted())
        #expect(text.contains(#""date":"2025-11-26T16:29:00.123Z""#))
        #expect(text.contains(#""uuid":"E621E1F8-C36C-495A-93FC-0C247A3E6E5F""#))
        #expect(text.contains(#""data":"AAEC/f7/Kg==""#))
        #expect(text.contains(#""decimal":12345678901234567890.123456789"#))
        #expect(!text.contains("optionalAbsent"))
    }

    @Test func randomTreesRoundTripSemantically() throws {
        var rng = SeededRandom(seed: 0x5EED)
        for round in 0..<300 {
            let value = JSONGenerator.value(&rng)
            let bytes = try ours(value)
            let viaFoundation = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
            #expect(viaFoundation == value, "round \(round): ours → Foundation")
            #expect(try decoder.decode(JSONValue.self, from: bytes) == value, "round \(round): ours → ours")
            let theirs = try JSONEncoder().encode(value)
            #expect(try decoder.decode(JSONValue.self, from: Array(theirs)) == value, "round \(round): Foundation → ours")
            try RawJSONB(validating: bytes).bytes.withUnsafeReadableBytes { #expect($0.count == bytes.count) }
        }
    }

    @Test func everyIntegerWidthIsExactAndOverflowIsAnError() throws {
        #expect(try decoder.decode([Int64].self, from: Array("[-9223372036854775808,9223372036854775807]".utf8)) == [.min, .max])
        #expect(try decoder.decode([UInt64].self, from: Array("[18446744073709551615,0]".utf8)) == [.max, 0])
        #expect(try decoder.decode([Int8].self, from: Array("[-128,127]".utf8)) == [-128, 127])
        #expect(try decoder.decode(Int.self, from: Array("1e3".utf8)) == 1000)
        for (text, type) in [("128", Int8.self as any Decodable.Type), ("-1", UInt.self), ("18446744073709551616", UInt64.self),
                             ("9223372036854775808", Int.self), ("1.5", Int.self), ("65536", UInt16.self)] {
            #expect(throws: DecodingError.self, "\(text) as \(type)") { try decoder.decode(type, from: Array(text.utf8)) }
        }
        #expect(throws: DecodingError.self) { try decoder.decode(Double.self, from: Array("1e400".utf8)) }
    }

    @Test func doublesAreShortestAndCorrectlyRounded() throws {
        let samples: [Double] = [0.1, 0.2, 0.30000000000000004, 1e21, 1e-7, 123456789.123, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 100, 1 / 3]
        for sample in samples {
            let bytes = try ours(sample)
            let back = try decoder.decode(Double.self, from: bytes)
            #expect(back == sample && back.sign == sample.sign || (sample == 0 && back == 0), "\(sample) → \(String(decoding: bytes, as: UTF8.self))")
            #expect(try JSONDecoder().decode(Double.self, from: Data(bytes)) == sample)
        }
        #expect(String(decoding: try ours(100.0), as: UTF8.self) == "100")
        #expect(String(decoding: try ours(0.1), as: UTF8.self) == "0.1")
        // Correct rounding: exactly half-way between two doubles goes to the even one; a hair above goes up.
        #expect(try decoder.decode(Double.self, from: Array("1.00000000000000011102230246251565404236316680908203125".utf8)) == 1.0)
        #expect(try decoder.decode(Double.self, from: Array("1.000000000000000111022302462515654042363166809082031250001".utf8)) == 1.0000000000000002)
    }

    @Test func nonFiniteNumbersAreEncodingErrorsAndNothingIsWritten() throws {
        for bad in [Double.nan, .infinity, -.infinity] {
            var buffer = ByteBuffer(string: "keep")
            #expect(throws: EncodingError.self) { try encoder.encode(["x": bad], into: &buffer) }
            #expect(String(buffer: buffer) == "keep")
        }
        #expect(throws: EncodingError.self) { try encoder.encodeToBytes(Float.nan) }
    }

    @Test func typeMismatchAndMissingKeysCarryTheCodingPath() throws {
        let json = Array(#"{"int":1,"inner":{"name":5,"tags":[]}}"#.utf8)
        struct Outer: Decodable { var int: Int; var inner: Everything.Inner }
        do {
            _ = try decoder.decode(Outer.self, from: json)
            Issue.record("expected a type mismatch")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["inner", "name"])
        }
        do {
            _ = try decoder.decode(Everything.Inner.self, from: Array(#"{"name":"n"}"#.utf8))
            Issue.record("expected a missing key")
        } catch DecodingError.keyNotFound(let key, _) {
            #expect(key.stringValue == "tags")
        }
        do {
            _ = try decoder.decode([Everything.Inner].self, from: Array(#"[{"name":"a","tags":[]},{"name":"b","tags":[1]}]"#.utf8))
            Issue.record("expected a type mismatch")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["Index 1", "tags", "Index 0"])
        }
    }

    @Test func hostileNestingIsAnErrorNotACrash() throws {
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        let error = #expect(throws: JSONBError.self) { try decoder.decode(JSONValue.self, from: deep) }
        #expect(error?.code == .tooDeep)
        #expect(throws: JSONBError.self) { try RawJSONB(validating: deep) }
        let ok = Array(repeating: UInt8(ascii: "["), count: 500) + Array(repeating: UInt8(ascii: "]"), count: 500)
        _ = try decoder.decode(JSONValue.self, from: ok)
    }

    @Test func datesInEveryStrategy() throws {
        let date = Date(timeIntervalSince1970: 1_700_000_000.5)
        var encoder = JSONBEncoder()
        var decoder = JSONBDecoder()
        for (encode, decode) in [(JSONBEncoder.DateEncodingStrategy.iso8601WithFractionalSeconds, JSONBDecoder.DateDecodingStrategy.iso8601),
                                 (.secondsSince1970, .secondsSince1970), (.millisecondsSince1970, .millisecondsSince1970),
                                 (.deferredToDate, .deferredToDate)] {
            encoder.dateEncodingStrategy = encode
            decoder.dateDecodingStrategy = decode
            #expect(try decoder.decode([Date].self, from: encoder.encodeToBytes([date])) == [date])
        }
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(Date.self, from: Array(#""2023-11-14T22:13:20Z""#.utf8)) == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(try decoder.decode(Date.self, from: Array(#""2023-11-15T00:13:20.25+02:00""#.utf8)) == Date(timeIntervalSince1970: 1_700_000_000.25))
        #expect(throws: DecodingError.self) { try decoder.decode(Date.self, from: Array(#""yesterday""#.utf8)) }
    }
}
