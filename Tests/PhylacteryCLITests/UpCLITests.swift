import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import TasksExtension
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `phylactery up` as an operator meets it, and the example daemon's `up` under its own name: a fresh
/// home, jobs run while `queue` commands work from another process, SIGTERM ends it with exit 0 and
/// no server left running.
@Suite struct UpCLITests {
    @Test(.timeLimit(.minutes(5)), arguments: [("phylactery", "phylactery"), ("ExampleDaemon", "example-daemon")])
    func upOnAFreshHomeRunsJobsAndStopsCleanlyOnSIGTERM(executable: String, name: String) async throws {
        let home = try TestDatabase.temporaryHome("up")
        let binaries = try TestDatabase.installedBinaries()
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: binaries))
        defer {
            if case .running = server.pidFileState() { _ = try? server.stop() }
            try? FileManager.default.removeItem(atPath: home)
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PHYLACTERY_DATABASE_URL"] = nil
        environment["PHYLACTERY_HOME"] = home
        environment["PHYLACTERY_PG_BIN"] = binaries
        let log = home + "/up.out"
        FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: PhylacteryProcess.binDirectory + "/" + executable)
        process.arguments = ["up", "--queue-poll-interval", "200ms"]
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func printed() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        try await eventually("phylactery up to say it is up", timeout: .seconds(120)) {
            !process.isRunning || printed().contains("\(name) up (pid \(process.processIdentifier))")
        }
        try #require(process.isRunning, "up exited: \(printed())")
        // Another process: the operator's queue view of the same home.
        let stats = try PhylacteryProcess.run(executable: PhylacteryProcess.binDirectory + "/" + executable, ["queue", "stats"], environment: ["PHYLACTERY_DATABASE_URL": "", "PHYLACTERY_HOME": home, "PHYLACTERY_PG_BIN": binaries])
        #expect(stats.status == 0, "\(stats.output)")

        // A job enqueued by another client runs under `up` (its migrations made the tables).
        try await PhylacteryClient.withClient(configuration: .init(url: server.url)) { client in
            let (task, job) = try await client.transaction { tx in
                let workspace = try await tx.insert(Workspace(name: "up"))
                let task = try await tx.insert(TaskItem(workspaceID: workspace.id, title: "t", status: .open, priority: 0, dueAt: nil))
                return (task, try await tx.enqueue(CloseTask(taskID: task.id)))
            }
            try await eventually("the job to complete under up", timeout: .seconds(60)) {
                try await client.jobs.job(job.id).state == .completed
            }
            #expect(try await client.find(TaskItem.self, id: task.id)?.status == .done)
        }

        kill(process.processIdentifier, SIGTERM)
        try await eventually("up to exit after SIGTERM", timeout: .seconds(60)) { !process.isRunning }
        #expect(process.terminationStatus == 0, "\(printed())")
        #expect(printed().contains("\(name) stopped"), "\(printed())")
        guard case .absent = server.pidFileState() else {
            Issue.record("the server is still running after up stopped: \(server.pidFileState())")
            return
        }
    }
}
