import Foundation
import Hummingbird
import Phylactery

/// The overview: the server's health checks, the queue's totals and the last hour's throughput.
struct OverviewData: Codable, Sendable {
    struct Check: Codable, Sendable { var name: String; var status: String; var detail: String; var fix: String? }
    struct StateTotal: Codable, Sendable { var state: String; var count: Int }
    struct Queue: Codable, Sendable { var totals: [StateTotal]; var series: [QueueOperator.SeriesPoint] }
    var version: String
    var health: [Check]
    var queue: Queue
}

struct OverviewPageView: Sendable {
    var health: [OverviewData.Check]
    var queue: OverviewData.Queue
    var throughputChart: String
}

extension PhylacteryConsole {
    func overviewData() async throws -> OverviewData {
        async let report = self.client.healthReport()
        async let stats = self.client.jobs.stats()
        async let series = self.client.jobs.series()
        let (health, figures, points) = try await (report, stats, series)
        var totals: [String: Int] = [:]
        for line in figures.counts { totals[line.state, default: 0] += line.count }
        return OverviewData(
            version: PhylacteryVersion.current,
            health: health.checks.map { .init(name: $0.name, status: $0.status.rawValue, detail: $0.detail, fix: $0.fix) },
            queue: .init(totals: totals.sorted { $0.key < $1.key }.map { .init(state: $0.key, count: $0.value) }, series: points))
    }

    func overviewPage(_ request: Request) async throws -> Response {
        let data = try await self.overviewData()
        let view = OverviewPageView(
            health: data.health, queue: data.queue,
            throughputChart: SVGChart.bars(data.queue.series.map { Double($0.completed + $0.failed) }, highlighted: data.queue.series.map { Double($0.failed) },
                                           label: "jobs finished per minute over the last hour"))
        return self.page("overview", title: "Overview", section: "/", view)
    }
}
