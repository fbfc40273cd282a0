public import Foundation
import Crypto

/// A reviewable migration: revision, parent, message, and the up and down SQL, as one text file.
///
/// ```sql
/// -- phylactery migration
/// -- revision: 20261126193000_3f9a1c
/// -- parent: none
/// -- message: notebook pages
///
/// -- migrate:up
///
/// -- step 1: create table public.notebook_pages [notebook]
/// CREATE TABLE "public"."notebook_pages" (…);
///
/// -- step 2 (outside transaction): add index notebook_pages_title_idx on public.notebook_pages [notebook]
/// CREATE INDEX CONCURRENTLY …;
///
/// -- migrate:down
/// …
/// ```
///
/// Each block holds one statement. `(outside transaction)` blocks run after the transactional
/// part commits; `{data-loss, …}` names the hazards a block needs consent for. A
/// `-- parameters: […]` line holds the values a block binds as `$1`, `$2`, … (the ownership
/// registry's rows), and `-- on failure: drop invalid index …` names the index a concurrent build
/// makes, dropped again when the build fails. The checksum of
/// the whole text is kept when the migration is applied, so an edited applied file is refused.
public struct MigrationFile: Sendable, Hashable {
    /// One statement with its description.
    public struct Block: Sendable, Hashable {
        public var summary: String
        public var owner: String
        public var statement: MigrationStatement
        public var hazards: Set<Hazard>
    }

    /// `yyyyMMddHHmmss_xxxxxx`: sorts by creation time, unique across machines.
    public var revision: String
    /// The revision this one applies on top of, or `nil` for the first.
    public var parent: String?
    /// What the migration is for.
    public var message: String
    /// Statements that apply it.
    public var up: [Block]
    /// Statements that undo it.
    public var down: [Block]

    /// Makes a migration from a plan.
    public init(plan: MigrationPlan, parent: String?, message: String, revision: String = MigrationFile.newRevision()) {
        self.revision = revision
        self.parent = parent
        self.message = message.replacingOccurrences(of: "\n", with: " ")
        self.up = plan.steps.flatMap { step in
            step.up.map { Block(summary: step.summary, owner: step.owner, statement: $0, hazards: step.hazards) }
        }
        self.down = plan.steps.reversed().flatMap { step in
            step.down.map { Block(summary: "undo: " + step.summary, owner: step.owner, statement: $0, hazards: step.downHazards) }
        }
    }

    init(revision: String, parent: String?, message: String, up: [Block], down: [Block]) {
        self.revision = revision
        self.parent = parent
        self.message = message
        self.up = up
        self.down = down
    }

    /// A new revision id from the current time and 24 random bits.
    public static func newRevision(at date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let stamp = String(format: "%04d%02d%02d%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        return stamp + "_" + String(format: "%06x", UInt32.random(in: 0..<0x100_0000))
    }

    /// Every hazard of the up blocks.
    public var hazards: Set<Hazard> { self.up.reduce(into: []) { $0.formUnion($1.hazards) } }

    /// The file's text.
    public var text: String {
        var lines = [
            "-- phylactery migration",
            "-- revision: \(self.revision)",
            "-- parent: \(self.parent ?? "none")",
            "-- message: \(self.message)",
            "",
        ]
        lines += Self.render(section: "up", self.up)
        lines += Self.render(section: "down", self.down)
        return lines.joined(separator: "\n")
    }

    /// The up statements as the file shows them.
    public var upSection: String { Self.render(section: "up", self.up).joined(separator: "\n") }

    /// SHA-256 of the text, hex.
    public var checksum: String { Self.checksum(of: self.text) }

    static func checksum(of text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The file name: revision and a slug of the message.
    public var fileName: String {
        let slug = self.message.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let trimmed = String(slug.prefix(40)).split(separator: "_", omittingEmptySubsequences: true).joined(separator: "_")
        return "\(self.revision)\(trimmed.isEmpty ? "" : "_" + trimmed).sql"
    }

    static func render(section: String, _ blocks: [Block]) -> [String] {
        var lines = ["-- migrate:\(section)", ""]
        for (number, block) in blocks.enumerated() {
            var header = "-- step \(number + 1)"
            if !block.statement.transactional { header += " (outside transaction)" }
            if !block.hazards.isEmpty { header += " {\(block.hazards.sorted().map(\.rawValue).joined(separator: ", "))}" }
            header += ": \(block.summary) [\(block.owner)]"
            lines.append(header)
            if !block.statement.parameters.isEmpty {
                lines.append(Self.parametersPrefix + Self.jsonLine(block.statement.parameters))
            }
            if let index = block.statement.buildsIndex {
                lines.append(Self.buildsIndexPrefix + index)
            }
            lines.append(block.statement.sql + ";")
            lines.append("")
        }
        return lines
    }

    /// The line that carries a block's bind parameters, as a JSON array of strings.
    static let parametersPrefix = "-- parameters: "
    /// The line that names the index a block builds concurrently (dropped if the build leaves it invalid).
    static let buildsIndexPrefix = "-- on failure: drop invalid index "

    /// `values` as a one-line JSON array (JSON escapes line breaks, quotes and backslashes).
    static func jsonLine(_ values: [String]) -> String {
        // Encoding an array of strings cannot fail.
        String(decoding: (try? JSONBEncoder().encodeToBytes(values)) ?? Array("[]".utf8), as: UTF8.self)
    }

    /// Reads a migration file's text.
    public init(parsing text: String, source: String = "migration") throws {
        var headers: [String: String] = [:]
        var section: String?
        var up: [Block] = [], down: [Block] = []
        var current: (summary: String, owner: String, transactional: Bool, hazards: Set<Hazard>, lines: [String])?

        func finish() throws {
            guard let block = current else { return }
            var parameters: [String] = []
            var buildsIndex: String?
            for line in block.lines {
                if line.hasPrefix(Self.parametersPrefix) {
                    do {
                        parameters = try JSONBDecoder().decode([String].self, from: Array(line.dropFirst(Self.parametersPrefix.count).utf8))
                    } catch {
                        throw PhylacteryError(.migrationRefused, "\(source): step '\(block.summary)' has a parameters line that is not a JSON array of strings")
                    }
                } else if line.hasPrefix(Self.buildsIndexPrefix) {
                    buildsIndex = String(line.dropFirst(Self.buildsIndexPrefix.count)).trimmingCharacters(in: .whitespaces)
                }
            }
            // Other whole-line comments are a reviewer's notes, not part of the statement.
            let lines = block.lines.filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
            var sql = lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if sql.hasSuffix(";") { sql.removeLast() }
            guard !sql.isEmpty else { throw PhylacteryError(.migrationRefused, "\(source): step '\(block.summary)' has no SQL") }
            let made = Block(summary: block.summary, owner: block.owner, statement: MigrationStatement(sql, transactional: block.transactional, parameters: parameters, buildsIndex: buildsIndex), hazards: block.hazards)
            if section == "up" { up.append(made) } else { down.append(made) }
            current = nil
        }

        // Files checked out with CRLF endings read the same ("\r\n" is one Character in Swift).
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("-- migrate:") {
                try finish()
                section = String(line.dropFirst("-- migrate:".count)).trimmingCharacters(in: .whitespaces)
                guard section == "up" || section == "down" else { throw PhylacteryError(.migrationRefused, "\(source): unknown section '\(line)'") }
            } else if line.hasPrefix("-- step ") {
                try finish()
                guard section != nil, let colon = line.range(of: ": ") else { throw PhylacteryError(.migrationRefused, "\(source): malformed step line '\(line)'") }
                let head = line[..<colon.lowerBound]
                var summary = String(line[colon.upperBound...])
                var owner = Federation.coreSlug
                if summary.hasSuffix("]"), let open = summary.lastIndex(of: "[") {
                    owner = String(summary[summary.index(after: open)..<summary.index(before: summary.endIndex)])
                    summary = String(summary[..<open]).trimmingCharacters(in: .whitespaces)
                }
                var hazards: Set<Hazard> = []
                if let open = head.firstIndex(of: "{"), let close = head.firstIndex(of: "}") {
                    for word in head[head.index(after: open)..<close].split(separator: ",") {
                        let name = word.trimmingCharacters(in: .whitespaces)
                        guard let hazard = Hazard(rawValue: name) else { throw PhylacteryError(.migrationRefused, "\(source): unknown hazard '\(name)'") }
                        hazards.insert(hazard)
                    }
                }
                current = (summary, owner, !head.contains("(outside transaction)"), hazards, [])
            } else if section == nil, line.hasPrefix("-- "), let colon = line.range(of: ": ") {
                let key = line[line.index(line.startIndex, offsetBy: 3)..<colon.lowerBound]
                headers[String(key)] = String(line[colon.upperBound...])
            } else if current != nil {
                current!.lines.append(line)
            }
        }
        try finish()
        guard let revision = headers["revision"], !revision.isEmpty else {
            throw PhylacteryError(.migrationRefused, "\(source): no '-- revision:' line")
        }
        let parent = headers["parent"].flatMap { $0 == "none" || $0.isEmpty ? nil : $0 }
        self.init(revision: revision, parent: parent, message: headers["message"] ?? "", up: up, down: down)
    }
}
