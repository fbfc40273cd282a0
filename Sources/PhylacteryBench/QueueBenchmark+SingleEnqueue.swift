import Foundation
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// Single enqueue against its ceiling, in one run: `client.enqueue(job)` (one job per call,
/// autocommitted) from `clients` tasks, against the server's own `pgbench` sending the same statement
/// (``SingleEnqueueStatement``) with the same number of clients to the same table.
///
/// Rounds alternate (ours, pgbench, ours, pgbench, …), each on a freshly truncated `queue.jobs`, after
/// one unmeasured warm-up of each (pooled connections open, statements prepared); the ratio is the
/// median of the per-round ratios. pgbench's rate is its own `tps = … (without initial connection
/// time)`.
struct SingleEnqueueBound {
    /// The `pgbench` program: beside the server's `postgres`.
    let pgbench: String
    let url: DatabaseURL
    let clients: Int
    /// Jobs per contender per round.
    let jobsPerRound: Int
    let rounds: Int

    struct Figures {
        var ours: Double
        var bound: Double
        var ratio: Double
    }

    /// Finds `pgbench`: in the running embedded server's bin directory, else `PHYLACTERY_PG_BIN`, else
    /// on `PATH` (an external server through `PHYLACTERY_DATABASE_URL`).
    static func locatePgbench(server: EmbeddedServer?) throws -> String {
        var candidates: [String] = []
        if let bin = server?.currentBinaries()?.binDirectory { candidates.append(bin) }
        if let bin = ProcessInfo.processInfo.environment["PHYLACTERY_PG_BIN"], !bin.isEmpty { candidates.append(bin) }
        candidates += (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in candidates where FileManager.default.isExecutableFile(atPath: directory + "/pgbench") {
            return directory + "/pgbench"
        }
        throw PhylacteryError(.invalidConfiguration, "The queue benchmark's single-enqueue ceiling runs the server's pgbench, which is not beside the server nor in PHYLACTERY_PG_BIN nor on PATH. Use the embedded server (unset PHYLACTERY_DATABASE_URL), or set PHYLACTERY_PG_BIN to a bin directory holding pgbench.")
    }

    /// The pgbench script: ``SingleEnqueueStatement/sql`` with its parameters replaced by pgbench
    /// variables (`-D`, sent as parameters of the prepared statement like ours) and by `NULL` where
    /// ours binds `NULL` (no schedule, no unique key). The id is the one value pgbench cannot make on
    /// the client: the server makes it, time-ordered like ours (`uuidv7()`, PostgreSQL 18) or random
    /// before 18.
    static func script(serverVersion: Int) -> String {
        var sql = SingleEnqueueStatement.sql
        // From the last parameter down, so `$1` never eats the start of `$10`.
        for (index, name) in SingleEnqueueStatement.parameters.enumerated().reversed() {
            let replacement: String
            switch name {
            case "id": replacement = serverVersion >= 180_000 ? "uuidv7()" : "gen_random_uuid()"
            case "scheduled_at", "unique_key", "uniqueness": replacement = "NULL"
            default: replacement = ":" + name
            }
            sql = sql.replacingOccurrences(of: "$\(index + 1)", with: replacement)
        }
        // A pgbench command ends at the end of its line: one line, ended by the semicolon.
        return sql.split(separator: "\n").joined(separator: " ") + ";\n"
    }

    /// Runs the rounds. `enqueue` is ours: one job per call.
    func run(client: PhylacteryClient, enqueue: @escaping @Sendable (Int) async throws -> Void, variables: [String: String]) async throws -> Figures {
        let serverVersion = Int(try await client.query("SHOW server_version_num").collect().first?.decode(String.self) ?? "0") ?? 0
        // pgbench's sessions get the settings ours run under (the server's defaults; named here so a
        // difference would show in the command, not hide in the server's configuration).
        let synchronousCommit = try await client.query("SHOW synchronous_commit").collect().first?.decode(String.self) ?? "on"
        let scriptPath = FileManager.default.temporaryDirectory.path + "/phylactery-bench-enqueue-\(UUID().uuidString).sql"
        try Self.script(serverVersion: serverVersion).write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }

        func ours(_ jobs: Int) async throws -> Double {
            let perTask = jobs / self.clients
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<self.clients {
                    group.addTask { for index in 0..<perTask { try await enqueue(task * 1_000_000 + index) } }
                }
                try await group.waitForAll()
            }
            return Double(perTask * self.clients) / Measure.seconds(ContinuousClock.now - start)
        }
        func bound(_ jobs: Int) async throws -> Double {
            try await self.pgbench(transactionsPerClient: jobs / self.clients, script: scriptPath, variables: variables, synchronousCommit: synchronousCommit)
        }

        try await client.execute("TRUNCATE queue.jobs")
        _ = try await ours(self.clients * 25)
        try await client.execute("TRUNCATE queue.jobs")
        _ = try await bound(self.clients * 25)
        var oursRates: [Double] = [], boundRates: [Double] = [], ratios: [Double] = []
        for _ in 0..<self.rounds {
            try await client.execute("TRUNCATE queue.jobs")
            let x = try await ours(self.jobsPerRound)
            try await client.execute("TRUNCATE queue.jobs")
            let y = try await bound(self.jobsPerRound)
            oursRates.append(x)
            boundRates.append(y)
            ratios.append(x / y)
        }
        return Figures(ours: Measure.median(oursRates), bound: Measure.median(boundRates), ratio: Measure.median(ratios))
    }

    /// One pgbench run: `clients` connections on 2 threads, prepared statements, no vacuum, each client
    /// `transactionsPerClient` times the script. Connection details go through the environment
    /// (`PGPASSWORD` among them), never a file or the command line. Returns its tps without connection time.
    func pgbench(transactionsPerClient: Int, script: String, variables: [String: String], synchronousCommit: String) async throws -> Double {
        var environment = ProcessInfo.processInfo.environment
        switch self.url.endpoint {
        case .tcp(let host, let port):
            environment["PGHOST"] = host
            environment["PGPORT"] = String(port)
        case .unixSocket(let directory, let port):
            environment["PGHOST"] = directory
            environment["PGPORT"] = String(port)
        }
        environment["PGUSER"] = self.url.username
        environment["PGDATABASE"] = self.url.database
        environment["PGPASSWORD"] = self.url.password
        environment["PGSSLMODE"] = self.url.tlsMode.rawValue
        environment["PGAPPNAME"] = PhylacteryClient.Configuration.Options().applicationName
        environment["PGOPTIONS"] = "-c synchronous_commit=\(synchronousCommit)"
        var arguments = ["-n", "-M", "prepared", "-c", String(self.clients), "-j", String(min(2, self.clients)),
                         "-t", String(transactionsPerClient), "-f", script]
        for (name, value) in variables.sorted(by: { $0.key < $1.key }) { arguments += ["-D", "\(name)=\(value)"] }
        let outcome = try await ChildProcess.run(self.pgbench, arguments, environment: environment)
        guard outcome.succeeded else {
            throw PhylacteryError(.queryFailed, "pgbench failed (status \(outcome.status)): \(outcome.output)")
        }
        guard let tps = Self.tps(outcome.output) else {
            throw PhylacteryError(.queryFailed, "pgbench printed no 'tps = … (without initial connection time)' line: \(outcome.output)")
        }
        return tps
    }

    /// `tps = 1234.5 (without initial connection time)` → 1234.5.
    static func tps(_ output: String) -> Double? {
        for line in output.split(separator: "\n") where line.hasPrefix("tps = ") && line.contains("without initial connection time") {
            return Double(line.dropFirst("tps = ".count).prefix { $0 != " " })
        }
        return nil
    }
}
