/// Swift names to SQL names, shared by the library (column names at run time) and the `@Model`
/// macro (default table names at compile time), which cannot import the library.
package enum SnakeCase {
    /// `workspaceID` → `workspace_id`, `createdAt` → `created_at`, `HTTPServer` → `http_server`.
    package static func convert(_ name: String) -> String {
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
}
