import Foundation
import Phylactery
import Synchronization

/// What a long backup or restore step reports while it runs.
public enum BackupProgressEvent: Sendable, Equatable {
    /// A step starts; the text says what it does ("Verifying backup … with pg_verifybackup").
    case step(String)
    /// How far the current step is: `done` of `total` (`nil` when unknown) units.
    case advanced(done: UInt64, total: UInt64?, unit: ProgressUnit)
    /// Something the operator should know (a fallback taken, files removed).
    case note(String)
}

/// What a step counts.
public enum ProgressUnit: Sendable, Equatable {
    case bytes
    /// WAL segments replayed.
    case segments
}

/// Where a library call sends its progress; `{ _ in }` ignores it.
public typealias BackupProgress = @Sendable (BackupProgressEvent) -> Void

/// The figures of one step: done, total, rate and time left, from samples taken at instants the
/// caller supplies (an injected clock; no reading of the time in here).
public struct ProgressMeter: Sendable, Equatable {
    /// What the step does.
    public var step: String
    /// What it counts.
    public var unit: ProgressUnit = .bytes
    /// Units done so far.
    public var done: UInt64 = 0
    /// Units in all, when known.
    public var total: UInt64?
    /// When the step started and when the last sample came, as offsets of the caller's clock.
    public var startedAt: Duration
    /// See ``startedAt``.
    public var sampledAt: Duration

    /// A meter for `step`, starting at `instant`.
    public init(step: String, at instant: Duration) {
        self.step = step
        self.startedAt = instant
        self.sampledAt = instant
    }

    /// Records a sample.
    public mutating func update(done: UInt64, total: UInt64?, unit: ProgressUnit, at instant: Duration) {
        self.done = done
        self.total = total.map { max($0, done) }
        self.unit = unit
        self.sampledAt = instant
    }

    /// Units per second since the step started (`nil` before any time has passed).
    public var rate: Double? {
        let elapsed = (sampledAt - startedAt).seconds
        guard elapsed > 0.05, done > 0 else { return nil }
        return Double(done) / elapsed
    }

    /// Time left at the current rate, when the total is known.
    public var remaining: Duration? {
        guard let total, let rate, rate > 0 else { return nil }
        return .milliseconds(Int64(Double(total - done) / rate * 1000))
    }

    /// `Verifying backup X: 120.0 MB of 1.0 GB (12%), 45.0 MB/s, 19 s left`.
    public var line: String {
        var text = "\(step): \(Self.format(done, unit))"
        if let total {
            text += " of \(Self.format(total, unit))"
            if total > 0 { text += " (\(Int(Double(done) / Double(total) * 100))%)" }
        }
        if let rate {
            text += unit == .segments && rate < 10 ? String(format: ", %.1f segments/s", rate) : ", \(Self.format(UInt64(rate), unit))/s"
        }
        if let remaining { text += ", \(Self.format(remaining)) left" }
        return text
    }

    /// `3 segments`, `1.2 GB`.
    public static func format(_ value: UInt64, _ unit: ProgressUnit) -> String {
        switch unit {
        case .segments: return "\(value) segment\(value == 1 ? "" : "s")"
        case .bytes: return ByteSize.format(value)
        }
    }

    /// `19 s`, `3 min 5 s`, `1 h 2 min`.
    public static func format(_ duration: Duration) -> String {
        let seconds = Int(duration.seconds.rounded())
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 { return seconds % 60 == 0 ? "\(seconds / 60) min" : "\(seconds / 60) min \(seconds % 60) s" }
        return "\(seconds / 3600) h \(seconds % 3600 / 60) min"
    }
}

/// Byte counts for people: decimal units, one decimal.
public enum ByteSize {
    /// `999 B`, `1.5 kB`, `120.0 MB`, `1.0 GB`.
    public static func format(_ bytes: UInt64) -> String {
        if bytes < 1000 { return "\(bytes) B" }
        let units = ["kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes) / 1000
        var index = 0
        while value >= 1000 && index < units.count - 1 {
            value /= 1000
            index += 1
        }
        return String(format: "%.1f %@", value, units[index])
    }
}

/// Prints progress events for a person: on a terminal one line rewritten in place (at most ten
/// times a second); otherwise a plain line every `interval` and at the end of each step, so logs stay
/// readable. Each step starts with a line saying what it does.
public final class ProgressPrinter: Sendable {
    struct State {
        var meter: ProgressMeter?
        var lastPrinted: Duration?
        var printedFinished = false
        var lineOpen = false
    }

    private let state = Mutex(State())
    private let isTerminal: Bool
    private let interval: Duration
    private let now: @Sendable () -> Duration
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - isTerminal: rewrite one line in place (`\r`), or print plain lines.
    ///   - interval: how often plain lines are printed.
    ///   - now: the clock, as an offset from any fixed origin.
    ///   - write: where text goes (standard output by default).
    public init(
        isTerminal: Bool, interval: Duration = .seconds(5),
        now: (@Sendable () -> Duration)? = nil,
        write: (@Sendable (String) -> Void)? = nil
    ) {
        self.isTerminal = isTerminal
        self.interval = interval
        self.now = now ?? { ContinuousClock.now - ProgressPrinter.origin }
        self.write = write ?? { FileHandle.standardOutput.write(Data($0.utf8)) }
    }

    static let origin = ContinuousClock.now

    /// Handles one event (pass this method as the ``BackupProgress`` of a call).
    public func handle(_ event: BackupProgressEvent) {
        let instant = now()
        let text: String = state.withLock { state in
            var out = ""
            switch event {
            case .step(let description):
                out += self.closeLine(&state)
                state.meter = ProgressMeter(step: description, at: instant)
                state.lastPrinted = nil
                state.printedFinished = false
                out += "→ \(description)\n"
            case .note(let note):
                out += self.closeLine(&state)
                out += "· \(note)\n"
            case .advanced(let done, let total, let unit):
                guard var meter = state.meter else { return "" }
                meter.update(done: done, total: total, unit: unit, at: instant)
                state.meter = meter
                let finished = total.map { done >= $0 } ?? false
                if finished && state.printedFinished { return "" }
                if isTerminal {
                    if let last = state.lastPrinted, instant - last < .milliseconds(100), !finished { return "" }
                    out += "\r\u{1B}[K  \(meter.line)"
                    state.lineOpen = true
                } else {
                    // Plain lines: one per interval; the final figure only for a step that printed one
                    // before (a quick step is just its "→" line).
                    let since = state.lastPrinted ?? meter.startedAt
                    if finished ? state.lastPrinted == nil && instant - since < interval : instant - since < interval { return "" }
                    out += "  \(meter.line)\n"
                }
                state.lastPrinted = instant
                state.printedFinished = finished
            }
            return out
        }
        if !text.isEmpty { write(text) }
    }

    /// Ends an in-place line before other output.
    public func finish() {
        let text = state.withLock { self.closeLine(&$0) }
        if !text.isEmpty { write(text) }
    }

    private func closeLine(_ state: inout State) -> String {
        guard state.lineOpen else { return "" }
        state.lineOpen = false
        return "\n"
    }
}
