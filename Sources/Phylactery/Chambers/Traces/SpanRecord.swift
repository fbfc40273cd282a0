public import Foundation
public import PostgresNIO

/// One stored span: a row of `traces.spans`, a core model of the federation.
///
/// The table is partitioned by day on ``startMicroseconds`` (`PARTITION BY RANGE (start_us)`), so
/// retention drops whole partitions (``TraceStore/prune(olderThan:)``) instead of deleting rows.
/// PostgreSQL wants the partition key in the primary key, so the key is `(id, start_us)`; `id` is a
/// version 7 UUID made from the span's start time and span id (see ``rowID(startMicroseconds:spanID:)``),
/// so writing the same span twice gives the same row id.
///
/// Times are microseconds since the Unix epoch (`bigint`): what the tracer measures, written without
/// any conversion; `to_timestamp(start_us / 1e6)` shows them as times.
public struct SpanRecord: PersistentModel, Hashable {
    public var id: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// The trace the span belongs to.
    public var traceID: TraceID
    /// The span's own id, unique within its trace.
    public var spanID: SpanID
    /// The parent span, `nil` for a root.
    public var parentSpanID: SpanID?
    /// The operation name.
    public var name: String
    /// Server, client, producer, consumer or internal.
    public var kind: Kind
    /// Start, in microseconds since the Unix epoch.
    public var startMicroseconds: Int64
    /// End, in microseconds since the Unix epoch.
    public var endMicroseconds: Int64
    /// `end − start`, stored so slow spans are found by an index.
    public var durationMicroseconds: Int64
    /// Unset, ok or error.
    public var status: Status
    /// The error message of an error status, when there is one.
    public var statusMessage: String?
    /// The span's attributes.
    public var attributes: [String: TraceValue]
    /// Events in the order they were added (errors are `exception` events).
    public var events: [Event]
    /// Links to spans of other traces.
    public var links: [Link]
    /// The service (daemon, extension) that recorded the span.
    public var service: String
    /// Whether ``parentSpanID`` names a span of another process (the trace came in through a
    /// `traceparent` header): such a span is where this process entered the trace.
    public var hasRemoteParent: Bool

    /// A span's kind, as swift-distributed-tracing names them.
    public enum Kind: String, PersistentEnum, Sendable {
        case `internal`, server, client, producer, consumer
    }

    /// A span's status.
    public enum Status: String, PersistentEnum, Sendable {
        case unset, ok, error
    }

    /// Something that happened during a span.
    public struct Event: Codable, Sendable, Hashable {
        /// The event name (`exception` for a recorded error).
        public var name: String
        /// When, in microseconds since the Unix epoch.
        public var timeMicroseconds: Int64
        /// The event's attributes.
        public var attributes: [String: TraceValue]

        enum CodingKeys: String, CodingKey {
            case name, timeMicroseconds = "time_us", attributes
        }

        /// An event.
        public init(name: String, timeMicroseconds: Int64, attributes: [String: TraceValue] = [:]) {
            self.name = name
            self.timeMicroseconds = timeMicroseconds
            self.attributes = attributes
        }
    }

    /// A link to a span of another trace.
    public struct Link: Codable, Sendable, Hashable {
        /// The linked trace, as 32 hex digits.
        public var traceID: String
        /// The linked span, as 16 hex digits.
        public var spanID: String
        /// The link's attributes.
        public var attributes: [String: TraceValue]

        enum CodingKeys: String, CodingKey {
            case traceID = "trace_id", spanID = "span_id", attributes
        }

        /// A link.
        public init(traceID: String, spanID: String, attributes: [String: TraceValue] = [:]) {
            self.traceID = traceID
            self.spanID = spanID
            self.attributes = attributes
        }
    }

    /// A span record; the tracer makes these, tests and importers may too.
    public init(
        traceID: TraceID, spanID: SpanID, parentSpanID: SpanID?, name: String, kind: Kind = .internal,
        startMicroseconds: Int64, endMicroseconds: Int64, status: Status = .unset, statusMessage: String? = nil,
        attributes: [String: TraceValue] = [:], events: [Event] = [], links: [Link] = [], service: String,
        hasRemoteParent: Bool = false, createdAt: Date = Date(), updatedAt: Date = Date()
    ) {
        self.id = Self.rowID(startMicroseconds: startMicroseconds, spanID: spanID)
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startMicroseconds = startMicroseconds
        self.endMicroseconds = endMicroseconds
        self.durationMicroseconds = endMicroseconds - startMicroseconds
        self.status = status
        self.statusMessage = statusMessage
        self.attributes = attributes
        self.events = events
        self.links = links
        self.service = service
        self.hasRemoteParent = hasRemoteParent
    }

    /// The table name.
    public static let table = "spans"

    /// Spans where a process entered a trace: the root, or a span whose parent ran elsewhere.
    static let entryPredicate = "parent_span_id IS NULL OR remote_parent"

    /// The job a root span ran, as the queue's workers tag it (`phylactery.job.id`, a UUID's text):
    /// the expression of the partial index ``TraceStore/traces(ofJob:limit:)`` reads.
    static let jobIDExpression = "(attributes ->> 'phylactery.job.id'::text)"

    /// The column the table is partitioned on.
    public static let partitionColumn = "start_us"

    public static var tableLocation: (chamber: Chamber, table: String) { (.traces, table) }

    public static let schema: ModelSchema = {
        var schema = ModelSchema(
            modelName: "SpanRecord",
            table: table,
            chamber: .traces,
            columns: [
                ModelSchema.column("traceID", TraceID.self, name: "trace_id"),
                ModelSchema.column("spanID", SpanID.self, name: "span_id"),
                ModelSchema.column("parentSpanID", SpanID?.self, name: "parent_span_id"),
                ModelSchema.column("name", String.self),
                ModelSchema.column("kind", Kind.self, default: "'internal'"),
                ModelSchema.column("startMicroseconds", Int64.self, name: "start_us"),
                ModelSchema.column("endMicroseconds", Int64.self, name: "end_us"),
                ModelSchema.column("durationMicroseconds", Int64.self, name: "duration_us"),
                ModelSchema.column("status", Status.self, default: "'unset'"),
                ModelSchema.column("statusMessage", String?.self),
                ModelSchema.column("attributes", [String: TraceValue].self, default: "'{}'::jsonb"),
                ModelSchema.column("events", [Event].self, default: "'[]'::jsonb"),
                ModelSchema.column("links", [Link].self, default: "'[]'::jsonb"),
                ModelSchema.column("service", String.self),
                ModelSchema.column("hasRemoteParent", Bool.self, name: "remote_parent", default: "false"),
            ],
            indexes: [
                // One trace by id.
                IndexDescription(name: "spans_trace_id_idx", columns: ["trace_id"]),
                // Recent traces, and recent traces by name: only entry spans (roots, and spans whose
                // parent ran in another process) are indexed.
                IndexDescription(name: "spans_roots_idx", columns: ["start_us"], predicate: entryPredicate),
                IndexDescription(name: "spans_roots_by_name_idx", columns: ["name", "start_us"], predicate: entryPredicate),
                // Slow spans.
                IndexDescription(name: "spans_duration_idx", columns: ["duration_us"]),
                // Errors: only error spans are indexed.
                IndexDescription(name: "spans_errors_idx", columns: ["start_us"], predicate: "status = 'error'"),
                // A job's traces: the job id the queue's workers put on each run's root span.
                IndexDescription(name: "spans_job_idx", columns: ["(\(jobIDExpression))"], predicate: "parent_span_id IS NULL"),
                // Spans recorded per minute (the console's activity chart): a block-range index, a few
                // pages for a day of spans, since spans arrive roughly in start order.
                IndexDescription(name: "spans_start_brin", columns: ["start_us"], method: .brin),
            ]
        )
        schema.partitioning = .range(partitionColumn)
        return schema
    }()

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.traceID)
        try row.write(self.spanID)
        try row.write(self.parentSpanID)
        try row.write(self.name)
        try row.write(self.kind)
        try row.write(self.startMicroseconds)
        try row.write(self.endMicroseconds)
        try row.write(self.durationMicroseconds)
        try row.write(self.status)
        try row.write(self.statusMessage)
        try row.write(self.attributes)
        try row.write(self.events)
        try row.write(self.links)
        try row.write(self.service)
        try row.write(self.hasRemoteParent)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.traceID = try row.read(TraceID.self)
        self.spanID = try row.read(SpanID.self)
        self.parentSpanID = try row.read(SpanID?.self)
        self.name = try row.read(String.self)
        self.kind = try row.read(Kind.self)
        self.startMicroseconds = try row.read(Int64.self)
        self.endMicroseconds = try row.read(Int64.self)
        self.durationMicroseconds = try row.read(Int64.self)
        self.status = try row.read(Status.self)
        self.statusMessage = try row.read(String?.self)
        self.attributes = try row.read([String: TraceValue].self)
        self.events = try row.read([Event].self)
        self.links = try row.read([Link].self)
        self.service = try row.read(String.self)
        self.hasRemoteParent = try row.read(Bool.self)
    }

    /// The row id of a span: a version 7 UUID whose time is the span's start (millisecond) and whose
    /// random bits are the span id's, so rows land in time order and a span written twice has one id.
    public static func rowID(startMicroseconds: Int64, spanID: SpanID) -> UUID {
        let milliseconds = UInt64(max(0, startMicroseconds / 1000))
        let fraction = UInt64(max(0, startMicroseconds % 1000)) * 4096 / 1000  // 12 bits of sub-millisecond time
        let s = spanID.rawValue
        return UUID(uuid: (
            UInt8(truncatingIfNeeded: milliseconds >> 40), UInt8(truncatingIfNeeded: milliseconds >> 32),
            UInt8(truncatingIfNeeded: milliseconds >> 24), UInt8(truncatingIfNeeded: milliseconds >> 16),
            UInt8(truncatingIfNeeded: milliseconds >> 8), UInt8(truncatingIfNeeded: milliseconds),
            0x70 | UInt8(truncatingIfNeeded: fraction >> 8), UInt8(truncatingIfNeeded: fraction),
            0x80 | UInt8(truncatingIfNeeded: s >> 56) & 0x3F, UInt8(truncatingIfNeeded: s >> 48),
            UInt8(truncatingIfNeeded: s >> 40), UInt8(truncatingIfNeeded: s >> 32),
            UInt8(truncatingIfNeeded: s >> 24), UInt8(truncatingIfNeeded: s >> 16),
            UInt8(truncatingIfNeeded: s >> 8), UInt8(truncatingIfNeeded: s)))
    }

    /// How long the span took.
    public var duration: Duration { .microseconds(self.durationMicroseconds) }
}

/// An attribute value as stored in the `attributes` jsonb: a string, number, boolean or a list of one of them.
public enum TraceValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case strings([String])
    case ints([Int64])
    case doubles([Double])
    case bools([Bool])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([Bool].self) { self = .bools(value) }
        else if let value = try? container.decode([Int64].self) { self = .ints(value) }
        else if let value = try? container.decode([Double].self) { self = .doubles(value) }
        else { self = .strings(try container.decode([String].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        case .ints(let value): try container.encode(value)
        case .doubles(let value): try container.encode(value)
        case .bools(let value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .bool(let value): return String(value)
        case .strings(let value): return "[" + value.joined(separator: ", ") + "]"
        case .ints(let value): return "[" + value.map(String.init).joined(separator: ", ") + "]"
        case .doubles(let value): return "[" + value.map { String($0) }.joined(separator: ", ") + "]"
        case .bools(let value): return "[" + value.map(String.init).joined(separator: ", ") + "]"
        }
    }
}
