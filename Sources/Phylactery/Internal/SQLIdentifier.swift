import Foundation

/// Quotes SQL identifiers. Every schema, table or column name that is spliced into SQL text (rather
/// than bound as a parameter) goes through here.
package enum SQLIdentifier {
    /// `name` as a double-quoted identifier, with embedded quotes doubled.
    package static func quote(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `schema.name`, both parts quoted.
    package static func quote(schema: String, name: String) -> String {
        quote(schema) + "." + quote(name)
    }

    /// A string literal for the rare statements that cannot take bind parameters (DDL options).
    package static func literal(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
