public import Phylactery

/// Runs workers (``Ghouls``) with `handlers` while `body` runs, then shuts them down and waits for
/// them: how a test has real jobs run in the background.
public func withGhouls<Result: Sendable>(
    _ client: PhylacteryClient, handlers: JobHandlers, configuration: GhoulsConfiguration, _ body: () async throws -> Result
) async throws -> Result {
    let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration)
    let running = Task { try await ghouls.run() }
    do {
        let result = try await body()
        ghouls.beginShutdown()
        try await running.value
        return result
    } catch {
        ghouls.beginShutdown()
        _ = try? await running.value
        throw error
    }
}
