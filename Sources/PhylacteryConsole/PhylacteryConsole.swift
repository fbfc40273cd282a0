public import Hummingbird
import HummingbirdCore
public import Logging
import Mustache
import NIOCore
import NIOSSL
public import Phylactery
public import PhylacteryBackup
public import Prometheus
public import ServiceLifecycle
import HummingbirdTLS

/// The operator's console: a local web server with the queue, traces, memory, facts, migrations and
/// the server's health as
/// server-rendered pages, the same data as a JSON API under `/api/v1/` (described by the OpenAPI file
/// `Sources/PhylacteryConsole/openapi.yaml`), and `/metrics` for Prometheus.
///
/// Start it in-process (a daemon adds it to its `ServiceGroup`; it is a `Service`):
///
/// ```swift
/// var console = try PhylacteryConsole(client: runtime.client, configuration: .init(home: home), metrics: registry,
///                                     onReady: { url in print("console on \(url)") })   // the URL with the token
/// console.startsAfter = { try await runtime.health.waitUntilReady() }
/// let group = ServiceGroup(services: [runtime, console], logger: logger)
/// ```
///
/// Security model: it binds 127.0.0.1 unless ``ConsoleConfiguration/listen`` is set with TLS; every
/// request needs the access token (``ConsoleAccess``), every change is a POST with the CSRF token, and
/// every response carries a strict Content-Security-Policy, `X-Frame-Options: DENY`, `nosniff`,
/// `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. Pages load nothing from elsewhere.
public struct PhylacteryConsole: Service, Sendable {
    /// The database the console shows and steers.
    public let client: PhylacteryClient
    /// Where it listens.
    public let configuration: ConsoleConfiguration
    /// Its access and CSRF tokens.
    public let access: ConsoleAccess
    /// The registry `/metrics` emits (the one the process's `MetricsSystem` was bootstrapped with,
    /// through `PrometheusMetricsFactory`); `nil`: `/metrics` answers 404.
    public let metrics: PrometheusCollectorRegistry?
    /// The models whose migrations the Migrations page plans (the core's and the hosted extensions').
    public let federation: Federation
    /// The local server's backups (`Crypt.open(server)`), for the Backups page; `nil`: not configured.
    public var backups: Crypt?
    let logger: Logger
    let templates: MustacheLibrary
    /// Finished jobs by queue and state, refreshed in the background at most every 15 s (see
    /// ``jobCounts()``): counting a million finished rows takes about a second.
    let finishedJobCounts: RefreshingValue<[QueueOperator.StateCount]>
    /// Called once the server listens, with the URL (including the token) to open.
    let onReady: @Sendable (String) -> Void
    /// Awaited by ``run()`` before it binds: a daemon sets it to its runtime's readiness
    /// (`{ try await runtime.health.waitUntilReady() }`) so the console opens once the database answers.
    public var startsAfter: @Sendable () async throws -> Void = {}

    /// A console over `client`. Validates the bind rules and loads (or creates) the access token in
    /// ``ConsoleConfiguration/home`` unless `access` is given.
    public init(
        client: PhylacteryClient, configuration: ConsoleConfiguration, access: ConsoleAccess? = nil,
        metrics: PrometheusCollectorRegistry? = nil, federation: Federation? = nil, logger: Logger = Logger(label: "phylactery.console"),
        onReady: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        try configuration.validate()
        self.client = client
        self.configuration = configuration
        self.access = try access ?? ConsoleAccess.loadOrCreate(home: configuration.home)
        self.metrics = metrics
        self.federation = try federation ?? Federation.standard(extensions: [])
        self.logger = logger
        self.onReady = onReady
        let jobs = client.jobs
        self.finishedJobCounts = RefreshingValue(maxAge: .seconds(15)) { try await jobs.finishedCounts() }
        var library = MustacheLibrary()
        for (name, text) in ConsoleTemplates.all {
            library.register(try MustacheTemplate(string: text), named: name)
        }
        self.templates = library
    }

    /// The URL to open, with the access token (for the configured port; see `onReady` for the bound one).
    public var url: String { self.url(port: self.configuration.port) }

    func url(port: Int) -> String {
        let host = self.configuration.host.contains(":") && !self.configuration.host.hasPrefix("[") ? "[\(self.configuration.host)]" : self.configuration.host
        return "\(self.configuration.scheme)://\(host):\(port)/?token=\(self.access.token)"
    }

    /// The router: the security middleware, then every route of ``ConsoleRoutes/all``.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ConsoleSecurityMiddleware(access: self.access, secureCookie: self.configuration.tls != nil, logger: self.logger))
        for route in ConsoleRoutes.all {
            let handler = route.handler
            router.on(RouterPath(route.path), method: route.method) { request, context in
                try await handler(self, request, context)
            }
        }
        return router
    }

    /// The Hummingbird application serving ``router()`` with the configured address and TLS.
    public func application() throws -> some ApplicationProtocol {
        let server: HTTPServerBuilder
        if let tls = self.configuration.tls {
            server = try .tls(.http1(), tlsConfiguration: try Self.tlsConfiguration(tls))
        } else {
            server = .http1()
        }
        let onReady = self.onReady
        let console = self
        return Application(
            router: self.router(), server: server,
            configuration: .init(address: .hostname(self.configuration.host, port: self.configuration.port), serverName: nil),
            onServerRunning: { channel in onReady(console.url(port: channel.localAddress?.port ?? console.configuration.port)) },
            logger: self.logger)
    }

    static func tlsConfiguration(_ tls: ConsoleConfiguration.TLS) throws(ConsoleError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.keyPath, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        } catch {
            throw ConsoleError(.tlsUnreadable, "cannot read the TLS certificate \(tls.certificatePath) or key \(tls.keyPath) (\(error)); pass PEM files with --tls-cert and --tls-key")
        }
    }

    /// Serves until cancelled or until a graceful shutdown of the service group.
    public func run() async throws {
        let application = try self.application()
        do {
            try await cancelWhenGracefulShutdown { try await self.startsAfter() }
        } catch is CancellationError {
            return  // shut down before it was ready: nothing to serve
        }
        try await application.runService()
    }
}
