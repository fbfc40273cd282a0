import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded

/// `phylactery traces …`: the spans the tracer keeps in the `traces` chamber.
struct TracesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traces",
        abstract: "List recent traces, draw one as a timeline, drop old days.",
        subcommands: [List.self, Show.self, Prune.self]
    )

    static func withStore<R: Sendable>(_ body: (TraceStore) async throws -> R) async throws -> R {
        let url = try EmbeddedServer.resolveDatabaseURL()
        return try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
            try await body(client.traces)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recent traces, newest first: root name, duration, span count, errors.")

        @Option(help: "Only traces whose root span has this name.")
        var name: String?
        @Option(name: .customLong("min-duration"), help: "Only traces whose root took at least this long (e.g. 250ms, 2s).")
        var minimumDuration: String?
        @Option(help: "Only traces with (error) or without (ok) an error span.")
        var status: String?
        @Option(help: "Only traces that started within this long ago (e.g. 30m, 6h, 2d).")
        var since: String?
        @Option(help: "Most traces to show.")
        var limit: Int = 20

        func validate() throws {
            if let minimumDuration { _ = try DurationOption.parse(minimumDuration, option: "--min-duration") }
            if let since { _ = try DurationOption.parse(since, option: "--since") }
            if let status, TraceFilter.Status(rawValue: status) == nil { throw ValidationError("--status must be ok or error, not '\(status)'.") }
            guard limit > 0 else { throw ValidationError("--limit must be at least 1.") }
        }

        func run() async throws {
            try await reportingErrors {
                var filter = TraceFilter(name: self.name, status: self.status.flatMap(TraceFilter.Status.init(rawValue:)), limit: self.limit)
                if let minimumDuration { filter.minimumDuration = try DurationOption.parse(minimumDuration, option: "--min-duration") }
                if let since { filter.since = Date().addingTimeInterval(-(try DurationOption.parse(since, option: "--since")).seconds) }
                let traces = try await TracesCommand.withStore { try await $0.list(filter) }
                guard !traces.isEmpty else {
                    print("No traces match.")
                    return
                }
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                print("TRACE                             STARTED (UTC)             DURATION   SPANS  ERRORS  ROOT")
                for trace in traces {
                    let started = formatter.string(from: trace.start)
                    print("\(trace.traceID)  \(started.padding(toLength: 24, withPad: " ", startingAt: 0))  \(TraceTimeline.format(microseconds: trace.durationMicroseconds).leftPadded(9))  \(String(trace.spanCount).leftPadded(6))  \(String(trace.errorCount).leftPadded(6))  \(trace.rootName) [\(trace.service)]")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One trace's span tree, drawn as an indented timeline.")

        @Argument(help: "The trace id: 32 hexadecimal digits.")
        var traceID: String
        @Flag(help: "Also print each span's attributes and events.")
        var details = false
        @OptionGroup(title: "Paging (spans in start order)") var page: PagingOptions

        func validate() throws {
            do {
                _ = try TraceID(parsing: traceID)
            } catch {
                throw ValidationError(error.message)
            }
        }

        func run() async throws {
            try await reportingErrors {
                let id = try TraceID(parsing: self.traceID)
                let trace = try await TracesCommand.withStore { try await $0.trace(id, offset: self.page.offset, limit: self.page.limit) }
                print(TraceTimeline.render(trace, details: self.details))
                if trace.remainingSpanCount > 0 {
                    print(self.page.more(trace.remainingSpanCount, "span", shown: trace.spans.count))
                }
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop the day partitions that ended before the given age.",
            discussion: "Whole days (UTC) go at once; the spans in them are gone for good.")

        @Option(name: .customLong("older-than"), help: "Drop days that ended more than this long ago (e.g. 7d, 36h).")
        var olderThan: String

        func validate() throws {
            _ = try DurationOption.parse(olderThan, option: "--older-than")
        }

        func run() async throws {
            try await reportingErrors {
                let age = try DurationOption.parse(self.olderThan, option: "--older-than")
                let cutoff = Date().addingTimeInterval(-age.seconds)
                let dropped = try await TracesCommand.withStore { try await $0.prune(olderThan: cutoff) }
                if dropped.isEmpty {
                    print("Nothing to drop: no day partition ended before \(ISO8601DateFormatter().string(from: cutoff)).")
                } else {
                    print("Dropped \(dropped.count) day partition\(dropped.count == 1 ? "" : "s"): \(dropped.joined(separator: ", "))")
                }
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        String(repeating: " ", count: max(0, width - self.count)) + self
    }
}
