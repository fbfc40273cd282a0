import Foundation
import Phylactery
import PhylacteryTestSupport
import Testing

/// `phylactery memory embed`, `spaces`, `switch-space`, `drop-space` and `forget`, as separate
/// processes, with a real worker (and its embedder) in the test process doing the embedding.
@Suite struct MemoryEmbedCLITests {
    /// Runs the CLI off the cooperative pool (it blocks until the process ends, while the worker
    /// in this process must go on).
    static func run(_ arguments: [String], environment: [String: String]) async throws -> PhylacteryProcess {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try PhylacteryProcess.run(arguments, environment: environment) })
            }
        }
    }

    static func withWorker<R: Sendable>(_ client: PhylacteryClient, embedder: HashedWordEmbedder, _ body: () async throws -> R) async throws -> R {
        var handlers = JobHandlers()
        handlers.registerMemoryEmbedder(embedder, batchSize: 4)
        let configuration = GhoulsConfiguration(queues: [EmbedMemories.queue: QueueConfiguration(concurrency: 2)], pollInterval: .milliseconds(100))
        return try await PhylacteryTestSupport.withGhouls(client, handlers: handlers, configuration: configuration, body)
    }

    @Test func embedBackfillsWithProgressAndSpacesSwitch() async throws {
        try await TestDatabase.withFreshDatabase("cli_memory_embed") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            func run(_ arguments: String...) async throws -> PhylacteryProcess { try await Self.run(arguments, environment: environment) }
            _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto()
            let ids = try await client.transaction { tx in
                var ids: [UUID] = []
                for i in 0..<30 { ids.append(try await tx.memory.remember(Memory(content: "memory number \(i) about " + ["dns", "tls", "disks"][i % 3], owner: "core", source: "cli")).id) }
                return ids
            }

            let unknown = try await run("memory", "embed", "--space", "words@a", "--no-wait")
            #expect(unknown.status == 1 && unknown.output.contains("give its --dimensions"), "\(unknown.output)")
            let help = try await run("memory", "embed", "--help")
            #expect(help.output.contains("cannot embed") && help.output.contains(EmbedMemories.kind), "\(help.output)")

            let old = HashedWordEmbedder(seed: 1), new = HashedWordEmbedder(seed: 2)
            let first = try await Self.withWorker(client, embedder: old) {
                try await run("memory", "embed", "--space", "words@a", "--dimensions", "384", "--interval", "0.2")
            }
            let lines = first.output.split(separator: "\n").map(String.init)
            #expect(first.status == 0 && lines.first?.hasPrefix("words@a (384 dimensions): asked for 30 vectors; 0/30 memories embedded.") == true, "\(first.output)")
            #expect(lines.contains { $0.hasPrefix("embedded 30/30 (100.0%), ") && $0.contains("/s, time left ") }, "\(first.output)")
            #expect(lines.last == "coverage complete: 30/30", "\(first.output)")

            // A second space, asked for without a worker: progress stays at zero and the wait gives up.
            let queued = try await run("memory", "embed", "--space", "words@b", "--dimensions", "384", "--no-wait")
            #expect(queued.status == 0 && queued.output.contains("asked for 30 vectors"), "\(queued.output)")
            let stalled = try await run("memory", "embed", "--space", "words@b", "--timeout", "1s", "--interval", "0.2")
            #expect(stalled.status == 1 && stalled.output.contains("embedded 0/30 (0.0%), 0.0/s, time left unknown")
                    && stalled.output.contains("30 memories still lack a vector in words@b") && stalled.output.contains("is a worker with an embedder running?"), "\(stalled.output)")
            let refused = try await run("memory", "switch-space", "--space", "words@b")
            #expect(refused.status == 1 && refused.output.contains("30 of 30 memories still lack a vector in words@b"), "\(refused.output)")
            let spaces = try await run("memory", "spaces")
            #expect(spaces.output == "* words@a (384 dimensions)  30/30 embedded, 0 waiting\n  words@b (384 dimensions)  0/30 embedded, 30 waiting\n2 spaces (* the default)\n", "\(spaces.output)")

            let second = try await Self.withWorker(client, embedder: new) {
                try await run("memory", "embed", "--space", "words@b", "--interval", "0.2")
            }
            #expect(second.status == 0 && second.output.contains("asked for 0 vectors") && second.output.hasSuffix("coverage complete: 30/30\n"), "\(second.output)")
            let switched = try await run("memory", "switch-space", "--space", "words@b")
            #expect(switched.output == "words@b (384 dimensions) is the default space (30/30 memories embedded)\n", "\(switched.output)")
            let dropped = try await run("memory", "drop-space", "--space", "words@a")
            #expect(dropped.output == "dropped words@a with 30 vectors\n", "\(dropped.output)")

            let search = try await run("memory", "search", "--text", "memory number 4 about tls", "-k", "1")
            #expect(search.status == 0 && search.output.contains("\(ids[4])"), "\(search.output)")
            let forget = try await run("memory", "forget", ids[4].uuidString, "--by", "user", "--reason", "asked")
            #expect(forget.status == 0 && forget.output.contains("forgotten"), "\(forget.output)")
            let gone = try await run("memory", "forget", ids[4].uuidString, "--by", "user", "--reason", "asked")
            #expect(gone.status == 1 && gone.output.contains("nothing was forgotten"), "\(gone.output)")
        }
    }
}
