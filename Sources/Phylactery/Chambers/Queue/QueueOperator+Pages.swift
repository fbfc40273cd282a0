public import Foundation
import PostgresNIO

extension QueueOperator {
    /// Which jobs a listing, a count or a bulk action covers. Every field left `nil` matches all.
    public struct JobFilter: Sendable, Hashable, Codable {
        /// Only jobs in this state.
        public var state: JobState?
        /// Only jobs of this queue.
        public var queue: String?
        /// Only jobs of this kind.
        public var kind: String?
        /// Only jobs with an attempt error whose message contains this text (case-insensitive).
        public var errorText: String?

        /// A filter; `nil` (or empty text) leaves a field unfiltered.
        public init(state: JobState? = nil, queue: String? = nil, kind: String? = nil, errorText: String? = nil) {
            self.state = state
            self.queue = queue?.isEmpty == true ? nil : queue
            self.kind = kind?.isEmpty == true ? nil : kind
            self.errorText = errorText?.isEmpty == true ? nil : errorText
        }

        /// Whether the filter selects every job.
        public var isEmpty: Bool { self.state == nil && self.queue == nil && self.kind == nil && self.errorText == nil }
    }

    /// One page of ``page(_:before:limit:)``: jobs newest first and the cursor of the next page.
    public struct JobPage: Sendable, Hashable {
        /// The jobs, newest first (ids are time-ordered UUIDv7, so by id descending).
        public var jobs: [Summary]
        /// Pass as `before` for the next (older) page; `nil` on the last page.
        public var next: UUID?
    }

    /// A statement over the jobs `filter` selects (and, with `cursor`, only those older than it):
    /// `head` + the filter's condition + `tail`. The condition's values are binds `$1`…`$5`; `extra`
    /// appends more binds, which `tail` refers to as `$6` onwards.
    static func filtered(_ head: String, _ filter: JobFilter, before cursor: UUID? = nil, tail: String = "",
                         extra: (inout PostgresBindings) -> Void = { _ in }) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(filter.state?.rawValue)
        binds.append(filter.queue)
        binds.append(filter.kind)
        binds.append(filter.errorText)
        binds.append(cursor)
        extra(&binds)
        return PostgresQuery(unsafeSQL: """
            \(head) ($1::text IS NULL OR state = $1::text)
              AND ($2::text IS NULL OR queue = $2::text)
              AND ($3::text IS NULL OR kind = $3::text)
              AND ($4::text IS NULL OR EXISTS (
                    SELECT 1 FROM jsonb_array_elements(errors) e WHERE strpos(lower(e ->> 'message'), lower($4::text)) > 0))
              AND ($5::uuid IS NULL OR id < $5::uuid)
            \(tail)
            """, binds: binds)
    }

    /// A page of jobs matching `filter`, newest first, strictly older than `before` (a keyset page on
    /// the primary key: a job inserted while an operator pages is never shown twice nor makes another
    /// one skipped, because new ids sort before the first page).
    public func page(_ filter: JobFilter = JobFilter(), before cursor: UUID? = nil, limit: Int = 50) async throws -> JobPage {
        guard (1...1000).contains(limit) else { throw PhylacteryError(.invalidArgument, "a page holds 1 to 1000 jobs (got \(limit))") }
        let query = Self.filtered(
            "SELECT \(Self.summaryColumns) FROM queue.jobs WHERE", filter, before: cursor,
            tail: "ORDER BY id DESC LIMIT $6") { $0.append(limit + 1) }
        let rows = try await self.client.query(query).collect()
        var jobs = try rows.map(Self.summary)
        var next: UUID?
        if jobs.count > limit {
            jobs.removeLast()
            next = jobs.last?.id
        }
        return JobPage(jobs: jobs, next: next)
    }

    /// How many jobs `filter` matches (what a bulk action's confirmation shows).
    public func count(_ filter: JobFilter = JobFilter()) async throws -> Int {
        let rows = try await self.client.query(Self.filtered("SELECT count(*) FROM queue.jobs WHERE", filter)).collect()
        return Int(try rows.first?.decode(Int64.self, context: .default) ?? 0)
    }

    /// The columns ``summary(_:)`` decodes.
    static let summaryColumns = "id, kind, queue, state, priority, attempt, max_attempts, scheduled_at, finalized_at, errors -> -1 ->> 'message'"

    static func summary(_ row: PostgresRow) throws -> Summary {
        let (id, kind, queue, state, priority, attempt, maxAttempts, scheduledAt, finalizedAt, lastError) = try row.decode(
            (UUID, String, String, String, Int16, Int32, Int32, Date, Date?, String?).self, context: .default)
        return Summary(id: id, kind: kind, queue: queue, state: JobState(rawValue: state) ?? .available, priority: Int(priority),
                       attempt: Int(attempt), maxAttempts: Int(maxAttempts), scheduledAt: scheduledAt, finalizedAt: finalizedAt, lastError: lastError)
    }
}
