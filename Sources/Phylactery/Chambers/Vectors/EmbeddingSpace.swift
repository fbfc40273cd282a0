public import Foundation
import PostgresNIO

/// The embedding model that produced a vector and the space its vectors live in.
///
/// Vectors are only ever compared within one space: a memory's vectors are stored per space
/// (``MemoryEmbedding``), and every search names one space (or uses the default one), so two
/// embedding models (or two versions of one whose spaces differ) never meet in a distance.
///
/// Spaces are data: each one used is registered in `vectors.spaces` (``EmbeddingSpaceRecord``),
/// one of them marked the default that searches without a space use.
public struct EmbeddingSpace: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The embedding model's name (`all-MiniLM-L6-v2`).
    public var model: String
    /// A fingerprint of the model's space: a version, a weights hash, anything that changes when
    /// its vectors stop being comparable with older ones.
    public var fingerprint: String
    /// The number of dimensions its vectors have.
    public var dimensions: Int

    /// Describes an embedding space.
    public init(model: String, fingerprint: String, dimensions: Int) {
        self.model = model
        self.fingerprint = fingerprint
        self.dimensions = dimensions
    }

    /// `model@fingerprint`: how the CLI names a space.
    public var name: String { "\(self.model)@\(self.fingerprint)" }

    public var description: String { "\(self.name) (\(self.dimensions) dimensions)" }

    /// Splits `model@fingerprint` (the last `@` separates them).
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` when either part is empty or there is no `@`.
    public static func parseName(_ text: String) throws -> (model: String, fingerprint: String) {
        guard let at = text.lastIndex(of: "@"), at != text.startIndex, text.index(after: at) != text.endIndex else {
            throw PhylacteryError(.invalidArgument, "an embedding space is named model@fingerprint (e.g. all-MiniLM-L6-v2@v1); got '\(text)'")
        }
        return (String(text[..<at]), String(text[text.index(after: at)...]))
    }

    func check() throws {
        guard !self.model.isEmpty, !self.fingerprint.isEmpty else {
            throw PhylacteryError(.invalidArgument, "an embedding space needs a model name and a fingerprint")
        }
        guard (1...Vector.maximumDimensions).contains(self.dimensions) else {
            throw PhylacteryError(.invalidArgument, "embedding space \(self.name): dimensions must be 1…\(Vector.maximumDimensions); got \(self.dimensions)")
        }
        try StorableText.check(self.model, "An embedding model's name")
        try StorableText.check(self.fingerprint, "An embedding space's fingerprint")
    }
}

/// One registered embedding space, in `vectors.spaces`: registered by the first memory embedded in
/// it (or by ``VectorMemory/register(_:)``), made the default by ``VectorMemory/switchDefaultSpace(to:force:)``.
///
/// At most one space is the default (a partial unique index on `is_default`); the first space ever
/// registered becomes it.
public struct EmbeddingSpaceRecord: PersistentModel, Hashable {
    public var id: UUID
    /// When the space was registered.
    public var createdAt: Date
    public var updatedAt: Date
    /// The embedding model's name.
    public var model: String
    /// The fingerprint of the model's space.
    public var fingerprint: String
    /// The dimension count of its vectors.
    public var dimensions: Int32
    /// Whether searches without a space use this one.
    public var isDefault: Bool

    /// The space as a value.
    public var space: EmbeddingSpace { EmbeddingSpace(model: self.model, fingerprint: self.fingerprint, dimensions: Int(self.dimensions)) }

    /// A registration; normally written by ``VectorMemory/register(_:)``.
    public init(space: EmbeddingSpace, isDefault: Bool = false, id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.model = space.model
        self.fingerprint = space.fingerprint
        self.dimensions = Int32(space.dimensions)
        self.isDefault = isDefault
    }

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "spaces") }

    public static let schema = ModelSchema(
        modelName: "EmbeddingSpaceRecord",
        table: "spaces",
        chamber: .vectors,
        columns: [
            ModelSchema.column("model", String.self),
            ModelSchema.column("fingerprint", String.self),
            ModelSchema.column("dimensions", Int32.self),
            ModelSchema.column("isDefault", Bool.self, default: "false"),
        ],
        indexes: [IndexDescription(name: "spaces_one_default", columns: ["is_default"], isUnique: true, predicate: "is_default")],
        uniqueConstraints: [UniqueConstraint(name: "spaces_model_fingerprint_key", columns: ["model", "fingerprint"])],
        checks: [CheckConstraint(name: "spaces_dimensions_check", expression: "dimensions > 0")]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.model)
        try row.write(self.fingerprint)
        try row.write(self.dimensions)
        try row.write(self.isDefault)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.model = try row.read(String.self)
        self.fingerprint = try row.read(String.self)
        self.dimensions = try row.read(Int32.self)
        self.isDefault = try row.read(Bool.self)
    }
}
