/// Swift names to SQL names, as the macro needs them at compile time.
enum Naming {
    /// `NotebookPage` → `notebook_page`, `HTTPServer` → `http_server`.
    ///
    /// The same rule as `SQLNaming.snakeCase` in the library, which derives column names at run
    /// time; the macro cannot import the library, so the rule lives here a second time.
    static func snakeCase(_ name: String) -> String {
        let characters = Array(name)
        var result = ""
        for (index, character) in characters.enumerated() {
            if character.isUppercase {
                let previous = index > 0 ? characters[index - 1] : nil
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                let startsWord = previous.map { $0.isLowercase || $0.isNumber } ?? false
                let endsAcronym = (previous?.isUppercase ?? false) && (next?.isLowercase ?? false)
                if index > 0 && (startsWord || endsAcronym) && !result.hasSuffix("_") { result.append("_") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
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
