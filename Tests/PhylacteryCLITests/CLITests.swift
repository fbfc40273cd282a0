import Foundation
import PhylacteryEmbedded
import PhylacteryTestSupport
import Testing

/// Runs the built `phylactery` executable (it sits next to the test bundle) and reads its output.
@Suite(.serialized) struct CLITests {
    func phylactery(_ arguments: [String], environment extra: [String: String] = [:]) throws -> PhylacteryProcess {
        try PhylacteryProcess.run(arguments, environment: extra)
    }

    @Test func startTwiceStatusAndStop() throws {
        let home = try TestDatabase.temporaryHome("cli")
        let environment = ["PHYLACTERY_HOME": home, "PHYLACTERY_PG_BIN": try TestDatabase.installedBinaries()]
        defer {
            _ = try? phylactery(["db", "stop"], environment: environment)
            try? FileManager.default.removeItem(atPath: home)
        }
        let first = try phylactery(["db", "start"], environment: environment)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("started"))

        let second = try phylactery(["db", "start"], environment: environment)
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.contains("already running"))

        let status = try phylactery(["db", "status"], environment: environment)
        #expect(status.status == 0, "\(status.output)")
        #expect(status.output.contains("running (pid"))
        #expect(status.output.contains("version:        18.6"))
        #expect(status.output.contains("pgvector:       available (0.8.6)"))

        let url = try phylactery(["db", "url"], environment: environment)
        #expect(url.output == "postgres://phylactery@/phylactery?host=\(home)/run\n")

        let doctor = try phylactery(["doctor"], environment: environment.merging(["PHYLACTERY_DATABASE_URL": ""]) { $1 })
        #expect(doctor.status == 0, "\(doctor.output)")
        #expect(doctor.output.contains("pgvector: vector 0.8.6"), "\(doctor.output)")

        let stop = try phylactery(["db", "stop"], environment: environment)
        #expect(stop.output.contains("Stopped PostgreSQL"))
        let stopped = try phylactery(["db", "status"], environment: environment)
        #expect(stopped.status == 3)
        #expect(stopped.output.contains("state:          stopped"))
    }

    @Test func badPortIsAValidationErrorWithUsage() throws {
        let run = try phylactery(["db", "start", "--port", "0"])
        #expect(run.status == 64)
        #expect(run.output.contains("--port must be between 1 and 65535"))
        #expect(run.output.contains("Usage:"))
    }

    @Test func malformedDatabaseURLIsOneReadableLine() throws {
        let run = try phylactery(["doctor"], environment: ["PHYLACTERY_DATABASE_URL": "mysql://root@localhost/db"])
        #expect(run.status == 1)
        #expect(run.output == "error: PHYLACTERY_DATABASE_URL: The database URL is not usable: the scheme must be postgres:// or postgresql://, not mysql://. Expected postgres://user[:password]@host[:port][,host2[:port2]…]/database or postgres://user@/database?host=/socket/dir.\n")
    }
}
