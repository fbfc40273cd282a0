public import Foundation
public import Logging
import PostgresNIO
import Synchronization

/// Thrown by a handler to end its attempt another way than success or failure.
public enum JobControl: Error, Sendable {
    /// Run again after `delay` without counting this attempt (waiting on something outside).
    case snooze(Duration)
    /// Give up now: the job is discarded with this reason, whatever attempts remain.
    case discard(String)
}

/// A function that runs one kind of job, with its arguments decoded.
public typealias JobHandlerFunction<J: Job> = @Sendable (J, JobContext) async throws -> Void

/// What a handler's run gave back.
enum HandlerReturn: Sendable {
    /// Nothing to store.
    case none
    /// A result, encoded.
    case result(RawJSONB)
    /// A result that could not be encoded for jsonb (U+0000 in a string, a non-finite number): the
    /// job completed all the same, and the problem is kept with it (``JobFailureReason/unstorableOutcome``).
    case unstorable(problem: String)
}

/// A handler with its job type erased: decodes the arguments, runs, and optionally returns a result.
public struct AnyJobHandler: Sendable {
    /// The kind it runs.
    public let kind: String
    /// The queue its jobs go to by default (``Job/queue``), which a worker hosting it should work.
    public let queue: String
    /// Decodes the arguments (throwing when they no longer decode) and returns the run itself.
    let prepare: @Sendable (RawJSONB) throws -> @Sendable (JobContext) async throws -> HandlerReturn

    /// Wraps a handler of `J`.
    public init<J: Job>(_ type: J.Type, _ handler: @escaping JobHandlerFunction<J>) {
        self.kind = J.kind
        self.queue = J.queue
        self.prepare = { args in
            let job = try args.decode(J.self)
            return { context in
                try await handler(job, context)
                return .none
            }
        }
    }

    /// Wraps a handler of `J` that returns a result, stored as jsonb with the completed job.
    public init<J: Job, R: Encodable & Sendable>(_ type: J.Type, returning: R.Type = R.self, _ handler: @escaping @Sendable (J, JobContext) async throws -> R) {
        self.kind = J.kind
        self.queue = J.queue
        self.prepare = { args in
            let job = try args.decode(J.self)
            return { context in
                let result = try await handler(job, context)
                // The handler has finished: a result that cannot be stored must not make it run again.
                do {
                    return .result(RawJSONB(trusted: try JSONBEncoder().encodeToBuffer(result)))
                } catch {
                    return .unstorable(problem: "the result could not be encoded: \(error)")
                }
            }
        }
    }
}

/// The handlers a worker process knows, by kind.
public struct JobHandlers: Sendable {
    private(set) var byKind: [String: AnyJobHandler] = [:]

    /// An empty set.
    public init() {}

    /// Adds `handler`; a second handler for one kind replaces the first.
    public mutating func register(_ handler: AnyJobHandler) {
        self.byKind[handler.kind] = handler
    }

    /// Adds a handler for `J`.
    public mutating func register<J: Job>(_ type: J.Type, _ handler: @escaping JobHandlerFunction<J>) {
        self.register(AnyJobHandler(type, handler))
    }

    /// The kinds handled.
    public var kinds: [String] { self.byKind.keys.sorted() }

    /// The default queues of the handled kinds.
    public var queues: Set<String> { Set(self.byKind.values.map(\.queue)) }

    /// The handler of `kind`, if any.
    public subscript(kind: String) -> AnyJobHandler? { self.byKind[kind] }
}

/// What a running handler knows about its job, and its way to commit work with the completion.
public struct JobContext: Sendable {
    /// The job's id.
    public let id: UUID
    /// Its kind.
    public let kind: String
    /// The queue it came from.
    public let queue: String
    /// This attempt's number (1 for the first).
    public let attempt: Int
    /// Attempts allowed in all.
    public let maxAttempts: Int
    /// The client the worker runs on, for the handler's own reads and writes.
    public let client: PhylacteryClient
    /// A logger with the job's id and kind attached.
    public let logger: Logger
    let token: Int64
    let completedInTransaction: CompletionFlag

    /// Runs `body` in a transaction that also marks this job completed: the handler's writes and the
    /// completion commit together or not at all, so the effect happens exactly once.
    ///
    /// The transaction first locks the job's row under this attempt's fencing token. If the lease
    /// passed to another attempt meanwhile (this worker was presumed dead), it throws
    /// ``PhylacteryError/Code/leaseLost`` before `body` runs and nothing is written. While the row is
    /// locked, no rescuer can take the job away.
    ///
    /// When the connection dies while the COMMIT is in flight (the server killed, a failover), the
    /// error says the outcome is unknown, and the job's row decides: the attempt's failure is written
    /// only while the row is still running under this attempt's claim. If the completion committed
    /// after all, the job stays completed and never runs again; if it did not, the job runs again —
    /// either way the effect happens once. Let the error propagate.
    public func transaction<Result: Sendable>(
        file: String = #fileID, line: Int = #line, _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        let result = try await self.client.transaction(file: file, line: line) { tx in
            guard try await OutcomeWriter.holdLease(of: self.id, token: self.token, in: tx, file: file, line: line) else {
                throw PhylacteryError(.leaseLost, "job \(self.id) (\(self.kind), attempt \(self.attempt)) lost its lease to another attempt; its transaction was not run", file: file, line: line)
            }
            let result = try await body(tx)
            try await OutcomeWriter.complete(self.id, token: self.token, in: tx, file: file, line: line)
            return result
        }
        self.completedInTransaction.set()
        return result
    }
}

/// Set once the job's own transaction committed its completion.
final class CompletionFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { self.value.store(true, ordering: .releasing) }
    var isSet: Bool { self.value.load(ordering: .acquiring) }
}
