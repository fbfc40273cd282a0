import Foundation
import Hummingbird
import NIOCore
import Phylactery

/// A job as the job list shows it.
struct JobSummaryData: Codable, Sendable {
    var id: String
    var kind: String
    var queue: String
    var state: String
    var priority: Int
    var attempt: Int
    var maxAttempts: Int
    var scheduledAt: String
    var finalizedAt: String?
    var lastError: String?

    init(_ job: QueueOperator.Summary) {
        self.id = job.id.uuidString.lowercased()
        self.kind = job.kind
        self.queue = job.queue
        self.state = job.state.rawValue
        self.priority = job.priority
        self.attempt = job.attempt
        self.maxAttempts = job.maxAttempts
        self.scheduledAt = ConsoleTime.text(job.scheduledAt)
        self.finalizedAt = job.finalizedAt.map(ConsoleTime.text)
        self.lastError = job.lastError
    }
}

/// One page of the job list: `next` is the `before` of the following page.
struct JobPageData: Codable, Sendable {
    var filter: QueueOperator.JobFilter
    var jobs: [JobSummaryData]
    var next: String?
}

/// Counts by queue and state, per-queue figures and the last hour's series.
struct QueueStatsData: Codable, Sendable {
    struct Count: Codable, Sendable { var queue: String; var state: String; var count: Int }
    struct Figures: Codable, Sendable { var queue: String; var oldestAvailableAge: Double; var completedLastMinute: Int }
    var counts: [Count]
    /// When the finished states' counts were measured (they are refreshed in the background; the
    /// others are exact at the request).
    var finishedCountedAt: String
    var queues: [Figures]
    var series: [QueueOperator.SeriesPoint]
}

/// Everything about one job.
struct JobData: Codable, Sendable {
    struct AttemptError: Codable, Sendable { var attempt: Int; var at: String; var reason: String; var message: String }
    var id: String
    var kind: String
    var queue: String
    var state: String
    var priority: Int
    var attempt: Int
    var maxAttempts: Int
    var scheduledAt: String
    var attemptedAt: String?
    var finalizedAt: String?
    var leaseExpiresAt: String?
    var worker: String?
    var cancelRequested: Bool
    var uniqueKey: String?
    /// The arguments as pretty-printed JSON.
    var arguments: String
    /// The result as pretty-printed JSON, if the handler returned one.
    var result: String?
    var errors: [AttemptError]
    /// The traces of the job's runs, newest first, when a tracer recorded them.
    var traces: [TraceSummaryData]

    init(_ job: JobRecord, traces: [TraceStore.Summary]) {
        self.id = job.id.uuidString.lowercased()
        self.kind = job.kind
        self.queue = job.queue
        self.state = job.state.rawValue
        self.priority = Int(job.priority)
        self.attempt = Int(job.attempt)
        self.maxAttempts = Int(job.maxAttempts)
        self.scheduledAt = ConsoleTime.text(job.scheduledAt)
        self.attemptedAt = job.attemptedAt.map(ConsoleTime.text)
        self.finalizedAt = job.finalizedAt.map(ConsoleTime.text)
        self.leaseExpiresAt = job.leaseExpiresAt.map(ConsoleTime.text)
        self.worker = job.worker
        self.cancelRequested = job.cancelRequested
        self.uniqueKey = job.uniqueKey
        self.arguments = ConsoleTime.prettyJSON(job.args.text)
        self.result = job.result.map { ConsoleTime.prettyJSON($0.text) }
        self.errors = job.errors.map { AttemptError(attempt: $0.attempt, at: ConsoleTime.text($0.at), reason: $0.reason.rawValue, message: $0.message) }
        self.traces = traces.map(TraceSummaryData.init)
    }
}

/// What an action on one job did.
struct ActionData: Codable, Sendable {
    var action: String
    /// `done`, `requested` (a running job asked to cancel) or `not_applicable` (nothing changed).
    var outcome: String
    var message: String
    var job: JobData
}

/// Dates as the console prints them, and JSON pretty-printing.
enum ConsoleTime {
    static func text(_ date: Date) -> String { date.formatted(.iso8601) }

    static func prettyJSON(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]),
              let pretty = String(data: data, encoding: .utf8) else { return text }
        return pretty
    }
}

extension PhylacteryConsole {
    // MARK: Data (the API answers these; the pages render them)

    func queueStatsData() async throws -> QueueStatsData {
        let jobs = self.client.jobs
        async let counted = self.jobCounts()
        async let series = jobs.series()
        let (counts, points) = try await (counted, series)
        let figures = try await jobs.figures(queues: Set(counts.counts.map(\.queue)))
        return QueueStatsData(
            counts: counts.counts.map { .init(queue: $0.queue, state: $0.state, count: $0.count) },
            finishedCountedAt: ConsoleTime.text(counts.finishedAt),
            queues: figures.map { .init(queue: $0.queue, oldestAvailableAge: ($0.oldestAvailableAge * 10).rounded() / 10, completedLastMinute: $0.completedLastMinute) },
            series: points)
    }

    /// Jobs by queue and state: the waiting and running ones counted now (indexed), the finished ones
    /// from ``finishedJobCounts`` (a scan of every finished row, at most one per `maxAge`), so a page
    /// stays fast with millions of finished jobs kept.
    func jobCounts() async throws -> (counts: [QueueOperator.StateCount], finishedAt: Date) {
        async let active = self.client.jobs.activeCounts()
        async let finished = self.finishedJobCounts.read()
        let (now, reading) = try await (active, finished)
        return ((now + reading.value).sorted { ($0.queue, $0.state) < ($1.queue, $1.state) }, reading.measuredAt)
    }

    func jobPageData(_ filter: QueueOperator.JobFilter, before: UUID?, limit: Int = 50) async throws -> JobPageData {
        let page = try await self.client.jobs.page(filter, before: before, limit: limit)
        return JobPageData(filter: filter, jobs: page.jobs.map(JobSummaryData.init), next: page.next?.uuidString.lowercased())
    }

    func jobData(_ id: UUID) async throws -> JobData {
        async let job = self.client.jobs.job(id)
        async let traces = self.client.traces.traces(ofJob: id)
        return JobData(try await job, traces: try await traces)
    }

    /// Applies one job action. A refusal the library explains (retrying a running job) is reported
    /// as `not_applicable` with its message rather than as an error.
    func act(_ action: QueueOperator.BulkAction, on id: UUID) async throws -> ActionData {
        let jobs = self.client.jobs
        var outcome = "done"
        var message: String
        do {
            switch action {
            case .retry:
                try await jobs.retry(id)
                message = "the job is back in its queue"
            case .cancel:
                switch try await jobs.cancel(id) {
                case .cancelled: message = "the job was cancelled before it ran"
                case .requested: (outcome, message) = ("requested", "the job is running; its worker was asked to cancel it")
                case .alreadyFinished: (outcome, message) = ("not_applicable", "the job had already finished")
                }
            case .discard:
                if try await jobs.discard(id) == .done {
                    message = "the job was discarded"
                } else {
                    (outcome, message) = ("not_applicable", "only a waiting job can be discarded (cancel a running one)")
                }
            case .runNow:
                if try await jobs.runNow(id) == .done {
                    message = "the job is due now"
                } else {
                    (outcome, message) = ("not_applicable", "only a waiting job can be made due now")
                }
            }
        } catch let error as PhylacteryError where error.code == .invalidArgument {
            (outcome, message) = ("not_applicable", error.description)
        }
        return ActionData(action: action.rawValue, outcome: outcome, message: message, job: try await self.jobData(id))
    }

    // MARK: Pages

    func queuePage(_ request: Request) async throws -> Response {
        let filter = try ConsoleFilters.jobs(request.uri)
        let before = try ConsoleFilters.cursor(request.uri)
        let limit = try ConsoleFilters.limit(request.uri)
        async let statsData = self.queueStatsData()
        async let pageData = self.jobPageData(filter, before: before, limit: limit)
        let (stats, page) = try await (statsData, pageData)
        let filterQuery = Self.filterQuery(filter)
        var notice: String?
        if let action = ConsoleFilters.text(request.uri, "bulk"), let changed = ConsoleFilters.text(request.uri, "changed").flatMap(Int.init) {
            notice = "\(action): \(changed) job(s) changed."
        }
        let view = QueuePageView(
            stats: stats, page: page, filter: FilterView(filter), notice: notice,
            states: JobState.allCases.map { OptionView(value: $0.rawValue, selected: $0 == filter.state) },
            throughputChart: SVGChart.bars(stats.series.map { Double($0.completed + $0.failed) }, highlighted: stats.series.map { Double($0.failed) }, label: "jobs finished per minute"),
            waitChart: SVGChart.sparkline(stats.series.map(\.meanWaitSeconds), label: "mean wait per minute, seconds"),
            runChart: SVGChart.sparkline(stats.series.map(\.meanRunSeconds), label: "mean run time per minute, seconds"),
            firstURL: before == nil ? nil : "/queue" + (filterQuery.isEmpty ? "" : "?" + filterQuery),
            nextURL: page.next.map { "/queue?" + ConsoleForm.query(Self.filterPairs(filter) + [("before", $0)]) })
        return self.page("queue", title: "Queue", section: "/queue", view)
    }

    func jobPage(_ request: Request, id: UUID) async throws -> Response {
        let job = try await self.jobData(id)
        let notice = ConsoleFilters.text(request.uri, "notice").flatMap(Self.notices)
        return self.page("job", title: "Job \(job.id)", section: "/queue", JobPageView(job: job, csrf: self.access.csrfToken, notice: notice))
    }

    /// The fixed texts a redirect after an action may show (`?notice=action.outcome`): a link can
    /// not make the page say anything else.
    static func notices(_ code: String) -> String? {
        let parts = code.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, QueueOperator.BulkAction(rawValue: parts[0]) != nil else { return nil }
        switch parts[1] {
        case "done": return "\(parts[0]): done."
        case "requested": return "\(parts[0]): the job is running; its worker was asked to cancel it."
        case "not_applicable": return "\(parts[0]): not applicable to the job in its state; nothing changed."
        default: return nil
        }
    }

    func jobForm(_ request: Request, id: UUID) async throws -> Response {
        let form = try await Self.form(request)
        let action = try ConsoleFilters.bulkAction(form["action"])
        let result = try await self.act(action, on: id)
        return Self.redirect("/jobs/\(result.job.id)?notice=\(action.rawValue).\(result.outcome)")
    }

    func bulkConfirmationPage(_ request: Request) async throws -> Response {
        let filter = try ConsoleFilters.jobs(request.uri)
        let action = try ConsoleFilters.bulkAction(ConsoleFilters.text(request.uri, "action"))
        let count = try await self.client.jobs.count(filter)
        let query = Self.filterQuery(filter)
        let view = BulkPageView(
            action: action.rawValue, count: count, filter: FilterView(filter), csrf: self.access.csrfToken,
            filterText: Self.filterPairs(filter).compactMap { name, value in value.map { "\(name) \($0)" } }.joined(separator: ", "),
            explanation: Self.explanation(action), backURL: "/queue" + (query.isEmpty ? "" : "?" + query))
        return self.page("bulk", title: "Confirm \(action.rawValue)", section: "/queue", view)
    }

    static func explanation(_ action: QueueOperator.BulkAction) -> String {
        switch action {
        case .retry: "Finished jobs go back to their queue to run now; running jobs are skipped."
        case .cancel: "Waiting jobs are cancelled; running ones are asked to cancel."
        case .discard: "Waiting jobs are discarded and will not run; others are skipped."
        case .runNow: "Waiting jobs become due now; others are skipped."
        }
    }

    func bulkForm(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        let action = try ConsoleFilters.bulkAction(form["action"])
        let filter = try ConsoleFilters.jobs(state: form["state"], queue: form["queue"], kind: form["kind"], error: form["error"])
        let changed = try await self.client.jobs.bulk(action, filter)
        return Self.redirect("/queue?" + ConsoleForm.query(Self.filterPairs(filter) + [("bulk", action.rawValue), ("changed", String(changed))]))
    }

    // MARK: Helpers

    static func filterPairs(_ filter: QueueOperator.JobFilter) -> [(String, String?)] {
        [("state", filter.state?.rawValue), ("queue", filter.queue), ("kind", filter.kind), ("error", filter.errorText)]
    }

    static func filterQuery(_ filter: QueueOperator.JobFilter) -> String { ConsoleForm.query(self.filterPairs(filter)) }

    static func form(_ request: Request) async throws -> ConsoleForm {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        return ConsoleForm(String(buffer: body))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }
}

/// A filter as the forms show it (empty strings for unset fields).
struct FilterView: Sendable {
    var state: String
    var queue: String
    var kind: String
    var errorText: String

    init(_ filter: QueueOperator.JobFilter) {
        self.state = filter.state?.rawValue ?? ""
        self.queue = filter.queue ?? ""
        self.kind = filter.kind ?? ""
        self.errorText = filter.errorText ?? ""
    }
}

struct OptionView: Sendable {
    var value: String
    var selected: Bool
}

struct QueuePageView: Sendable {
    var stats: QueueStatsData
    var page: JobPageData
    var filter: FilterView
    var notice: String?
    var states: [OptionView]
    var throughputChart: String
    var waitChart: String
    var runChart: String
    var firstURL: String?
    var nextURL: String?
}

struct JobPageView: Sendable {
    var job: JobData
    var csrf: String
    var notice: String?
}

struct BulkPageView: Sendable {
    var action: String
    var count: Int
    var filter: FilterView
    var csrf: String
    var filterText: String
    var explanation: String
    var backURL: String
}
