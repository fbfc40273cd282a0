/// The one conversion from `Duration` to seconds in the library.
extension Duration {
    /// The duration in seconds, as a Double (leases, intervals, the CLI's and the benchmarks' figures).
    package var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// The one reading of durations written as text (`250ms`, `30s`, `1.5h`, `7d`, `300us`), shared by
/// the CLI's options and the runtime's configuration, each of which says how it refuses bad text.
package enum DurationText {
    /// The longest duration Phylactery takes anywhere: 100 years.
    package static let maximumSeconds: Double = 100 * 365.25 * 86_400

    /// The number and the unit's length in seconds of `text` (`"250ms"` → 250, 0.001), or `nil` when
    /// it is not a number followed by one of `us`, `µs`, `ms`, `s`, `m`, `h`, `d`. The number may be
    /// negative or not finite: the caller decides.
    package static func split(_ text: String) -> (value: Double, scale: Double)? {
        let units: [(String, Double)] = [("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            // "ms" also ends in "s": only accept when what is left is a number.
            guard let value = Double(text.dropLast(suffix.count)) else { continue }
            return (value, scale)
        }
        return nil
    }
}
