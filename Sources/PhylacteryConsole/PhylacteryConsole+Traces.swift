import Foundation
import Hummingbird
import Phylactery

/// A trace as the list shows it.
struct TraceSummaryData: Codable, Sendable {
    var traceID: String
    var rootName: String
    var service: String
    var start: String
    var durationMilliseconds: Double
    var spanCount: Int
    var errorCount: Int

    init(_ summary: TraceStore.Summary) {
        self.traceID = summary.traceID.description
        self.rootName = summary.rootName
        self.service = summary.service
        self.start = ConsoleTime.text(summary.start)
        self.durationMilliseconds = Double(summary.durationMicroseconds) / 1000
        self.spanCount = summary.spanCount
        self.errorCount = summary.errorCount
    }
}

/// One trace as a waterfall: spans in tree order with their depth and their offset from the start.
struct TraceData: Codable, Sendable {
    struct Attribute: Codable, Sendable { var key: String; var value: String }
    struct Event: Codable, Sendable { var name: String; var offsetMilliseconds: Double; var attributes: String }
    struct Span: Codable, Sendable {
        var spanID: String
        var parentSpanID: String?
        var name: String
        var kind: String
        var status: String
        var statusMessage: String?
        var depth: Int
        var offsetMilliseconds: Double
        var durationMilliseconds: Double
        var attributes: [Attribute]
        var events: [Event]
    }
    var traceID: String
    var spanCount: Int
    var durationMilliseconds: Double
    /// Whether more spans are stored than the waterfall shows.
    var partial: Bool
    var shown: Int
    /// The job the trace ran, from the root span's `phylactery.job.id` attribute.
    var jobID: String?
    var spans: [Span]
}

struct TracesPageView: Sendable {
    struct FilterValues: Sendable { var name: String; var minMilliseconds: String; var sinceMinutes: String }
    var traces: [TraceSummaryData]
    var filter: FilterValues
    var statuses: [OptionView]
}

struct TracePageView: Sendable {
    struct SpanView: Sendable {
        var spanID: String
        var name: String
        var status: String
        var depthClass: Int
        var durationMilliseconds: Double
        var bar: String
        var attributes: [TraceData.Attribute]
        var events: [TraceData.Event]
        var hasEvents: Bool
    }
    struct Summary: Sendable { var traceID: String; var spanCount: Int; var durationMilliseconds: Double; var partial: Bool; var shown: Int; var spans: [SpanView] }
    var trace: Summary
    var jobID: String?
}

extension PhylacteryConsole {
    /// The most spans a waterfall shows.
    static let waterfallSpanLimit = 2000

    func traceListData(_ filter: TraceFilter) async throws -> [TraceSummaryData] {
        try await self.client.traces.list(filter).map(TraceSummaryData.init)
    }

    func traceData(_ id: TraceID) async throws -> TraceData {
        let trace = try await self.client.traces.trace(id, limit: Self.waterfallSpanLimit)
        let (start, end) = trace.bounds
        var ordered: [TraceData.Span] = []
        let children = trace.childrenByParent
        func visit(_ span: SpanRecord, depth: Int) {
            ordered.append(TraceData.Span(
                spanID: span.spanID.description, parentSpanID: span.parentSpanID?.description, name: span.name, kind: span.kind.rawValue,
                status: span.status.rawValue, statusMessage: span.statusMessage, depth: depth,
                offsetMilliseconds: Double(span.startMicroseconds - start) / 1000, durationMilliseconds: Double(span.durationMicroseconds) / 1000,
                attributes: span.attributes.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: $0.value.description) },
                events: span.events.map { event in
                    .init(name: event.name, offsetMilliseconds: Double(event.timeMicroseconds - start) / 1000,
                          attributes: event.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                }))
            for child in children[span.spanID] ?? [] { visit(child, depth: depth + 1) }
        }
        for root in trace.roots { visit(root, depth: 0) }
        let jobID: String? = trace.roots.lazy.compactMap { root -> String? in
            if case .string(let id)? = root.attributes["phylactery.job.id"] { return id.lowercased() }
            return nil
        }.first
        return TraceData(
            traceID: id.description, spanCount: trace.totalSpanCount, durationMilliseconds: Double(end - start) / 1000,
            partial: trace.isPartial, shown: trace.spans.count, jobID: jobID, spans: ordered)
    }

    func tracesPage(_ request: Request) async throws -> Response {
        let filter = try ConsoleFilters.traces(request.uri)
        let traces = try await self.traceListData(filter)
        let view = TracesPageView(
            traces: traces,
            filter: .init(name: filter.name ?? "", minMilliseconds: ConsoleFilters.text(request.uri, "min_ms") ?? "",
                          sinceMinutes: ConsoleFilters.text(request.uri, "since_minutes") ?? ""),
            statuses: TraceFilter.Status.allCases.map { OptionView(value: $0.rawValue, selected: $0 == filter.status) })
        return self.page("traces", title: "Traces", section: "/traces", view)
    }

    func tracePage(_ request: Request, id: TraceID) async throws -> Response {
        let data = try await self.traceData(id)
        let total = max(data.durationMilliseconds, 0.001)
        let spans = data.spans.map { span in
            TracePageView.SpanView(
                spanID: span.spanID, name: span.name, status: span.status, depthClass: min(span.depth, 9),
                durationMilliseconds: span.durationMilliseconds,
                bar: SVGChart.span(start: span.offsetMilliseconds / total, length: span.durationMilliseconds / total),
                attributes: span.attributes, events: span.events, hasEvents: !span.events.isEmpty)
        }
        let view = TracePageView(
            trace: .init(traceID: data.traceID, spanCount: data.spanCount, durationMilliseconds: data.durationMilliseconds,
                         partial: data.partial, shown: data.shown, spans: spans),
            jobID: data.jobID)
        return self.page("trace", title: "Trace \(data.traceID)", section: "/traces", view)
    }
}
