public import Foundation
@testable public import Phylactery
import PostgresNIO
import Testing

// Models compiled through the real `@Model` macro; the tests read what it generated.

enum JournalStatus: String, PersistentEnum {
    case draft, published, archived
}

struct Attachment: Codable, Sendable, Hashable {
    var name: String
    var size: Int
}

@Model
struct Workspace {
    var name: String
}

@Model(
    table: "diary_entries",
    chamber: .verbatim,
    renamedFrom: ["entries"],
    storage: ["fillfactor": "70"],
    indexes: [IndexDescription(columns: ["title", "rank"])],
    unique: [UniqueConstraint(columns: ["workspace_id", "title"])],
    checks: [CheckConstraint(expression: "rank >= 0")]
)
struct JournalEntry {
    @References(Workspace.self, onDelete: .cascade) @Index
    var workspaceID: UUID
    @Unique @Column(type: .varchar(200))
    var title: String
    var body: String?
    var rank: Int = 0
    var small: Int32
    var score: Double
    var ratio: Float
    var isPinned: Bool
    var externalID: UUID?
    var publishedAt: Date?
    var blob: Data
    var bytes: [UInt8]
    var price: Decimal
    var status: JournalStatus = .draft
    var attachment: Attachment
    var attachments: [Attachment] = []
    var labels: [String]?
    @Column(name: "legacy_code", default: "'none'", renamedFrom: ["code", "old_code"])
    var code: String
    @Index(.gin, operatorClass: "jsonb_path_ops")
    var metadata: [String: String] = [:]
    let origin: String
    @Transient var isExpanded = false

    var doubledRank: Int { self.rank * 2 }
    static let maximumRank = 100
}

/// A tree: the foreign key points at the model's own table.
@Model
struct Category {
    var name: String
    @References(Category.self, onDelete: .setNull)
    var parentID: UUID?
}

/// Two models whose foreign keys point at each other.
@Model
struct Author {
    var name: String
    @References(Book.self)
    var favouriteBookID: UUID?
}

@Model
struct Book {
    var title: String
    @References(Author.self, onDelete: .restrict)
    var authorID: UUID
}

/// Public, with its own `id`: the macro adds only `createdAt` and `updatedAt`.
@Model
public struct Box {
    public var id: UUID = UUID()
    public var label: String
}

/// An initialiser of its own: no memberwise one is generated.
@Model
struct Counter {
    var value: Int

    init(start: Int) {
        self.value = start
    }
}

/// No columns at all; `match` pluralises to `matches`.
@Model
struct Match {}

@Suite struct ModelMacroTests {
    private func column(_ property: String, of schema: ModelSchema) throws -> ColumnDescription {
        try #require(schema.columns.first { $0.property == property })
    }

    @Test func tableNames() {
        #expect(Workspace.schema.table == "workspaces")
        #expect(Category.schema.table == "categories")
        #expect(Box.schema.table == "boxes")
        #expect(Match.schema.table == "matches")
        #expect(JournalEntry.schema.table == "diary_entries")
        #expect(Workspace.schema.modelName == "Workspace")
        #expect(Workspace.schema.chamber == .public)
        #expect(JournalEntry.schema.chamber == .verbatim)
        #expect(JournalEntry.tableLocation.chamber == .verbatim)
        #expect(JournalEntry.tableLocation.table == "diary_entries")
    }

    @Test func columnsInDeclarationOrderWithoutBaseOrTransientOnes() {
        #expect(JournalEntry.schema.columns.map(\.property) == [
            "workspaceID", "title", "body", "rank", "small", "score", "ratio", "isPinned", "externalID",
            "publishedAt", "blob", "bytes", "price", "status", "attachment", "attachments", "labels", "code",
            "metadata", "origin",
        ])
        #expect(JournalEntry.schema.columns.map(\.name) == [
            "workspace_id", "title", "body", "rank", "small", "score", "ratio", "is_pinned", "external_id",
            "published_at", "blob", "bytes", "price", "status", "attachment", "attachments", "labels", "legacy_code",
            "metadata", "origin",
        ])
        #expect(Match.schema.columns.isEmpty)
        #expect(JournalEntry.schema.allColumns.prefix(3).map(\.name) == ["id", "created_at", "updated_at"])
    }

    @Test func typesFollowTheSwiftTypes() throws {
        let expected: [(property: String, type: SQLType, nullable: Bool)] = [
            ("title", .varchar(200), false),
            ("body", .text, true),
            ("rank", .bigint, false),
            ("small", .integer, false),
            ("score", .doublePrecision, false),
            ("ratio", .real, false),
            ("isPinned", .boolean, false),
            ("externalID", .uuid, true),
            ("publishedAt", .timestamptz, true),
            ("blob", .bytea, false),
            ("bytes", .bytea, false),
            ("price", .numeric, false),
            ("status", .text, false),
            ("attachment", .jsonb, false),
            ("attachments", .jsonb, false),
            ("labels", .jsonb, true),
            ("metadata", .jsonb, false),
            ("origin", .text, false),
        ]
        for (property, type, nullable) in expected {
            let column = try self.column(property, of: JournalEntry.schema)
            #expect(column.type == type, "\(property)")
            #expect(column.isNullable == nullable, "\(property)")
        }
        #expect(try self.column("status", of: JournalEntry.schema).allowedValues == ["draft", "published", "archived"])
        #expect(try self.column("title", of: JournalEntry.schema).allowedValues == nil)
        #expect(JournalEntry.schema.allChecks.map(\.expression) == [#""status" IN ('draft', 'published', 'archived')"#, "rank >= 0"])
    }

    @Test func propertyAttributes() throws {
        let schema = JournalEntry.schema
        let workspace = try self.column("workspaceID", of: schema)
        #expect(workspace.references == ForeignKey(chamber: .public, table: "workspaces", onDelete: .cascade))
        #expect(workspace.indexMethod == .btree)
        #expect(workspace.indexOperatorClass == nil)
        #expect(!workspace.isUnique)

        let title = try self.column("title", of: schema)
        #expect(title.isUnique)
        #expect(title.indexMethod == nil)

        let code = try self.column("code", of: schema)
        #expect(code.name == "legacy_code")
        #expect(code.defaultSQL == "'none'")
        #expect(code.renamedFrom == ["code", "old_code"])
        #expect(code.type == .text)

        let metadata = try self.column("metadata", of: schema)
        #expect(metadata.indexMethod == .gin)
        #expect(metadata.indexOperatorClass == "jsonb_path_ops")

        let rank = try self.column("rank", of: schema)
        #expect(rank.defaultSQL == nil, "a Swift initial value is not an SQL default")
        #expect(rank.references == nil && !rank.isUnique && rank.indexMethod == nil && rank.renamedFrom.isEmpty)
    }

    @Test func tableArguments() {
        let schema = JournalEntry.schema
        #expect(schema.renamedFrom == ["entries"])
        #expect(schema.storage == ["fillfactor": "70"])
        #expect(schema.indexes == [IndexDescription(columns: ["title", "rank"])])
        #expect(schema.uniqueConstraints == [UniqueConstraint(columns: ["workspace_id", "title"])])
        #expect(schema.checks == [CheckConstraint(expression: "rank >= 0")])
        #expect(schema.allIndexes.map(\.name) == ["diary_entries_workspace_id_idx", "diary_entries_metadata_idx", "diary_entries_title_rank_idx"])
        #expect(schema.allUniqueConstraints.map(\.name) == ["diary_entries_title_key", "diary_entries_workspace_id_title_key"])
        #expect(Workspace.schema.renamedFrom.isEmpty && Workspace.schema.indexes.isEmpty && Workspace.schema.storage.isEmpty)
    }

    @Test func foreignKeysToItselfAndInACycle() throws {
        #expect(try self.column("parentID", of: Category.schema).references == ForeignKey(chamber: .public, table: "categories", onDelete: .setNull))
        #expect(try self.column("favouriteBookID", of: Author.schema).references == ForeignKey(table: "books"))
        #expect(try self.column("authorID", of: Book.schema).references == ForeignKey(table: "authors", onDelete: .restrict))
    }

    @Test func generatedSchemasPassTheFederationChecks() throws {
        let models: [any PersistentModel.Type] = [Workspace.self, JournalEntry.self, Category.self, Author.self, Book.self, Box.self, Counter.self, Match.self]
        let federation = try Federation(core: models.map { ModelRegistration($0) })
        #expect(federation.models.count == models.count)
    }

    @Test func memberwiseInitializerDefaultsTheBaseProperties() {
        let before = Date()
        let workspace = Workspace(name: "home")
        #expect(workspace.name == "home")
        #expect(workspace.id.uuid.6 >> 4 == 7, "a version 7 UUID")
        #expect(workspace.id.uuid.8 >> 6 == 0b10, "the RFC 9562 variant")
        #expect(workspace.createdAt >= before && workspace.updatedAt >= before)
        #expect(Workspace(name: "other").id != workspace.id)

        let id = UUID()
        let time = Date(timeIntervalSince1970: 1_700_000_000)
        let given = Workspace(name: "given", id: id, createdAt: time, updatedAt: time)
        #expect(given.id == id && given.createdAt == time && given.updatedAt == time)
    }

    @Test func memberwiseInitializerKeepsInitialValuesAsDefaults() {
        let entry = JournalEntry(
            workspaceID: UUID.v7(), title: "t", small: 1, score: 1.5, ratio: 0.5, isPinned: false,
            blob: Data(), bytes: [1, 2], price: 9.99, attachment: Attachment(name: "a", size: 1), code: "c", origin: "o"
        )
        #expect(entry.body == nil && entry.rank == 0 && entry.status == .draft && entry.attachments.isEmpty)
        #expect(entry.labels == nil && entry.metadata.isEmpty && entry.isExpanded == false)
        #expect(entry.id.uuid.6 >> 4 == 7)
    }

    @Test func userDeclaredBasePropertiesAndInitializers() {
        let box = Box(label: "b")
        #expect(box.id.uuid.6 >> 4 == 4, "the struct's own default, UUID()")
        #expect(Counter(start: 3).value == 3)
        #expect(Counter(start: 3).id.uuid.6 >> 4 == 7)
        #expect(Match().id.uuid.6 >> 4 == 7)
    }

    @Test func bindColumnsWritesOneParameterPerColumn() throws {
        let entry = JournalEntry(
            workspaceID: UUID.v7(), title: "t", small: 1, score: 1.5, ratio: 0.5, isPinned: false,
            blob: Data(), bytes: [1, 2], price: 9.99, attachment: Attachment(name: "a", size: 1), code: "c", origin: "o"
        )
        var writer = ModelRowWriter()
        try entry.bindColumns(to: &writer)
        #expect(writer.bindings.count == JournalEntry.schema.columns.count)

        var empty = ModelRowWriter()
        try Match().bindColumns(to: &empty)
        #expect(empty.bindings.count == 0)
    }
}
