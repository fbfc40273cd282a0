import Foundation

/// A parsed `postgres://` connection URL.
///
/// Accepted forms (the same ones libpq accepts, minus the rarely used ones):
/// - `postgres://user:password@host:5432/database?sslmode=require`
/// - `postgresql://user@/database?host=/path/to/socket/dir` (Unix socket directory as a query parameter)
/// - `postgres://user@%2Fpath%2Fto%2Fsocket%2Fdir/database` (percent-encoded socket directory as host)
///
/// A socket *directory* is given, as with libpq; the socket file inside it is `.s.PGSQL.<port>`.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// How the client reaches the server.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        /// A Unix-domain socket: the directory and the port that names the socket file.
        case unixSocket(directory: String, port: Int)

        /// The socket file for ``unixSocket(directory:port:)``.
        public var socketPath: String? {
            if case .unixSocket(let directory, let port) = self {
                return (directory.hasSuffix("/") ? directory : directory + "/") + ".s.PGSQL.\(port)"
            }
            return nil
        }
    }

    /// TLS behaviour, from `sslmode`.
    public enum TLSMode: String, Sendable, Hashable {
        /// `sslmode=disable`: plain connection.
        case disable
        /// `sslmode=prefer` (the default over TCP): TLS when the server offers it.
        case prefer
        /// `sslmode=require`: refuse to talk without TLS; the certificate is not verified (as in libpq).
        case require
        /// `sslmode=verify-full` (or `verify-ca`): TLS with full certificate and host name verification.
        case verifyFull = "verify-full"
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode

    public init(endpoint: Endpoint, username: String, password: String? = nil, database: String, tlsMode: TLSMode = .prefer) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tlsMode = tlsMode
    }

    /// Parses a connection URL, throwing ``PhylacteryError/Code/invalidConfiguration`` with the reason.
    public init(parsing text: String) throws(PhylacteryError) {
        func invalid(_ reason: String) -> PhylacteryError {
            PhylacteryError(.invalidConfiguration, "The database URL is not usable: \(reason). Expected postgres://user[:password]@host[:port]/database or postgres://user@/database?host=/socket/dir.")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw invalid("it is empty") }
        guard let components = URLComponents(string: trimmed) else { throw invalid("it cannot be parsed as a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("the scheme must be postgres:// or postgresql://, not \(components.scheme.map { "\($0)://" } ?? "missing")")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            query[item.name] = item.value ?? ""
        }
        let known: Set<String> = ["host", "port", "user", "password", "sslmode", "dbname"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("the parameter '\(unknown)' is not supported (known: \(known.sorted().joined(separator: ", ")))")
        }

        var port = 5432
        if let explicit = components.port {
            port = explicit
        }
        if let portText = query["port"] {
            guard let value = Int(portText) else { throw invalid("the port '\(portText)' is not a number") }
            port = value
        }
        guard (1...65535).contains(port) else { throw invalid("the port \(port) is outside 1…65535") }

        let rawHost = query["host"] ?? components.percentEncodedHost.flatMap { $0.removingPercentEncoding } ?? ""
        if rawHost.hasPrefix("/") {
            self.endpoint = .unixSocket(directory: rawHost, port: port)
        } else if rawHost.isEmpty {
            throw invalid("it names no host (give host:port, or ?host=/socket/directory for a Unix socket)")
        } else {
            self.endpoint = .tcp(host: rawHost, port: port)
        }

        let user = query["user"] ?? components.user ?? ""
        guard !user.isEmpty else { throw invalid("it names no user (postgres://USER@…)") }
        self.username = user
        self.password = query["password"] ?? components.password

        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        let database = query["dbname"] ?? path
        guard !database.isEmpty else { throw invalid("it names no database (…/DATABASE at the end)") }
        guard !database.contains("/") else { throw invalid("the database name '\(database)' contains '/'") }
        self.database = database

        switch query["sslmode"] ?? "prefer" {
        case "disable": self.tlsMode = .disable
        case "allow", "prefer": self.tlsMode = .prefer
        case "require": self.tlsMode = .require
        case "verify-ca", "verify-full": self.tlsMode = .verifyFull
        case let other: throw invalid("sslmode '\(other)' is not one of disable, prefer, require, verify-full")
        }
    }

    /// The URL as text, with the password replaced by `***` (safe to print and log).
    public var description: String { self.render(revealingPassword: false) }

    /// The URL as text, password included. Use it to hand the URL to another program, never to log it.
    public var unredacted: String { self.render(revealingPassword: true) }

    /// This URL with another database name: how tests derive their own databases from one server.
    public func with(database: String) -> DatabaseURL {
        var copy = self
        copy.database = database
        return copy
    }

    private func render(revealingPassword: Bool) -> String {
        func enc(_ s: String) -> String {
            var allowed = CharacterSet.urlUserAllowed
            allowed.remove(charactersIn: ":@/?#")
            return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
        }
        var credentials = enc(self.username)
        if let password {
            credentials += ":" + (revealingPassword ? enc(password) : "***")
        }
        var params: [String] = []
        let authority: String
        switch self.endpoint {
        case .tcp(let host, let port):
            let bracketed = host.contains(":") ? "[\(host)]" : host
            authority = port == 5432 ? bracketed : "\(bracketed):\(port)"
        case .unixSocket(let directory, let port):
            authority = ""
            params.append("host=\(directory.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? directory)")
            if port != 5432 { params.append("port=\(port)") }
        }
        if self.tlsMode != .prefer { params.append("sslmode=\(self.tlsMode.rawValue)") }
        let query = params.isEmpty ? "" : "?" + params.joined(separator: "&")
        return "postgres://\(credentials)@\(authority)/\(enc(self.database))\(query)"
    }
}
