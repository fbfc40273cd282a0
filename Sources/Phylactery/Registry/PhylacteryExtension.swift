import Synchronization

/// A plugin of the daemon that brings its own models.
///
/// ```swift
/// struct Notebook: PhylacteryExtension {
///     let slug = "notebook"
///     let version = "1.0.0"
///     func initialize(_ context: ExtensionContext) throws {
///         context.register(NotebookPage.self)
///     }
/// }
/// ```
///
/// Every table an extension registers starts with its slug and `_` (`notebook_pages`), so two
/// extensions can never collide silently.
public protocol PhylacteryExtension: Sendable {
    /// A stable identifier: lowercase letters, digits and `_`, starting with a letter. It prefixes
    /// every table of the extension and names it in the ownership registry, so it must never change.
    var slug: String { get }
    /// The extension's version, recorded with its models in the registry.
    var version: String { get }
    /// Registers the extension's models. Called once when the federation is assembled.
    func initialize(_ context: ExtensionContext) throws
}

/// What an extension sees while it initialises: the place to register its models and job handlers.
public final class ExtensionContext: Sendable {
    /// The slug of the extension being initialised.
    public let slug: String
    private let registered = Mutex<[ModelRegistration]>([])

    init(slug: String) { self.slug = slug }

    /// Adds a model to the federation under this extension's ownership.
    public func register<Model: PersistentModel>(_ model: Model.Type) {
        self.registered.withLock { $0.append(ModelRegistration(model)) }
    }

    /// Adds a registration made without a Swift type (generated federations, tests).
    package func append(_ registration: ModelRegistration) {
        self.registered.withLock { $0.append(registration) }
    }

    var registrations: [ModelRegistration] { self.registered.withLock { $0 } }

    private let handlers = Mutex<[AnyJobHandler]>([])

    /// Declares the handler of one kind of job; `phylactery worker` runs it for every job of that kind.
    /// Job kinds should start with the extension's slug (`tasks.remind`) so two extensions never share one.
    public func handle<J: Job>(_ type: J.Type, _ handler: @escaping JobHandlerFunction<J>) {
        self.handlers.withLock { $0.append(AnyJobHandler(type, handler)) }
    }

    /// Declares the handler of one kind of job whose result is stored with the completed job (jsonb).
    public func handle<J: Job, R: Encodable & Sendable>(_ type: J.Type, _ handler: @escaping @Sendable (J, JobContext) async throws -> R) {
        self.handlers.withLock { $0.append(AnyJobHandler(type, returning: R.self, handler)) }
    }

    var jobHandlers: [AnyJobHandler] { self.handlers.withLock { $0 } }

    private let periodic = Mutex<[PeriodicJob]>([])

    /// Declares a job enqueued on a schedule (a nightly digest, an hourly sync). The runtime's workers
    /// enqueue it at every fire, whichever process leads the scheduler; a disabled extension's
    /// schedules are left out with it. Name it after the extension (`tasks.digest`).
    public func schedule(_ job: PeriodicJob) {
        self.periodic.withLock { $0.append(job) }
    }

    var periodicJobs: [PeriodicJob] { self.periodic.withLock { $0 } }
}

/// A registered model: its schema and its Swift type.
public struct ModelRegistration: Sendable {
    /// The model's table description.
    public let schema: ModelSchema
    /// The Swift type, when the schema came from one.
    public let type: (any PersistentModel.Type)?

    /// Registers a model type.
    public init<Model: PersistentModel>(_ type: Model.Type) {
        self.schema = Model.schema
        self.type = type
    }

    /// Registers a table description with no Swift type behind it (generated federations, tools).
    public init(schema: ModelSchema) {
        self.schema = schema
        self.type = nil
    }
}
