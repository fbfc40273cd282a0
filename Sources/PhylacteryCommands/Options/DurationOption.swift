import ArgumentParser
import Foundation
import Phylactery

/// The CLI's one way from command-line text or numbers to a `Duration` (the other direction is the
/// library's `Duration.seconds`).
///
/// Text that is not a duration, and negative numbers, are usage errors. A number that is not finite
/// (`inf`, `nan`) or longer than ``maximumSeconds`` is refused with a one-line ``InputError`` (exit
/// 1), never turned into a `Duration` that traps or overflows the arithmetic downstream (dates, µs).
enum DurationOption {
    /// The longest duration any option takes: 100 years.
    static let maximumSeconds = DurationText.maximumSeconds

    /// `250ms`, `2s`, `1.5h`, `7d`, `300us` → a duration, for the option named `option`.
    static func parse(_ text: String, option: String) throws -> Duration {
        guard let (value, scale) = DurationText.split(text), !(value < 0) else {
            throw ValidationError("\(option) takes a duration such as 250ms, 30s, 6h or 7d, not '\(text)'.")
        }
        return try duration(value, scale: scale, option: option, text: text)
    }

    /// A number of seconds (`scale` 1), hours (3600), … given to `option` → a duration.
    static func seconds(_ value: Double, scale: Double = 1, option: String) throws -> Duration {
        guard !(value < 0) else { throw ValidationError("\(option) must not be negative.") }
        return try duration(value, scale: scale, option: option, text: String(format: "%g", value))
    }

    private static func duration(_ value: Double, scale: Double, option: String, text: String) throws -> Duration {
        guard value.isFinite else {
            throw InputError("\(option) takes a finite number, not '\(text)'.")
        }
        let seconds = value * scale
        guard seconds <= maximumSeconds else {
            throw InputError("\(option) \(text) is longer than 100 years, the longest duration phylactery takes.")
        }
        return .seconds(seconds)
    }
}

/// Input the CLI refuses in one line with exit code 1 (no usage text): well-formed, but a value it
/// cannot represent.
struct InputError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
