public import Foundation
public import PostgresNIO

/// A core model: a named scope of the daemon's state that extensions hang their rows on.
///
/// Written by hand (no macro) on purpose: it shows that a `PersistentModel` needs nothing the
/// `@Model` macro alone could write.
public struct Workspace: PersistentModel, Hashable {
    public var id: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// A unique, human-readable name.
    public var name: String
    /// Free-form settings, stored as jsonb.
    public var settings: [String: String]

    public init(name: String, settings: [String: String] = [:], id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.name = name
        self.settings = settings
    }

    public static let schema = ModelSchema(
        modelName: "Workspace",
        table: "workspaces",
        chamber: .public,
        columns: [
            ModelSchema.column("name", String.self, unique: true),
            ModelSchema.column("settings", [String: String].self, default: "'{}'::jsonb"),
        ]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.name)
        try row.write(self.settings)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.name = try row.read(String.self)
        self.settings = try row.read([String: String].self)
    }
}

extension Federation {
    /// The models the core itself owns.
    public static var coreModels: [ModelRegistration] {
        [
            ModelRegistration(Workspace.self),
            ModelRegistration(JobRecord.self),
            ModelRegistration(QueueWindow.self),
            ModelRegistration(SpanRecord.self),
            ModelRegistration(Memory.self),
            ModelRegistration(EmbeddingSpaceRecord.self),
            ModelRegistration(MemoryEmbedding.self),
            ModelRegistration(EmbeddingRequest.self),
            ModelRegistration(MemoryStatusChange.self),
            ModelRegistration(ForgottenMemory.self),
            ModelRegistration(Fact.self),
            ModelRegistration(FactErasure.self),
        ]
    }

    /// The core's models plus the given extensions': what a daemon migrates.
    public static func standard(extensions: [any PhylacteryExtension]) throws -> Federation {
        try Federation(core: coreModels, extensions: extensions)
    }

    /// The core's models plus the given extensions', without those whose slugs are in `disabled`
    /// (see ``DormantOwner``).
    public static func standard(extensions: [any PhylacteryExtension], disabled: Set<String>) throws -> Federation {
        try Federation(core: coreModels, extensions: extensions, disabled: disabled)
    }
}
