import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded

/// `phylactery queue …`: the operator's view of the job queue.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect and steer the job queue: stats, list, show, retry, cancel, prune.",
        subcommands: [Stats.self, List.self, Show.self, Retry.self, Cancel.self, Prune.self]
    )

    static func withOperator<R: Sendable>(_ body: (QueueOperator) async throws -> R) async throws -> R {
        let url = try EmbeddedServer.resolveDatabaseURL()
        do {
            return try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in try await body(client.jobs) }
        } catch let error as PhylacteryError where error.sqlState == "42P01" {
            throw PhylacteryError(.notFound, "the queue's tables do not exist in this database yet; run `phylactery migrate auto` (or start `phylactery worker`, which migrates first)")
        }
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return ISO8601DateFormatter().string(from: date)
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Jobs per queue and state, the oldest due job's wait, last minute's throughput.")
        func run() async throws {
            try await reportingErrors {
                let stats = try await QueueCommand.withOperator { try await $0.stats() }
                if stats.counts.isEmpty { print("The queue is empty."); return }
                print("QUEUE".padding(toLength: 20, withPad: " ", startingAt: 0) + "STATE".padding(toLength: 12, withPad: " ", startingAt: 0) + "JOBS")
                for line in stats.counts {
                    print(line.queue.padding(toLength: 20, withPad: " ", startingAt: 0) + line.state.padding(toLength: 12, withPad: " ", startingAt: 0) + "\(line.count)")
                }
                print("")
                for queue in stats.queues {
                    print("\(queue.queue): oldest due job waiting \(String(format: "%.1f", queue.oldestAvailableAge)) s; \(queue.completedLastMinute) completed in the last minute (\(String(format: "%.1f", Double(queue.completedLastMinute) / 60)) jobs/s)")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Jobs, newest first (arguments are not decoded).")
        @Option(help: "Only jobs in this state (\(JobState.allCases.map(\.rawValue).joined(separator: ", "))).")
        var state: String?
        @Option(help: "Only jobs of this queue.")
        var queue: String?
        @Option(help: "Only jobs of this kind.")
        var kind: String?
        @Option(help: "At most this many.")
        var limit: Int = 50

        func validate() throws {
            if let state, JobState(rawValue: state) == nil {
                throw ValidationError("--state '\(state)' is not a job state; use one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            guard self.limit > 0 else { throw ValidationError("--limit must be positive.") }
        }

        func run() async throws {
            try await reportingErrors {
                let jobs = try await QueueCommand.withOperator {
                    try await $0.list(state: self.state.flatMap(JobState.init(rawValue:)), queue: self.queue, kind: self.kind, limit: self.limit)
                }
                if jobs.isEmpty { print("No jobs match."); return }
                for job in jobs {
                    var line = "\(job.id)  \(job.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(job.queue)/\(job.kind)  attempt \(job.attempt)/\(job.maxAttempts)  priority \(job.priority)  due \(QueueCommand.time(job.scheduledAt))"
                    if let error = job.lastError { line += "  last error: \(error.prefix(80))" }
                    print(line)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything stored about one job, with every error.")
        @Argument(help: "The job's id.", transform: RecordID.parser("job")) var id: UUID
        func run() async throws {
            try await reportingErrors {
                let job = try await QueueCommand.withOperator { try await $0.job(self.id) }
                print("""
                    job        \(job.id)
                    kind       \(job.kind)
                    queue      \(job.queue)  priority \(job.priority)
                    state      \(job.state.rawValue)\(job.cancelRequested ? " (cancellation requested)" : "")
                    attempt    \(job.attempt) of \(job.maxAttempts)  (claimed \(job.claims) times)
                    enqueued   \(QueueCommand.time(job.createdAt))
                    due        \(QueueCommand.time(job.scheduledAt))
                    attempted  \(QueueCommand.time(job.attemptedAt))\(job.worker.map { " by \($0)" } ?? "")
                    finished   \(QueueCommand.time(job.finalizedAt))
                    unique     \(job.uniqueKey.map { "\($0) (\(job.uniqueness?.rawValue ?? "?"))" } ?? "-")
                    args       \(job.args.text)
                    result     \(job.result?.text ?? "-")
                    """)
                if job.errors.isEmpty { print("errors     none") }
                for error in job.errors {
                    print("error      attempt \(error.attempt) at \(QueueCommand.time(error.at)) [\(error.reason.rawValue)]: \(error.message)")
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a finished (completed, cancelled, discarded) or waiting job again now.")
        @Argument(help: "The job's id.", transform: RecordID.parser("job")) var id: UUID
        func run() async throws {
            try await reportingErrors {
                let job = try await QueueCommand.withOperator { try await $0.retry(self.id) }
                print("Job \(job.id) is \(job.state.rawValue) again (attempt \(job.attempt) of \(job.maxAttempts) used).")
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a waiting job, or ask the worker running it to cancel it.")
        @Argument(help: "The job's id.", transform: RecordID.parser("job")) var id: UUID
        func run() async throws {
            try await reportingErrors {
                let result = try await QueueCommand.withOperator { try await $0.cancel(self.id) }
                switch result {
                case .cancelled: print("Job \(self.id) cancelled; it will not run.")
                case .requested: print("Job \(self.id) is running; its worker was asked to cancel it.")
                case .alreadyFinished: print("Job \(self.id) had already finished; nothing changed.")
                }
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete finished jobs older than a given age, in small batches.")
        @Option(name: .long, help: "Age in hours (default 168, one week).")
        var olderThanHours: Double = 168
        func validate() throws { _ = try DurationOption.seconds(self.olderThanHours, scale: 3600, option: "--older-than-hours") }
        func run() async throws {
            try await reportingErrors {
                let age = try DurationOption.seconds(self.olderThanHours, scale: 3600, option: "--older-than-hours")
                let deleted = try await QueueCommand.withOperator { try await $0.prune(olderThan: age) }
                print("Deleted \(deleted) finished jobs older than \(self.olderThanHours) h.")
            }
        }
    }
}
