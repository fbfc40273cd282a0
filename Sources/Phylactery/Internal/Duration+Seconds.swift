/// The one conversion from `Duration` to seconds in the library.
extension Duration {
    /// The duration in seconds, as a Double (leases, intervals, the CLI's and the benchmarks' figures).
    package var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
