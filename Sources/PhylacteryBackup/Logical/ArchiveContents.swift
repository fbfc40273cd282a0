import Foundation

/// The table of contents of a custom-format archive, as `pg_restore --list` prints it.
///
/// Each entry is one line: `id; catalog-oid oid TYPE schema name owner`, where TYPE may be several
/// words (`TABLE DATA`, `FK CONSTRAINT`) and schema is `-` for objects outside a schema. Lines
/// starting with `;` are comments.
package struct ArchiveContents: Sendable {
    /// The entry lines, in restore order.
    package var entries: [String]
    /// The whole listing, comments included (what `--use-list` reads back).
    package var listing: String

    /// Runs `pg_restore --list` on `path`; a damaged archive fails here.
    static func read(_ path: String, tools: PostgresTools) async throws(BackupError) -> ArchiveContents {
        let output: String
        do {
            output = try await tools.run("pg_restore", ["--list", path], connectingTo: nil, doing: "Reading the archive \(path)")
        } catch {
            throw BackupError(.invalidArchive, "\(path) is not a readable pg_dump archive: \(error.message)", details: error.details)
        }
        return ArchiveContents(output)
    }

    package init(_ listing: String) {
        self.listing = listing
        self.entries = listing.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") && $0.contains(";") }
    }

    /// The words after `id; catalog-oid oid`.
    static func description(of entry: String) -> [Substring] {
        guard let semicolon = entry.firstIndex(of: ";") else { return [] }
        return entry[entry.index(after: semicolon)...].split(separator: " ").dropFirst(2).map { $0 }
    }

    /// `schema.name` of every table (partitions included).
    package var tables: [String] {
        self.entries.compactMap { entry in
            let words = Self.description(of: entry)
            guard words.count >= 3, words[0] == "TABLE", words[1] != "DATA", words[1] != "ATTACH" else { return nil }
            return "\(words[1]).\(words[2])"
        }
    }

    /// The listing without the entries that create (or comment on) the given schemas and extensions:
    /// what the target database already has.
    package func listWithout(schemas: Set<String>, extensions: Set<String>, functions: Set<String> = []) -> String {
        let lines = self.listing.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.filter { line -> Bool in
            if line.hasPrefix(";") || !line.contains(";") { return true }
            let words: [Substring] = Self.description(of: String(line))
            guard let type = words.first else { return true }
            if type == "SCHEMA", words.count >= 3 { return !schemas.contains(String(words[2])) }
            if type == "EXTENSION", words.count >= 3 { return !extensions.contains(String(words[2])) }
            // `FUNCTION verbatim erase_fact(text, …)`: `schema.name` without the arguments.
            if type == "FUNCTION", words.count >= 3, let name = words[2].split(separator: "(").first {
                return !functions.contains("\(words[1]).\(name)")
            }
            if type == "COMMENT", words.count >= 4, words[2] == "SCHEMA" { return !schemas.contains(String(words[3])) }
            if type == "COMMENT", words.count >= 4, words[2] == "EXTENSION" { return !extensions.contains(String(words[3])) }
            return true
        }
        return kept.joined(separator: "\n")
    }
}
