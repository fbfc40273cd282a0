public import Logging
public import Metrics
public import ServiceLifecycle
import Synchronization
public import Tracing

/// A swift-distributed-tracing `Tracer` whose spans are kept in the `traces` chamber.
///
/// Instrumented code never waits on the database: ending a span appends it to a bounded in-memory
/// buffer (a lock, a copy); the tracer's ``run()`` — it is a `Service` — writes the buffer to
/// `traces.spans` in batches with `COPY`. When the database is slow or down the buffer fills and the
/// oldest spans are dropped and counted (``droppedSpans``, the `phylactery_traces_spans_dropped`
/// counter and a warning in the log); writing resumes by itself when the database answers again.
/// On graceful shutdown the buffer is flushed.
///
/// A span the server refuses on its data never holds back the others: a batch that fails that way
/// is split (``BatchSplitter``), the good spans are written at once and the refused one is dropped
/// and counted (``unstorableSpans``, the `phylactery_traces_spans_unstorable` counter). Text the
/// tracer writes is made storable first (U+0000 becomes U+FFFD, see ``StorableText``), so a span's
/// name or attributes cannot be the reason.
///
/// ```swift
/// let tracer = PhylacteryTracer(client: client, configuration: .init(service: "my-daemon"))
/// InstrumentationSystem.bootstrap(tracer)
/// // The tracer after the client: a ServiceGroup shuts services down in reverse order, so the
/// // tracer flushes while the client still runs.
/// let group = ServiceGroup(services: [client, tracer], logger: logger)
/// ```
///
/// Context travels in the task-local ``ServiceContext`` (as ``SpanContext``) and across processes
/// as a W3C `traceparent` header (``inject(_:into:using:)``, ``extract(_:into:using:)``). Trace and
/// span ids are W3C-sized (16 and 8 bytes).
///
/// The spans table is a core model (``SpanRecord``): migrating the federation creates it. The
/// tracer creates the day partitions it needs itself, ahead of time.
public final class PhylacteryTracer: Tracer, Service, Sendable {
    public typealias Span = PhylacterySpan

    /// How the tracer buffers and writes.
    public struct Configuration: Sendable {
        /// The name stored with every span (`service` column): the daemon or extension recording it.
        public var service: String
        /// Most spans kept in memory while waiting to be written; beyond it the oldest are dropped. Default 100 000.
        public var bufferCapacity: Int = 100_000
        /// Most spans written by one `COPY`. Default 10 000.
        public var batchSize: Int = 10_000
        /// How often the buffer is written when it does not fill a batch first. Default 250 ms.
        public var flushInterval: Duration = .milliseconds(250)
        /// The longest wait between write attempts while the database fails (the backoff starts
        /// at 50 ms and doubles). Default 2 s.
        public var maximumBackoff: Duration = .seconds(2)
        /// Day partitions created ahead of today (UTC). Default 2.
        public var partitionsAhead: Int = 2
        /// Where the `phylactery_traces_spans_dropped` and `phylactery_traces_spans_stored` counters go;
        /// `nil` (the default) means the process's bootstrapped `MetricsSystem`.
        public var metricsFactory: (any MetricsFactory)?

        /// A configuration for `service` with the documented defaults.
        public init(service: String) {
            self.service = service
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// Where spans are written and read.
    public let store: TraceStore
    let logger: Logger
    let buffer: Mutex<SpanBuffer>
    private let wakeStream: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let shuttingDown = Atomic<Bool>(false)
    private let counters = Mutex<Counters>(Counters())
    private let droppedCounter: Counter
    private let storedCounter: Counter
    private let unstorableCounter: Counter

    struct Counters {
        var stored = 0
        var unstorable = 0
        var reportedDrops = 0
        var failing = false
        var knownDays: Set<Int64> = []
    }

    /// A tracer writing through `client`. Nothing is written until ``run()`` runs.
    public init(client: PhylacteryClient, configuration: Configuration, logger: Logger = Logger(label: "phylactery.traces")) {
        self.configuration = configuration
        self.store = TraceStore(client: client)
        self.logger = logger
        self.buffer = Mutex(SpanBuffer(capacity: configuration.bufferCapacity))
        (self.wakeStream, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let factory = configuration.metricsFactory ?? MetricsSystem.factory
        let dimensions = [("service", configuration.service)]
        self.droppedCounter = Counter(label: "phylactery_traces_spans_dropped", dimensions: dimensions, factory: factory)
        self.storedCounter = Counter(label: "phylactery_traces_spans_stored", dimensions: dimensions, factory: factory)
        self.unstorableCounter = Counter(label: "phylactery_traces_spans_unstorable", dimensions: dimensions, factory: factory)
    }

    // MARK: - Tracer

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> ServiceContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> PhylacterySpan {
        var childContext = context()
        let parent = childContext.spanContext
        let spanContext = SpanContext(
            traceID: parent?.traceID ?? SpanIDGenerator.traceID(),
            spanID: SpanIDGenerator.spanID(),
            isSampled: parent?.isSampled ?? true)
        childContext.spanContext = spanContext
        return PhylacterySpan(
            name: operationName, context: childContext, spanContext: spanContext, parentID: parent?.spanID,
            hasRemoteParent: parent?.isRemote ?? false, kind: kind, startNanoseconds: instant().nanosecondsSinceEpoch,
            tracer: spanContext.isSampled ? self : nil)
    }

    /// Asks the background writer to write what is buffered now (it does not wait for it; see ``flush()``).
    public func forceFlush() {
        self.wake.yield(())
    }

    /// Writes `context`'s span as a W3C `traceparent` header.
    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.spanContext else { return }
        injector.inject(span.traceparent, forKey: "traceparent", into: &carrier)
    }

    /// Reads a W3C `traceparent` header into `context`; an absent or invalid header leaves it unchanged.
    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier), let span = SpanContext(traceparent: header) else { return }
        context.spanContext = span
    }

    /// Called by a span when it ends: the whole hot-path cost of keeping it.
    @inline(__always)
    func record(_ span: FinishedSpan) {
        let count = self.buffer.withLock { $0.append(span) }
        // Wake the writer once per full batch, not once per span.
        if count == self.configuration.batchSize { self.wake.yield(()) }
    }

    // MARK: - Figures

    /// Spans dropped so far: buffer overflow while the database was slow or down, or spans that
    /// could not be written at shutdown.
    public var droppedSpans: Int { self.buffer.withLock { $0.dropped } }
    /// Spans dropped because the server refused them on their data (each written alone, and refused
    /// alone); the other spans of their batches were stored.
    public var unstorableSpans: Int { self.counters.withLock { $0.unstorable } }
    /// Spans written to the database so far.
    public var storedSpans: Int { self.counters.withLock { $0.stored } }
    /// Spans waiting in the buffer.
    public var bufferedSpans: Int { self.buffer.withLock { $0.count } }

    // MARK: - Service

    /// Writes buffered spans until graceful shutdown or cancellation, then flushes what is left.
    ///
    /// Run it once, in a `ServiceGroup` after the client it writes through.
    public func run() async throws {
        await self.preparePartitions()
        let interval = self.configuration.flushInterval
        let wake = self.wake
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        wake.yield(())
                    }
                }
                for await _ in self.wakeStream {
                    if self.shuttingDown.load(ordering: .relaxed) { break }
                    await self.writeAvailable(backingOff: true)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.shuttingDown.store(true, ordering: .relaxed)
            wake.yield(())
        }
        // Shutdown: one more pass over everything; what still fails is counted as dropped.
        await self.writeAvailable(backingOff: false)
        let left = self.buffer.withLock { buffer in
            let n = buffer.count
            _ = buffer.removeOldest(n)
            buffer.countDropped(n)
            return n
        }
        if left > 0 { self.logger.warning("trace spans lost at shutdown: the database did not take them", metadata: ["spans": "\(left)"]) }
        self.reportDrops()
    }

    /// Writes everything buffered now and returns how many spans were written (spans the server
    /// refuses on their data are dropped and counted, see ``unstorableSpans``). Throws, keeping the
    /// unwritten spans buffered, when the database fails. For tests, tools and a clean hand-over.
    @discardableResult
    public func flush() async throws -> Int {
        var written = 0
        while true {
            let batch = self.buffer.withLock { $0.removeOldest(self.configuration.batchSize) }
            if batch.isEmpty { break }
            written += try await self.write(batch)
        }
        self.reportDrops()
        return written
    }

    /// One writer pass: batches until the buffer is empty or a write fails.
    private func writeAvailable(backingOff: Bool) async {
        var failures = 0
        let backoff = RetryBackoff(initial: .milliseconds(50), multiplier: 2, maximum: self.configuration.maximumBackoff, jitter: 0.2)
        while true {
            let batch = self.buffer.withLock { $0.removeOldest(self.configuration.batchSize) }
            if batch.isEmpty { break }
            do {
                try await self.write(batch)
                failures = 0
                if self.counters.withLock({ let was = $0.failing; $0.failing = false; return was }) {
                    self.logger.notice("trace writer recovered: the database takes spans again")
                }
            } catch {
                if !self.counters.withLock({ let was = $0.failing; $0.failing = true; return was }) {
                    self.logger.warning("trace writer cannot write spans; keeping the newest \(self.configuration.bufferCapacity) in memory and retrying", metadata: ["error": "\(error)"])
                }
                self.reportDrops()
                guard backingOff, !self.shuttingDown.load(ordering: .relaxed) else { return }
                failures += 1
                try? await Task.sleep(for: backoff.duration(afterAttempt: failures))
                if Task.isCancelled || self.shuttingDown.load(ordering: .relaxed) { return }
            }
        }
        self.reportDrops()
    }

    /// Writes one batch and returns how many spans were stored. Spans refused on their data are
    /// dropped and counted; on a transient failure the unwritten spans go back to the buffer and the
    /// error is thrown.
    @discardableResult
    private func write(_ batch: [FinishedSpan]) async throws -> Int {
        let report = await BatchSplitter.write(batch) { spans in try await self.copy(spans) }
        if let (span, error) = report.rejected.first {
            let count = report.rejected.count
            self.counters.withLock { $0.unstorable += count }
            self.unstorableCounter.increment(by: count)
            self.logger.warning("spans refused by the database on their data were dropped; the rest of their batch was stored", metadata: [
                "spans": "\(count)", "first": "\(span.name)", "error": "\(error)",
            ])
        }
        if let error = report.transientError {
            self.buffer.withLock { $0.requeue(report.unwritten) }
            throw error
        }
        return report.written.reduce(0, +)
    }

    /// Copies spans into the table, creating the day partitions they need first (again, if one was
    /// dropped meanwhile).
    private func copy(_ spans: [FinishedSpan]) async throws -> Int {
        var days: Set<Int64> = []
        for span in spans { days.insert(TraceStore.day(ofMicroseconds: span.startMicroseconds)) }
        try await self.ensurePartitions(days)
        do {
            try await self.store.copy(spans, service: self.configuration.service)
        } catch where FailureClass.sqlState(of: error) == "23514" && String(describing: error).contains("partition") {
            // A partition this tracer created was dropped (pruned) since: create it again, once.
            self.counters.withLock { $0.knownDays.subtract(days) }
            try await self.ensurePartitions(days)
            try await self.store.copy(spans, service: self.configuration.service)
        }
        self.counters.withLock { $0.stored += spans.count }
        self.storedCounter.increment(by: spans.count)
        return spans.count
    }

    private func ensurePartitions(_ days: Set<Int64>) async throws {
        let missing = self.counters.withLock { days.subtracting($0.knownDays) }
        for day in missing.sorted() {
            try await self.store.ensurePartition(day: day)
            _ = self.counters.withLock { $0.knownDays.insert(day) }
        }
    }

    /// Creates today's partition and the next ``Configuration/partitionsAhead`` days'.
    private func preparePartitions() async {
        let today = TraceStore.day(ofMicroseconds: Int64(DefaultTracerClock.now.nanosecondsSinceEpoch / 1000))
        do {
            for day in today...(today + Int64(max(0, self.configuration.partitionsAhead))) {
                try await self.store.ensurePartition(day: day)
                _ = self.counters.withLock { $0.knownDays.insert(day) }
            }
        } catch {
            self.logger.warning("trace partitions could not be created ahead of time; retrying when spans are written", metadata: ["error": "\(error)"])
        }
    }

    /// Turns new drops into the metric and one log line.
    private func reportDrops() {
        let total = self.droppedSpans
        let delta = self.counters.withLock { counters in
            let delta = total - counters.reportedDrops
            counters.reportedDrops = total
            return delta
        }
        guard delta > 0 else { return }
        self.droppedCounter.increment(by: delta)
        self.logger.warning("trace buffer full: dropped the oldest spans", metadata: ["dropped": "\(delta)", "total_dropped": "\(total)"])
    }
}

/// A span of a ``PhylacteryTracer``: its state behind a lock until it ends, then handed to the tracer.
public final class PhylacterySpan: Tracing.Span, Sendable {
    /// The context children of this span start from: the parent's plus this span's ``SpanContext``.
    public let context: ServiceContext
    /// This span's trace and span ids.
    public let spanContext: SpanContext
    let parentID: SpanID?
    /// Whether the parent ran in another process.
    let hasRemoteParent: Bool
    let kind: SpanKind
    let startNanoseconds: UInt64
    /// `nil` for a span of an unsampled trace: it propagates context but is not kept.
    let tracer: PhylacteryTracer?
    private let state: Mutex<State>

    struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var events: [SpanEvent] = []
        var links: [SpanLink] = []
        var status: SpanStatus?
        var ended = false
    }

    init(name: String, context: ServiceContext, spanContext: SpanContext, parentID: SpanID?, hasRemoteParent: Bool = false, kind: SpanKind,
         startNanoseconds: UInt64, tracer: PhylacteryTracer?) {
        self.context = context
        self.spanContext = spanContext
        self.parentID = parentID
        self.hasRemoteParent = hasRemoteParent
        self.kind = kind
        self.startNanoseconds = startNanoseconds
        self.tracer = tracer
        self.state = Mutex(State(name: name))
    }

    public var operationName: String {
        get { self.state.withLock { $0.name } }
        set { self.state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { self.state.withLock { $0.attributes } }
        set { self.state.withLock { $0.attributes = newValue } }
    }

    /// Whether the span is kept: sampled and not ended yet.
    public var isRecording: Bool { self.tracer != nil && !self.state.withLock { $0.ended } }

    public func setStatus(_ status: SpanStatus) {
        self.state.withLock { state in
            // OpenTelemetry's rule: ok is final, and unset never overrides.
            if state.status?.code == .ok { return }
            state.status = status
        }
    }

    public func addEvent(_ event: SpanEvent) {
        self.state.withLock { $0.events.append(event) }
    }

    /// Records `error` as an `exception` event (`exception.type`, `exception.message`).
    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        var eventAttributes = attributes
        eventAttributes.set("exception.type", value: .string(String(reflecting: type(of: error))))
        eventAttributes.set("exception.message", value: .string(String(describing: error)))
        let event = SpanEvent(name: "exception", at: instant(), attributes: eventAttributes)
        self.state.withLock { $0.events.append(event) }
    }

    public func addLink(_ link: SpanLink) {
        self.state.withLock { $0.links.append(link) }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let end = instant().nanosecondsSinceEpoch
        let finished: FinishedSpan? = self.state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            guard self.tracer != nil else { return nil }
            return FinishedSpan(
                traceID: self.spanContext.traceID, spanID: self.spanContext.spanID, parentID: self.parentID, hasRemoteParent: self.hasRemoteParent,
                name: state.name, kind: self.kind, startNanoseconds: self.startNanoseconds, endNanoseconds: max(end, self.startNanoseconds),
                status: state.status, attributes: state.attributes, events: state.events, links: state.links)
        }
        if let finished { self.tracer?.record(finished) }
    }
}
