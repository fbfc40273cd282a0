import ArgumentParser
import Foundation
import PhylacteryEmbedded

/// Runs a command body and turns Phylactery's errors into one readable line and exit code 1,
/// instead of a dump of nested descriptions.
func reportingErrors(_ body: () async throws -> Void) async throws {
    try await CommandErrorReport.reporting(body)
}

/// The one place a command's failure becomes its printed line and exit status.
enum CommandErrorReport {
    static func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as CleanExit {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            if ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] != nil {
                if let embedded = error as? EmbeddedServerError, let details = embedded.details {
                    FileHandle.standardError.write(Data("\(details)\n".utf8))
                } else {
                    FileHandle.standardError.write(Data("\(String(reflecting: error))\n".utf8))
                }
            }
            throw ExitCode.failure
        }
    }
}
