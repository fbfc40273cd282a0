import Foundation

/// The fields of an `application/x-www-form-urlencoded` body or a query string: the first value of
/// each name.
struct ConsoleForm: Sendable {
    var fields: [String: String] = [:]

    init(_ encoded: String) {
        for pair in encoded.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            if self.fields[name] == nil { self.fields[name] = value }
        }
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// Percent-encodes `value` for a query string.
    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    /// A query string of the non-empty pairs, in order.
    static func query(_ pairs: [(String, String?)]) -> String {
        pairs.compactMap { name, value in
            guard let value, !value.isEmpty else { return nil }
            return "\(name)=\(encode(value))"
        }.joined(separator: "&")
    }

    subscript(_ name: String) -> String? {
        guard let value = self.fields[name], !value.isEmpty else { return nil }
        return value
    }
}
