import Foundation
import PhylacteryEmbedded

/// One run of the built `phylactery` executable (it sits next to the test bundle, or at `$PHYLACTERY_CLI`).
struct PhylacteryProcess: Sendable {
    var status: Int32
    var output: String

    /// Runs `phylactery arguments…` with the test's environment plus `extra`, and waits for it.
    static func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> PhylacteryProcess {
        try run(executable: executable, arguments, environment: extra)
    }

    /// The built `phylactery` executable.
    static var executable: String { ProcessInfo.processInfo.environment["PHYLACTERY_CLI"] ?? binDirectory + "/phylactery" }

    /// The directory of the built executables (next to the test bundle).
    static var binDirectory: String { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path }

    /// Runs another built executable the same way.
    static func run(executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> PhylacteryProcess {
        var environment = ProcessInfo.processInfo.environment
        environment.merge(extra) { $1 }
        let outcome = try Subprocess.run(executable, arguments, environment: environment)
        return PhylacteryProcess(status: outcome.status, output: outcome.output)
    }
}
