import ArgumentParser
import Foundation
import Phylactery
import PostgresNIO

/// `phylactery memory …`: the vectors chamber from the command line.
struct MemoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Search semantic memory, consecrate entries, read their status history, and count them (the vectors chamber).",
        subcommands: [Search.self, Consecrate.self, History.self, Stats.self]
    )

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the entries nearest to a vector, within one embedding space.",
            discussion: "Give the query as --vector '[0.1, 0.2, …]' or as --like <memory id> (that entry's embedding and space).")
        @Option(name: .long, help: "The query vector as a JSON array of numbers.") var vector: String?
        @Option(name: .long, help: "Use this memory's embedding (and its space) as the query.", transform: RecordID.parser("memory"))
        var like: UUID?
        @Option(name: .long, help: "The embedding model's name (with --vector).") var model: String?
        @Option(name: .long, help: "The embedding space's fingerprint (with --vector).") var fingerprint: String?
        @Option(name: .short, help: "How many neighbours.") var k = 10
        @Option(name: .long, parsing: .upToNextOption, help: "Statuses to search (speculative, consecrated, rejected).")
        var status: [String] = ["speculative", "consecrated"]
        @Option(name: .long, help: "Only entries of this owner.") var owner: String?
        @Option(name: .long, help: "Distance: cosine, l2 or inner_product.") var metric = "cosine"
        @Flag(name: .long, help: "Exact search (no index).") var exact = false

        func validate() throws {
            guard (self.vector == nil) != (self.like == nil) else { throw ValidationError("give exactly one of --vector and --like") }
            if self.vector != nil, self.model == nil || self.fingerprint == nil { throw ValidationError("--vector needs --model and --fingerprint") }
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

        func run() async throws {
            try await ChamberCLI.run(needs: "vectors.memories") { client in
                let matches = try await client.transaction { tx -> [VectorMemory.Match] in
                    let query: Vector, space: EmbeddingSpace
                    if let like = self.like {
                        guard let entry = try await tx.find(Memory.self, id: like) else {
                            throw PhylacteryError(.notFound, "no memory has id \(like)")
                        }
                        (query, space) = (entry.embedding, entry.space)
                    } else {
                        query = try Self.parse(self.vector!)
                        space = EmbeddingSpace(model: self.model!, fingerprint: self.fingerprint!, dimensions: query.dimensions)
                    }
                    let options = VectorMemory.SearchOptions(
                        k: self.k, statuses: Set(self.status.compactMap(MemoryStatus.init(rawValue:))), owner: self.owner,
                        metric: VectorMemory.Metric(rawValue: self.metric)!, exact: self.exact)
                    return try await tx.memory.search(query, in: space, options: options)
                }
                for match in matches {
                    print(String(format: "%.4f", match.distance) + "  \(match.status.rawValue)  \(match.memory.id)  \(match.memory.content)  (owner \(match.memory.owner), source \(match.memory.source))")
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
}
