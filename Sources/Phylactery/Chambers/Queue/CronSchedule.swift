public import Foundation

/// A five-field cron expression (`minute hour day-of-month month day-of-week`), evaluated in UTC.
///
/// Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists of those; day-of-week
/// runs 0–6 from Sunday (7 is Sunday too). As in classic cron, when both day fields are restricted a
/// day matches if either does. `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly` are accepted.
///
/// ```swift
/// let nightly = try CronSchedule("30 3 * * *")        // 03:30 UTC every day
/// let quarterHourly = try CronSchedule("*/15 * * * *")
/// ```
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written.
    public let expression: String
    let minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>
    let daysRestricted: Bool, weekdaysRestricted: Bool

    /// Parses `expression`; a malformed one throws ``PhylacteryError/Code/invalidArgument`` naming the field.
    public init(_ expression: String) throws {
        self.expression = expression
        let aliases = ["@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
                       "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"]
        let text = aliases[expression.trimmingCharacters(in: .whitespaces)] ?? expression
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw PhylacteryError(.invalidArgument, "cron expression '\(expression)' needs 5 fields (minute hour day month weekday), found \(fields.count)")
        }
        func parse(_ field: String, _ name: String, _ range: ClosedRange<Int>) throws -> Set<Int> {
            var values = Set<Int>()
            for part in field.split(separator: ",", omittingEmptySubsequences: false) {
                let stepParts = part.split(separator: "/", omittingEmptySubsequences: false)
                guard stepParts.count <= 2, let spec = stepParts.first, !spec.isEmpty else {
                    throw PhylacteryError(.invalidArgument, "cron expression '\(expression)': the \(name) field '\(field)' is malformed")
                }
                var step = 1
                if stepParts.count == 2 {
                    guard let n = Int(stepParts[1]), n >= 1 else {
                        throw PhylacteryError(.invalidArgument, "cron expression '\(expression)': the \(name) field has a bad step '\(stepParts[1])'")
                    }
                    step = n
                }
                var bounds: ClosedRange<Int>
                if spec == "*" {
                    bounds = range
                } else if let dash = spec.firstIndex(of: "-") {
                    guard let low = Int(spec[..<dash]), let high = Int(spec[spec.index(after: dash)...]), low <= high else {
                        throw PhylacteryError(.invalidArgument, "cron expression '\(expression)': the \(name) field has a bad range '\(spec)'")
                    }
                    bounds = low...high
                } else {
                    guard let value = Int(spec) else {
                        throw PhylacteryError(.invalidArgument, "cron expression '\(expression)': the \(name) field has '\(spec)', which is not a number")
                    }
                    bounds = value...(stepParts.count == 2 ? range.upperBound : value)
                }
                guard range.contains(bounds.lowerBound), range.contains(bounds.upperBound) else {
                    throw PhylacteryError(.invalidArgument, "cron expression '\(expression)': the \(name) field allows \(range.lowerBound)–\(range.upperBound), got '\(spec)'")
                }
                values.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
            }
            return values
        }
        self.minutes = try parse(fields[0], "minute", 0...59)
        self.hours = try parse(fields[1], "hour", 0...23)
        self.days = try parse(fields[2], "day-of-month", 1...31)
        self.months = try parse(fields[3], "month", 1...12)
        self.weekdays = Set(try parse(fields[4], "day-of-week", 0...7).map { $0 % 7 })
        self.daysRestricted = fields[2] != "*"
        self.weekdaysRestricted = fields[4] != "*"
    }

    public var description: String { self.expression }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (self.daysRestricted, self.weekdaysRestricted) {
        case (true, true): self.days.contains(day) || self.weekdays.contains(weekday)
        case (true, false): self.days.contains(day)
        case (false, true): self.weekdays.contains(weekday)
        case (false, false): true
        }
    }

    /// The first matching minute strictly after `date`, or `nil` if none within five years (e.g. `0 0 31 2 *`).
    public func next(after date: Date) -> Date? {
        let calendar = Self.utc
        let start = calendar.dateInterval(of: .minute, for: date)?.end ?? date.addingTimeInterval(60)
        var parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: start)
        let lastYear = (parts.year ?? 1970) + 5
        while let year = parts.year, year <= lastYear {
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                  let current = calendar.date(from: parts) else { return nil }
            if !self.months.contains(month) {
                parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: calendar.date(byAdding: .month, value: 1, to: calendar.date(from: DateComponents(year: year, month: month, day: 1))!)!)
                continue
            }
            let weekday = calendar.component(.weekday, from: current) - 1
            if !self.dayMatches(day: day, weekday: weekday) {
                parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: calendar.date(byAdding: .day, value: 1, to: calendar.date(from: DateComponents(year: year, month: month, day: day))!)!)
                continue
            }
            if !self.hours.contains(hour) {
                parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: calendar.date(byAdding: .hour, value: 1, to: calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour))!)!)
                continue
            }
            if !self.minutes.contains(minute) {
                parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: current.addingTimeInterval(60))
                continue
            }
            return current
        }
        return nil
    }
}

/// When a periodic job fires: on a cron schedule, or every fixed interval (aligned to the Unix
/// epoch, so every process computes the same fire times).
public enum PeriodicSchedule: Sendable, Hashable {
    case cron(CronSchedule)
    case every(Duration)

    /// The first fire time strictly after `date`.
    public func next(after date: Date) -> Date? {
        switch self {
        case .cron(let cron):
            return cron.next(after: date)
        case .every(let interval):
            let seconds = max(interval.seconds, 0.001)
            return Date(timeIntervalSince1970: (floor(date.timeIntervalSince1970 / seconds) + 1) * seconds)
        }
    }

    /// The last fire time within `window` (both ends included), or `nil` when none falls there.
    public func latestFire(in window: ClosedRange<Date>) -> Date? {
        switch self {
        case .cron:
            // Cron fires are whole minutes; walking forward is bounded by the window's minutes.
            var found: Date?
            var cursor = window.lowerBound.addingTimeInterval(-0.001)
            while let fire = self.next(after: cursor), fire <= window.upperBound {
                found = fire
                cursor = fire
            }
            return found
        case .every(let interval):
            let seconds = max(interval.seconds, 0.001)
            let fire = Date(timeIntervalSince1970: floor(window.upperBound.timeIntervalSince1970 / seconds) * seconds)
            return fire >= window.lowerBound ? fire : nil
        }
    }
}

/// A job enqueued on a schedule by whichever worker process currently leads (holds the
/// scheduler's advisory lock).
///
/// Fire times that pass while no process leads (the daemon was stopped, the machine asleep) are
/// skipped, unless ``catchUp`` is set: then a process that takes the lead enqueues the latest fire
/// missed within that window (once: its unique key makes any second enqueue a duplicate).
public struct PeriodicJob: Sendable {
    /// A stable name; it keys the unique key of each fire, so two leaders can never enqueue one fire twice.
    public let name: String
    /// When it fires.
    public let schedule: PeriodicSchedule
    /// How far back a new leader looks for a missed fire to enqueue; `nil` makes up nothing. Keep it
    /// shorter than the ghouls' ``GhoulsConfiguration/retention``, or a pruned fire could run again.
    public let catchUp: Duration?
    let make: @Sendable (_ fireTime: Date) throws -> PendingJob

    /// Enqueues `job()` at every fire time of `schedule`, with `options` (its unique key is set per fire).
    public init<J: Job>(name: String, schedule: PeriodicSchedule, catchUp: Duration? = nil, options: JobOptions = .default,
                        job: @escaping @Sendable () -> J) {
        self.name = name
        self.schedule = schedule
        self.catchUp = catchUp
        self.make = { fireTime in
            var options = options
            options.uniqueKey = "periodic:\(name):\(Int64((fireTime.timeIntervalSince1970 * 1000).rounded()))"
            options.uniqueness = .ever
            options.scheduledAt = nil
            return try PendingJob(job(), options: options)
        }
    }

    /// Enqueues `job()` on a cron expression (see ``CronSchedule``).
    public init<J: Job>(name: String, cron: String, catchUp: Duration? = nil, options: JobOptions = .default,
                        job: @escaping @Sendable () -> J) throws {
        self.init(name: name, schedule: .cron(try CronSchedule(cron)), catchUp: catchUp, options: options, job: job)
    }
}
