/// The `// MARK: name` … `// MARK: end` sections of a source file, by name: the code blocks a DocC
/// article shows, which a test checks are the compiled text.
enum CheckedSnippets {
    static func sections(of source: String) -> [String: String] {
        var sections: [String: String] = [:]
        var name: String?
        var lines: [String] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("// MARK: end"), let current = name {
                sections[current] = lines.joined(separator: "\n")
                name = nil
            } else if line.hasPrefix("// MARK: ") {
                name = String(line.dropFirst("// MARK: ".count))
                lines = []
            } else if name != nil {
                lines.append(String(line))
            }
        }
        return sections
    }
}
