public import Foundation
import Logging
import PostgresNIO

extension PhylacteryClient {
    /// The traces chamber: recent traces, one trace's span tree, day partitions and retention.
    public var traces: TraceStore { TraceStore(client: self) }
}

/// Reads and maintains the spans a ``PhylacteryTracer`` keeps in `traces.spans`.
///
/// ```swift
/// let recent = try await client.traces.list(TraceFilter(name: "job.run", status: .error))
/// let trace = try await client.traces.trace(recent[0].traceID)
/// print(TraceTimeline.render(trace))
/// try await client.traces.prune(olderThan: Date().addingTimeInterval(-7 * 86_400))
/// ```
///
/// Partitions are one UTC day of `start_us` each, named `spans_pYYYYMMDD`; they are runtime data,
/// not migrations: the tracer creates them ahead of time and ``prune(olderThan:)`` drops whole days.
public struct TraceStore: Sendable {
    /// The client the store reads and writes through.
    public let client: PhylacteryClient

    /// A store over `client`'s database.
    public init(client: PhylacteryClient) {
        self.client = client
    }

    static let schema = Chamber.traces.schema
    static let microsecondsPerDay: Int64 = 86_400_000_000
    /// Serialises partition creation and pruning across processes ("phylact" + 7).
    static let partitionLockKey: Int64 = 0x7068_796c_6163_7407

    // MARK: - Partitions

    /// The day number (days since 1970-01-01, UTC) of a time in microseconds.
    static func day(ofMicroseconds microseconds: Int64) -> Int64 {
        microseconds >= 0 ? microseconds / microsecondsPerDay : (microseconds + 1) / microsecondsPerDay - 1
    }

    /// `spans_p20261126` for the day that starts at that date.
    static func partitionName(day: Int64) -> String {
        let (y, m, d) = civilDate(day: day)
        func padded(_ n: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        return "\(SpanRecord.table)_p\(padded(y, 4))\(padded(m, 2))\(padded(d, 2))"
    }

    /// The day of a partition name, or `nil` when the name is not one of ours.
    static func day(ofPartition name: String) -> Int64? {
        let prefix = SpanRecord.table + "_p"
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard digits.count == 8, digits.allSatisfy(\.isASCII), let y = Int(digits.prefix(4)), let m = Int(digits.dropFirst(4).prefix(2)), let d = Int(digits.suffix(2)),
              (1...12).contains(m), (1...31).contains(d) else { return nil }
        return daysFromCivil(y, m, d)
    }

    /// Days since the epoch → proleptic Gregorian date (H. Hinnant's algorithm).
    package static func civilDate(day: Int64) -> (Int, Int, Int) {
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    /// Proleptic Gregorian date → days since the epoch.
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Creates the partition for `day` (days since 1970-01-01, UTC) unless it exists.
    func ensurePartition(day: Int64) async throws {
        let name = Self.partitionName(day: day)
        let from = day * Self.microsecondsPerDay, to = (day + 1) * Self.microsecondsPerDay
        try await self.client.transaction(options: Self.writerOptions) { tx in
            try await tx.execute("SELECT pg_advisory_xact_lock(\(Self.partitionLockKey))")
            try await tx.execute(PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS \(SQLIdentifier.quote(schema: Self.schema, name: name)) \
                PARTITION OF \(SQLIdentifier.quote(schema: Self.schema, name: SpanRecord.table)) FOR VALUES FROM (\(from)) TO (\(to))
                """))
        }
    }

    /// Creates the partitions of the `days` days starting with the one holding `start` (UTC), unless they exist.
    public func createPartitions(from start: Date = Date(), days: Int) async throws {
        let first = Self.day(ofMicroseconds: Int64((start.timeIntervalSince1970 * 1_000_000).rounded(.down)))
        for day in first..<(first + Int64(max(0, days))) {
            try await self.ensurePartition(day: day)
        }
    }

    /// One day partition of `traces.spans`.
    public struct Partition: Sendable, Hashable {
        /// The table name, `spans_pYYYYMMDD`.
        public var name: String
        /// The first instant it holds (UTC midnight).
        public var start: Date
        /// The first instant it no longer holds.
        public var end: Date
    }

    /// The day partitions that exist, oldest first.
    public func partitions() async throws -> [Partition] {
        let rows = try await self.client.query("""
            SELECT c.relname::text
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            JOIN pg_namespace n ON n.oid = p.relnamespace
            WHERE n.nspname = \(Self.schema) AND p.relname = \(SpanRecord.table)
            """).collect()
        var result: [Partition] = []
        for row in rows {
            let name = try row.decode(String.self)
            guard let day = Self.day(ofPartition: name) else { continue }
            result.append(Partition(name: name, start: Self.date(day: day), end: Self.date(day: day + 1)))
        }
        return result.sorted { $0.start < $1.start }
    }

    static func date(day: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(day * 86_400)) }

    /// Drops every day partition that ends at or before `cutoff`: whole days go at once, no row is
    /// deleted one by one, and the days after `cutoff` stay as they are. Returns the dropped names.
    ///
    /// - Warning: the spans of the dropped days are gone for good.
    @discardableResult
    public func prune(olderThan cutoff: Date) async throws -> [String] {
        let old = try await self.partitions().filter { $0.end <= cutoff }
        for partition in old {
            try await self.client.transaction { tx in
                try await tx.execute("SELECT pg_advisory_xact_lock(\(Self.partitionLockKey))")
                try await tx.execute(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(SQLIdentifier.quote(schema: Self.schema, name: partition.name))"))
            }
        }
        return old.map(\.name)
    }

    // MARK: - Writing

    /// The tracer's writes are bounded: a connection that stopped answering fails the write (the
    /// spans stay buffered and are retried) instead of holding the writer.
    static let writerOptions = TransactionOptions(timeout: .seconds(60))

    /// Writes finished spans with one `COPY` in one transaction.
    func copy(_ spans: [FinishedSpan], service: String) async throws {
        try await self.client.transaction(options: Self.writerOptions) { tx in
            try await tx.copy(into: SpanRecord.table, schema: Self.schema, columns: SpanEncoding.columns) { rows in
                for span in spans { try await rows.span(span, service: service) }
            }
        }
    }

    // MARK: - Reading

    /// One recent trace, as `traces list` shows it.
    public struct Summary: Sendable, Hashable, Codable {
        /// The trace.
        public var traceID: TraceID
        /// The entry span listed: the root, or a span whose parent ran in another process.
        public var entrySpanID: SpanID
        /// The root span's name.
        public var rootName: String
        /// The service that recorded the root.
        public var service: String
        /// When the root started, in microseconds since the Unix epoch.
        public var startMicroseconds: Int64
        /// How long the root took.
        public var durationMicroseconds: Int64
        /// Spans stored for the trace.
        public var spanCount: Int
        /// Spans with an error status.
        public var errorCount: Int

        /// When the root started.
        public var start: Date { Date(timeIntervalSince1970: TimeInterval(self.startMicroseconds) / 1_000_000) }

        /// Where the page after this summary starts (``TraceFilter/after``).
        public var cursor: TraceCursor { TraceCursor(startMicroseconds: self.startMicroseconds, spanID: self.entrySpanID) }
    }

    /// Lists recent traces, newest first, by their entry spans: the root, or, for a trace that came in
    /// from another process (a `traceparent` header), each span started from that process's context
    /// whose parent is not stored here. With ``TraceFilter/after`` the list starts after that trace
    /// (``page(_:)`` hands out the cursor).
    public func list(_ filter: TraceFilter = TraceFilter()) async throws -> [Summary] {
        var query = PostgresQuery(unsafeSQL: Self.summarySelect + """
             WHERE (r.parent_span_id IS NULL OR r.remote_parent)
              AND NOT (r.remote_parent AND EXISTS (
                  SELECT 1 FROM traces.spans p WHERE p.trace_id = r.trace_id AND p.span_id = r.parent_span_id))
            """)
        if let name = filter.name { query.sql += " AND r.name = $\(query.binds.count + 1)"; query.binds.append(name) }
        if let since = filter.since {
            query.sql += " AND r.start_us >= $\(query.binds.count + 1)"
            query.binds.append(Int64((since.timeIntervalSince1970 * 1_000_000).rounded(.down)))
        }
        if let minimum = filter.minimumDuration {
            query.sql += " AND r.duration_us >= $\(query.binds.count + 1)"
            query.binds.append(Self.microseconds(minimum))
        }
        switch filter.status {
        case .error?: query.sql += " AND EXISTS (SELECT 1 FROM traces.spans e WHERE e.trace_id = r.trace_id AND e.status = 'error')"
        case .ok?: query.sql += " AND NOT EXISTS (SELECT 1 FROM traces.spans e WHERE e.trace_id = r.trace_id AND e.status = 'error')"
        case nil: break
        }
        if let after = filter.after {
            // Keyset: the plain bound on start_us lets the entry-span index start the scan there; the
            // row comparison breaks ties between entry spans that started in the same microsecond.
            let start = query.binds.count + 1
            query.sql += " AND r.start_us <= $\(start) AND (r.start_us, r.id) < ($\(start), $\(start + 1))"
            query.binds.append(after.startMicroseconds)
            query.binds.append(after.rowID)
        }
        query.sql += " ORDER BY r.start_us DESC, r.id DESC LIMIT $\(query.binds.count + 1)"
        query.binds.append(max(0, filter.limit))
        return try await self.summaries(query)
    }

    /// One page of ``list(_:)``: at most ``TraceFilter/limit`` traces, newest first, and the cursor
    /// of the next page (`nil` on the last one). Pages stay stable while traces are recorded: a
    /// page starts strictly after the previous page's last trace, so nothing repeats and nothing
    /// older is skipped.
    ///
    /// ```swift
    /// var filter = TraceFilter(status: .error, limit: 50)
    /// repeat {
    ///     let page = try await client.traces.page(filter)
    ///     show(page.traces)
    ///     filter.after = page.next
    /// } while filter.after != nil
    /// ```
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for a limit outside 1…1000.
    public func page(_ filter: TraceFilter = TraceFilter()) async throws -> TracePage {
        guard (1...1000).contains(filter.limit) else {
            throw PhylacteryError(.invalidArgument, "a page holds 1 to 1000 traces; got a limit of \(filter.limit)")
        }
        var probe = filter
        probe.limit = filter.limit + 1
        var traces = try await self.list(probe)
        let more = traces.count > filter.limit
        if more { traces.removeLast(traces.count - filter.limit) }
        return TracePage(traces: traces, next: more ? traces.last?.cursor : nil)
    }

    /// The traces of a job's runs, newest first: the queue's workers tag each run's root span with
    /// `phylactery.job.id`, and a partial index over that attribute of root spans finds them.
    public func traces(ofJob jobID: UUID, limit: Int = 20) async throws -> [Summary] {
        let query = PostgresQuery(unsafeSQL: Self.summarySelect + """
             WHERE \(SpanRecord.jobIDExpression) = $1 AND r.parent_span_id IS NULL
            ORDER BY r.start_us DESC, r.id DESC LIMIT $2
            """, binds: PostgresBindings(values: jobID.uuidString, Int64(max(0, limit))))
        return try await self.summaries(query)
    }

    /// The select list and table of a summary query, over entry spans `r`.
    static let summarySelect = """
            SELECT r.trace_id, r.span_id, r.name, r.service, r.start_us, r.duration_us,
                   (SELECT count(*) FROM traces.spans s WHERE s.trace_id = r.trace_id)::int8,
                   (SELECT count(*) FROM traces.spans s WHERE s.trace_id = r.trace_id AND s.status = 'error')::int8
            FROM traces.spans r
        """

    /// Reads the rows of a summary query (trace, entry span, name, service, start, duration, spans, errors).
    func summaries(_ query: PostgresQuery) async throws -> [Summary] {
        try await self.client.query(query).collect().map { row in
            let (trace, span, name, service, start, duration, spans, errors) = try row.decode((UUID, Int64, String, String, Int64, Int64, Int64, Int64).self)
            return Summary(traceID: TraceID(uuid: trace), entrySpanID: SpanID(UInt64(bitPattern: span)), rootName: name, service: service,
                           startMicroseconds: start, durationMicroseconds: duration, spanCount: Int(spans), errorCount: Int(errors))
        }
    }

    /// The most spans ``trace(_:offset:limit:)`` reads by default.
    public static let defaultSpanLimit = 10_000

    /// One trace's stored spans, as a tree: at most `limit` of them in start order, after the first
    /// `offset`, so a trace of any size is read in bounded memory and time. The result's
    /// ``Trace/totalSpanCount`` says how many are stored; a span whose parent is on another page shows
    /// as a root of this one.
    ///
    /// - Throws: `.notFound` when no span of the trace is stored; `.invalidArgument` for a negative
    ///   `offset` or a `limit` below 1.
    public func trace(_ id: TraceID, offset: Int = 0, limit: Int = TraceStore.defaultSpanLimit) async throws -> Trace {
        guard offset >= 0, limit >= 1 else {
            throw PhylacteryError(.invalidArgument, "offset must not be negative and limit must be at least 1; got \(offset) and \(limit)")
        }
        return try await self.client.transaction { tx in
            let total = try await tx.count(SpanRecord.self, where: "trace_id = \(id.uuid)")
            guard total > 0 else {
                throw PhylacteryError(.notFound, "no spans are stored for trace \(id)")
            }
            let spans = try await tx.models("""
                SELECT \(unescaped: ModelSQL.selectList(SpanRecord.schema)) FROM \(unescaped: ModelSQL.table(SpanRecord.schema))
                WHERE trace_id = \(id.uuid) ORDER BY start_us, span_id LIMIT \(limit) OFFSET \(offset)
                """, as: SpanRecord.self, file: #fileID, line: #line)
            return Trace(id: id, spans: spans, offset: offset, totalSpanCount: total)
        }
    }

    /// Spans slower than `minimumDuration`, slowest first: what the duration index is for.
    public func slowSpans(atLeast minimumDuration: Duration, limit: Int = 20) async throws -> [SpanRecord] {
        try await self.client.fetch(SpanRecord.self, where: "duration_us >= \(Self.microseconds(minimumDuration))",
                                    orderBy: "duration_us DESC", limit: max(0, limit))
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }
}

/// Which traces ``TraceStore/list(_:)`` returns.
public struct TraceFilter: Sendable, Hashable {
    /// Only traces whose root span has this name.
    public var name: String?
    /// Only traces whose root took at least this long.
    public var minimumDuration: Duration?
    /// `.error`: traces with at least one error span; `.ok`: traces without any. `nil`: all.
    public var status: Status?
    /// Only traces whose root started at or after this time.
    public var since: Date?
    /// Most traces returned. Default 20.
    public var limit: Int
    /// Only traces listed after this one (``TracePage/next``, ``TraceStore/Summary/cursor``); `nil`
    /// starts with the newest.
    public var after: TraceCursor?

    /// A trace's overall status, for filtering.
    public enum Status: String, Sendable, Hashable, CaseIterable, Codable {
        case ok, error
    }

    /// A filter; every part is optional.
    public init(name: String? = nil, minimumDuration: Duration? = nil, status: Status? = nil, since: Date? = nil, limit: Int = 20,
                after: TraceCursor? = nil) {
        self.after = after
        self.name = name
        self.minimumDuration = minimumDuration
        self.status = status
        self.since = since
        self.limit = limit
    }
}

/// One trace's stored spans, arranged as a tree: all of them, or one page (``TraceStore/trace(_:offset:limit:)``).
public struct Trace: Sendable, Hashable {
    /// The trace id.
    public var id: TraceID
    /// The spans read, by start time.
    public var spans: [SpanRecord]
    /// How many spans, in start order, come before ``spans`` (0 unless this is a later page).
    public var offset: Int
    /// How many spans the trace has stored; more than `offset + spans.count` when pages follow.
    public var totalSpanCount: Int

    /// A trace from its spans: all of them, unless `offset` and `totalSpanCount` say they are one page.
    public init(id: TraceID, spans: [SpanRecord], offset: Int = 0, totalSpanCount: Int? = nil) {
        self.id = id
        self.spans = spans.sorted { ($0.startMicroseconds, $0.spanID.rawValue) < ($1.startMicroseconds, $1.spanID.rawValue) }
        self.offset = offset
        self.totalSpanCount = max(totalSpanCount ?? spans.count, offset + spans.count)
    }

    /// How many stored spans come after ``spans``.
    public var remainingSpanCount: Int { max(0, self.totalSpanCount - self.offset - self.spans.count) }

    /// True when ``spans`` is only part of the trace.
    public var isPartial: Bool { self.offset > 0 || self.remainingSpanCount > 0 }

    /// Spans whose parent is not stored in this trace (normally the one root; also spans whose
    /// parent ran in another process, or was dropped), by start time.
    public var roots: [SpanRecord] {
        let ids = Set(self.spans.map(\.spanID))
        return self.spans.filter { span in span.parentSpanID.map { !ids.contains($0) } ?? true }
    }

    /// The children of `span`, by start time.
    public func children(of span: SpanRecord) -> [SpanRecord] {
        self.spans.filter { $0.parentSpanID == span.spanID }
    }

    /// Every span's children, by start time, keyed by the parent's id: one pass, for walking the whole tree.
    public var childrenByParent: [SpanID: [SpanRecord]] {
        var children: [SpanID: [SpanRecord]] = [:]
        for span in self.spans {
            if let parent = span.parentSpanID { children[parent, default: []].append(span) }
        }
        return children
    }

    /// The first start and the last end among the spans, in microseconds since the Unix epoch.
    public var bounds: (start: Int64, end: Int64) {
        (self.spans.map(\.startMicroseconds).min() ?? 0, self.spans.map(\.endMicroseconds).max() ?? 0)
    }

    /// Spans with an error status.
    public var errorCount: Int { self.spans.filter { $0.status == .error }.count }
}
