public import Foundation
import PostgresNIO

extension QueueOperator {
    /// One time bucket of ``series(over:bucket:queue:)``.
    public struct SeriesPoint: Sendable, Hashable, Codable {
        /// The bucket's start.
        public var start: Date
        /// Jobs that completed in the bucket.
        public var completed: Int
        /// Jobs that ended cancelled or discarded in the bucket.
        public var failed: Int
        /// Mean seconds those jobs waited from due to their last attempt's start (`nil`: none finished,
        /// or none had started: a job cancelled before it ran has no wait).
        public var meanWaitSeconds: Double?
        /// Mean seconds their last attempt ran (`nil`: none finished).
        public var meanRunSeconds: Double?
    }

    /// Throughput and latency of finished jobs, one point per `bucket` over the last `window`, oldest
    /// first, empty buckets included (read off the finished-jobs index, `jobs_finalized_idx`).
    public func series(over window: Duration = .seconds(3600), bucket: Duration = .seconds(60), queue: String? = nil) async throws -> [SeriesPoint] {
        guard bucket > .zero, window >= bucket else {
            throw PhylacteryError(.invalidArgument, "the bucket must be positive and no longer than the window (got \(bucket) over \(window))")
        }
        guard window.seconds / bucket.seconds <= 10_000 else {
            throw PhylacteryError(.invalidArgument, "at most 10000 buckets per series: widen the bucket or shorten the window")
        }
        let rows = try await self.client.query("""
            WITH bounds AS (
                SELECT to_timestamp(floor(extract(epoch FROM now()) / \(bucket.seconds)) * \(bucket.seconds)) AS last_start
            ), buckets AS (
                SELECT generate_series(last_start - make_interval(secs => \(window.seconds - bucket.seconds)), last_start,
                                       make_interval(secs => \(bucket.seconds))) AS start
                FROM bounds
            ), finished AS (
                SELECT to_timestamp(floor(extract(epoch FROM finalized_at) / \(bucket.seconds)) * \(bucket.seconds)) AS start,
                       state, greatest(extract(epoch FROM attempted_at - scheduled_at)::float8, 0) AS wait,
                       greatest(extract(epoch FROM finalized_at - attempted_at)::float8, 0) AS run
                FROM queue.jobs
                WHERE finalized_at IS NOT NULL
                  AND finalized_at >= (SELECT min(start) FROM buckets)
                  AND (\(queue)::text IS NULL OR queue = \(queue))
            )
            SELECT b.start, count(f.state) FILTER (WHERE f.state = 'completed'), count(f.state) FILTER (WHERE f.state <> 'completed'),
                   avg(f.wait), avg(f.run)
            FROM buckets b LEFT JOIN finished f ON f.start = b.start
            GROUP BY b.start ORDER BY b.start
            """).collect()
        return try rows.map { row in
            let (start, completed, failed, wait, run) = try row.decode((Date, Int64, Int64, Double?, Double?).self, context: .default)
            return SeriesPoint(start: start, completed: Int(completed), failed: Int(failed), meanWaitSeconds: wait, meanRunSeconds: run)
        }
    }
}
