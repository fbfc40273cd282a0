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

    /// A random decimal of 1…`maxDigits` digits, with a decimal point, an exponent within
    /// ±`exponents`, or neither, and a minus sign half the time; halfway-prone shapes (a trailing 5,
    /// trailing zeros) on some rounds.
    static func randomDecimal(_ rng: inout SeededRandom, round: Int, maxDigits: Int, exponents: Int) -> String {
        let digitCount = Int(rng.next() % UInt64(maxDigits)) + 1
        var text = String(Int(rng.next() % 9) + 1)
        for _ in 1..<digitCount { text.append(Character(String(rng.next() % 10))) }
        if round % 7 == 0 { text += "5" }
        if round % 11 == 0 { text += "000" }
        switch rng.next() % 3 {
        case 0:
            let point = Int(rng.next() % UInt64(text.count))
            if point > 0 { text.insert(".", at: text.index(text.startIndex, offsetBy: point)) }
        case 1:
            text += "e\(Int(rng.next() % UInt64(2 * exponents)) - exponents)"
        default:
            break
        }
        if rng.next() % 2 == 0 { text = "-" + text }
        return text
    }

    @Test func randomDecimalsRoundLikeSwiftsParser() {
        var rng = SeededRandom(seed: 0xD0B1E)
        for round in 0..<300_000 {
            expectSame(Self.randomDecimal(&rng, round: round, maxDigits: 20, exponents: 35))
        }
    }

    /// `Float`s: the single-precision fast path against `Float(String)` (strtof), bit for bit, on
    /// decimals of up to 9 digits (mostly inside the fast path: mantissas up to 2^24, exponents to
    /// ±10, halfway-prone endings) and on floats printed shortest.
    @Test func floatsRoundLikeSwiftsParser() {
        func ours(_ text: String) -> Float? {
            let document = Array((text + "],1234567890]").utf8)
            return document.withUnsafeBytes { bytes in
                JSONNumber.float(UnsafeRawBufferPointer(rebasing: bytes[0..<text.utf8.count]), readable: bytes.count)
            }
        }
        var rng = SeededRandom(seed: 0xF1_0A75)
        var fast = 0
        for round in 0..<300_000 {
            let bits = UInt32(truncatingIfNeeded: rng.next())
            let printed = Float(bitPattern: bits).isFinite ? Float(bitPattern: bits) : Float(bitPattern: bits & 0x807F_FFFF)
            let text = round % 4 == 0 ? printed.description : Self.randomDecimal(&rng, round: round, maxDigits: 9, exponents: 15)
            let expected = Float(text)
            let got = ours(text)
            #expect(got?.bitPattern == expected?.bitPattern, "\(text): \(String(describing: got)) instead of \(String(describing: expected))")
            if Array(text.utf8).withUnsafeBytes({ JSONNumber.Decimal19($0, readable: $0.count)?.exactFloat() }) != nil { fast += 1 }
        }
        for text in ["0", "-0", "16777216", "16777217", "16777218", "1e10", "1e11", "3.4028235e38", "3.4028236e38", "1e-45", "0.1", "-2.5e-10", "16777217e-10"] {
            #expect(ours(text)?.bitPattern == Float(text)?.bitPattern, "\(text)")
        }
        #expect(fast > 100_000, "the fast path answered \(fast) of 300,000")
    }

    @Test func doublesPrintedShortestComeBackExactly() {
        var rng = SeededRandom(seed: 0xF10A7)
        for _ in 0..<200_000 {
            let value = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)
            let scaled = [value, Double(rng.next() % 100_000_000) / 7, Double(rng.next() % 1_000_000) / 1_000_000][Int(rng.next() % 3)]
            #expect(ours(scaled.description)?.bitPattern == scaled.bitPattern, "\(scaled)")
        }
    }

    /// The encoder's plain-decimal path writes what `description` writes (without the `.0` of
    /// integral values), for every value it takes, and takes the short decimals it is for.
    @Test func plainDecimalsAreWhatDescriptionWrites() {
        func described(_ value: Double) -> String {
            let text = value.description
            return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
        }
        func plain(_ value: Double) -> String? {
            withUnsafeTemporaryAllocation(byteCount: 24, alignment: 8) { buffer in
                JSONNumber.plainDecimal(value, into: buffer.baseAddress!).map {
                    String(decoding: UnsafeRawBufferPointer(buffer)[..<$0], as: UTF8.self)
                }
            }
        }
        var rng = SeededRandom(seed: 0xdec1_3a1)
        var taken = 0
        var values: [Double] = [1e-4, 1e-4.nextUp, 1e-4.nextDown, 1e15, 1e15.nextDown, 999_999_999_999_999, 0.1, 0.2, 0.3, 0.1 + 0.2,
                                1, 10, 100, 0.5, 0.25, 0.125, 1.0 / 3, 2.0 / 3, 123_456_789.012_345, 9_007_199_254_740_993, 1e-5, 5e-5]
        for _ in 0..<300_000 {
            let digits = Double(rng.next() % 10_000_000_000_000_000)
            let shortDecimal = Double(rng.next() % 1_000_000) / [1, 10, 100, 1_000, 1_000_000, 10_000_000][Int(rng.next() % 6)]
            let anyDouble = Double(bitPattern: rng.next())
            values.append([digits, digits / 1e9, shortDecimal, anyDouble, Double(rng.next() % 100_000) / 7, shortDecimal * 1e8][Int(rng.next() % 6)])
        }
        for value in values + values.map(-) {
            guard value.isFinite else { continue }
            if let text = plain(value) {
                taken += 1
                #expect(text == described(value), "\(value)")
            }
        }
        #expect(taken > values.count / 2, "the plain path took \(taken) of \(values.count * 2) values")
    }
}
