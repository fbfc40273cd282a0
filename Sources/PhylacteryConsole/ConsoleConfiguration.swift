/// Where and how the console listens, and where its access token lives.
///
/// By default it binds 127.0.0.1 on ``defaultPort``. Any other address is refused unless ``listen`` is
/// set and ``tls`` names a certificate and key: on a shared machine the console's pages (and its
/// token) must not cross a network in clear text.
public struct ConsoleConfiguration: Sendable, Hashable {
    /// The port the console uses unless told otherwise.
    public static let defaultPort = 8794

    /// A PEM certificate chain and private key for HTTPS.
    public struct TLS: Sendable, Hashable {
        /// The PEM file of the certificate chain (leaf first).
        public var certificatePath: String
        /// The PEM file of the private key.
        public var keyPath: String

        /// TLS settings.
        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    /// The directory holding the access token file (`console-token`, mode 0600): the Phylactery home.
    public var home: String
    /// The address to bind (default 127.0.0.1).
    public var host: String
    /// The port to bind (0: any free port, for tests).
    public var port: Int
    /// Allows binding an address other than loopback (requires ``tls``).
    public var listen: Bool
    /// HTTPS settings; required with ``listen``.
    public var tls: TLS?
    /// How often the live-refresh stream tells open pages to refresh.
    public var refreshInterval: Duration
    /// How long one live-refresh stream stays open before the browser reconnects (so a graceful
    /// shutdown never waits on an idle tab for long).
    public var streamLifetime: Duration

    /// A configuration; see the properties.
    public init(
        home: String, host: String = "127.0.0.1", port: Int = ConsoleConfiguration.defaultPort, listen: Bool = false, tls: TLS? = nil,
        refreshInterval: Duration = .seconds(5), streamLifetime: Duration = .seconds(60)
    ) {
        self.home = home
        self.host = host
        self.port = port
        self.listen = listen
        self.tls = tls
        self.refreshInterval = refreshInterval
        self.streamLifetime = streamLifetime
    }

    /// Whether `host` names the loopback interface.
    public static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased()
        return host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Checks the bind rules; throws ``ConsoleError`` naming the fix.
    public func validate() throws(ConsoleError) {
        guard (0...65535).contains(self.port) else {
            throw ConsoleError(.invalidPort, "the console's port must be between 0 and 65535 (got \(self.port)); pass --port with a valid number")
        }
        if self.listen, self.tls == nil {
            throw ConsoleError(.tlsRequired, "--listen serves the console beyond this machine, which needs HTTPS: add --tls-cert FILE and --tls-key FILE (PEM)")
        }
        if !Self.isLoopback(self.host), !self.listen {
            throw ConsoleError(.nonLocalAddress, "the console binds only to 127.0.0.1 unless told otherwise; to serve \(self.host), pass --listen \(self.host) with --tls-cert FILE and --tls-key FILE")
        }
    }

    /// The scheme pages are served over.
    public var scheme: String { self.tls == nil ? "http" : "https" }
}
