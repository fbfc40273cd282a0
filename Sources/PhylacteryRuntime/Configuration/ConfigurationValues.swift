import Foundation
import Phylactery

/// The text forms of configuration values that are not plain strings, numbers or booleans.
enum ConfigurationValues {
    /// `250ms`, `30s`, `1.5h`, `7d`, `300us` or a bare number of seconds → a duration; `nil` for other text.
    /// Negative and non-finite numbers are refused (`nil`), and so is anything beyond 100 years.
    static func duration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed) { return self.duration(seconds: seconds) }
        guard let (value, scale) = DurationText.split(trimmed) else { return nil }
        return self.duration(seconds: value * scale)
    }

    /// A number of seconds → a duration, refusing negative, non-finite and over-long values.
    static func duration(seconds: Double) -> Duration? {
        guard seconds.isFinite, seconds >= 0, seconds <= DurationText.maximumSeconds else { return nil }
        return .seconds(seconds)
    }

    /// A duration as the shortest text that reads back the same: `250ms`, `30s`, `5m`, `6h`, `7d`.
    static func render(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds == 0 { return "0" }
        for (suffix, scale) in [("d", 86_400.0), ("h", 3600), ("m", 60), ("s", 1)] where seconds >= scale && (seconds / scale).rounded() == seconds / scale {
            return "\(Int((seconds / scale).rounded()))\(suffix)"
        }
        if seconds >= 1 { return String(format: "%gs", seconds) }
        return String(format: "%gms", seconds * 1000)
    }
}
