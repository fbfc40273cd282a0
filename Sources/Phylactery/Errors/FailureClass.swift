import PostgresNIO

/// What a background writer does with a failed write.
///
/// Background writers (job outcomes, heartbeats, the tracer) must never wedge: a failure tied to the
/// data of one row must not hold back the rest of its batch, and a failure of the server or the
/// connection must be waited out, not turned into lost work.
package enum FailureClass: Sendable, Hashable {
    /// Tied to the rows written (SQLSTATE classes 22 data exception, 23 integrity constraint
    /// violation, 54 program limit exceeded): the batch is split to find the rows that fail.
    case data
    /// Anything else — a lost connection, a restarting server, a lock or statement timeout, a
    /// serialization failure — is retried, the whole batch, after a backoff.
    case transient

    /// Classifies `error` (a ``PhylacteryError`` or a PostgresNIO `PSQLError`).
    package init(_ error: any Error) {
        let state = FailureClass.sqlState(of: error) ?? ""
        if state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("54") {
            self = .data
        } else {
            self = .transient
        }
    }

    /// The server's SQLSTATE behind `error`, if the server reported it.
    package static func sqlState(of error: any Error) -> String? {
        if let error = error as? PhylacteryError {
            return error.sqlState ?? error.underlying.flatMap(sqlState(of:))
        }
        if let psql = error as? PSQLError { return psql.serverInfo?[.sqlState] }
        return nil
    }
}
