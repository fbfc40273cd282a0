public import Foundation
public import Phylactery

/// An example extension: a notebook whose pages keep their content as one jsonb document.
///
/// Everything an extension author writes is here: plain structs marked `@Model`, and one
/// `initialize` that registers them. The core plans and applies the tables.
public struct Notebook: PhylacteryExtension {
    public let slug = "notebook"
    public let version = "1.0.0"

    public init() {}

    public func initialize(_ context: ExtensionContext) throws {
        context.register(NotebookPage.self)
    }
}

/// A page: a title, tags, and the page body as a nested document.
@Model(
    table: "notebook_pages",
    indexes: [IndexDescription(columns: ["document"], method: .gin, operatorClass: "jsonb_path_ops")]
)
public struct NotebookPage: Hashable {
    @Index public var title: String
    /// The whole page, stored as jsonb through Phylactery's codec.
    public var document: PageDocument
    /// Free tags; NULL when the page has none.
    public var tags: [String]?
    @Column(default: "false") public var archived: Bool
}

/// The body of a page: blocks of text, lists and links.
public struct PageDocument: Codable, Sendable, Hashable {
    /// One block of a page.
    public enum Block: Codable, Sendable, Hashable {
        case heading(level: Int, text: String)
        case paragraph(String)
        case list([String])
        case link(title: String, url: String)
    }

    public var blocks: [Block]
    public var wordCount: Int

    public init(blocks: [Block]) {
        self.blocks = blocks
        self.wordCount = blocks.reduce(0) { count, block in
            switch block {
            case .heading(_, let text), .paragraph(let text): return count + text.split(separator: " ").count
            case .list(let items): return count + items.reduce(0) { $0 + $1.split(separator: " ").count }
            case .link(let title, _): return count + title.split(separator: " ").count
            }
        }
    }
}
