import Foundation
@testable import Phylactery
import Testing

/// Conflicts are refused while the federation is assembled, before any DDL, naming both owners.
@Suite struct FederationTests {
    struct Plugin: PhylacteryExtension {
        let slug: String
        var version = "1"
        let schemas: [ModelSchema]
        func initialize(_ context: ExtensionContext) throws {
            for schema in self.schemas { context.append(ModelRegistration(schema: schema)) }
        }
    }

    static func table(_ model: String, _ table: String, chamber: Chamber = .public, columns: [ColumnDescription] = [ModelSchema.column("title", String.self)],
                      indexes: [IndexDescription] = [], checks: [CheckConstraint] = []) -> ModelSchema {
        ModelSchema(modelName: model, table: table, chamber: chamber, columns: columns, indexes: indexes, checks: checks)
    }

    static func refusal(_ build: () throws -> Federation) -> PhylacteryError? {
        do {
            _ = try build()
            return nil
        } catch let error as PhylacteryError {
            return error
        } catch {
            return nil
        }
    }

    @Test func twoOwnersForOneTable() {
        let error = Self.refusal {
            try Federation(core: [ModelRegistration(schema: Self.table("Note", "shared_notes"))],
                           extensions: [Plugin(slug: "shared", schemas: [Self.table("Memo", "shared_notes")])])
        }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("table name public.shared_notes") == true, "\(String(describing: error))")
        #expect(error?.message.contains("'core'") == true && error?.message.contains("'shared'") == true)
    }

    @Test func twoOwnersForOneIndexName() {
        let error = Self.refusal {
            try Federation(extensions: [
                Plugin(slug: "alpha", schemas: [Self.table("A", "alpha_items", indexes: [IndexDescription(name: "common_idx", columns: ["title"])])]),
                Plugin(slug: "beta", schemas: [Self.table("B", "beta_items", indexes: [IndexDescription(name: "common_idx", columns: ["title"])])]),
            ])
        }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("index name public.common_idx") == true, "\(String(describing: error))")
        #expect(error?.message.contains("'alpha'") == true && error?.message.contains("'beta'") == true)
    }

    @Test func anIndexNamedLikeAnotherOwnersTable() {
        // Tables and indexes share one namespace per schema in PostgreSQL (pg_class).
        let error = Self.refusal {
            try Federation(core: [ModelRegistration(schema: Self.table("Log", "beta_log"))],
                           extensions: [Plugin(slug: "beta", schemas: [Self.table("B", "beta_items", indexes: [IndexDescription(name: "beta_log", columns: ["title"])])])])
        }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("'core'") == true && error?.message.contains("'beta'") == true, "\(String(describing: error))")
    }

    @Test func twoOwnersForOneConstraintName() {
        let error = Self.refusal {
            try Federation(extensions: [
                Plugin(slug: "alpha", schemas: [Self.table("A", "alpha_items", checks: [CheckConstraint(name: "positive", expression: "true")])]),
                Plugin(slug: "beta", schemas: [Self.table("B", "beta_items", checks: [CheckConstraint(name: "positive", expression: "true")])]),
            ])
        }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("constraint name public.positive") == true, "\(String(describing: error))")
        #expect(error?.message.contains("'alpha'") == true && error?.message.contains("'beta'") == true)
    }

    @Test func aTableOutsideItsOwnersNamespace() {
        let error = Self.refusal { try Federation(extensions: [Plugin(slug: "garden", schemas: [Self.table("Plant", "plants")])]) }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("outside the namespace of owner 'garden'") == true, "\(String(describing: error))")
    }

    @Test func twoModelsWithOneName() {
        let error = Self.refusal {
            try Federation(core: [ModelRegistration(schema: Self.table("Item", "items"))],
                           extensions: [Plugin(slug: "shop", schemas: [Self.table("Item", "shop_items")])])
        }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("model name Item") == true && error?.message.contains("'shop'") == true, "\(String(describing: error))")
    }

    @Test func twoExtensionsWithOneSlug() {
        let error = Self.refusal { try Federation(extensions: [Plugin(slug: "dup", schemas: []), Plugin(slug: "dup", schemas: [])]) }
        #expect(error?.code == .federationConflict)
    }

    @Test func overlappingSlugsAreRefused() {
        let error = Self.refusal { try Federation(extensions: [Plugin(slug: "notes", schemas: []), Plugin(slug: "notes_archive", schemas: [])]) }
        #expect(error?.code == .federationConflict)
        #expect(error?.message.contains("'notes'") == true && error?.message.contains("'notes_archive'") == true, "\(String(describing: error))")
    }

    @Test func explicitObjectNamesMustFitPostgreSQL() {
        let long = String(repeating: "i", count: 64)
        let error = Self.refusal { try Federation(core: [ModelRegistration(schema: Self.table("X", "xs", indexes: [IndexDescription(name: long, columns: ["title"])]))]) }
        #expect(error?.code == .invalidModel)
        #expect(error?.message.contains("at most 63 bytes") == true)
    }

    @Test func badNamesAreInvalidModels() {
        #expect(Self.refusal { try Federation(extensions: [Plugin(slug: "Bad-Slug", schemas: [])]) }?.code == .invalidModel)
        #expect(Self.refusal { try Federation(core: [ModelRegistration(schema: Self.table("X", "Has Space"))]) }?.code == .invalidModel)
        let long = String(repeating: "a", count: 64)
        #expect(Self.refusal { try Federation(core: [ModelRegistration(schema: Self.table("X", long))]) }?.code == .invalidModel)
        let dangling = Self.table("X", "xs", columns: [ModelSchema.column("otherID", UUID.self, references: ForeignKey(table: "missing"))])
        let error = Self.refusal { try Federation(core: [ModelRegistration(schema: dangling)]) }
        #expect(error?.code == .invalidModel)
        #expect(error?.message.contains("public.missing") == true)
    }

    @Test func ownersFollowTheirForeignKeys() throws {
        let workspaceKey = ModelSchema.column("workspaceID", UUID.self, references: ForeignKey(Workspace.self))
        let taskKey = ModelSchema.column("taskID", UUID.self, references: ForeignKey(table: "b_tasks"))
        let federation = try Federation.standard(extensions: [
            Plugin(slug: "a", schemas: [Self.table("Comment", "a_comments", columns: [taskKey])]),
            Plugin(slug: "b", schemas: [Self.table("Task", "b_tasks", columns: [workspaceKey])]),
        ])
        #expect(federation.owners.map(\.slug) == ["core", "b", "a"])
    }

    @Test func namingRules() {
        #expect(SQLNaming.snakeCase("workspaceID") == "workspace_id")
        #expect(SQLNaming.snakeCase("createdAt") == "created_at")
        #expect(SQLNaming.snakeCase("HTTPServer") == "http_server")
        #expect(SQLNaming.snakeCase("title") == "title")
        let long = SQLNaming.constraintName(table: String(repeating: "t", count: 40), columns: [String(repeating: "c", count: 30)], suffix: "idx")
        #expect(long.utf8.count <= 63)
        #expect(long.hasSuffix("_idx"))
        #expect(long == SQLNaming.constraintName(table: String(repeating: "t", count: 40), columns: [String(repeating: "c", count: 30)], suffix: "idx"))
    }

    @Test func uuidV7IsTimeOrdered() {
        let early = UUID.v7(at: Date(timeIntervalSince1970: 1_700_000_000))
        let late = UUID.v7(at: Date(timeIntervalSince1970: 1_700_000_000.002))
        #expect(early.uuidString < late.uuidString)
        let bytes = early.uuid
        #expect(bytes.6 >> 4 == 7)
        #expect(bytes.8 >> 6 == 0b10)
    }
}
