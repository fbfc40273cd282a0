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
        discussion: """
            Values are JSON. Facts are never overwritten: supersede records a new version and keeps the old ones; \
            retract records a tombstone (history keeps everything); erase removes the value of every version for privacy \
            (audited), then rewrites the table so the value leaves its pages. Reads show public and private facts; \
            --visible secret shows secrets too.
            """,
        subcommands: [Get.self, Put.self, Supersede.self, History.self, List.self, Retract.self, Erase.self, Recall.self]
    )

    /// `--visible LABEL`: the most guarded label a read may show (facts and memories alike).
    struct Visibility: ParsableArguments {
        @Option(name: .long, help: "Show what is labelled up to this: public, private (default) or secret.") var visible = "private"

        func validate() throws {
            guard Sensitivity(rawValue: self.visible) != nil else { throw ValidationError("--visible is public, private or secret") }
        }

        var labels: Set<Sensitivity> { Sensitivity.visible(upTo: Sensitivity(rawValue: self.visible) ?? .private) }
    }

    /// `--label LABEL`: the label a write records.
    static func label(_ text: String?) throws -> Sensitivity? {
        guard let text else { return nil }
        guard let label = Sensitivity(rawValue: text) else { throw ValidationError("--label is public, private or secret") }
        return label
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current version of a fact.")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @OptionGroup var visibility: Visibility

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                guard let fact = try await client.transaction({ tx in try await tx.facts.get(self.namespace, key: self.key, visible: self.visibility.labels) }) else {
                    throw PhylacteryError(.notFound, "no fact \(self.namespace)/\(self.key)")
                }
                print(ChamberCLI.line(fact))
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a new fact (refused when the key already has a current one; after a retraction or an erasure it continues the key's versions).")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @Argument(help: "The value as JSON (quote strings: '\"10.0.0.1\"').") var value: String
        @Option(name: .long, help: "Where the fact comes from.") var source = "cli"
        @Option(name: .long, help: "Its label: public, private or secret (default: the client's, private).") var label: String?

        func validate() throws {
            _ = try ChamberCLI.json(self.value)
            _ = try FactsCommand.label(self.label)
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let value = try ChamberCLI.json(self.value)
                let label = try FactsCommand.label(self.label)
                let fact = try await client.transaction { tx in try await tx.facts.put(self.namespace, key: self.key, value: value, source: self.source, sensitivity: label) }
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
        @Option(name: .long, help: "Its label: public, private or secret (default: the replaced version's).") var label: String?

        func validate() throws {
            _ = try ChamberCLI.json(self.value)
            _ = try FactsCommand.label(self.label)
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let value = try ChamberCLI.json(self.value)
                let label = try FactsCommand.label(self.label)
                let fact = try await client.transaction { tx in
                    try await tx.facts.supersede(self.namespace, key: self.key, value: value, source: self.source, sensitivity: label, expectedVersion: self.expectedVersion)
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
        @OptionGroup var visibility: Visibility

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let (history, last) = try await client.transaction { tx in
                    (try await tx.facts.history(self.namespace, key: self.key, offset: self.page.offset, limit: self.page.limit, visible: self.visibility.labels),
                     try await tx.facts.history(self.namespace, key: self.key, visible: self.visibility.labels).last)
                }
                guard let last else { throw PhylacteryError(.notFound, "no fact \(self.namespace)/\(self.key)") }
                for fact in history { print(ChamberCLI.line(fact)) }
                // Versions are numbered from 1 without gaps: the last one's number is the count.
                let remaining = Int(last.version) - self.page.offset - history.count
                if remaining > 0 { print(self.page.more(remaining, "version", shown: history.count)) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current facts of a namespace, by key.")
        @Argument(help: "The namespace.") var namespace: String
        @Option(name: .long, help: "Only keys starting with this text (matched literally).") var prefix = ""
        @Option(name: .long, help: "At most this many facts.") var limit = 100
        @OptionGroup var visibility: Visibility

        func validate() throws {
            guard self.limit >= 0 else { throw ValidationError("--limit must not be negative") }
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let facts = try await client.transaction { tx in
                    try await tx.facts.list(self.namespace, prefix: self.prefix, limit: self.limit, visible: self.visibility.labels)
                }
                for fact in facts { print(ChamberCLI.line(fact)) }
                print("\(facts.count) fact\(facts.count == 1 ? "" : "s")")
            }
        }
    }

    struct Retract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Withdraw a fact: record a tombstone version with a reason (the history keeps every version; put records it again).")
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @Option(name: .long, help: "Why the fact no longer holds (required).") var reason: String
        @Option(name: .long, help: "Who retracts it.") var source = "cli"

        func validate() throws {
            guard !self.reason.isEmpty else { throw ValidationError("--reason must not be empty") }
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let tombstone = try await client.transaction { tx in
                    try await tx.facts.retract(self.namespace, key: self.key, reason: self.reason, source: self.source)
                }
                print("retracted \(ChamberCLI.line(tombstone))")
            }
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the value of every version of a fact, for privacy (audited), then rewrite the table so it leaves its pages.",
            discussion: """
                Irreversible: the values are gone from the database (the WAL and earlier backups keep them until their \
                retention removes them). Needs --reason and --yes. The rewrite (VACUUM FULL verbatim.facts) locks the facts \
                table while it runs; --no-compact skips it (run it later with another erase, or VACUUM FULL yourself).
                """)
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The key.") var key: String
        @Option(name: .long, help: "Why the fact is erased (kept in the audit; required).") var reason: String
        @Option(name: .long, help: "Who erases it (kept in the audit).") var by = "cli"
        @Flag(name: .long, help: "Confirm: the values cannot be recovered.") var yes = false
        @Flag(name: .long, help: "Do not rewrite the table afterwards.") var noCompact = false

        func validate() throws {
            guard !self.reason.isEmpty else { throw ValidationError("--reason must not be empty") }
            guard self.yes else { throw ValidationError("erasing cannot be undone: add --yes to confirm") }
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let record = try await client.transaction { tx in
                    try await tx.facts.erase(self.namespace, key: self.key, reason: self.reason, by: self.by)
                }
                print("erased \(self.namespace)/\(self.key): \(record.versions) version\(record.versions == 1 ? "" : "s") lost \(record.versions == 1 ? "its value" : "their values") (audit \(record.id), by \(record.erasedBy), \(record.erasedAt.formatted(.iso8601)))")
                if !self.noCompact {
                    try await client.compactFacts()
                    print("rewrote verbatim.facts (VACUUM FULL): the values are gone from its pages")
                }
            }
        }
    }

    struct Recall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recall facts by the words of a question (full text and trigram similarity), best first, with their scores.",
            discussion: """
                Asks what the library's recall asks first: an exact key (--namespace with --key), else the facts whose namespace, \
                key and value match the question's words. With --vector, --model and --fingerprint the memories of that space \
                answer when no fact does (consecrated first, then speculative).
                """)
        @Argument(help: "The question.") var question: String
        @Option(name: .long, help: "Only facts of this namespace (with --key: the exact key's).") var namespace: String?
        @Option(name: .long, help: "Ask for this exact key first (needs --namespace).") var key: String?
        @Option(name: .long, help: "The lowest score (0…1) a text match needs.") var minScore = 0.3
        @Option(name: .long, help: "At most this many facts.") var limit = 5
        @Option(name: .long, help: "The question's embedding as a JSON array of numbers.") var vector: String?
        @Option(name: .long, help: "The embedding model's name (with --vector).") var model: String?
        @Option(name: .long, help: "The embedding space's fingerprint (with --vector).") var fingerprint: String?
        @Option(name: .short, help: "How many memories.") var k = 5
        @OptionGroup var visibility: Visibility

        func validate() throws {
            if self.key != nil, self.namespace == nil { throw ValidationError("--key needs --namespace") }
            guard (0...1).contains(self.minScore) else { throw ValidationError("--min-score is between 0 and 1") }
            guard (1...1000).contains(self.limit) else { throw ValidationError("--limit is between 1 and 1000") }
            if self.vector != nil, self.model == nil || self.fingerprint == nil { throw ValidationError("--vector needs --model and --fingerprint") }
            if let vector { _ = try MemoryCommand.Search.parse(vector) }
        }

        func run() async throws {
            try await ChamberCLI.run(needs: "verbatim.facts") { client in
                let embedding = try self.vector.map(MemoryCommand.Search.parse)
                let space = embedding.map { EmbeddingSpace(model: self.model!, fingerprint: self.fingerprint!, dimensions: $0.dimensions) }
                let options = RecallOptions(
                    text: .init(minScore: self.minScore, limit: self.limit, namespace: self.namespace), k: self.k, visible: self.visibility.labels)
                let key = self.key.map { FactKey(self.namespace!, $0) }
                let answer = try await client.transaction { tx in
                    try await tx.recall(question: self.question, key: key, embedding: embedding, in: space, options: options)
                }
                print("answered by \(answer.chamber?.schema ?? "nothing") [\(answer.status.rawValue)]: \(answer.reason)")
                if answer.facts.isEmpty, let fact = answer.fact { print(ChamberCLI.line(fact)) }
                for match in answer.facts {
                    print(String(format: "%.3f", match.score) + String(format: "  (words %.2f, trigram %.2f)  ", match.wordCoverage, match.trigramSimilarity) + ChamberCLI.line(match.fact))
                }
                for match in answer.memories {
                    print(String(format: "%.4f", match.distance) + "  \(match.status.rawValue)  \(match.memory.id)  \(match.memory.content)")
                }
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
        let shown: String
        if fact.isErased {
            shown = "(erased \(fact.erasedAt!.formatted(.iso8601)))"
        } else if fact.isRetraction {
            shown = "(retracted: \(fact.reason ?? ""))"
        } else {
            shown = fact.value?.text ?? "null"
        }
        let label = fact.sensitivity == .private ? "" : ", \(fact.sensitivity.rawValue)"
        return "\(fact.namespace)/\(fact.key) v\(fact.version) = \(shown)  (source \(fact.source)\(label), recorded \(fact.recordedAt.formatted(.iso8601)))"
    }
}
