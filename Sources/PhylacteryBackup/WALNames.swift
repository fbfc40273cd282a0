public import Foundation

/// A WAL position (`pg_lsn`), as PostgreSQL prints it: `16/B374D848`.
public struct LSN: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The byte position in the WAL stream.
    public var value: UInt64

    /// The position `value`.
    public init(_ value: UInt64) { self.value = value }

    /// Parses `X/Y` (hex halves); `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16),
              high <= UInt32.max, low <= UInt32.max
        else { return nil }
        self.value = high << 32 | low
    }

    public var description: String { String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true) }

    public static func < (a: LSN, b: LSN) -> Bool { a.value < b.value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = LSN(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an LSN: \(text)"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }

    /// The number of the WAL segment holding this position.
    func segment(size: UInt64) -> UInt64 { value / size }
}

/// A file of the WAL archive, by its name: a segment (`TTTTTTTTXXXXXXXXYYYYYYYY`), a timeline
/// history (`TTTTTTTT.history`), a backup history (`…YYYYYYYY.OOOOOOOO.backup`) or a partial segment
/// (`…YYYYYYYY.partial`).
struct WALFileName: Hashable, Sendable {
    enum Kind: Hashable, Sendable {
        case segment
        case history
        case backupHistory
        case partial
    }

    var kind: Kind
    var timeline: UInt32
    /// The segment number (0 for a timeline history).
    var segment: UInt64
    /// The name as stored by PostgreSQL (without any `.enc`).
    var name: String

    /// Parses a name; `nil` for anything that is not a WAL archive file.
    /// `segmentsPerId` is 2^32 / segment size (256 for 16 MB segments).
    init?(_ name: String, segmentsPerId: UInt64) {
        let hex = CharacterSet(charactersIn: "0123456789ABCDEF")
        func isHex(_ s: Substring) -> Bool { !s.isEmpty && s.unicodeScalars.allSatisfy(hex.contains) }
        self.name = name
        if name.hasSuffix(".history") {
            let stem = name.dropLast(".history".count)
            guard stem.count == 8, isHex(stem), let timeline = UInt32(stem, radix: 16) else { return nil }
            self.kind = .history
            self.timeline = timeline
            self.segment = 0
            return
        }
        let stem = name.prefix(24)
        guard stem.count == 24, isHex(stem),
              let timeline = UInt32(stem.prefix(8), radix: 16),
              let high = UInt64(stem.dropFirst(8).prefix(8), radix: 16),
              let low = UInt64(stem.suffix(8), radix: 16)
        else { return nil }
        let rest = name.dropFirst(24)
        switch rest {
        case "": self.kind = .segment
        case ".partial": self.kind = .partial
        default:
            guard rest.hasSuffix(".backup"), rest.count == 1 + 8 + ".backup".count, isHex(rest.dropFirst().prefix(8)) else { return nil }
            self.kind = .backupHistory
        }
        self.timeline = timeline
        self.segment = high * segmentsPerId + low
    }

    /// The segment file name of `segment` on `timeline`.
    static func segmentName(timeline: UInt32, segment: UInt64, segmentsPerId: UInt64) -> String {
        func hex8(_ value: UInt64) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
        }
        return hex8(UInt64(timeline)) + hex8(segment / segmentsPerId) + hex8(segment % segmentsPerId)
    }
}

/// Which timeline a restore follows, read from the archive's timeline history files.
///
/// A restore to a point in time (or to the latest) follows the newest timeline — the history as it
/// is now, after any earlier restore branched it. A base backup can start such a recovery only if it
/// lies on that history: taken on the newest timeline, or on an ancestor before the newest history
/// left it.
struct TimelineHistory: Sendable, Hashable {
    /// The ancestors of ``timeline``, oldest first: each timeline with the LSN where its successor
    /// branched off.
    var ancestors: [(timeline: UInt32, switchpoint: LSN)]
    var timeline: UInt32

    static func == (a: TimelineHistory, b: TimelineHistory) -> Bool {
        a.timeline == b.timeline && a.ancestors.map(\.timeline) == b.ancestors.map(\.timeline) && a.ancestors.map(\.switchpoint) == b.ancestors.map(\.switchpoint)
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(timeline)
        for entry in ancestors { hasher.combine(entry.timeline); hasher.combine(entry.switchpoint) }
    }

    /// Timeline 1, which has no history file.
    static let first = TimelineHistory(ancestors: [], timeline: 1)

    /// Parses a `TTTTTTTT.history` file: `parent-timeline <tab> switchpoint <tab> reason` per line.
    init(timeline: UInt32, text: String) {
        self.timeline = timeline
        self.ancestors = text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#") else { return nil }
            let fields = trimmed.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 2, let parent = UInt32(fields[0]), let switchpoint = LSN(fields[1]) else { return nil }
            return (parent, switchpoint)
        }
    }

    init(ancestors: [(timeline: UInt32, switchpoint: LSN)], timeline: UInt32) {
        self.ancestors = ancestors
        self.timeline = timeline
    }

    /// Whether recovery along this history can pass through `lsn` on timeline `other`: `other` is this
    /// timeline, or an ancestor it left at or after `lsn`.
    func contains(_ lsn: LSN, onTimeline other: UInt32) -> Bool {
        if other == timeline { return true }
        guard let entry = ancestors.first(where: { $0.timeline == other }) else { return false }
        return lsn <= entry.switchpoint
    }
}

/// A point in time to restore to, with the microsecond precision of PostgreSQL's timestamps.
///
/// Parsed from `2026-11-29 14:05:00+00`, `2026-11-29T14:05:00.123456Z`, `… +01:00` (an offset is
/// required: a time without one would silently depend on the machine's zone) and printed as UTC,
/// the way `recovery_target_time` takes it.
public struct RecoveryTime: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    public var microseconds: Int64

    /// The time `microsecondsSinceEpoch` after 1970-01-01 00:00:00 UTC.
    public init(microsecondsSinceEpoch: Int64) { self.microseconds = microsecondsSinceEpoch }

    /// `date`, rounded to the microsecond.
    public init(_ date: Date) { self.microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }

    /// The time as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }

    public static func < (a: RecoveryTime, b: RecoveryTime) -> Bool { a.microseconds < b.microseconds }

    private static var utc: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }

    /// Parses an ISO 8601 / PostgreSQL timestamp with a zone offset.
    ///
    /// - Throws: ``BackupError/Code/invalidArgument`` naming the expected form.
    public init(parsing text: String) throws(BackupError) {
        let invalid = BackupError(.invalidArgument, "'\(text)' is not a time with a zone offset; write it like 2026-11-29 14:05:00+00 or 2026-11-29T14:05:00.5Z.")
        let scalars = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[index..<index + digits] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ options: String) -> Bool {
            guard index < scalars.count, options.utf8.contains(scalars[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2), expect(" T"),
              let hour = number(2), expect(":"), let minute = number(2)
        else { throw invalid }
        var second = 0
        var micros: Int64 = 0
        if expect(":") {
            guard let s = number(2) else { throw invalid }
            second = s
            if expect(".") {
                var digits = 0
                while index < scalars.count, scalars[index] >= 48, scalars[index] <= 57 {
                    if digits < 6 { micros = micros * 10 + Int64(scalars[index] - 48) }
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { throw invalid }
                for _ in digits..<max(digits, 6) { micros *= 10 }
            }
        }
        while index < scalars.count, scalars[index] == 32 { index += 1 }
        var offsetSeconds = 0
        if expect("Z") {
            offsetSeconds = 0
        } else {
            guard index < scalars.count else { throw invalid }
            let sign = scalars[index] == UInt8(ascii: "-") ? -1 : 1
            guard expect("+-"), let offsetHours = number(2) else { throw invalid }
            var offsetMinutes = 0
            if expect(":") {
                guard let m = number(2) else { throw invalid }
                offsetMinutes = m
            } else if let m = number(2) {
                offsetMinutes = m
            }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard index == scalars.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60,
              let date = Self.utc.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)),
              Self.utc.component(.day, from: date) == day
        else { throw invalid }
        let seconds = Int64(date.timeIntervalSince1970.rounded()) - Int64(offsetSeconds)
        self.microseconds = seconds * 1_000_000 + micros
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff+00`.
    public var description: String {
        let seconds = microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
        let fraction = microseconds - seconds * 1_000_000
        let parts = Self.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(seconds)))
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0,
                      parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0, Int(fraction))
    }

    /// Parses the timestamps PostgreSQL tools print in UTC: `2026-11-29 22:43:45.243366 UTC`
    /// (pg_waldump) or `2026-11-29 22:43:45.243366+00` (the server log).
    init?(serverText text: some StringProtocol) {
        var trimmed = String(text).trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix(" UTC") { trimmed = String(trimmed.dropLast(4)) + "Z" }
        guard let parsed = try? RecoveryTime(parsing: trimmed) else { return nil }
        self = parsed
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try RecoveryTime(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}
