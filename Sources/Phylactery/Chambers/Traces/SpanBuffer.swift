public import Tracing

/// A span that has ended, as the tracer hands it to the writer: the hot path only copies values in
/// here; turning it into a row happens later, off the instrumented code's path.
struct FinishedSpan: Sendable {
    var traceID: TraceID
    var spanID: SpanID
    var parentID: SpanID?
    var hasRemoteParent = false
    var name: String
    var kind: SpanKind
    var startNanoseconds: UInt64
    var endNanoseconds: UInt64
    var status: SpanStatus?
    var attributes: SpanAttributes
    var events: [SpanEvent]
    var links: [SpanLink]

    var startMicroseconds: Int64 { Int64(truncatingIfNeeded: self.startNanoseconds / 1000) }
    var endMicroseconds: Int64 { Int64(truncatingIfNeeded: self.endNanoseconds / 1000) }
}

/// A bounded ring of finished spans. When full, a new span replaces the oldest one, which is
/// counted as dropped: the buffer never grows and the code appending never waits.
///
/// Not thread-safe by itself; the tracer keeps it behind a lock and only does O(1) work under it on
/// the hot path (``append(_:)``).
struct SpanBuffer {
    private var slots: [FinishedSpan?]
    private var head = 0
    private(set) var count = 0
    /// Spans dropped since the buffer was made.
    private(set) var dropped = 0

    init(capacity: Int) {
        self.slots = Array(repeating: nil, count: max(1, capacity))
    }

    var capacity: Int { self.slots.count }

    /// Appends `span`, replacing the oldest one when full. Returns the new count.
    @inline(__always)
    mutating func append(_ span: FinishedSpan) -> Int {
        let capacity = self.slots.count
        if self.count == capacity {
            self.slots[self.head] = span
            self.head = self.head + 1 == capacity ? 0 : self.head + 1
            self.dropped += 1
            return self.count
        }
        var tail = self.head + self.count
        if tail >= capacity { tail -= capacity }
        self.slots[tail] = span
        self.count += 1
        return self.count
    }

    /// Removes and returns up to `limit` spans, oldest first.
    mutating func removeOldest(_ limit: Int) -> [FinishedSpan] {
        let n = min(limit, self.count)
        var result: [FinishedSpan] = []
        result.reserveCapacity(n)
        let capacity = self.slots.count
        for _ in 0..<n {
            result.append(self.slots[self.head]!)
            self.slots[self.head] = nil
            self.head = self.head + 1 == capacity ? 0 : self.head + 1
        }
        self.count -= n
        return result
    }

    /// Puts back spans that could not be written, ahead of the ones that arrived meanwhile. Whatever
    /// does not fit is dropped, oldest first, and counted.
    mutating func requeue(_ spans: [FinishedSpan]) {
        let newer = self.removeOldest(self.count)
        let all = spans + newer
        let overflow = max(0, all.count - self.slots.count)
        self.dropped += overflow
        for span in all.dropFirst(overflow) { _ = self.append(span) }
    }

    /// Counts spans lost outside the buffer (a final write that failed at shutdown).
    mutating func countDropped(_ n: Int) { self.dropped += n }
}
