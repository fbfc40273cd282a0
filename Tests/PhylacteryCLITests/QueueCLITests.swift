import Foundation
import Phylactery
import PhylacteryTestSupport
import TasksExtension
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct QueueCLITests {
    @Test("`phylactery worker` runs the extensions' jobs and drains on SIGTERM; `queue` shows and steers them")
    func workerAndQueueCommands() async throws {
        try await TestDatabase.withFreshDatabase("cli_queue") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            try await Migrator(client: client, federation: try Federation.standard(extensions: [Tasks()])).apply(allowing: [])
            let (task, job) = try await client.transaction { tx in
                let workspace = try await tx.insert(Workspace(name: "cli"))
                let task = try await tx.insert(TaskItem(workspaceID: workspace.id, title: "t", status: .open, priority: 0, dueAt: nil))
                return (task, try await tx.enqueue(CloseTask(taskID: task.id)))
            }
            let waiting = try await client.enqueue(CloseTask(taskID: UUID()), options: JobOptions(scheduledAt: Date().addingTimeInterval(3600)))

            let stats = try PhylacteryProcess.run(["queue", "stats"], environment: environment)
            #expect(stats.status == 0, "\(stats.output)")
            #expect(stats.output.contains("available"), "\(stats.output)")
            #expect(stats.output.contains("scheduled"), "\(stats.output)")

            // A worker process runs the job, then drains on SIGTERM and exits cleanly.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: PhylacteryProcess.executable)
            process.arguments = ["worker", "--poll", "0.2"]
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let deadline = ContinuousClock.now + .seconds(60)
            while try await client.jobs.job(job.id).state != .completed && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 0, "\(printed)")
            #expect(printed.contains("phylactery worker stopped"), "\(printed)")
            #expect(try await client.jobs.job(job.id).state == .completed)
            #expect(try await client.find(TaskItem.self, id: task.id)?.status == .done)

            let list = try PhylacteryProcess.run(["queue", "list", "--state", "completed"], environment: environment)
            #expect(list.output.contains(job.id.uuidString), "\(list.output)")
            #expect(list.output.contains("tasks.close"))
            let show = try PhylacteryProcess.run(["queue", "show", job.id.uuidString], environment: environment)
            #expect(show.status == 0)
            #expect(show.output.contains("state      completed"), "\(show.output)")

            let cancel = try PhylacteryProcess.run(["queue", "cancel", waiting.id.uuidString], environment: environment)
            #expect(cancel.output.contains("cancelled; it will not run"), "\(cancel.output)")
            let retry = try PhylacteryProcess.run(["queue", "retry", waiting.id.uuidString], environment: environment)
            #expect(retry.output.contains("is available again"), "\(retry.output)")
            let prune = try PhylacteryProcess.run(["queue", "prune", "--older-than-hours", "0"], environment: environment)
            #expect(prune.output.contains("Deleted 1 finished jobs"), "\(prune.output)")

            // Bad input: a clear message and a non-zero status.
            let malformed = try PhylacteryProcess.run(["queue", "show", "not-a-uuid"], environment: environment)
            #expect(malformed.status != 0)
            #expect(malformed.output.contains("is not a job id"), "\(malformed.output)")
            let missing = try PhylacteryProcess.run(["queue", "show", UUID().uuidString], environment: environment)
            #expect(missing.status == 1)
            #expect(missing.output.contains("no job has the id"), "\(missing.output)")
            let badState = try PhylacteryProcess.run(["queue", "list", "--state", "sleeping"], environment: environment)
            #expect(badState.status != 0)
            #expect(badState.output.contains("is not a job state"), "\(badState.output)")
        }
    }
}
