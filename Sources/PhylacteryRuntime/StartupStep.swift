public import Logging
public import Phylactery
public import PhylacteryEmbedded

/// The runtime's start-up, in order. Each stage runs once the previous one is done; graceful
/// shutdown undoes them in reverse order.
public enum StartupStage: Int, Sendable, Hashable, CaseIterable, Comparable {
    /// The embedded server is started (installed and initialised when needed) and supervised, or the
    /// external server is waited for.
    case server
    /// The client's pool runs; the chambers and `vector` exist.
    case client
    /// The schema is brought in line by ``MigrationPolicy``.
    case migrations
    /// The tracer writes spans.
    case tracer
    /// The workers (ghouls) and the housekeeping jobs run.
    case workers

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A step a daemon (or a later part of Phylactery) adds to the runtime's start-up, run just before
/// `stage`: restoring or checking something once the server answers and before the schema is
/// migrated, say (`before: .migrations`). Steps before one stage run in the order given. A step that
/// throws stops the start-up: the runtime shuts down what it started and `run()` throws the error.
public struct StartupStep: Sendable {
    /// For the log.
    public var name: String
    /// The stage this step runs before.
    public var stage: StartupStage
    /// The step itself.
    public var body: @Sendable (StartupContext) async throws -> Void

    /// A step named `name` that runs `body` just before `stage`.
    public init(_ name: String, before stage: StartupStage, _ body: @escaping @Sendable (StartupContext) async throws -> Void) {
        self.name = name
        self.stage = stage
        self.body = body
    }
}

/// What a ``StartupStep`` can use.
public struct StartupContext: Sendable {
    /// The runtime's configuration.
    public let configuration: PhylacteryConfiguration
    /// The client (its pool runs from the ``StartupStage/client`` stage on).
    public let client: PhylacteryClient
    /// The federation the runtime migrates.
    public let federation: Federation
    /// The embedded server, when the runtime runs one.
    public let embeddedServer: EmbeddedServer?
    /// The runtime's logger.
    public let logger: Logger
}
