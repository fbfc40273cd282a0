/// One trace laid out as a waterfall, the rows a page draws as bars: each span with its depth in the
/// tree, its offset from the trace's start and its duration, in tree order (a parent, then its
/// children by start time, depth first), with its attributes, events and status.
///
/// Built from a ``Trace`` (all of it, or one page: a span whose parent is on another page starts at
/// depth 0), without recursion, so a deep or wide trace lays out in linear time.
///
/// ```swift
/// let waterfall = try await client.traces.waterfall(traceID)
/// for row in waterfall.rows { print(String(repeating: "  ", count: row.depth) + row.name, row.offsetMicroseconds) }
/// ```
public struct TraceWaterfall: Sendable, Hashable, Codable {
    /// One span of the waterfall.
    public struct Row: Sendable, Hashable, Codable {
        /// The span.
        public var spanID: SpanID
        /// Its parent, `nil` for a root.
        public var parentSpanID: SpanID?
        /// How many ancestors of the span are shown above it (0 for a root).
        public var depth: Int
        /// The operation name.
        public var name: String
        /// The service that recorded it.
        public var service: String
        /// Server, client, producer, consumer or internal.
        public var kind: SpanRecord.Kind
        /// Microseconds from the waterfall's start to the span's start.
        public var offsetMicroseconds: Int64
        /// How long the span took, in microseconds.
        public var durationMicroseconds: Int64
        /// Unset, ok or error.
        public var status: SpanRecord.Status
        /// The error message of an error status.
        public var statusMessage: String?
        /// The span's attributes.
        public var attributes: [String: TraceValue]
        /// Its events, each with its time as an offset from the waterfall's start.
        public var events: [Event]
        /// Links to spans of other traces.
        public var links: [SpanRecord.Link]
    }

    /// A span's event placed on the waterfall.
    public struct Event: Sendable, Hashable, Codable {
        /// The event name (`exception` for a recorded error).
        public var name: String
        /// Microseconds from the waterfall's start.
        public var offsetMicroseconds: Int64
        /// The event's attributes.
        public var attributes: [String: TraceValue]
    }

    /// The trace.
    public var traceID: TraceID
    /// The earliest start among the spans shown, in microseconds since the Unix epoch: offset 0.
    public var startMicroseconds: Int64
    /// From the earliest start to the latest end among the spans shown.
    public var durationMicroseconds: Int64
    /// The spans in tree order.
    public var rows: [Row]
    /// How many spans the trace has stored (more than ``rows`` when this is one page).
    public var totalSpanCount: Int
    /// How many spans, in start order, come before the ones shown.
    public var offset: Int
    /// Spans with an error status among those shown.
    public var errorCount: Int

    /// The waterfall of `trace`'s spans.
    public init(_ trace: Trace) {
        let (start, end) = trace.bounds
        self.traceID = trace.id
        self.startMicroseconds = start
        self.durationMicroseconds = max(0, end - start)
        self.totalSpanCount = trace.totalSpanCount
        self.offset = trace.offset
        self.errorCount = trace.errorCount
        let childrenByParent = trace.childrenByParent
        var rows: [Row] = []
        rows.reserveCapacity(trace.spans.count)
        // Depth first with an explicit stack, children pushed in reverse so the earliest pops first.
        var stack: [(span: SpanRecord, depth: Int)] = trace.roots.reversed().map { ($0, 0) }
        while let (span, depth) = stack.popLast() {
            rows.append(Row(
                spanID: span.spanID, parentSpanID: span.parentSpanID, depth: depth, name: span.name, service: span.service, kind: span.kind,
                offsetMicroseconds: span.startMicroseconds - start, durationMicroseconds: span.durationMicroseconds,
                status: span.status, statusMessage: span.statusMessage, attributes: span.attributes,
                events: span.events.map { Event(name: $0.name, offsetMicroseconds: $0.timeMicroseconds - start, attributes: $0.attributes) },
                links: span.links))
            for child in (childrenByParent[span.spanID] ?? []).reversed() { stack.append((child, depth + 1)) }
        }
        self.rows = rows
    }
}
