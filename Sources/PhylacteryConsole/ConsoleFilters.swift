import Foundation
import Hummingbird
import HummingbirdCore
import Phylactery

/// Query parameters of the list pages and their API, validated (bad input is a 400 naming the fix).
enum ConsoleFilters {
    static func text(_ uri: URI, _ name: String) -> String? {
        guard let value = uri.queryParameters[Substring(name)].map(String.init)?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// `state`, `queue`, `kind`, `error`.
    static func jobs(_ uri: URI) throws -> QueueOperator.JobFilter {
        try self.jobs(state: self.text(uri, "state"), queue: self.text(uri, "queue"), kind: self.text(uri, "kind"), error: self.text(uri, "error"))
    }

    static func jobs(state: String?, queue: String?, kind: String?, error: String?) throws -> QueueOperator.JobFilter {
        var jobState: JobState?
        if let state {
            guard let parsed = JobState(rawValue: state) else {
                throw ConsoleError(.badRequest, "state '\(state)' is not a job state; use one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            jobState = parsed
        }
        return QueueOperator.JobFilter(state: jobState, queue: queue, kind: kind, errorText: error)
    }

    /// `before`: the id of the last job of the previous page.
    static func cursor(_ uri: URI) throws -> UUID? {
        guard let text = self.text(uri, "before") else { return nil }
        guard let id = UUID(uuidString: text) else { throw ConsoleError(.badRequest, "before must be a job id (a UUID) from the previous page's next link") }
        return id
    }

    /// `limit`: 1…1000, default 50.
    static func limit(_ uri: URI) throws -> Int {
        guard let text = self.text(uri, "limit") else { return 50 }
        guard let limit = Int(text), (1...1000).contains(limit) else { throw ConsoleError(.badRequest, "limit must be a number from 1 to 1000 (got \(text))") }
        return limit
    }

    static func bulkAction(_ text: String?) throws -> QueueOperator.BulkAction {
        guard let text, let action = QueueOperator.BulkAction(rawValue: text) else {
            throw ConsoleError(.badRequest, "action must be one of \(QueueOperator.BulkAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return action
    }

    /// `name`, `min_ms`, `status` (ok|error), `since_minutes`, `limit`.
    static func traces(_ uri: URI) throws -> TraceFilter {
        var filter = TraceFilter(name: self.text(uri, "name"), limit: try self.limit(uri))
        if let text = self.text(uri, "min_ms") {
            guard let milliseconds = Int64(text), milliseconds >= 0 else { throw ConsoleError(.badRequest, "min_ms must be a whole number of milliseconds (got \(text))") }
            filter.minimumDuration = .milliseconds(milliseconds)
        }
        if let text = self.text(uri, "status") {
            guard let status = TraceFilter.Status(rawValue: text) else {
                throw ConsoleError(.badRequest, "status must be one of \(TraceFilter.Status.allCases.map(\.rawValue).joined(separator: ", ")) (got \(text))")
            }
            filter.status = status
        }
        if let text = self.text(uri, "since_minutes") {
            guard let minutes = Double(text), minutes >= 0 else { throw ConsoleError(.badRequest, "since_minutes must be a number of minutes (got \(text))") }
            filter.since = Date(timeIntervalSinceNow: -minutes * 60)
        }
        return filter
    }
}
