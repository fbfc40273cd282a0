/// One term of an `ORDER BY`: a column of the model, a direction, and optionally where NULLs go.
///
/// Typed reads take `[Ordering]` or the same thing written as text (`"due DESC, id"`); either way
/// each column is checked against the model's columns (`id`, `created_at`, `updated_at` and the
/// schema's own) and emitted quoted, so no free SQL text reaches `ORDER BY`.
///
/// ```swift
/// try await tx.fetch(Run.self, orderBy: [.descending("priority"), .ascending("created_at")])
/// try await tx.fetch(Run.self, orderBy: "priority DESC, created_at")   // the same
/// ```
public struct Ordering: Sendable, Hashable, CustomStringConvertible {
    /// The sort direction.
    public enum Direction: String, Sendable, Hashable {
        case ascending = "ASC"
        case descending = "DESC"
    }

    /// Where NULLs sort; `nil` leaves PostgreSQL's default (last when ascending, first when descending).
    public enum Nulls: String, Sendable, Hashable {
        case first = "NULLS FIRST"
        case last = "NULLS LAST"
    }

    /// The column name as SQL spells it (`created_at`).
    public var column: String
    /// Ascending or descending.
    public var direction: Direction
    /// Where NULLs go, or `nil` for the default.
    public var nulls: Nulls?

    /// A term ordering by `column`.
    public init(_ column: String, _ direction: Direction = .ascending, nulls: Nulls? = nil) {
        self.column = column
        self.direction = direction
        self.nulls = nulls
    }

    /// Ascending by `column`.
    public static func ascending(_ column: String, nulls: Nulls? = nil) -> Ordering { Ordering(column, .ascending, nulls: nulls) }
    /// Descending by `column`.
    public static func descending(_ column: String, nulls: Nulls? = nil) -> Ordering { Ordering(column, .descending, nulls: nulls) }

    /// `"column" DESC NULLS LAST`, the column quoted.
    public var description: String { self.clause }

    /// The term as SQL, the column quoted.
    var clause: String {
        var text = SQLIdentifier.quote(self.column) + " " + self.direction.rawValue
        if let nulls { text += " " + nulls.rawValue }
        return text
    }

    /// The terms of an `ORDER BY` written as text: `column [ASC|DESC] [NULLS FIRST|LAST]`, separated
    /// by commas. Column names are plain identifiers (folded to lower case, as PostgreSQL does) or
    /// double-quoted ones. Returns `nil` for anything else (functions, expressions, numbers, `;`).
    public static func parse(_ text: String) -> [Ordering]? {
        var terms: [Ordering] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let words = part.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let first = words.first, let column = Self.identifier(first) else { return nil }
            var term = Ordering(column)
            var rest = words.dropFirst().map { $0.uppercased() }[...]
            if let word = rest.first, word == "ASC" || word == "DESC" {
                term.direction = word == "ASC" ? .ascending : .descending
                rest = rest.dropFirst()
            }
            if rest.first == "NULLS" {
                rest = rest.dropFirst()
                switch rest.first {
                case "FIRST"?: term.nulls = .first
                case "LAST"?: term.nulls = .last
                default: return nil
                }
                rest = rest.dropFirst()
            }
            guard rest.isEmpty else { return nil }
            terms.append(term)
        }
        return terms.isEmpty ? nil : terms
    }

    /// A plain identifier folded to lower case, or a double-quoted one without quotes inside.
    private static func identifier(_ word: String) -> String? {
        if word.count >= 2, word.hasPrefix("\""), word.hasSuffix("\"") {
            let inner = word.dropFirst().dropLast()
            return inner.isEmpty || inner.contains("\"") ? nil : String(inner)
        }
        guard let head = word.unicodeScalars.first, head == "_" || (head.properties.isAlphabetic && head.isASCII) else { return nil }
        let allowed = word.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || (48...57).contains($0.value)) }
        return allowed ? word.lowercased() : nil
    }

    /// Checks every term's column against the model's columns and returns the `ORDER BY` text.
    static func sql(_ terms: [Ordering], for schema: ModelSchema, operation: String, file: String, line: Int) throws -> String {
        let allowed = schema.allColumns.map(\.name)
        guard !terms.isEmpty else {
            throw PhylacteryError(.invalidArgument, "\(operation): an empty ordering; name at least one of \(schema.modelName)'s columns (\(allowed.joined(separator: ", "))); nothing was sent", file: file, line: line)
        }
        for term in terms where !allowed.contains(term.column) {
            throw PhylacteryError(
                .invalidArgument,
                "\(operation): '\(term.column)' is not a column of \(schema.modelName); order by one of \(allowed.joined(separator: ", ")); nothing was sent",
                file: file, line: line)
        }
        return terms.map(\.clause).joined(separator: ", ")
    }

    /// The parsed terms of `text`, or the typed error naming what is allowed.
    static func terms(_ text: String, for schema: ModelSchema, operation: String, file: String, line: Int) throws -> [Ordering] {
        guard let terms = parse(text) else {
            let allowed = schema.allColumns.map(\.name).joined(separator: ", ")
            throw PhylacteryError(
                .invalidArgument,
                "\(operation): orderBy must be columns of \(schema.modelName) each with an optional ASC/DESC and NULLS FIRST/LAST, separated by commas (\"due DESC, id\"); expressions, functions and ';' are refused. Columns: \(allowed); nothing was sent",
                file: file, line: line)
        }
        return terms
    }
}
