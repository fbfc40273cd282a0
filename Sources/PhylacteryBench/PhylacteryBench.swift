import ArgumentParser
import Foundation
import Logging
import NIOCore
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// `phylactery-bench`: end-to-end benchmarks against the real server. Each suite measures its
/// baselines in the same run and ends with one `RESULT {json}` line. Run it as a release build:
/// `swift run -c release phylactery-bench jsonb`.
@main
struct PhylacteryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phylactery-bench",
        abstract: "Benchmarks Phylactery against its baselines, in one run, on the real server.",
        discussion: "Uses PHYLACTERY_DATABASE_URL, else starts the local server (installing it if needed).")

    @Argument(help: "The suite to run: jsonb, migrate, queue, traces, vectors, backup, console, replication.")
    var suite: String

    @Option(help: "vectors: how many rows to load (default 100000).")
    var rows = 100_000

    @Option(help: "vectors: the real-sentence corpus' folder, built there by scripts/real-corpus when missing (default .build-corpus/minilm-stdlib).")
    var corpus = VectorsBenchmark.RealCorpus.defaultDirectory

    @Flag(name: .customLong("reuse-table"), help: "vectors: keep the database and its loaded rows and index from an earlier run with the same --rows (no insert or build figures then).")
    var reuseTable = false

    @Flag(name: .customLong("skip-real"), help: "vectors: leave out the real-sentence part.")
    var skipReal = false

    @Option(help: "replication: jobs per round and setup (default 8000).")
    var jobs = 8_000

    @Option(name: .customLong("size-mb"), help: "backup: the cluster's size in MB (default 1024).")
    var sizeMB = 1024

    @Flag(name: .customLong("server-seed"), help: "console: generate the rows inside the server (INSERT … SELECT) instead of sending them with COPY (for a debug build, whose row encoding is slow).")
    var serverSeed = false

    @Flag(name: .customLong("single-enqueue-only"), help: "queue: run only single enqueue against its pgbench ceiling.")
    var singleEnqueueOnly = false

    @Option(help: .hidden)
    var profile: String?

    @Option(help: "jsonb: run only these sections, comma-separated: memory, codec, fastpath, inserts, reads, instructions (default: all; 'fastpath' alone needs no server).")
    var only: String?

    // `codec-kernel` (hidden): what the jsonb suite runs under callgrind (JSONBBenchmark+Instructions.swift).
    @Option(help: .hidden)
    var input: String?
    @Option(help: .hidden)
    var op = "decode"
    @Option(help: .hidden)
    var count = 1
    @Option(help: .hidden)
    var variant = "default"

    /// `codec-kernel` is parsed and run before anything suspends; everything else goes through
    /// ArgumentParser's async entry point. The jsonb suite runs the kernel under valgrind 3.19, which
    /// crashes once the main thread idles: libdispatch then calls `sigsuspend` with a read-only mask,
    /// and valgrind writes to it.
    static func main() async {
        guard CommandLine.arguments.dropFirst().first == "codec-kernel" else {
            await Self.main(nil)
            return
        }
        do {
            let command = try Self.parse(Array(CommandLine.arguments.dropFirst()))
            try JSONBBenchmark.runKernel(input: command.input ?? "", op: command.op, count: command.count, variant: command.variant)
        } catch {
            Self.exit(withError: error)
        }
    }

    func validate() throws {
        guard ["jsonb", "migrate", "queue", "traces", "vectors", "backup", "console", "replication", "codec-kernel"].contains(suite) else { throw ValidationError("Unknown suite '\(suite)'; known: jsonb, migrate, queue, traces, vectors, backup, console, replication.") }
        if suite == "codec-kernel", input == nil { throw ValidationError("codec-kernel needs --input FILE (a JSON document)") }
        if let only {
            let unknown = only.split(separator: ",").filter { JSONBBenchmark.Section(rawValue: String($0)) == nil }
            guard unknown.isEmpty else { throw ValidationError("Unknown --only section(s) \(unknown.joined(separator: ", ")); known: \(JSONBBenchmark.Section.allCases.map(\.rawValue).joined(separator: ", ")).") }
        }
        if singleEnqueueOnly, suite != "queue" { throw ValidationError("--single-enqueue-only goes with the queue suite") }
        guard jobs >= 800 else { throw ValidationError("--jobs must be at least 800") }
        guard sizeMB >= 64 else { throw ValidationError("--size-mb must be at least 64") }
        guard rows >= 1000 else { throw ValidationError("--rows must be at least 1000") }
        if only != nil, suite != "jsonb" { throw ValidationError("--only is for the jsonb suite") }
    }

    func run() async throws {
        guard suite != "codec-kernel" else { return }  // run by `main()` above
        #if DEBUG
        print("warning: this is a debug build; figures are meaningless. Use: swift run -c release phylactery-bench \(suite)")
        #endif
        if let profile {
            // Loops one codec operation for a profiler: --profile encode|decode (generated path),
            // cencode|cdecode (Codable path), fencode|fdecode (Foundation)
            let document = ExecutionHistory.make(targetBytes: 1 << 20)
            var encoder = JSONBEncoder()
            encoder.dateEncodingStrategy = .deferredToDate
            var decoder = JSONBDecoder()
            decoder.dateDecodingStrategy = .deferredToDate
            var codableEncoder = encoder
            codableEncoder.usesGeneratedCoding = false
            var codableDecoder = decoder
            codableDecoder.usesGeneratedCoding = false
            let encoded = try encoder.encodeToBuffer(document)
            let data = try JSONEncoder().encode(document)
            var buffer = ByteBuffer()
            let end = ContinuousClock.now + .seconds(10)
            var count = 0
            while ContinuousClock.now < end {
                switch profile {
                case "encode": buffer.clear(); try encoder.encode(document, into: &buffer)
                case "decode": blackHole(try decoder.decode(ExecutionHistory.self, from: encoded))
                case "cencode": buffer.clear(); try codableEncoder.encode(document, into: &buffer)
                case "cdecode": blackHole(try codableDecoder.decode(ExecutionHistory.self, from: encoded))
                case "fencode": blackHole(try JSONEncoder().encode(document))
                default: blackHole(try JSONDecoder().decode(ExecutionHistory.self, from: data))
                }
                count += 1
            }
            print("\(profile): \(Double(count * encoded.readableBytes) / 10e6) MB/s")
            return
        }
        if only == "fastpath" {
            let documents = ["64k": ExecutionHistory.make(targetBytes: 64 << 10), "1m": ExecutionHistory.make(targetBytes: 1 << 20)]
            Self.printResult(suite: suite, JSONBBenchmark.fastPath(documents: documents))
            return
        }
        var logger = Logger(label: "phylactery.bench")
        logger.logLevel = .warning
        if suite == "backup" || suite == "replication" {
            // Servers of their own in temporary homes: the backup suite archives, backs up and
            // restores a whole cluster; the replication suite runs a primary and a standby.
            let results: [String: Double]
            do {
                if suite == "backup" {
                    var benchmark = BackupBenchmark(logger: logger, sizeMB: sizeMB)
                    try await benchmark.run()
                    results = benchmark.results
                } else {
                    var benchmark = ReplicationBenchmark(logger: logger, jobs: jobs)
                    try await benchmark.run()
                    results = benchmark.results
                }
            } catch {
                print("error: \(String(reflecting: error))")
                throw ExitCode.failure
            }
            Self.printResult(suite: suite, results)
            return
        }
        let url: DatabaseURL
        var embedded: EmbeddedServer?
        if let external = try PhylacteryClient.Configuration.fromEnvironment() {
            url = external.url
        } else {
            let server = EmbeddedServer(configuration: .fromEnvironment(), logger: logger)
            url = try await server.start().url
            embedded = server
        }
        // A database of its own, created afresh, so runs do not disturb each other's data.
        let admin = PhylacteryClient(configuration: .init(url: url), logger: logger)
        // One per suite: two suites running at once (two engineers, one server) must not drop each other's.
        let name = suite == "jsonb" ? "phylactery_bench" : "phylactery_bench_\(suite)"
        try await admin.withDirectConnection { connection in
            let exists = try await connection.query("SELECT count(*) FROM pg_database WHERE datname = \(name)", logger: logger).collect().first?.decode(Int.self) ?? 0
            if suite == "vectors" && reuseTable && exists > 0 { return }  // the benchmark checks what it holds
            _ = try await connection.query(.init(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger).collect()
            _ = try await connection.query(.init(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger).collect()
        }
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 2
        let results: [String: Double]
        do {
            results = try await PhylacteryClient.withClient(configuration: .init(url: url.with(database: name), options: options), logger: logger) { client in
            switch suite {
            case "queue":
                var benchmark = QueueBenchmark(url: url.with(database: name), logger: logger, server: embedded)
                benchmark.singleEnqueueOnly = singleEnqueueOnly
                try await benchmark.run()
                return benchmark.results
            case "vectors":
                var benchmark = VectorsBenchmark(client: client, logger: logger, rows: rows)
                benchmark.corpusDirectory = corpus
                benchmark.reuseTable = reuseTable
                benchmark.skipReal = skipReal
                try await benchmark.run()
                return benchmark.results
            case "migrate":
                var benchmark = MigrateBenchmark(client: client, logger: logger)
                try await benchmark.run()
                return benchmark.results
            case "console":
                var benchmark = ConsoleBenchmark(client: client, logger: logger)
                benchmark.seedInServer = serverSeed
                try await benchmark.run()
                return benchmark.results
            case "traces":
                var benchmark = TracesBenchmark(client: client, logger: logger)
                try await benchmark.run()
                return benchmark.results
            default:
                var benchmark = JSONBBenchmark(client: client, logger: logger)
                benchmark.only = only.map { Set($0.split(separator: ",").compactMap { JSONBBenchmark.Section(rawValue: String($0)) }) }
                try await benchmark.run()
                return benchmark.results
            }
        }
        } catch {
            // PostgresNIO's errors hide their detail from `description`; a benchmark wants it.
            print("error: \(String(reflecting: error))")
            throw ExitCode.failure
        }
        Self.printResult(suite: suite, results)
    }

    /// The last line: `RESULT {"suite":…,…}`.
    static func printResult(suite: String, _ results: [String: Double]) {
        let json = results.keys.sorted().map { key in
            let value = results[key]!
            return "\"\(key)\":\(value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.4g", value))"
        }.joined(separator: ",")
        print("RESULT {\"suite\":\"\(suite)\",\(json)}")
    }
}
