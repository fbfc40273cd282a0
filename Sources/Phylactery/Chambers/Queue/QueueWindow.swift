public import Foundation
import PostgresNIO

/// One row per rate-limited or globally limited queue: the claim window's start and count.
///
/// Claimers of such a queue lock this row for the length of one claim, so the counts they read
/// (running jobs, claims in the window) cannot race between processes.
public struct QueueWindow: PersistentModel, Hashable {
    public var id: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// The queue's name.
    public var queue: String
    /// When the current rate window began.
    public var windowStartedAt: Date
    /// Jobs claimed since then.
    public var claimed: Int64

    public static let schema = ModelSchema(
        modelName: "QueueWindow",
        table: "windows",
        chamber: .queue,
        columns: [
            ModelSchema.column("queue", String.self, unique: true),
            ModelSchema.column("windowStartedAt", Date.self, default: "now()"),
            ModelSchema.column("claimed", Int64.self, default: "0"),
        ]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.queue)
        try row.write(self.windowStartedAt)
        try row.write(self.claimed)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.queue = try row.read(String.self)
        self.windowStartedAt = try row.read(Date.self)
        self.claimed = try row.read(Int64.self)
    }
}

/// At most `jobs` claims per `interval` for one queue, across every process.
public struct QueueRateLimit: Sendable, Hashable {
    /// Claims allowed per window.
    public var jobs: Int
    /// The window's length.
    public var interval: Duration

    /// A limit of `jobs` per `interval`.
    public init(jobs: Int, per interval: Duration) {
        self.jobs = jobs
        self.interval = interval
    }
}
