/// Converting the text of a JSON number (already checked against the grammar by the parser) to a
/// `Double`, correctly rounded, without making a `String` for the common cases.
enum JSONNumber {
    /// The number `raw` spells, correctly rounded to the nearest `Double` (ties to even); `nil`
    /// when `raw` is not a number. Out-of-range magnitudes give ±infinity or ±0, as `strtod` does.
    ///
    /// `readable` is how many bytes from `raw`'s start may be read (at least `raw.count`): a number
    /// inside a document is followed by a byte that is not a digit, so its digits are scanned eight
    /// bytes at a time past its end when the document goes on.
    static func double(_ raw: UnsafeRawBufferPointer, readable: Int? = nil) -> Double? {
        if let decimal = Decimal19(raw, readable: readable ?? raw.count), let value = decimal.exactDouble() {
            return value
        }
        return Double(JSONTapeDecoder.validatedString(raw, isASCII: true))
    }

    /// The number `raw` spells, correctly rounded to the nearest `Float`; `nil` when `raw` is not a
    /// number. Without a `String` when one single-precision operation gives it exactly (see
    /// ``Decimal19/exactFloat()``), else through `Float(String)` (strtof).
    static func float(_ raw: UnsafeRawBufferPointer, readable: Int? = nil) -> Float? {
        if let decimal = Decimal19(raw, readable: readable ?? raw.count), let value = decimal.exactFloat() {
            return value
        }
        return Float(JSONTapeDecoder.validatedString(raw, isASCII: true))
    }

    /// Writes the text Swift's `description` gives `value` (minus the `.0` of integral values, as
    /// the encoder writes them) into `out` and returns its length, for the values where a short
    /// exact search finds it: magnitudes from 10^-4 up to 10^15, whose shortest round-trip decimal
    /// has at most 15 significant digits (measurements, scores, money). `nil` for everything else,
    /// which `description` writes.
    ///
    /// The search tries k = 0, 1, 2, … fraction digits: the first k for which `|value| × 10^k` is
    /// an integer n below 10^15 and n ÷ 10^k (one correctly rounded division of two exact doubles)
    /// is `|value|` again gives a decimal of at most 15 significant digits that reads back as
    /// `value`. No other decimal of at most 15 significant digits reads back as the same double
    /// (15 digits always survive a trip through a double), so it is the shortest one, which is
    /// what `description` writes; in this range `description` uses plain notation. Swift's own
    /// algorithm takes several times longer. `out` needs 24 bytes.
    static func plainDecimal(_ value: Double, into out: UnsafeMutableRawPointer) -> Int? {
        let magnitude = value.magnitude
        guard magnitude >= 1e-4, magnitude < 1e15 else { return nil }
        var power = 1.0  // 10^k, exact for every k tried
        for k in 0...15 {
            let scaled = magnitude * power
            guard scaled < 1e15 else { return nil }
            // An integer (the conversions are instructions, `rounded` a call into libm) that reads back.
            let integer = UInt64(scaled)
            if Double(integer) == scaled, scaled / power == magnitude {
                return writeDecimal(integer, fractionDigits: k, negative: value < 0, into: out)
            }
            power *= 10
        }
        return nil
    }

    /// Writes `digits` × 10^-`fractionDigits` in plain notation (`0.05`, `12.5`, `7`), trailing
    /// zeros of the fraction left out. `digits` is below 10^15 and `fractionDigits` at most 15.
    @inline(__always)
    static func writeDecimal(_ digits: UInt64, fractionDigits: Int, negative: Bool, into out: UnsafeMutableRawPointer) -> Int {
        var mantissa = digits
        var fraction = fractionDigits
        while fraction > 0, mantissa % 10 == 0 {
            mantissa /= 10
            fraction -= 1
        }
        // The digits, two at a time from the right, end at `out + 24`; then moved into place
        // with the sign, the leading zeros the fraction needs and the point.
        let pairs = UnsafeRawPointer(Self.digitPairs.utf8Start)
        var first = 24
        while mantissa >= 100 {
            let rest = mantissa / 100
            let pair = Int(truncatingIfNeeded: mantissa &- rest &* 100)
            first -= 2
            out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: 2 * pair, as: UInt16.self), toByteOffset: first, as: UInt16.self)
            mantissa = rest
        }
        if mantissa >= 10 {
            first -= 2
            out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: 2 * Int(mantissa), as: UInt16.self), toByteOffset: first, as: UInt16.self)
        } else {
            first -= 1
            out.storeBytes(of: UInt8(ascii: "0") + UInt8(truncatingIfNeeded: mantissa), toByteOffset: first, as: UInt8.self)
        }
        while 24 - first <= fraction {  // at least one digit before the point
            first -= 1
            out.storeBytes(of: UInt8(ascii: "0"), toByteOffset: first, as: UInt8.self)
        }
        let count = 24 - first
        var o = 0
        if negative {
            out.storeBytes(of: UInt8(ascii: "-"), toByteOffset: o, as: UInt8.self)
            o += 1
        }
        // The text (at most 18 bytes) is written from the start while the digits (at most 16, from
        // byte 8 on) are read ahead of it: no byte is overwritten before it is read.
        let integerDigits = count - fraction
        for index in 0..<integerDigits {
            out.storeBytes(of: out.load(fromByteOffset: first + index, as: UInt8.self), toByteOffset: o, as: UInt8.self)
            o += 1
        }
        if fraction > 0 {
            out.storeBytes(of: UInt8(ascii: "."), toByteOffset: o, as: UInt8.self)
            o += 1
            for index in integerDigits..<count {
                out.storeBytes(of: out.load(fromByteOffset: first + index, as: UInt8.self), toByteOffset: o, as: UInt8.self)
                o += 1
            }
        }
        return o
    }

    /// "00", "01", … "99": two digits per load.
    static let digitPairs: StaticString = """
        0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
        5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899
        """

    /// Where the run of ASCII digits starting at `start` ends (at most `limit`): eight bytes at a
    /// time while eight are left before `limit`.
    @inline(__always)
    static func digitRun(_ base: UnsafeRawPointer, from start: Int, limit: Int) -> Int {
        var i = start
        while i + 8 <= limit {
            // A byte is a digit when it is 0x30…0x39: XOR with 0x30 leaves 0…9, and adding 0x76
            // sets the high bit of anything from 10 up (a carry only leaves a byte that was not a
            // digit, so the lowest marked byte is the first non-digit).
            let shifted = base.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ 0x3030_3030_3030_3030
            let marks = ((shifted &+ 0x7676_7676_7676_7676) | shifted) & 0x8080_8080_8080_8080
            if marks != 0 { return i + marks.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < limit, base.load(fromByteOffset: i, as: UInt8.self) &- UInt8(ascii: "0") < 10 { i += 1 }
        return i
    }

    /// `mantissa` followed by the digits `base[start..<end]` (wrapping past 2^64: the caller
    /// counts digits), eight at a time.
    @inline(__always)
    static func accumulate(_ base: UnsafeRawPointer, from start: Int, to end: Int, into mantissa: UInt64) -> UInt64 {
        var value = mantissa
        var i = start
        while end - i >= 8 {
            value = value &* 100_000_000 &+ eightDigits(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        let left = end - i
        if left > 0 {
            if end >= 8 {
                // The eight bytes that end with the run: its last `left` digits are the top bytes;
                // the bytes below them become '0's (leading zeros).
                let word = base.loadUnaligned(fromByteOffset: end - 8, as: UInt64.self)
                let kept: UInt64 = ~0 &<< UInt64((8 - left) &* 8)
                value = value &* tenToThe(left) &+ eightDigits((word & kept) | (0x3030_3030_3030_3030 & ~kept))
            } else {
                for k in i..<end { value = value &* 10 &+ UInt64(base.load(fromByteOffset: k, as: UInt8.self) &- UInt8(ascii: "0")) }
            }
        }
        return value
    }

    /// The value of eight ASCII digits, the first (most significant) in the lowest byte.
    @inline(__always)
    static func eightDigits(_ word: UInt64) -> UInt64 {
        let digits = word &- 0x3030_3030_3030_3030
        // Pairs: each 16-bit lane's low byte becomes first × 10 + second.
        let pairs = (digits &* 10) &+ (digits >> 8)
        // Then lanes of four, and the two halves together (the multipliers place each partial sum
        // in the upper half of the product).
        let low = (pairs & 0x0000_00FF_0000_00FF) &* (100 + (1_000_000 << 32))
        let high = ((pairs >> 16) & 0x0000_00FF_0000_00FF) &* (1 + (10_000 << 32))
        return (low &+ high) >> 32
    }

    /// 10^k for k in 0…8 (a switch: no lazily initialised table to check on every call).
    @inline(__always)
    static func tenToThe(_ k: Int) -> UInt64 {
        switch k {
        case 0: 1
        case 1: 10
        case 2: 100
        case 3: 1_000
        case 4: 10_000
        case 5: 100_000
        case 6: 1_000_000
        case 7: 10_000_000
        default: 100_000_000
        }
    }

    /// A number with at most 19 significant digits: `±mantissa × 10^scale`, the mantissa exact.
    struct Decimal19 {
        var negative: Bool
        var mantissa: UInt64
        var scale: Int

        /// Reads `raw`; `nil` when it has more than 19 significant digits or an exponent beyond
        /// ±10,000 (the full parser takes those).
        @inline(__always)
        init?(_ raw: UnsafeRawBufferPointer, readable: Int) {
            let count = raw.count
            guard count > 0, let base = raw.baseAddress else { return nil }
            @inline(__always) func byte(_ index: Int) -> UInt8 { base.load(fromByteOffset: index, as: UInt8.self) }
            negative = byte(0) == UInt8(ascii: "-")
            let limit = max(readable, count)
            // The integer part's digits, then the fraction's (each of which lowers the scale).
            let integerStart = negative ? 1 : 0
            let integerEnd = min(JSONNumber.digitRun(base, from: integerStart, limit: limit), count)
            var i = integerEnd
            var fractionStart = i
            if i < count, byte(i) == UInt8(ascii: ".") {
                fractionStart = i + 1
                i = min(JSONNumber.digitRun(base, from: fractionStart, limit: limit), count)
            }
            let fractionEnd = max(i, fractionStart)
            var scale = fractionStart - fractionEnd
            var mantissa: UInt64
            if (integerEnd - integerStart) + (fractionEnd - fractionStart) <= 19 {
                // Leading zeros add nothing, and 19 digits cannot wrap: no need to find them.
                mantissa = JSONNumber.accumulate(base, from: integerStart, to: integerEnd, into: 0)
                mantissa = JSONNumber.accumulate(base, from: fractionStart, to: fractionEnd, into: mantissa)
            } else {
                // Significant digits only: leading zeros of the integer part, and of the fraction
                // too when the integer part is zero. More than 19 left: not ours to convert.
                var first = integerStart
                while first < integerEnd, byte(first) == UInt8(ascii: "0") { first += 1 }
                if first == integerEnd {
                    var firstFraction = fractionStart
                    while firstFraction < fractionEnd, byte(firstFraction) == UInt8(ascii: "0") { firstFraction += 1 }
                    guard fractionEnd - firstFraction <= 19 else { return nil }
                    mantissa = JSONNumber.accumulate(base, from: firstFraction, to: fractionEnd, into: 0)
                } else {
                    guard (integerEnd - first) + (fractionEnd - fractionStart) <= 19 else { return nil }
                    mantissa = JSONNumber.accumulate(base, from: first, to: integerEnd, into: 0)
                    mantissa = JSONNumber.accumulate(base, from: fractionStart, to: fractionEnd, into: mantissa)
                }
            }
            if i < count {
                guard byte(i) | 0x20 == UInt8(ascii: "e") else { return nil }
                i += 1
                var exponentNegative = false
                if i < count, byte(i) == UInt8(ascii: "-") || byte(i) == UInt8(ascii: "+") {
                    exponentNegative = byte(i) == UInt8(ascii: "-")
                    i += 1
                }
                var exponent = 0
                guard i < count else { return nil }
                while i < count {
                    let digit = byte(i) &- UInt8(ascii: "0")
                    guard digit < 10, exponent < 10_000 else { return nil }
                    exponent = exponent * 10 + Int(digit)
                    i += 1
                }
                scale += exponentNegative ? -exponent : exponent
            }
            self.mantissa = mantissa
            self.scale = scale
        }

        /// The correctly rounded `Double`, when it can be had from one exact operation; `nil` otherwise.
        ///
        /// Clinger's fast path: a mantissa of at most 2^53 and a power of ten up to 10^22 are both
        /// exact doubles, so one IEEE multiplication or division rounds the exact value once. Where
        /// the x87 80-bit format exists (x86-64), mantissas up to 2^64 and powers up to 10^27 are exact
        /// in it; the quotient or product is rounded once to 64 bits and then to 53, which is the
        /// correct result unless the first rounding landed exactly on a halfway point between two
        /// doubles (the 11 bits below a double's precision are 0b100_0000_0000), where the second
        /// rounding may go the wrong way: those few numbers go to the full parser.
        @inline(__always)
        func exactDouble() -> Double? {
            if mantissa == 0 { return negative ? -0.0 : 0.0 }
            if mantissa <= 1 << 53, scale >= -22, scale <= 22 {
                let value = scale < 0 ? Double(mantissa) / Self.doublePower(-scale) : Double(mantissa) * Self.doublePower(scale)
                return negative ? -value : value
            }
            #if arch(x86_64) && !os(Windows)
            if scale >= -27, scale <= 27 {
                let power = Self.extendedPower(scale < 0 ? -scale : scale)
                let extended = scale < 0 ? Float80(mantissa) / power : Float80(mantissa) * power
                if extended.significandBitPattern & 0x7FF != 0x400 {
                    let value = Double(extended)
                    return negative ? -value : value
                }
            }
            #endif
            return nil
        }

        /// The correctly rounded `Float`, when it can be had from one exact operation; `nil` otherwise.
        ///
        /// Clinger's fast path in single precision: a mantissa of at most 2^24 and a power of ten up
        /// to 10^10 (5^10 < 2^24) are both exact floats, so one IEEE multiplication or division rounds
        /// the exact value once. (Going through the `Double` would round twice, and can land the
        /// wrong side of a halfway point between two floats.)
        @inline(__always)
        func exactFloat() -> Float? {
            if mantissa == 0 { return negative ? -0.0 : 0.0 }
            guard mantissa <= 1 << 24, scale >= -10, scale <= 10 else { return nil }
            let power = Float(Self.doublePower(scale < 0 ? -scale : scale))  // exact: 10^k ≤ 10^10
            let value = scale < 0 ? Float(mantissa) / power : Float(mantissa) * power
            return negative ? -value : value
        }

        /// 10^k for k in 0…22, each exact in a `Double`.
        @inline(__always)
        static func doublePower(_ k: Int) -> Double {
            switch k {
            case 0: 1e0
            case 1: 1e1
            case 2: 1e2
            case 3: 1e3
            case 4: 1e4
            case 5: 1e5
            case 6: 1e6
            case 7: 1e7
            case 8: 1e8
            case 9: 1e9
            case 10: 1e10
            case 11: 1e11
            case 12: 1e12
            case 13: 1e13
            case 14: 1e14
            case 15: 1e15
            case 16: 1e16
            case 17: 1e17
            case 18: 1e18
            case 19: 1e19
            case 20: 1e20
            case 21: 1e21
            default: 1e22
            }
        }

        #if arch(x86_64) && !os(Windows)
        /// 10^k for k in 0…27, each exact in a `Float80` (5^27 < 2^64).
        @inline(__always)
        static func extendedPower(_ k: Int) -> Float80 {
            k <= 22 ? Float80(doublePower(k)) : Float80(doublePower(22)) * Float80(tenToThe(k - 22))
        }
        #endif
    }
}
