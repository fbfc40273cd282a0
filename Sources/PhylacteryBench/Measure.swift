import Foundation
import Phylactery

/// Timing and memory helpers. Figures are medians over rounds, so one noisy round does not decide.
enum Measure {
    /// Measures two contenders in alternating rounds (A, B, A, B, …) so both see the same machine
    /// noise; returns the median MB/s of each and the median of the per-round ratios A ÷ B.
    static func paired(bytesPerCall: Int, rounds: Int = 7, minimum: Double = 0.2, _ a: () throws -> Void, _ b: () throws -> Void) rethrows -> (a: Double, b: Double, ratio: Double) {
        try a()
        try b()
        func round(_ body: () throws -> Void) rethrows -> Double {
            var calls = 0
            let start = ContinuousClock.now
            var elapsed = 0.0
            repeat {
                try body()
                calls += 1
                elapsed = seconds(ContinuousClock.now - start)
            } while elapsed < minimum
            return Double(bytesPerCall * calls) / elapsed / 1e6
        }
        var rateA: [Double] = []
        var rateB: [Double] = []
        var ratios: [Double] = []
        for _ in 0..<rounds {
            let x = try round(a)
            let y = try round(b)
            rateA.append(x)
            rateB.append(y)
            ratios.append(x / y)
        }
        return (median(rateA), median(rateB), median(ratios))
    }

    /// Round trips to the server: the contenders run in turn within each round (so they share the
    /// machine's noise), `prepare` untimed before each run. Returns each contender's median MB/s and
    /// the median per-round ratio of the first contender to each of the others.
    static func interleaved(
        bytesPerRun: Int, rounds: Int = 5, prepare: () async throws -> Void = {}, _ contenders: [() async throws -> Void]
    ) async throws -> (rates: [Double], ratios: [Double]) {
        for contender in contenders {  // warm-up
            try await prepare()
            try await contender()
        }
        var rates = Array(repeating: [Double](), count: contenders.count)
        var ratios = Array(repeating: [Double](), count: contenders.count)
        for _ in 0..<rounds {
            var round: [Double] = []
            for contender in contenders {
                try await prepare()
                let start = ContinuousClock.now
                try await contender()
                round.append(Double(bytesPerRun) / seconds(ContinuousClock.now - start) / 1e6)
            }
            for (index, rate) in round.enumerated() {
                rates[index].append(rate)
                ratios[index].append(round[0] / rate)
            }
        }
        return (rates.map(median), ratios.map(median))
    }

    static func seconds(_ duration: Duration) -> Double {
        duration.seconds
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Resident set size now, in bytes (VmRSS).
    static func residentBytes() -> Int { statusField("VmRSS:") }

    /// Peak resident set size since the last ``resetPeak()`` (VmHWM), in bytes.
    static func peakResidentBytes() -> Int { statusField("VmHWM:") }

    /// Resets the kernel's peak-RSS mark for this process (Linux: write 5 to clear_refs).
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    private static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let number = line.dropFirst(name.count).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            return (Int(number ?? "") ?? 0) * 1024
        }
        return 0
    }
}

/// Keeps the optimizer from discarding work whose result is otherwise unused.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// Prints one line of a benchmark's report at once (the run is long; progress should show as it goes).
func line(_ text: String) {
    print(text)
    fflush(nil)
}
