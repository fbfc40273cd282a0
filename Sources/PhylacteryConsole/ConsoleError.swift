/// What the console refuses, with a message that names the fix.
public struct ConsoleError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of refusal.
    public enum Code: String, Sendable, Hashable {
        /// The address is not a loopback address and `--listen` was not given.
        case nonLocalAddress
        /// `--listen` without a TLS certificate and key.
        case tlsRequired
        /// The TLS certificate or key could not be read.
        case tlsUnreadable
        /// The port is outside 0…65535.
        case invalidPort
        /// The access token file could not be created or read, or others can read it.
        case tokenFile
        /// A request's parameter is malformed.
        case badRequest
    }

    /// The kind of refusal.
    public var code: Code
    /// A sentence for a person: what was refused and what to do.
    public var message: String

    /// A refusal.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
