public import Foundation

/// Where a page of ``TraceStore/list(_:)`` starts: just after the listed trace whose entry span
/// started at ``startMicroseconds`` with ``spanID``.
///
/// Its ``description`` is a URL-safe token (`1764480000123456-00f067aa0ba902b7`) for a next-page link
/// or a CLI's `--after`; ``init(_:)`` reads it back. The values travel as bind parameters, so a
/// forged token can at worst list other traces.
public struct TraceCursor: Sendable, Hashable, Codable, LosslessStringConvertible {
    /// The entry span's start, in microseconds since the Unix epoch.
    public var startMicroseconds: Int64
    /// The entry span's id (ties between spans that started in the same microsecond are broken by
    /// the row id made from start and span id, ``SpanRecord/rowID(startMicroseconds:spanID:)``).
    public var spanID: SpanID

    /// A cursor after the entry span `spanID` that started at `startMicroseconds`.
    public init(startMicroseconds: Int64, spanID: SpanID) {
        self.startMicroseconds = startMicroseconds
        self.spanID = spanID
    }

    /// The entry span's row id, which the list orders by after its start.
    var rowID: UUID { SpanRecord.rowID(startMicroseconds: self.startMicroseconds, spanID: self.spanID) }

    /// Reads a token made by ``description``; `nil` when it is not one.
    public init?(_ description: String) {
        let parts = description.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = Int64(parts[0]), start >= 0, let span = try? SpanID(parsing: String(parts[1])) else { return nil }
        self.init(startMicroseconds: start, spanID: span)
    }

    /// `START-SPANID`: the start in microseconds and the span id's 16 hex digits.
    public var description: String { "\(self.startMicroseconds)-\(self.spanID)" }
}
