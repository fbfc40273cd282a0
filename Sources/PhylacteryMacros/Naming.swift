import PhylacteryNaming

/// Swift names to SQL names, as the macro needs them at compile time.
enum Naming {
    /// `NotebookPage` → `notebook_page`, `HTTPServer` → `http_server`: the rule the library uses
    /// for column names, from the target both share.
    static func snakeCase(_ name: String) -> String {
        SnakeCase.convert(name)
    }

    /// A simple English plural: `page` → `pages`, `category` → `categories`, `box` → `boxes`.
    /// Anything irregular is for `@Model(table:)`.
    static func plural(_ word: String) -> String {
        let vowels: Set<Character> = ["a", "e", "i", "o", "u"]
        if word.hasSuffix("y"), let before = word.dropLast().last, before.isLetter, !vowels.contains(before) {
            return word.dropLast() + "ies"
        }
        if ["s", "x", "ch", "sh"].contains(where: { word.hasSuffix($0) }) {
            return word + "es"
        }
        return word + "s"
    }

    /// The default table of a model type: its name in snake_case, pluralised.
    static func tableName(forType name: String) -> String {
        Self.plural(Self.snakeCase(name))
    }

    /// An identifier as it is spelled in strings: without the backticks of `` `default` ``.
    static func unescaped(_ identifier: String) -> String {
        identifier.hasPrefix("`") && identifier.hasSuffix("`") && identifier.count >= 2
            ? String(identifier.dropFirst().dropLast())
            : identifier
    }
}
