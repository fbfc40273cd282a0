@testable import PhylacteryMacros
import SwiftSyntax
import SwiftSyntaxMacroExpansion
import SwiftSyntaxMacrosGenericTestSupport
import Testing

/// The macros as the library declares them, with the conformances `@Model` and `@JSONBCodable` add.
private let macros: [String: MacroSpec] = [
    "JSONBCodable": MacroSpec(type: JSONBCodableMacro.self, conformances: [
        TypeSyntax(IdentifierTypeSyntax(name: .identifier("JSONBFastEncodable"))),
        TypeSyntax(IdentifierTypeSyntax(name: .identifier("JSONBFastDecodable"))),
    ]),
    "Model": MacroSpec(type: ModelMacro.self, conformances: [TypeSyntax(IdentifierTypeSyntax(name: .identifier("PersistentModel")))]),
    "Column": MacroSpec(type: PropertyMarkerMacro.self),
    "Index": MacroSpec(type: PropertyMarkerMacro.self),
    "Unique": MacroSpec(type: PropertyMarkerMacro.self),
    "References": MacroSpec(type: PropertyMarkerMacro.self),
    "Transient": MacroSpec(type: PropertyMarkerMacro.self),
    "Version": MacroSpec(type: PropertyMarkerMacro.self),
]

/// `assertMacroExpansion` reports through a handler; failures become issues of the calling test.
/// Shared by the expansion tests of every macro.
func assertExpansion(
    _ source: String,
    expandedSource: String,
    diagnostics: [DiagnosticSpec] = [],
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) {
    assertMacroExpansion(
        source,
        expandedSource: expandedSource,
        diagnostics: diagnostics,
        macroSpecs: macros,
        failureHandler: { failure in Issue.record(Comment(rawValue: failure.message), sourceLocation: sourceLocation) }
    )
}

@Suite struct ModelMacroExpansionTests {
    @Test func plainStruct() {
        assertExpansion(
            """
            @Model
            struct Note {
                var title: String
                var pinned: Bool = false
            }
            """,
            expandedSource: """
            struct Note {
                var title: String
                var pinned: Bool = false

                var id: UUID = UUID.v7()

                var createdAt: Date = Date()

                var updatedAt: Date = Date()

                typealias _PhylacteryColumn_title = String

                typealias _PhylacteryColumn_pinned = Bool
            }

            extension Note: PersistentModel {
                static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "notes")
                }

                static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Note",
                        table: "notes",
                        chamber: .public,
                        columns: [
                            ModelSchema.column("title", _PhylacteryColumn_title.self),
                            ModelSchema.column("pinned", _PhylacteryColumn_pinned.self),
                        ]
                    )
                }

                func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.title)
                    try row.write(self.pinned)
                }

                init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.title = try row.read(_PhylacteryColumn_title.self)
                    self.pinned = try row.read(_PhylacteryColumn_pinned.self)
                }

                static var columnKeyPaths: [PartialKeyPath<Note>: String] {
                    [
                        \\Note.title: "title",
                        \\Note.pinned: "pinned",
                    ]
                }
            }
            """
        )
    }

    @Test func versionColumn() {
        assertExpansion(
            """
            @Model(table: "runs")
            struct Run {
                var status: String
                @Version @Column(name: "row_version") var version: Int64 = 0
            }
            """,
            expandedSource: """
            struct Run {
                var status: String
                var version: Int64 = 0

                var id: UUID = UUID.v7()

                var createdAt: Date = Date()

                var updatedAt: Date = Date()

                typealias _PhylacteryColumn_status = String

                typealias _PhylacteryColumn_version = Int64
            }

            extension Run: PersistentModel {
                static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "runs")
                }

                static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Run",
                        table: "runs",
                        chamber: .public,
                        columns: [
                            ModelSchema.column("status", _PhylacteryColumn_status.self),
                            ModelSchema.versionColumn("version", _PhylacteryColumn_version.self, name: "row_version"),
                        ]
                    )
                }

                func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.status)
                    try row.write(self.version)
                }

                init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.status = try row.read(_PhylacteryColumn_status.self)
                    self.version = try row.read(_PhylacteryColumn_version.self)
                }

                static var columnKeyPaths: [PartialKeyPath<Run>: String] {
                    [
                        \\Run.status: "status",
                        \\Run.version: "version",
                    ]
                }
            }
            """
        )
    }

    @Test func versionColumnMisuseIsRefused() {
        assertExpansion(
            """
            @Model
            struct Run {
                @Version var version: Int64 = 0
                @Version @Unique var other: Int64 = 0
            }
            """,
            expandedSource: """
            struct Run {
                var version: Int64 = 0
                var other: Int64 = 0
            }
            """,
            diagnostics: [
                DiagnosticSpec(message: "a @Model struct has at most one @Version property", line: 4, column: 5),
                DiagnosticSpec(message: "@Version property 'other' is an integer column Phylactery counts up itself; @Unique cannot change it", line: 4, column: 14),
            ]
        )
    }

    @Test func optionalsJSONBAndEnums() {
        assertExpansion(
            """
            @Model
            public struct Task {
                public var title: String?
                public var status: Status = .open
                public var tags: [Tag] = []
                public var labels: [String]?
                public var dueAt: Date!
                @Transient public var isSelected: Bool = false
                @Transient var cache = [String: Int]()
            }
            """,
            expandedSource: """
            public struct Task {
                public var title: String?
                public var status: Status = .open
                public var tags: [Tag] = []
                public var labels: [String]?
                public var dueAt: Date!
                public var isSelected: Bool = false
                var cache = [String: Int]()

                public var id: UUID = UUID.v7()

                public var createdAt: Date = Date()

                public var updatedAt: Date = Date()

                public init(
                    title: String? = nil,
                    status: Status = .open,
                    tags: [Tag] = [],
                    labels: [String]? = nil,
                    dueAt: Date! = nil,
                    isSelected: Bool = false,
                    id: UUID = UUID.v7(),
                    createdAt: Date = Date(),
                    updatedAt: Date = Date()
                ) {
                    self.title = title
                    self.status = status
                    self.tags = tags
                    self.labels = labels
                    self.dueAt = dueAt
                    self.isSelected = isSelected
                    self.id = id
                    self.createdAt = createdAt
                    self.updatedAt = updatedAt
                }

                typealias _PhylacteryColumn_title = String?

                typealias _PhylacteryColumn_status = Status

                typealias _PhylacteryColumn_tags = [Tag]

                typealias _PhylacteryColumn_labels = [String]?

                typealias _PhylacteryColumn_dueAt = Date?
            }

            extension Task: PersistentModel {
                public static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "tasks")
                }

                public static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Task",
                        table: "tasks",
                        chamber: .public,
                        columns: [
                            ModelSchema.column("title", _PhylacteryColumn_title.self),
                            ModelSchema.column("status", _PhylacteryColumn_status.self),
                            ModelSchema.column("tags", _PhylacteryColumn_tags.self),
                            ModelSchema.column("labels", _PhylacteryColumn_labels.self),
                            ModelSchema.column("dueAt", _PhylacteryColumn_dueAt.self),
                        ]
                    )
                }

                public func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.title)
                    try row.write(self.status)
                    try row.write(self.tags)
                    try row.write(self.labels)
                    try row.write(self.dueAt)
                }

                public init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.title = try row.read(_PhylacteryColumn_title.self)
                    self.status = try row.read(_PhylacteryColumn_status.self)
                    self.tags = try row.read(_PhylacteryColumn_tags.self)
                    self.labels = try row.read(_PhylacteryColumn_labels.self)
                    self.dueAt = try row.read(_PhylacteryColumn_dueAt.self)
                }

                public static var columnKeyPaths: [PartialKeyPath<Task>: String] {
                    [
                        \\Task.title: "title",
                        \\Task.status: "status",
                        \\Task.tags: "tags",
                        \\Task.labels: "labels",
                        \\Task.dueAt: "dueAt",
                    ]
                }
            }
            """
        )
    }

    @Test func everyAttribute() {
        assertExpansion(
            """
            @Model(
                table: "notebook_pages",
                chamber: .vectors,
                renamedFrom: ["pages"],
                storage: ["fillfactor": "70"],
                indexes: [IndexDescription(columns: ["title", "rank"])],
                unique: [UniqueConstraint(columns: ["notebook_id", "title"])],
                checks: [CheckConstraint(expression: "rank >= 0")]
            )
            struct Page {
                @References(Notebook.self, onDelete: .cascade) @Index
                var notebookID: UUID
                @References(Page.self)
                var parentID: UUID?
                @Unique @Column(name: "heading", type: .varchar(200), default: "''", renamedFrom: ["caption"])
                var title: String
                @Index(.hnsw, operatorClass: "vector_cosine_ops") @Column(type: .vector(3))
                var embedding: [Float]
                @Column(default: "0") @Index(.brin)
                var rank: Int
                @Transient var isExpanded = false
            }
            """,
            expandedSource: """
            struct Page {

                var notebookID: UUID
                var parentID: UUID?

                var title: String

                var embedding: [Float]

                var rank: Int
                var isExpanded = false

                var id: UUID = UUID.v7()

                var createdAt: Date = Date()

                var updatedAt: Date = Date()

                typealias _PhylacteryColumn_notebookID = UUID

                typealias _PhylacteryReference_notebookID = Notebook

                typealias _PhylacteryColumn_parentID = UUID?

                typealias _PhylacteryReference_parentID = Page

                typealias _PhylacteryColumn_title = String

                typealias _PhylacteryColumn_embedding = [Float]

                typealias _PhylacteryColumn_rank = Int
            }

            extension Page: PersistentModel {
                static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .vectors, table: "notebook_pages")
                }

                static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Page",
                        table: "notebook_pages",
                        chamber: .vectors,
                        renamedFrom: ["pages"],
                        columns: [
                            ModelSchema.column("notebookID", _PhylacteryColumn_notebookID.self, index: .btree, references: ForeignKey(_PhylacteryReference_notebookID.self, onDelete: .cascade)),
                            ModelSchema.column("parentID", _PhylacteryColumn_parentID.self, references: ForeignKey(_PhylacteryReference_parentID.self)),
                            ModelSchema.column("title", _PhylacteryColumn_title.self, name: "heading", type: .varchar(200), default: "''", unique: true, renamedFrom: ["caption"]),
                            ModelSchema.column("embedding", _PhylacteryColumn_embedding.self, type: .vector(3), index: .hnsw, operatorClass: "vector_cosine_ops"),
                            ModelSchema.column("rank", _PhylacteryColumn_rank.self, default: "0", index: .brin),
                        ],
                        indexes: [IndexDescription(columns: ["title", "rank"])],
                        uniqueConstraints: [UniqueConstraint(columns: ["notebook_id", "title"])],
                        checks: [CheckConstraint(expression: "rank >= 0")],
                        storage: ["fillfactor": "70"]
                    )
                }

                func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.notebookID)
                    try row.write(self.parentID)
                    try row.write(self.title)
                    try row.write(self.embedding)
                    try row.write(self.rank)
                }

                init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.notebookID = try row.read(_PhylacteryColumn_notebookID.self)
                    self.parentID = try row.read(_PhylacteryColumn_parentID.self)
                    self.title = try row.read(_PhylacteryColumn_title.self)
                    self.embedding = try row.read(_PhylacteryColumn_embedding.self)
                    self.rank = try row.read(_PhylacteryColumn_rank.self)
                }

                static var columnKeyPaths: [PartialKeyPath<Page>: String] {
                    [
                        \\Page.notebookID: "notebookID",
                        \\Page.parentID: "parentID",
                        \\Page.title: "title",
                        \\Page.embedding: "embedding",
                        \\Page.rank: "rank",
                    ]
                }
            }
            """
        )
    }

    @Test func userDeclaredBasePropertiesAndInitializer() {
        assertExpansion(
            """
            @Model
            package struct Tag {
                package var id: UUID
                package var label: String
                private var secret: String = ""

                package init(label: String) {
                    self.id = UUID()
                    self.label = label
                }
            }
            """,
            expandedSource: """
            package struct Tag {
                package var id: UUID
                package var label: String
                private var secret: String = ""

                package init(label: String) {
                    self.id = UUID()
                    self.label = label
                }

                package var createdAt: Date = Date()

                package var updatedAt: Date = Date()

                typealias _PhylacteryColumn_label = String

                typealias _PhylacteryColumn_secret = String
            }

            extension Tag: PersistentModel {
                package static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "tags")
                }

                package static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Tag",
                        table: "tags",
                        chamber: .public,
                        columns: [
                            ModelSchema.column("label", _PhylacteryColumn_label.self),
                            ModelSchema.column("secret", _PhylacteryColumn_secret.self),
                        ]
                    )
                }

                package func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.label)
                    try row.write(self.secret)
                }

                package init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.label = try row.read(_PhylacteryColumn_label.self)
                    self.secret = try row.read(_PhylacteryColumn_secret.self)
                }

                package static var columnKeyPaths: [PartialKeyPath<Tag>: String] {
                    [
                        \\Tag.label: "label",
                        \\Tag.secret: "secret",
                    ]
                }
            }
            """
        )
    }

    @Test func storedPropertiesOnly() {
        assertExpansion(
            """
            @Model
            struct Reading {
                let sensor: String
                var value: Double { didSet { print(value) } }
                var count, total: Int
                var doubled: Double { value * 2 }
                var halved: Double {
                    get { value / 2 }
                    set { value = newValue * 2 }
                }
                static let unit = "kPa"
                lazy var cache: [Double] = []
                private var `default`: Bool = false
            }
            """,
            expandedSource: """
            struct Reading {
                let sensor: String
                var value: Double { didSet { print(value) } }
                var count, total: Int
                var doubled: Double { value * 2 }
                var halved: Double {
                    get { value / 2 }
                    set { value = newValue * 2 }
                }
                static let unit = "kPa"
                lazy var cache: [Double] = []
                private var `default`: Bool = false

                var id: UUID = UUID.v7()

                var createdAt: Date = Date()

                var updatedAt: Date = Date()

                typealias _PhylacteryColumn_sensor = String

                typealias _PhylacteryColumn_value = Double

                typealias _PhylacteryColumn_count = Int

                typealias _PhylacteryColumn_total = Int

                typealias _PhylacteryColumn_default = Bool
            }

            extension Reading: PersistentModel {
                static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "readings")
                }

                static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Reading",
                        table: "readings",
                        chamber: .public,
                        columns: [
                            ModelSchema.column("sensor", _PhylacteryColumn_sensor.self),
                            ModelSchema.column("value", _PhylacteryColumn_value.self),
                            ModelSchema.column("count", _PhylacteryColumn_count.self),
                            ModelSchema.column("total", _PhylacteryColumn_total.self),
                            ModelSchema.column("default", _PhylacteryColumn_default.self),
                        ]
                    )
                }

                func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.sensor)
                    try row.write(self.value)
                    try row.write(self.count)
                    try row.write(self.total)
                    try row.write(self.`default`)
                }

                init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.sensor = try row.read(_PhylacteryColumn_sensor.self)
                    self.value = try row.read(_PhylacteryColumn_value.self)
                    self.count = try row.read(_PhylacteryColumn_count.self)
                    self.total = try row.read(_PhylacteryColumn_total.self)
                    self.`default` = try row.read(_PhylacteryColumn_default.self)
                }

                static var columnKeyPaths: [PartialKeyPath<Reading>: String] {
                    [
                        \\Reading.sensor: "sensor",
                        \\Reading.value: "value",
                        \\Reading.count: "count",
                        \\Reading.total: "total",
                        \\Reading.`default`: "default",
                    ]
                }
            }
            """
        )
    }

    @Test func privatePropertyLeavesTheInitializerToSwift() {
        assertExpansion(
            """
            @Model
            public struct Secret {
                public var name: String
                private var code: String
            }
            """,
            expandedSource: """
            public struct Secret {
                public var name: String
                private var code: String

                public var id: UUID = UUID.v7()

                public var createdAt: Date = Date()

                public var updatedAt: Date = Date()

                typealias _PhylacteryColumn_name = String

                typealias _PhylacteryColumn_code = String
            }

            extension Secret: PersistentModel {
                public static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "secrets")
                }

                public static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "Secret",
                        table: "secrets",
                        chamber: .public,
                        columns: [
                            ModelSchema.column("name", _PhylacteryColumn_name.self),
                            ModelSchema.column("code", _PhylacteryColumn_code.self),
                        ]
                    )
                }

                public func bindColumns(to row: inout ModelRowWriter) throws {
                    try row.write(self.name)
                    try row.write(self.code)
                }

                public init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                    self.name = try row.read(_PhylacteryColumn_name.self)
                    self.code = try row.read(_PhylacteryColumn_code.self)
                }

                public static var columnKeyPaths: [PartialKeyPath<Secret>: String] {
                    [
                        \\Secret.name: "name",
                        \\Secret.code: "code",
                    ]
                }
            }
            """
        )
    }

    @Test func emptyStructAndDerivedTableName() {
        assertExpansion(
            """
            @Model
            struct HTTPCategory {}
            """,
            expandedSource: """
            struct HTTPCategory {

                var id: UUID = UUID.v7()

                var createdAt: Date = Date()

                var updatedAt: Date = Date()
            }

            extension HTTPCategory: PersistentModel {
                static var tableLocation: (chamber: Chamber, table: String) {
                    (chamber: .public, table: "http_categories")
                }

                static var schema: ModelSchema {
                    ModelSchema(
                        modelName: "HTTPCategory",
                        table: "http_categories",
                        chamber: .public,
                        columns: []
                    )
                }

                func bindColumns(to row: inout ModelRowWriter) throws {
                }

                init(row: inout ModelRowReader) throws {
                    (self.id, self.createdAt, self.updatedAt) = try row.readBase()
                }

                static var columnKeyPaths: [PartialKeyPath<HTTPCategory>: String] {
                    [:]
                }
            }
            """
        )
    }

    @Test(arguments: [
        ("Note", "notes"), ("Category", "categories"), ("Day", "days"), ("Box", "boxes"), ("Status", "statuses"),
        ("Match", "matches"), ("Wish", "wishes"), ("NotebookPage", "notebook_pages"), ("HTTPServer", "http_servers"),
        ("Y", "ys"),
    ])
    func defaultTableNames(type: String, table: String) {
        #expect(Naming.tableName(forType: type) == table)
    }

    // MARK: - Diagnostics

    @Test func classesAndEnumsAreRefused() {
        assertExpansion(
            """
            @Model
            final class Note {
                var title: String = ""
            }
            """,
            expandedSource: """
            final class Note {
                var title: String = ""
            }
            """,
            diagnostics: [DiagnosticSpec(message: "@Model can only be applied to a struct, not to a class", line: 1, column: 1)]
        )
        assertExpansion(
            """
            @Model
            enum Status {
                case open
            }
            """,
            expandedSource: """
            enum Status {
                case open
            }
            """,
            diagnostics: [DiagnosticSpec(message: "@Model can only be applied to a struct, not to an enum", line: 1, column: 1)]
        )
    }

    @Test func storedPropertyWithoutTypeIsRefused() {
        assertExpansion(
            """
            @Model
            struct Note {
                var title: String
                var views = 0
            }
            """,
            expandedSource: """
            struct Note {
                var title: String
                var views = 0
            }
            """,
            diagnostics: [DiagnosticSpec(message: "@Model needs an explicit type for 'views'", line: 4, column: 9)]
        )
    }

    @Test func propertiesTheMacroCannotReadOrWrite() {
        assertExpansion(
            """
            @Model
            struct Note {
                let kind: String = "note"
                @Transient var cache: [String: Int]
                @Transient @Unique var draft: String = ""
                @Index var length: Int { 0 }
                @Column(name: "key") var id: UUID
                var (x, y): (Int, Int)
            }
            """,
            expandedSource: """
            struct Note {
                let kind: String = "note"
                var cache: [String: Int]
                var draft: String = ""
                var length: Int { 0 }
                var id: UUID
                var (x, y): (Int, Int)
            }
            """,
            diagnostics: [
                DiagnosticSpec(message: "'let' property 'kind' has an initial value, so it cannot be read from a row; make it 'var' or mark it @Transient", line: 3, column: 9),
                DiagnosticSpec(message: "@Transient property 'cache' needs a default value, since it is not read from the row", line: 4, column: 20),
                DiagnosticSpec(message: "@Transient property 'draft' is not stored, so @Unique has no column to describe", line: 5, column: 16),
                DiagnosticSpec(message: "@Index applies only to stored instance properties of a @Model struct", line: 6, column: 5),
                DiagnosticSpec(message: "'id' is a base column that Phylactery defines itself; @Column cannot change it", line: 7, column: 5),
                DiagnosticSpec(message: "@Model needs one name per stored property; declare the names of this pattern separately", line: 8, column: 9),
            ]
        )
    }
}
