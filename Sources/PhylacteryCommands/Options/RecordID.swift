import ArgumentParser
import Foundation

/// Command-line ids of stored records (jobs, memories): a UUID, or an error naming what kind of id
/// was expected. Use as `@Argument(help: …, transform: RecordID.parser("job")) var id: UUID`.
enum RecordID {
    static func parse(_ text: String, of what: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else {
            throw ValidationError("'\(text)' is not a \(what) id (a UUID such as 01936f5e-8c1a-7b2e-9f00-3c4d5e6f7a8b).")
        }
        return id
    }

    static func parser(_ what: String) -> @Sendable (String) throws -> UUID {
        { text in try parse(text, of: what) }
    }
}
