import ArgumentParser
import Foundation
import Phylactery
import PostgresNIO

/// `phylactery memory …`: the vectors chamber from the command line.
struct MemoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Search semantic memory, consecrate and forget entries, read their status history, count them, and manage embedding spaces (the vectors chamber).",
        subcommands: [Search.self, Consecrate.self, Forget.self, History.self, Stats.self, Spaces.self, Embed.self, SwitchSpace.self, DropSpace.self]
    )

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the entries nearest to a vector within one embedding space, or those matching words (--text), or both fused (--mode hybrid).",
            discussion: """
                Give the query as --vector '[0.1, 0.2, …]' or as --like <memory id> (that entry's vector in the space), \
                and/or words with --text. The space is --space model@fingerprint (or --model and --fingerprint), \
                else the default space. Only entries labelled up to --visible (default private) are shown.
                """)
        @Option(name: .long, help: "The query vector as a JSON array of numbers.") var vector: String?
        @Option(name: .long, help: "Use this memory's vector in the space as the query.", transform: RecordID.parser("memory"))
        var like: UUID?
        @Option(name: .long, help: "The query's words, for --mode text or hybrid.") var text: String?
        @Option(name: .long, help: "vector, text or hybrid (default: vector, or text when only --text is given).") var mode: String?
        @Option(name: .long, help: "The embedding space as model@fingerprint (default: the default space).") var space: String?
        @Option(name: .long, help: "The embedding model's name (with --fingerprint; or use --space).") var model: String?
        @Option(name: .long, help: "The embedding space's fingerprint (with --model).") var fingerprint: String?
        @Option(name: .short, help: "How many neighbours.") var k = 10
        @Option(name: .long, parsing: .upToNextOption, help: "Statuses to search (speculative, consecrated, rejected).")
        var status: [String] = ["speculative", "consecrated"]
        @Option(name: .long, help: "Only entries of this owner.") var owner: String?
        @OptionGroup var visibility: FactsCommand.Visibility
        @Option(name: .long, help: "Distance: cosine, l2 or inner_product.") var metric = "cosine"
        @Flag(name: .long, help: "Exact search (no index).") var exact = false

        var searchMode: VectorMemory.SearchMode {
            self.mode.flatMap(VectorMemory.SearchMode.init(rawValue:)) ?? (self.vector == nil && self.like == nil ? .text : .vector)
        }

        func validate() throws {
            if let mode, VectorMemory.SearchMode(rawValue: mode) == nil { throw ValidationError("--mode is vector, text or hybrid") }
            guard !(self.vector != nil && self.like != nil) else { throw ValidationError("give at most one of --vector and --like") }
            switch self.searchMode {
            case .text: guard self.text != nil else { throw ValidationError("a text search needs --text") }
            case .vector: guard self.vector != nil || self.like != nil else { throw ValidationError("give --vector or --like (or --text for a text search)") }
            case .hybrid:
                guard self.text != nil, self.vector != nil || self.like != nil else { throw ValidationError("a hybrid search needs --text and --vector or --like") }
            }
            if self.space != nil, self.model != nil || self.fingerprint != nil { throw ValidationError("give --space or --model and --fingerprint, not both") }
            if (self.model == nil) != (self.fingerprint == nil) { throw ValidationError("--model and --fingerprint go together") }
            if let space { do { _ = try EmbeddingSpace.parseName(space) } catch { throw ValidationError("\(error)") } }
            guard VectorMemory.Metric(rawValue: self.metric) != nil else { throw ValidationError("--metric is cosine, l2 or inner_product") }
            for name in self.status where MemoryStatus(rawValue: name) == nil { throw ValidationError("unknown status '\(name)'") }
            if let vector { _ = try Self.parse(vector) }
        }

        static func parse(_ text: String) throws -> Vector {
            guard let numbers = try? JSONDecoder().decode([Double].self, from: Data(text.utf8)) else {
                throw ValidationError("--vector must be a JSON array of numbers")
            }
            do { return try Vector(numbers) } catch { throw ValidationError("\(error)") }
        }

        /// The space named by --space or --model/--fingerprint, else the default one.
        func resolveSpace(_ tx: Transaction) async throws -> EmbeddingSpace {
            let named: (model: String, fingerprint: String)?
            if let space { named = try EmbeddingSpace.parseName(space) } else if let model, let fingerprint { named = (model, fingerprint) } else { named = nil }
            if let named {
                guard let record = try await tx.memory.spaceRecord(model: named.model, fingerprint: named.fingerprint) else {
                    throw PhylacteryError(.notFound, "no embedding space \(named.model)@\(named.fingerprint) is registered; `phylactery memory spaces` lists them")
                }
                return record.space
            }
            guard let space = try await tx.memory.defaultSpace() else {
                throw PhylacteryError(.notFound, "no embedding space is registered yet; name one with --space model@fingerprint")
            }
            return space
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.memories") { client in
                let matches = try await client.transaction { tx -> [VectorMemory.Match] in
                    let options = VectorMemory.SearchOptions(
                        k: self.k, statuses: Set(self.status.compactMap(MemoryStatus.init(rawValue:))), owner: self.owner,
                        sensitivities: self.visibility.labels,
                        metric: VectorMemory.Metric(rawValue: self.metric)!, exact: self.exact, mode: self.searchMode, text: self.text)
                    if self.searchMode == .text { return try await tx.memory.search(text: self.text!, options: options) }
                    let space = try await self.resolveSpace(tx)
                    let query: Vector
                    if let like = self.like {
                        guard try await tx.find(Memory.self, id: like) != nil else { throw PhylacteryError(.notFound, "no memory has id \(like)") }
                        guard let vector = try await tx.memory.embedding(of: like, in: space) else {
                            throw PhylacteryError(.notFound, "memory \(like) has no vector in \(space.name) yet; embed it (phylactery memory embed --space \(space.name)) or name another space")
                        }
                        query = vector
                    } else {
                        query = try Self.parse(self.vector!)
                    }
                    return try await tx.memory.search(query, in: space, options: options)
                }
                for match in matches {
                    let rank = self.searchMode == .vector ? String(format: "%.4f", match.distance) : String(format: "%.4f", match.score)
                    print(rank + "  \(match.status.rawValue)  \(match.memory.id)  \(match.memory.content)  (owner \(match.memory.owner), source \(match.memory.source), \(match.memory.sensitivity?.rawValue ?? "-"))")
                }
                print("\(matches.count) match\(matches.count == 1 ? "" : "es")")
            }
        }
    }

    struct Consecrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a memory verified (or, with --reject, wrong); who and when are recorded.")
        @Argument(help: "The memory's id.", transform: RecordID.parser("memory")) var id: UUID
        @Option(name: .long, help: "Who is vouching for it.") var by: String
        @Flag(name: .long, help: "Reject the entry instead.") var reject = false

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.memories") { client in
                let memory = try await client.transaction { tx in
                    if self.reject { return try await tx.memory.reject(self.id, by: self.by) }
                    return try await tx.memory.consecrate(self.id, by: self.by)
                }
                print("\(memory.id) is now \(memory.status.rawValue) (by \(memory.statusChangedBy ?? "?"))")
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a memory's status changes, oldest first: from, to, by whom, when (a page of them: --offset, --limit).")
        @Argument(help: "The memory's id.", transform: RecordID.parser("memory")) var id: UUID
        @OptionGroup(title: "Paging (status changes, oldest first)") var page: PagingOptions

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.status_changes") { client in
                let (memory, changes, total) = try await client.transaction { tx in
                    (try await tx.find(Memory.self, id: self.id),
                     try await tx.memory.statusHistory(of: self.id, offset: self.page.offset, limit: self.page.limit),
                     try await tx.memory.statusChangeCount(of: self.id))
                }
                guard let memory else { throw PhylacteryError(.notFound, "no memory has id \(self.id)") }
                let formatter = ISO8601DateFormatter()
                for change in changes {
                    print("\(formatter.string(from: change.changedAt))  \(change.fromStatus.rawValue) → \(change.toStatus.rawValue)  by \(change.changedBy)")
                }
                let remaining = total - self.page.offset - changes.count
                if remaining > 0 { print(self.page.more(remaining, "status change", shown: changes.count)) }
                print("\(memory.id) is \(memory.status.rawValue); \(total) status change\(total == 1 ? "" : "s")")
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count the entries per embedding space and status.")

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.memories") { client in
                let counts = try await client.transaction { tx in try await tx.memory.stats() }
                for count in counts { print("\(count.space)  \(count.status.rawValue)  \(count.count)") }
                print("\(counts.reduce(0) { $0 + $1.count }) entries")
            }
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget a memory for good: its content, metadata, vectors and status history are deleted; an audit record (id, who, when, why) stays.")
        @Argument(help: "The memory's id.", transform: RecordID.parser("memory")) var id: UUID
        @Option(name: .long, help: "Who asks to forget it.") var by: String
        @Option(name: .long, help: "Why (kept in the audit record).") var reason: String

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.forgotten") { client in
                let existed = try await client.transaction { tx in try await tx.memory.forget(self.id, by: self.by, reason: self.reason) }
                guard existed else { throw PhylacteryError(.notFound, "no memory has id \(self.id); nothing was forgotten") }
                print("\(self.id) forgotten (by \(self.by)); its audit record keeps no content")
            }
        }
    }

    struct Spaces: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the embedding spaces: which is the default, and how many memories have a vector in each.")

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.spaces") { client in
                let coverages = try await client.transaction { tx in
                    var result: [VectorMemory.SpaceCoverage] = []
                    for record in try await tx.memory.spaces() { result.append(try await tx.memory.coverage(of: record.space)) }
                    return result
                }
                for coverage in coverages {
                    print("\(coverage.isDefault ? "*" : " ") \(coverage.space)  \(coverage.embedded)/\(coverage.memories) embedded, \(coverage.pending) waiting")
                }
                print("\(coverages.count) space\(coverages.count == 1 ? "" : "s") (* the default)")
            }
        }
    }

    struct Embed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Backfill: ask for a vector in a space for every memory without one, and show progress until every memory has one.",
            discussion: """
                This command cannot embed: it records what is missing and enqueues `\(EmbedMemories.kind)` jobs on the \
                `\(EmbedMemories.queue)` queue. A daemon's worker with an embedder registered \
                (JobHandlers.registerMemoryEmbedder) does the work; without one running, progress stays at zero. \
                The space is registered on first use (give --dimensions then).
                """)
        @Option(name: .long, help: "The embedding space as model@fingerprint.") var space: String
        @Option(name: .long, help: "The space's dimensions, to register a space not registered yet.") var dimensions: Int?
        @Flag(name: .long, help: "Only enqueue the work; do not wait for it.") var noWait = false
        @Option(name: .long, help: "Give up waiting after this long (e.g. 30m); the work goes on.") var timeout: String?
        @Option(name: .long, help: "Seconds between progress lines.") var interval: Double = 1

        func validate() throws {
            do { _ = try EmbeddingSpace.parseName(self.space) } catch { throw ValidationError("\(error)") }
            if let dimensions, !(1...Vector.maximumDimensions).contains(dimensions) { throw ValidationError("--dimensions must be 1…\(Vector.maximumDimensions)") }
            if let timeout { _ = try DurationOption.parse(timeout, option: "--timeout") }
            guard self.interval > 0, self.interval <= 3600 else { throw ValidationError("--interval must be between 0 and 3600 seconds") }
        }

        func run() async throws {
            let (model, fingerprint) = try EmbeddingSpace.parseName(self.space)
            let timeout = try self.timeout.map { try DurationOption.parse($0, option: "--timeout") }
            try await ChamberCLI.run(needs: "vectors.embedding_requests") { client in
                let (space, asked, first) = try await client.transaction { tx in
                    let space: EmbeddingSpace
                    if let record = try await tx.memory.spaceRecord(model: model, fingerprint: fingerprint) {
                        space = record.space
                    } else if let dimensions = self.dimensions {
                        space = EmbeddingSpace(model: model, fingerprint: fingerprint, dimensions: dimensions)
                    } else {
                        throw PhylacteryError(.notFound, "embedding space \(model)@\(fingerprint) is not registered; give its --dimensions to register it")
                    }
                    let asked = try await tx.memory.requestEmbeddings(in: space)
                    return (space, asked, try await tx.memory.coverage(of: space))
                }
                print("\(space): asked for \(asked) vector\(asked == 1 ? "" : "s"); \(first.embedded)/\(first.memories) memories embedded. A worker with an embedder (job \(EmbedMemories.kind), queue \(EmbedMemories.queue)) does the work.")
                if self.noWait || first.isComplete {
                    if first.isComplete { print("coverage complete: \(first.embedded)/\(first.memories)") }
                    return
                }
                let clock = ContinuousClock()
                let started = clock.now
                var progress = BackfillProgress(start: first.embedded, total: first.memories)
                while true {
                    try await Task.sleep(for: .seconds(self.interval))
                    let coverage = try await client.transaction { tx in try await tx.memory.coverage(of: space) }
                    progress.update(done: coverage.embedded, total: coverage.memories, elapsed: clock.now - started)
                    print(progress.line)
                    if coverage.isComplete { print("coverage complete: \(coverage.embedded)/\(coverage.memories)"); return }
                    if let timeout, clock.now - started >= timeout {
                        throw PhylacteryError(.incompleteCoverage, "gave up waiting after \(self.timeout!): \(coverage.missing) memories still lack a vector in \(space.name) (\(coverage.pending) waiting); is a worker with an embedder running? The jobs stay queued")
                    }
                }
            }
        }
    }

    struct SwitchSpace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "switch-space",
            abstract: "Make a space the default for searches, atomically; refused while memories lack a vector in it (unless --force).")
        @Option(name: .long, help: "The embedding space as model@fingerprint.") var space: String
        @Flag(name: .long, help: "Switch even though some memories have no vector in it yet.") var force = false

        func validate() throws { do { _ = try EmbeddingSpace.parseName(self.space) } catch { throw ValidationError("\(error)") } }

        func run() async throws {
            let (model, fingerprint) = try EmbeddingSpace.parseName(self.space)
            try await ChamberCLI.run(needs: "vectors.spaces") { client in
                let coverage = try await client.transaction { tx in
                    guard let record = try await tx.memory.spaceRecord(model: model, fingerprint: fingerprint) else {
                        throw PhylacteryError(.notFound, "embedding space \(self.space) is not registered; `phylactery memory spaces` lists them")
                    }
                    return try await tx.memory.switchDefaultSpace(to: record.space, force: self.force)
                }
                print("\(coverage.space) is the default space (\(coverage.embedded)/\(coverage.memories) memories embedded)")
            }
        }
    }

    struct DropSpace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "drop-space",
            abstract: "Delete an embedding space and every vector in it (not the default space).")
        @Option(name: .long, help: "The embedding space as model@fingerprint.") var space: String

        func validate() throws { do { _ = try EmbeddingSpace.parseName(self.space) } catch { throw ValidationError("\(error)") } }

        func run() async throws {
            let (model, fingerprint) = try EmbeddingSpace.parseName(self.space)
            try await ChamberCLI.run(needs: "vectors.spaces") { client in
                let dropped = try await client.transaction { tx -> Int? in
                    guard let record = try await tx.memory.spaceRecord(model: model, fingerprint: fingerprint) else { return nil }
                    return try await tx.memory.dropSpace(record.space)
                }
                guard let dropped else { throw PhylacteryError(.notFound, "embedding space \(self.space) is not registered; nothing was dropped") }
                print("dropped \(self.space) with \(dropped) vector\(dropped == 1 ? "" : "s")")
            }
        }
    }
}

/// The progress line of a backfill: done/total, the rate since the start, and the time left at that rate.
struct BackfillProgress: Sendable, Equatable {
    /// Embedded when the backfill started.
    let start: Int
    private(set) var done: Int
    private(set) var total: Int
    private(set) var elapsed: Duration = .zero

    init(start: Int, total: Int) {
        self.start = start
        self.done = start
        self.total = total
    }

    mutating func update(done: Int, total: Int, elapsed: Duration) {
        self.done = done
        self.total = total
        self.elapsed = elapsed
    }

    /// Memories embedded per second since the start.
    var rate: Double {
        let seconds = self.elapsed.seconds
        return seconds > 0 ? Double(max(0, self.done - self.start)) / seconds : 0
    }

    /// Seconds left at ``rate``, or `nil` while nothing was embedded.
    var secondsLeft: Double? {
        self.rate > 0 ? Double(max(0, self.total - self.done)) / self.rate : nil
    }

    var line: String {
        let percent = self.total > 0 ? Double(self.done) * 100 / Double(self.total) : 100
        let left = self.secondsLeft.map { Self.format(seconds: $0) } ?? "unknown (nothing embedded yet)"
        return "embedded \(self.done)/\(self.total) (\(String(format: "%.1f", percent))%), \(String(format: "%.1f", self.rate))/s, time left \(left)"
    }

    static func format(seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
        return "\(whole / 3600)h\(whole % 3600 / 60)m"
    }
}
