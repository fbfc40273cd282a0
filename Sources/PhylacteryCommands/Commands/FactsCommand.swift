import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// `phylactery facts …`: the verbatim chamber from the command line.
struct FactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facts",
        abstract: "Read and record immutable facts (the verbatim chamber).",
        discussion: "Values are JSON. Facts are never overwritten: supersede records a new version and keeps the old ones.",
        subcommands: [Get.self, Put.self, Supersede.self, History.self, List.self]
    )

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current version of a fact.")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                guard let fact = try await client.transaction({ tx in try await tx.facts.get(self.namespace, key: self.key) }) else {
                    throw PhylacteryError(.notFound, "no fact \(self.namespace)/\(self.key)")
                }
                print(ChamberCLI.line(fact))
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a new fact as version 1 (refused when the key already has one).")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @Argument(help: "The value as JSON (quote strings: '\"10.0.0.1\"').") var value: String
        @Option(name: .long, help: "Where the fact comes from.") var source = "cli"

        func validate() throws { _ = try ChamberCLI.json(self.value) }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let value = try ChamberCLI.json(self.value)
                let fact = try await client.transaction { tx in try await tx.facts.put(self.namespace, key: self.key, value: value, source: self.source) }
                print("recorded \(ChamberCLI.line(fact))")
            }
        }
    }

    struct Supersede: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a new version of a fact; the old versions stay in its history.")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @Argument(help: "The new value as JSON.") var value: String
        @Option(name: .long, help: "Where the new version comes from.") var source = "cli"
        @Option(name: .long, help: "Refuse unless this is the current version.") var expectedVersion: Int?

        func validate() throws { _ = try ChamberCLI.json(self.value) }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let value = try ChamberCLI.json(self.value)
                let fact = try await client.transaction { tx in
                    try await tx.facts.supersede(self.namespace, key: self.key, value: value, source: self.source, expectedVersion: self.expectedVersion)
                }
                print("recorded \(ChamberCLI.line(fact))")
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the versions of a fact, oldest first (a page of them: --offset, --limit).")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @OptionGroup(title: "Paging (versions, oldest first)") var page: PagingOptions

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let (current, history) = try await client.transaction { tx in
                    (try await tx.facts.get(self.namespace, key: self.key),
                     try await tx.facts.history(self.namespace, key: self.key, offset: self.page.offset, limit: self.page.limit))
                }
                guard let current else { throw PhylacteryError(.notFound, "no fact \(self.namespace)/\(self.key)") }
                for fact in history { print(ChamberCLI.line(fact)) }
                // Versions are numbered from 1 without gaps: the current one's number is the count.
                let remaining = Int(current.version) - self.page.offset - history.count
                if remaining > 0 { print(self.page.more(remaining, "version", shown: history.count)) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current facts of a namespace, by key.")
        @Argument(help: "The namespace.") var namespace: String
        @Option(name: .long, help: "Only keys starting with this text (matched literally).") var prefix = ""
        @Option(name: .long, help: "At most this many facts.") var limit = 100

        func validate() throws {
            guard self.limit >= 0 else { throw ValidationError("--limit must not be negative") }
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let facts = try await client.transaction { tx in try await tx.facts.list(self.namespace, prefix: self.prefix, limit: self.limit) }
                for fact in facts { print(ChamberCLI.line(fact)) }
                print("\(facts.count) fact\(facts.count == 1 ? "" : "s")")
            }
        }
    }
}

/// What the chamber commands share.
enum ChamberCLI {
    /// Connects to the server the README describes and runs `body`; a missing chamber table is
    /// reported with the command that creates it.
    static func run(needs table: String, _ body: (PhylacteryClient) async throws -> Void) async throws {
        try await reportingErrors {
            let url = try EmbeddedServer.resolveDatabaseURL()
            try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                let exists = try await client.query("SELECT to_regclass(\(table)) IS NOT NULL").collect().first?.decode(Bool.self) ?? false
                guard exists else {
                    throw PhylacteryError(.notFound, "table \(table) does not exist yet; run `phylactery migrate auto` first")
                }
                try await body(client)
            }
        }
    }

    /// JSON text from the command line, validated.
    static func json(_ text: String) throws -> RawJSONB {
        do {
            return try RawJSONB(validating: text)
        } catch {
            throw ValidationError("the value is not valid JSON (\(error)); quote strings, e.g. '\"10.0.0.1\"'")
        }
    }

    static func line(_ fact: Fact) -> String {
        "\(fact.namespace)/\(fact.key) v\(fact.version) = \(fact.value.text)  (source \(fact.source), recorded \(fact.recordedAt.formatted(.iso8601)))"
    }
}
