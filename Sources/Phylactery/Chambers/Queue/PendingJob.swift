public import Foundation
import NIOCore

/// A job ready to be inserted: kind, encoded arguments and resolved options, checked.
///
/// Built from a ``Job`` value and its ``JobOptions``; bad options are refused here, before anything
/// reaches the server, with ``PhylacteryError/Code/invalidArgument`` naming the field.
public struct PendingJob: Sendable {
    /// The id the job will have.
    public let id: UUID
    /// The job type's kind.
    public let kind: String
    /// The queue it goes to.
    public let queue: String
    /// Lower runs first.
    public let priority: Int16
    /// Attempts before discarding.
    public let maxAttempts: Int32
    /// Not before this time; `nil` for the enqueuing transaction's time.
    public let scheduledAt: Date?
    /// The unique key, if any.
    public let uniqueKey: String?
    /// When the unique key holds (set only with a key).
    public let uniqueness: JobUniqueness?
    /// The encoded arguments, sent as binary jsonb.
    let arguments: RawJSONB

    /// Encodes `job` and checks `options` against the type's defaults.
    public init<J: Job>(_ job: J, options: JobOptions = .default, encoder: JSONBEncoder = JSONBEncoder(), now: Date = Date()) throws {
        let kind = J.kind
        try Self.checkName(kind, what: "job kind")
        let queue = options.queue ?? J.queue
        try Self.checkName(queue, what: "queue name")
        let priority = options.priority ?? J.priority
        guard (0...JobOptions.maximumPriority).contains(priority) else {
            throw PhylacteryError(.invalidArgument, "job '\(kind)': priority \(priority) is out of range; use 0 (most urgent) to \(JobOptions.maximumPriority)")
        }
        let maxAttempts = options.maxAttempts ?? J.maxAttempts
        guard maxAttempts >= 1, maxAttempts <= Int(Int32.max) else {
            throw PhylacteryError(.invalidArgument, "job '\(kind)': maxAttempts must be at least 1 (got \(maxAttempts))")
        }
        if let scheduledAt = options.scheduledAt, scheduledAt < now.addingTimeInterval(-JobOptions.scheduleTolerance) {
            let ago = Int(now.timeIntervalSince(scheduledAt))
            throw PhylacteryError(.invalidArgument, "job '\(kind)': scheduledAt lies \(ago) s in the past; pass nil to run it now, or a future time")
        }
        if let key = options.uniqueKey {
            guard !key.isEmpty, key.utf8.count <= 512 else {
                throw PhylacteryError(.invalidArgument, "job '\(kind)': a unique key must be 1–512 bytes")
            }
            try StorableText.check(key, "job '\(kind)': the unique key")
        }
        let bytes: ByteBuffer
        do {
            bytes = try encoder.encodeToBuffer(job)
        } catch {
            throw PhylacteryError(.invalidArgument, "job '\(kind)': its arguments cannot be encoded as JSON: \(error)", underlying: error)
        }
        self.id = .v7()
        self.kind = kind
        self.queue = queue
        self.priority = Int16(priority)
        self.maxAttempts = Int32(maxAttempts)
        self.scheduledAt = options.scheduledAt
        self.uniqueKey = options.uniqueKey
        self.uniqueness = options.uniqueKey == nil ? nil : options.uniqueness
        self.arguments = RawJSONB(trusted: bytes)
    }

    static func checkName(_ name: String, what: String) throws {
        guard !name.isEmpty, name.utf8.count <= 128, !name.contains(where: { $0.isWhitespace || $0.isNewline || $0 == "\u{0}" }) else {
            throw PhylacteryError(.invalidArgument, "\(what) '\(name)' must be 1–128 characters without spaces")
        }
    }
}
