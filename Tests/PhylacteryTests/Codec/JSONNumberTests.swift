@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// The decoder's number conversion against Swift's own correctly rounded parser, bit for bit: the
/// exact fast paths (Clinger's, and the 80-bit one on x86-64) must never round differently.
@Suite struct JSONNumberTests {
    func ours(_ text: String) -> Double? {
        Array(text.utf8).withUnsafeBytes { JSONNumber.double($0) }
    }

    /// As inside a document: more bytes readable after the number, the first of them not a digit.
    func oursInDocument(_ text: String) -> Double? {
        let document = Array((text + "],1234567890123456789]").utf8)
        return document.withUnsafeBytes { bytes in
            JSONNumber.double(UnsafeRawBufferPointer(rebasing: bytes[0..<text.utf8.count]), readable: bytes.count)
        }
    }

    func expectSame(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = Double(text)
        for got in [ours(text), oursInDocument(text)] {
            #expect(got?.bitPattern == expected?.bitPattern, "\(text): \(String(describing: got)) instead of \(String(describing: expected))", sourceLocation: sourceLocation)
        }
    }

    @Test func numbersAtTheEdgesOfEachPath() {
        let cases = [
            "0", "-0", "0.0", "-0.0e5", "1", "-1", "0.1", "0.3", "1e22", "1e23", "9007199254740992", "9007199254740993",
            "9007199254740994", "9007199254740995", "18446744073709551615", "18446744073709551616", "9999999999999999999",
            "99999999999999999999", "1.7976931348623157e308", "1.7976931348623159e308", "2.2250738585072014e-308",
            "4.9e-324", "2e-324", "1e-400", "1e400", "123456789012345678e-27", "123456789012345678e-28", "0.000001234567890123456789",
            "9945.142857142857", "13481.142857142857", "12408.42857142857", "785692800.25", "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124", "1.00000000000000011102230246251565404236316680908203126",
            "7.038531e-26", "89255.0e-22", "3.0e-1", "1E2", "1e+2", "-12345678901234567e-20",
        ]
        for text in cases { expectSame(text) }
    }

    @Test func randomDecimalsRoundLikeSwiftsParser() {
        var rng = SeededRandom(seed: 0xD0B1E)
        for round in 0..<300_000 {
            let digitCount = Int(rng.next() % 20) + 1
            var digits = String(Int(rng.next() % 9) + 1)
            for _ in 1..<digitCount { digits.append(Character(String(rng.next() % 10))) }
            // Halfway-prone shapes: trailing 5s and 0s now and then.
            if round % 7 == 0 { digits += "5" }
            if round % 11 == 0 { digits += "000" }
            var text = digits
            switch rng.next() % 3 {
            case 0:
                let point = Int(rng.next() % UInt64(text.count))
                if point > 0 { text.insert(".", at: text.index(text.startIndex, offsetBy: point)) }
            case 1:
                text += "e\(Int(rng.next() % 70) - 35)"
            default:
                break
            }
            if rng.next() % 2 == 0 { text = "-" + text }
            expectSame(text)
        }
    }

    @Test func doublesPrintedShortestComeBackExactly() {
        var rng = SeededRandom(seed: 0xF10A7)
        for _ in 0..<200_000 {
            let value = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)
            let scaled = [value, Double(rng.next() % 100_000_000) / 7, Double(rng.next() % 1_000_000) / 1_000_000][Int(rng.next() % 3)]
            #expect(ours(scaled.description)?.bitPattern == scaled.bitPattern, "\(scaled)")
        }
    }
}
