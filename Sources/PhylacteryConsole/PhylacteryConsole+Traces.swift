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

/// One page of the trace list: `next` is the `after` of the following page.
struct TraceListData: Codable, Sendable {
    var traces: [TraceSummaryData]
    var next: String?
}

struct TracesPageView: Sendable {
    struct FilterValues: Sendable { var name: String; var minMilliseconds: String; var sinceMinutes: String }
    var traces: [TraceSummaryData]
    var firstURL: String?
    var nextURL: String?
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

    func traceListData(_ filter: TraceFilter) async throws -> TraceListData {
        let page = try await self.client.traces.page(filter)
        return TraceListData(traces: page.traces.map(TraceSummaryData.init), next: page.next?.description)
    }

    func traceData(_ id: TraceID) async throws -> TraceData {
        let waterfall = try await self.client.traces.waterfall(id, limit: Self.waterfallSpanLimit)
        let spans = waterfall.rows.map { row in
            TraceData.Span(
                spanID: row.spanID.description, parentSpanID: row.parentSpanID?.description, name: row.name, kind: row.kind.rawValue,
                status: row.status.rawValue, statusMessage: row.statusMessage, depth: row.depth,
                offsetMilliseconds: Double(row.offsetMicroseconds) / 1000, durationMilliseconds: Double(row.durationMicroseconds) / 1000,
                attributes: row.attributes.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: $0.value.description) },
                events: row.events.map { event in
                    .init(name: event.name, offsetMilliseconds: Double(event.offsetMicroseconds) / 1000,
                          attributes: event.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                })
        }
        let jobID: String? = waterfall.rows.lazy.filter { $0.depth == 0 }.compactMap { row -> String? in
            if case .string(let id)? = row.attributes["phylactery.job.id"] { return id.lowercased() }
            return nil
        }.first
        return TraceData(
            traceID: id.description, spanCount: waterfall.totalSpanCount, durationMilliseconds: Double(waterfall.durationMicroseconds) / 1000,
            partial: waterfall.offset > 0 || waterfall.rows.count < waterfall.totalSpanCount, shown: waterfall.rows.count, jobID: jobID, spans: spans)
    }

    func tracesPage(_ request: Request) async throws -> Response {
        let filter = try ConsoleFilters.traces(request.uri)
        let list = try await self.traceListData(filter)
        let kept: [(String, String?)] = ["name", "min_ms", "status", "since_minutes", "limit"].map { ($0, ConsoleFilters.text(request.uri, $0)) }
        let view = TracesPageView(
            traces: list.traces,
            firstURL: filter.after == nil ? nil : "/traces?" + ConsoleForm.query(kept),
            nextURL: list.next.map { "/traces?" + ConsoleForm.query(kept + [("after", $0)]) },
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
