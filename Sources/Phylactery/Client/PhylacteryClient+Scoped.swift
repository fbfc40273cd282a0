public import Logging

extension PhylacteryClient {
    /// Creates a client, runs it for the duration of `body`, then shuts it down.
    ///
    /// For command-line tools, scripts and tests. A daemon should instead add the client to its
    /// `ServiceGroup`, which also handles signals and graceful shutdown.
    public static func withClient<Result: Sendable>(
        configuration: Configuration,
        logger: Logger = Logger(label: "phylactery"),
        _ body: (PhylacteryClient) async throws -> Result
    ) async throws -> Result {
        let client = PhylacteryClient(configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            do {
                let result = try await body(client)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }
}
