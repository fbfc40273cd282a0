public import SwiftSyntax
import SwiftSyntaxBuilder
public import SwiftSyntaxMacros

/// `@Model`: makes a struct a `PersistentModel`.
///
/// As a member macro it adds the base properties the struct lacks (`id`, `createdAt`,
/// `updatedAt`) and, for a public struct, a memberwise initialiser; as an extension macro it
/// adds the conformance with `tableLocation`, `schema`, `bindColumns(to:)` and `init(row:)`.
///
/// The member role reports every diagnostic; the extension role stays silent and generates
/// nothing for a struct with errors, so each problem is reported once.
public struct ModelMacro: MemberMacro, ExtensionMacro {
    public static func expansion(
        of node: AttributeSyntax,
        providingMembersOf declaration: some DeclGroupSyntax,
        conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        guard let model = ModelDescription.read(declaration, attribute: node, diagnose: context.diagnose) else { return [] }
        let modifier = model.access.memberModifier
        var members: [DeclSyntax] = []
        for name in model.missingBaseProperties {
            let (type, initial) = Self.baseDefaults[name]!
            members.append("\(raw: modifier)var \(raw: name): \(raw: type) = \(raw: initial)")
        }
        if !model.hasInitializer, let initializer = Self.memberwiseInitializer(model) {
            members.append(initializer)
        }
        // Column and reference types by alias: the generated extension uses these names, so a type
        // nested next to the model (or in it) resolves as it does in the struct body.
        for column in model.columns {
            members.append("typealias \(raw: column.typeAlias) = \(raw: column.metatypeSpelling!)")
            if let target = Self.referenceTarget(column) {
                members.append("typealias \(raw: column.referenceAlias) = \(raw: target)")
            }
        }
        return members
    }

    public static func expansion(
        of node: AttributeSyntax,
        attachedTo declaration: some DeclGroupSyntax,
        providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        guard let model = ModelDescription.read(declaration, attribute: node, diagnose: { _ in }) else { return [] }
        let modifier = model.access.memberModifier
        // Empty when the struct already conforms (written by hand): then only the members are added.
        let conformance = protocols.isEmpty ? "" : ": " + protocols.map(\.trimmedDescription).joined(separator: ", ")
        let columns = model.columns

        var schemaArguments = [
            "modelName: \(StringLiteralExprSyntax(content: model.typeName))",
            "table: \(model.table)",
            "chamber: \(model.chamber)",
        ]
        if let renamedFrom = model.arguments.renamedFrom { schemaArguments.append("renamedFrom: \(renamedFrom)") }
        schemaArguments.append(
            columns.isEmpty
                ? "columns: []"
                : (["columns: ["] + columns.map { "    \(Self.columnDescription($0))," } + ["]"]).joined(separator: "\n")
        )
        if let indexes = model.arguments.indexes { schemaArguments.append("indexes: \(indexes)") }
        if let unique = model.arguments.unique { schemaArguments.append("uniqueConstraints: \(unique)") }
        if let checks = model.arguments.checks { schemaArguments.append("checks: \(checks)") }
        if let storage = model.arguments.storage { schemaArguments.append("storage: \(storage)") }

        var lines = ["extension \(type.trimmedDescription)\(conformance) {"]
        lines += Self.indented(1, [
            "\(modifier)static var tableLocation: (chamber: Chamber, table: String) {",
            "    (chamber: \(model.chamber), table: \(model.table))",
            "}",
            "",
            "\(modifier)static var schema: ModelSchema {",
            "    ModelSchema(",
        ])
        lines += Self.indented(3, schemaArguments.joined(separator: ",\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        lines += Self.indented(1, [
            "    )",
            "}",
            "",
            "\(modifier)func bindColumns(to row: inout ModelRowWriter) throws {",
        ])
        lines += Self.indented(2, columns.map { "try row.write(self.\($0.name.text))" })
        lines += Self.indented(1, [
            "}",
            "",
            "\(modifier)init(row: inout ModelRowReader) throws {",
            "    (self.id, self.createdAt, self.updatedAt) = try row.readBase()",
        ])
        lines += Self.indented(2, columns.map { "self.\($0.name.text) = try row.read(\($0.typeAlias).self)" })
        lines += Self.indented(1, ["}", ""])
        let typeName = type.trimmedDescription
        lines += Self.indented(1, ["\(modifier)static var columnKeyPaths: [PartialKeyPath<\(typeName)>: String] {"])
        if columns.isEmpty {
            lines += Self.indented(2, ["[:]"])
        } else {
            lines += Self.indented(2, ["["])
            lines += Self.indented(3, columns.map { "\\\(typeName).\($0.name.text): \(StringLiteralExprSyntax(content: $0.nameText))," })
            lines += Self.indented(2, ["]"])
        }
        lines += Self.indented(1, ["}"])
        lines.append("}")
        let source = lines.joined(separator: "\n")
        return [try ExtensionDeclSyntax("\(raw: source)")]
    }

    /// Lines indented by `levels` steps of four spaces (empty lines stay empty).
    static func indented(_ levels: Int, _ lines: [String]) -> [String] {
        let indentation = String(repeating: "    ", count: levels)
        return lines.map { $0.isEmpty ? $0 : indentation + $0 }
    }

    /// The base properties' types and the initial values the macro gives them.
    static let baseDefaults: [String: (type: String, initial: String)] = [
        "id": ("UUID", "UUID.v7()"),
        "createdAt": ("Date", "Date()"),
        "updatedAt": ("Date", "Date()"),
    ]

    /// `ModelSchema.column("title", String.self, name: …, …)`, arguments in the order the
    /// function declares them.
    static func columnDescription(_ property: StoredProperty) -> String {
        if property.markers.version != nil {
            // `ModelSchema.versionColumn("version", Int64.self, name: …)`: the type, default and
            // constraints are the version column's own (the analysis refused other markers).
            var arguments = [StringLiteralExprSyntax(content: property.nameText).description, "\(property.typeAlias).self"]
            if let name = property.markers.column.map(Self.arguments)?.first(where: { $0.label == "name" })?.value, !name.is(NilLiteralExprSyntax.self) {
                arguments.append("name: \(name)")
            }
            return "ModelSchema.versionColumn(\(arguments.joined(separator: ", ")))"
        }
        var arguments = [
            StringLiteralExprSyntax(content: property.nameText).description,
            "\(property.typeAlias).self",
        ]
        let column = property.markers.column.map(Self.arguments) ?? []
        func columnArgument(_ label: String) {
            if let value = column.first(where: { $0.label == label })?.value, !value.is(NilLiteralExprSyntax.self) {
                arguments.append("\(label): \(value)")
            }
        }
        columnArgument("name")
        columnArgument("type")
        columnArgument("default")
        if property.markers.unique != nil {
            arguments.append("unique: true")
        }
        if let index = property.markers.index.map(Self.arguments) {
            let method = index.first { $0.label == nil }?.value.description ?? ".btree"
            arguments.append("index: \(method)")
            if let operatorClass = index.first(where: { $0.label == "operatorClass" })?.value, !operatorClass.is(NilLiteralExprSyntax.self) {
                arguments.append("operatorClass: \(operatorClass)")
            }
        }
        if let references = property.markers.references.map(Self.arguments), let target = references.first(where: { $0.label == nil }) {
            let onDelete = references.first { $0.label == "onDelete" }.map { ", onDelete: \($0.value)" } ?? ""
            let spelled = Self.referenceTarget(property) != nil ? "\(property.referenceAlias).self" : target.value.description
            arguments.append("references: ForeignKey(\(spelled)\(onDelete))")
        }
        columnArgument("renamedFrom")
        return "ModelSchema.column(\(arguments.joined(separator: ", ")))"
    }

    /// The referenced model's type as written in `@References(Target.self)`, without `.self`.
    static func referenceTarget(_ property: StoredProperty) -> String? {
        guard let references = property.markers.references.map(Self.arguments),
              let target = references.first(where: { $0.label == nil })?.value else { return nil }
        if let member = target.as(MemberAccessExprSyntax.self), member.declName.baseName.text == "self", let base = member.base {
            return base.trimmedDescription
        }
        return nil
    }

    /// An attribute's arguments as (label, trimmed expression) pairs.
    static func arguments(_ attribute: AttributeSyntax) -> [(label: String?, value: ExprSyntax)] {
        guard case .argumentList(let list) = attribute.arguments else { return [] }
        return list.map { ($0.label?.text, $0.expression.trimmed) }
    }

    /// A memberwise initialiser for a public or package struct, or `nil` when Swift's own will do.
    ///
    /// Swift's implicit memberwise initialiser already takes the stored properties a member macro
    /// adds (after the struct's own, with their initial values as defaults), so an internal model
    /// needs nothing from the macro. But it is at most `internal`, which leaves a public model
    /// without a public way to make one; for those this one is written out, as visible as the
    /// struct and the properties it assigns allow. It takes the same parameters as Swift's, except
    /// that `id`, `createdAt` and `updatedAt` always come last and a `@Transient` property without
    /// a written type keeps its initial value.
    static func memberwiseInitializer(_ model: ModelDescription) -> DeclSyntax? {
        var parameters: [(name: String, type: String, initial: String?)] = []
        var access = model.access
        for property in model.properties where !property.isBase && property.isInitializable {
            guard let type = property.type else { continue }
            parameters.append((property.name.text, type.trimmedDescription, property.implicitDefault))
            access = min(access, property.access)
        }
        for name in ModelDescription.baseProperties {
            if let declared = model.properties.first(where: { $0.nameText == name }) {
                guard declared.isInitializable else { continue }
                let type = declared.type?.trimmedDescription ?? Self.baseDefaults[name]!.type
                parameters.append((declared.name.text, type, declared.implicitDefault))
                access = min(access, declared.access)
            } else {
                let (type, initial) = Self.baseDefaults[name]!
                parameters.append((name, type, initial))
            }
        }
        guard access >= .package else { return nil }
        let list = parameters.map { "    \($0.name): \($0.type)" + ($0.initial.map { " = \($0)" } ?? "") }
        let body = parameters.map { "    self.\($0.name) = \($0.name)" }
        return """
            \(raw: access.memberModifier)init(
            \(raw: list.joined(separator: ",\n"))
            ) {
            \(raw: body.joined(separator: "\n"))
            }
            """
    }
}
