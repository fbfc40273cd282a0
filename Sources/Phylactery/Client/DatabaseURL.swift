import Foundation

/// A parsed `postgres://` connection URL: one server, or several for a primary and its standbys.
///
/// Accepted forms (the same ones libpq accepts, minus the rarely used ones):
/// - `postgres://user:password@host:5432/database?sslmode=require`
/// - `postgresql://user@/database?host=/path/to/socket/dir` (Unix socket directory as a query parameter)
/// - `postgres://user@%2Fpath%2Fto%2Fsocket%2Fdir/database` (percent-encoded socket directory as host)
/// - `postgres://user:password@db1:5432,db2:5433/database` (several hosts, each with its port)
/// - `postgres://user@/database?host=/run/a,/run/b&port=5432,5433` (several hosts as query parameters;
///   one port applies to every host, else one port per host)
/// - `…?target_session_attrs=read-write` (or `primary`, or `any`): which server the client writes to.
///
/// A socket *directory* is given, as with libpq; the socket file inside it is `.s.PGSQL.<port>`.
///
/// With several hosts, ``PhylacteryClient`` finds the primary itself (see ``TargetSessionAttributes``)
/// and sends ``PhylacteryClient/readTransaction(options:isolation:file:line:_:)`` to a standby whose
/// replay lag is within bounds. Nothing names a host's role: roles change at every promotion, so the
/// client asks each server instead.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// How the client reaches the server.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
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

        /// Where the server is, for messages: `host:port` or `the Unix socket /dir/.s.PGSQL.5432`.
        public var description: String {
            switch self {
            case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket: return "the Unix socket \(self.socketPath!)"
            }
        }

        /// The port, whichever the kind.
        var port: Int {
            switch self {
            case .tcp(_, let port), .unixSocket(_, let port): return port
            }
        }

        /// The host or socket directory, as libpq's `host` takes it.
        var hostText: String {
            switch self {
            case .tcp(let host, _): return host
            case .unixSocket(let directory, _): return directory
            }
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

    /// Which server the client's ordinary work (every transaction, query and pooled connection but a
    /// read transaction) goes to, from `target_session_attrs` (libpq's names).
    ///
    /// Unset on a URL with one host, the client connects to that host as it always did and asks
    /// nothing. Unset on a URL with several hosts, it means ``readWrite`` — unlike libpq, whose default
    /// is `any`, because the client writes.
    public enum TargetSessionAttributes: String, Sendable, Hashable, CaseIterable {
        /// `read-write`: a server that is not in recovery (`pg_is_in_recovery()`) and whose sessions
        /// are not read-only (`transaction_read_only`).
        case readWrite = "read-write"
        /// `primary`: a server that is not in recovery, read-only sessions or not.
        case primary
        /// `any`: the first host, in the URL's order, that accepts a connection; no role is asked
        /// (several poolers in front of one primary, say).
        case any
    }

    /// The servers, in the URL's order; never empty. With one, the client connects to it as always;
    /// with several, it finds the primary among them (see ``TargetSessionAttributes``).
    public var endpoints: [Endpoint]
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode
    /// `target_session_attrs`, when the URL gives it.
    public var targetSessionAttributes: TargetSessionAttributes?

    /// The first of ``endpoints`` (the only one of a single-host URL). Setting it makes the URL name
    /// that one server only.
    public var endpoint: Endpoint {
        get { self.endpoints[0] }
        set { self.endpoints = [newValue] }
    }

    public init(endpoint: Endpoint, username: String, password: String? = nil, database: String, tlsMode: TLSMode = .prefer) {
        self.init(endpoints: [endpoint], username: username, password: password, database: database, tlsMode: tlsMode)
    }

    /// A URL naming several servers (at least one), in the order the client tries them.
    public init(
        endpoints: [Endpoint], username: String, password: String? = nil, database: String, tlsMode: TLSMode = .prefer,
        targetSessionAttributes: TargetSessionAttributes? = nil
    ) {
        precondition(!endpoints.isEmpty, "a DatabaseURL names at least one server")
        self.endpoints = endpoints
        self.username = username
        self.password = password
        self.database = database
        self.tlsMode = tlsMode
        self.targetSessionAttributes = targetSessionAttributes
    }

    /// Parses a connection URL, throwing ``PhylacteryError/Code/invalidConfiguration`` with the reason.
    public init(parsing text: String) throws(PhylacteryError) {
        func invalid(_ reason: String) -> PhylacteryError {
            PhylacteryError(.invalidConfiguration, "The database URL is not usable: \(reason). Expected postgres://user[:password]@host[:port][,host2[:port2]…]/database or postgres://user@/database?host=/socket/dir.")
        }
        func decoded(_ text: Substring, _ what: String) throws(PhylacteryError) -> String {
            guard let value = String(text).removingPercentEncoding else { throw invalid("the \(what) is not valid percent-encoding") }
            return value
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw invalid("it is empty") }
        guard let separator = trimmed.range(of: "://") else {
            throw invalid("the scheme must be postgres:// or postgresql://, not missing")
        }
        let scheme = trimmed[..<separator.lowerBound].lowercased()
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("the scheme must be postgres:// or postgresql://, not \(scheme)://")
        }
        var rest = trimmed[separator.upperBound...]
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        guard !rest.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) else {
            throw invalid("it contains white space (percent-encode it as %20)")
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let afterAuthority = rest[authorityEnd...]
        let queryStart = afterAuthority.firstIndex(of: "?")
        let pathText = afterAuthority[..<(queryStart ?? afterAuthority.endIndex)]
        let queryText = queryStart.map { afterAuthority[afterAuthority.index(after: $0)...] } ?? ""

        var query: [String: String] = [:]
        for item in queryText.split(separator: "&") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try decoded(parts[0], "parameter name")
            query[name] = parts.count > 1 ? try decoded(parts[1], "value of '\(name)'") : ""
        }
        let known: Set<String> = ["host", "port", "user", "password", "sslmode", "dbname", "target_session_attrs"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("the parameter '\(unknown)' is not supported (known: \(known.sorted().joined(separator: ", ")))")
        }

        // user[:password]@host[:port],host[:port]…  (the last @ ends the user part: hosts have none)
        var userText: Substring = ""
        var passwordText: Substring?
        var hostsText = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostsText = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                userText = userInfo[..<colon]
                passwordText = userInfo[userInfo.index(after: colon)...]
            } else {
                userText = userInfo
            }
        }
        // Like libpq: the URL's hosts and ports become two lists; `host=` and `port=` replace them.
        var hosts: [String] = []
        var ports: [String] = []
        if !hostsText.isEmpty {
            for element in hostsText.split(separator: ",", omittingEmptySubsequences: false) {
                var host: Substring = element
                var port: Substring = ""
                if element.hasPrefix("[") {
                    guard let close = element.firstIndex(of: "]") else { throw invalid("the host '\(element)' opens '[' without closing it") }
                    host = element[element.index(after: element.startIndex)..<close]
                    let after = element[element.index(after: close)...]
                    if !after.isEmpty {
                        guard after.hasPrefix(":") else { throw invalid("the host '\(element)' has text after ']' that is not :port") }
                        port = after.dropFirst()
                    }
                } else if let colon = element.firstIndex(of: ":") {
                    host = element[..<colon]
                    port = element[element.index(after: colon)...]
                }
                hosts.append(try decoded(host, "host"))
                ports.append(try decoded(port, "port"))
            }
        }
        if let list = query["host"] { hosts = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        if let list = query["port"] { ports = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        if hosts.isEmpty || hosts == [""] {
            throw invalid("it names no host (give host:port, or ?host=/socket/directory for a Unix socket)")
        }
        if let empty = hosts.firstIndex(of: "") {
            throw invalid("host number \(empty + 1) of \(hosts.count) is empty")
        }
        if ports.allSatisfy(\.isEmpty) { ports = [] }
        guard ports.count <= 1 || ports.count == hosts.count else {
            throw invalid("it names \(hosts.count) hosts and \(ports.count) ports (give one port for all, or one per host)")
        }
        var endpoints: [Endpoint] = []
        for (index, host) in hosts.enumerated() {
            let portText = ports.isEmpty ? "" : ports[ports.count == 1 ? 0 : index]
            var port = 5432
            if !portText.isEmpty {
                guard let value = Int(portText) else { throw invalid("the port '\(portText)' is not a number") }
                port = value
            }
            guard (1...65535).contains(port) else { throw invalid("the port \(port) is outside 1…65535") }
            endpoints.append(host.hasPrefix("/") ? .unixSocket(directory: host, port: port) : .tcp(host: host, port: port))
        }
        self.endpoints = endpoints

        var user = try decoded(userText, "user name")
        if let given = query["user"] { user = given }
        guard !user.isEmpty else { throw invalid("it names no user (postgres://USER@…)") }
        self.username = user
        if let given = query["password"] {
            self.password = given
        } else if let passwordText {
            self.password = try decoded(passwordText, "password")
        } else {
            self.password = nil
        }

        var path = try decoded(pathText, "database name")
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

        if let attributes = query["target_session_attrs"] {
            guard let value = TargetSessionAttributes(rawValue: attributes) else {
                throw invalid("target_session_attrs '\(attributes)' is not one of read-write, primary, any (read transactions go to standbys by themselves: client.readTransaction)")
            }
            self.targetSessionAttributes = value
        } else {
            self.targetSessionAttributes = nil
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

    /// This URL narrowed to its `index`th server (what one host's pool and probes connect with).
    package func host(_ index: Int) -> DatabaseURL {
        var copy = self
        copy.endpoints = [self.endpoints[index]]
        return copy
    }

    /// Whether the client must ask the servers their role: several hosts, or a `target_session_attrs`
    /// that asks for one. A single-host URL without it is used as it always was.
    package var needsTopology: Bool {
        self.endpoints.count > 1 || (self.targetSessionAttributes != nil && self.targetSessionAttributes != .any)
    }

    /// The write target the client looks for: the URL's, else ``TargetSessionAttributes/readWrite``.
    package var effectiveTargetSessionAttributes: TargetSessionAttributes {
        self.targetSessionAttributes ?? .readWrite
    }

    /// libpq's `host`, `port` and `target_session_attrs` for this URL (`PGHOST`, `PGPORT`,
    /// `PGTARGETSESSIONATTRS`), for the PostgreSQL tools the commands run: every host, comma-separated,
    /// and with several hosts the role the client would look for, so a tool connects to the primary.
    package var libpqHostEnvironment: [String: String] {
        var environment = [
            "PGHOST": self.endpoints.map(\.hostText).joined(separator: ","),
            "PGPORT": self.endpoints.map { String($0.port) }.joined(separator: ","),
        ]
        if self.needsTopology {
            environment["PGTARGETSESSIONATTRS"] = self.effectiveTargetSessionAttributes.rawValue
        } else if let targetSessionAttributes {
            environment["PGTARGETSESSIONATTRS"] = targetSessionAttributes.rawValue
        }
        return environment
    }

    private func render(revealingPassword: Bool) -> String {
        func enc(_ s: String) -> String {
            var allowed = CharacterSet.urlUserAllowed
            allowed.remove(charactersIn: ":@/?#")
            return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
        }
        func encQuery(_ s: String) -> String {
            let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/:")
            return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
        }
        var credentials = enc(self.username)
        if let password {
            credentials += ":" + (revealingPassword ? enc(password) : "***")
        }
        var params: [String] = []
        let authority: String
        if self.endpoints.allSatisfy({ $0.socketPath == nil }) {
            authority = self.endpoints.map { endpoint in
                let host = endpoint.hostText
                let bracketed = host.contains(":") ? "[\(host)]" : enc(host)
                return endpoint.port == 5432 ? bracketed : "\(bracketed):\(endpoint.port)"
            }.joined(separator: ",")
        } else {
            // A socket directory cannot stand in the authority readably: every host goes to `host=`.
            authority = ""
            params.append("host=" + self.endpoints.map { encQuery($0.hostText) }.joined(separator: ","))
            let ports = self.endpoints.map(\.port)
            if Set(ports).count > 1 {
                params.append("port=" + ports.map(String.init).joined(separator: ","))
            } else if ports[0] != 5432 {
                params.append("port=\(ports[0])")
            }
        }
        if self.tlsMode != .prefer { params.append("sslmode=\(self.tlsMode.rawValue)") }
        if let targetSessionAttributes { params.append("target_session_attrs=\(targetSessionAttributes.rawValue)") }
        let query = params.isEmpty ? "" : "?" + params.joined(separator: "&")
        return "postgres://\(credentials)@\(authority)/\(enc(self.database))\(query)"
    }
}
