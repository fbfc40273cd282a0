/// Converting the text of a JSON number (already checked against the grammar by the parser) to a
/// `Double`, correctly rounded, without making a `String` for the common cases.
enum JSONNumber {
    /// The number `raw` spells, correctly rounded to the nearest `Double` (ties to even); `nil`
    /// when `raw` is not a number. Out-of-range magnitudes give ±infinity or ±0, as `strtod` does.
    static func double(_ raw: UnsafeRawBufferPointer) -> Double? {
        if let decimal = Decimal19(raw), let value = decimal.exactDouble() {
            return value
        }
        return Double(JSONTapeDecoder.validatedString(raw))
    }

    /// A number with at most 19 significant digits: `±mantissa × 10^scale`, the mantissa exact.
    struct Decimal19 {
        var negative: Bool
        var mantissa: UInt64
        var scale: Int

        /// Reads `raw`; `nil` when it has more than 19 significant digits or an exponent beyond
        /// ±10,000 (the full parser takes those).
        @inline(__always)
        init?(_ raw: UnsafeRawBufferPointer) {
            let count = raw.count
            guard count > 0, let base = raw.baseAddress else { return nil }
            @inline(__always) func byte(_ index: Int) -> UInt8 { base.load(fromByteOffset: index, as: UInt8.self) }
            var i = 0
            negative = byte(0) == UInt8(ascii: "-")
            if negative { i = 1 }
            var mantissa: UInt64 = 0
            var digits = 0  // significant digits: leading zeros do not count
            var scale = 0
            while i < count {
                let digit = byte(i) &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                if mantissa != 0 || digit != 0 { digits += 1 }
                mantissa = mantissa &* 10 &+ UInt64(digit)
                i += 1
            }
            if i < count, byte(i) == UInt8(ascii: ".") {
                i += 1
                while i < count {
                    let digit = byte(i) &- UInt8(ascii: "0")
                    guard digit < 10 else { break }
                    if mantissa != 0 || digit != 0 { digits += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(digit)
                    scale -= 1
                    i += 1
                }
            }
            // Past 19 digits the mantissa has wrapped: not ours to convert.
            guard digits <= 19 else { return nil }
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
                let value = scale < 0 ? Double(mantissa) / Self.doublePowers[-scale] : Double(mantissa) * Self.doublePowers[scale]
                return negative ? -value : value
            }
            #if arch(x86_64) && !os(Windows)
            if scale >= -27, scale <= 27 {
                let power = Self.extendedPowers[scale < 0 ? -scale : scale]
                let extended = scale < 0 ? Float80(mantissa) / power : Float80(mantissa) * power
                if extended.significandBitPattern & 0x7FF != 0x400 {
                    let value = Double(extended)
                    return negative ? -value : value
                }
            }
            #endif
            return nil
        }

        /// 10^0 … 10^22, each exact in a `Double`.
        static let doublePowers: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                             1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

        #if arch(x86_64) && !os(Windows)
        /// 10^0 … 10^27, each exact in a `Float80` (5^27 < 2^64), built by exact multiplication.
        static let extendedPowers: [Float80] = {
            var powers: [Float80] = [1]
            for _ in 1...27 { powers.append(powers.last! * 10) }
            return powers
        }()
        #endif
    }
}
