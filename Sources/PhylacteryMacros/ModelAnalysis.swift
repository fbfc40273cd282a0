import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder

/// Swift access levels, least visible first.
enum AccessLevel: Int, Comparable {
    case `private`, `fileprivate`, `internal`, `package`, `public`

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The level a declaration's modifiers give it (`internal` when none is written).
    /// `private(set)` and the like restrict only the setter, so they do not count.
    init(_ modifiers: DeclModifierListSyntax) {
        self = .internal
        for modifier in modifiers where modifier.detail == nil {
            switch modifier.name.tokenKind {
            case .keyword(.public), .keyword(.open): self = .public
            case .keyword(.package): self = .package
            case .keyword(.internal): self = .internal
            case .keyword(.fileprivate): self = .fileprivate
            case .keyword(.private): self = .private
            default: continue
            }
        }
    }

    /// The modifier (with a trailing space) that gives a generated member of a type with this
    /// access level the same reach. Below `internal` nothing is written: a member without modifier
    /// is already as visible as its private or fileprivate type.
    var memberModifier: String {
        switch self {
        case .public: "public "
        case .package: "package "
        case .internal, .fileprivate, .private: ""
        }
    }
}

/// The property attributes `@Model` reads.
struct Markers {
    var column: AttributeSyntax?
    var index: AttributeSyntax?
    var unique: AttributeSyntax?
    var references: AttributeSyntax?
    var transient: AttributeSyntax?
    var version: AttributeSyntax?

    init(_ attributes: AttributeListSyntax) {
        for element in attributes {
            guard case .attribute(let attribute) = element else { continue }
            switch Self.name(of: attribute) {
            case "Column": self.column = attribute
            case "Index": self.index = attribute
            case "Unique": self.unique = attribute
            case "References": self.references = attribute
            case "Transient": self.transient = attribute
            case "Version": self.version = attribute
            default: continue
            }
        }
    }

    /// `Column` for both `@Column` and `@Phylactery.Column`.
    static func name(of attribute: AttributeSyntax) -> String? {
        if let simple = attribute.attributeName.as(IdentifierTypeSyntax.self) { return simple.name.text }
        if let member = attribute.attributeName.as(MemberTypeSyntax.self) { return member.name.text }
        return nil
    }

    /// The markers present, as attribute nodes with their names.
    var present: [(name: String, attribute: AttributeSyntax)] {
        [("Column", self.column), ("Index", self.index), ("Unique", self.unique), ("References", self.references), ("Transient", self.transient), ("Version", self.version)]
            .compactMap { name, attribute in attribute.map { (name, $0) } }
    }
}

/// One stored instance property of the struct.
struct StoredProperty {
    /// The name as written (with backticks if the user wrote them).
    var name: TokenSyntax
    /// The name as a string, without backticks.
    var nameText: String
    /// The declared type; `nil` only for diagnosed or transient properties.
    var type: TypeSyntax?
    var initializer: ExprSyntax?
    var isLet: Bool
    var access: AccessLevel
    var markers: Markers

    var isTransient: Bool { self.markers.transient != nil }
    var isBase: Bool { ModelDescription.baseProperties.contains(self.nameText) }

    /// Whether an initializer may assign the property: a `var`, or a `let` without initial value.
    var isInitializable: Bool { !self.isLet || self.initializer == nil }

    /// The type for `T.self`: `String!` is spelled `String?`, since `String!.self` is not an expression.
    var metatypeSpelling: String? {
        guard let type else { return nil }
        if let unwrapped = type.as(ImplicitlyUnwrappedOptionalTypeSyntax.self) {
            return "\(unwrapped.wrappedType.trimmedDescription)?"
        }
        return type.trimmedDescription
    }

    /// The member type alias that names the column's type inside the struct, where nested and
    /// sibling types resolve; the conformance extension sits at file scope, where they would not.
    var typeAlias: String { "_PhylacteryColumn_\(self.nameText)" }

    /// The same for a `@References` target.
    var referenceAlias: String { "_PhylacteryReference_\(self.nameText)" }

    /// Swift gives `var x: T?` without initial value an implicit `nil`; the generated memberwise
    /// initialiser defaults such a parameter the same way.
    var implicitDefault: String? {
        if let initializer { return initializer.trimmedDescription }
        guard !self.isLet, let type else { return nil }
        return type.is(OptionalTypeSyntax.self) || type.is(ImplicitlyUnwrappedOptionalTypeSyntax.self) ? "nil" : nil
    }
}

/// The arguments of `@Model(...)`, as the expressions the user wrote.
struct ModelArguments {
    var table: ExprSyntax?
    var chamber: ExprSyntax?
    var renamedFrom: ExprSyntax?
    var storage: ExprSyntax?
    var indexes: ExprSyntax?
    var unique: ExprSyntax?
    var checks: ExprSyntax?

    init(_ attribute: AttributeSyntax) {
        guard case .argumentList(let arguments) = attribute.arguments else { return }
        for argument in arguments {
            let expression = argument.expression.trimmed
            switch argument.label?.text {
            case "table": self.table = expression.is(NilLiteralExprSyntax.self) ? nil : expression
            case "chamber": self.chamber = expression
            case "renamedFrom": self.renamedFrom = expression
            case "storage": self.storage = expression
            case "indexes": self.indexes = expression
            case "unique": self.unique = expression
            case "checks": self.checks = expression
            default: continue
            }
        }
    }
}

/// Everything `@Model` learns from the struct it is attached to.
struct ModelDescription {
    /// The names the base columns have in Swift.
    static let baseProperties = ["id", "createdAt", "updatedAt"]

    var typeName: String
    var access: AccessLevel
    var arguments: ModelArguments
    /// Every stored instance property, in declaration order.
    var properties: [StoredProperty]
    /// Whether the struct body declares an initialiser of its own.
    var hasInitializer: Bool

    /// The properties that become columns, in declaration order.
    var columns: [StoredProperty] { self.properties.filter { !$0.isTransient && !$0.isBase } }

    /// The base properties the user did not declare, which the macro adds.
    var missingBaseProperties: [String] {
        Self.baseProperties.filter { name in !self.properties.contains { $0.nameText == name } }
    }

    /// The table expression: the user's, or the derived name as a literal.
    var table: ExprSyntax {
        self.arguments.table ?? ExprSyntax(StringLiteralExprSyntax(content: Naming.tableName(forType: self.typeName)))
    }

    var chamber: ExprSyntax { self.arguments.chamber ?? ".public" }

    /// Reads the struct, reporting what `@Model` cannot handle. Returns `nil` after an error.
    static func read(
        _ declaration: some DeclGroupSyntax,
        attribute: AttributeSyntax,
        diagnose: (Diagnostic) -> Void
    ) -> ModelDescription? {
        guard let structDecl = declaration.as(StructDeclSyntax.self) else {
            let kind = switch declaration.kind {
            case .classDecl: "a class"
            case .enumDecl: "an enum"
            case .actorDecl: "an actor"
            case .protocolDecl: "a protocol"
            case .extensionDecl: "an extension"
            default: "this declaration"
            }
            diagnose(Diagnostic(node: attribute, message: ModelDiagnostic.notAStruct(kind: kind)))
            return nil
        }

        var problems: [Diagnostic] = []
        func fail(_ node: some SyntaxProtocol, _ message: ModelDiagnostic) {
            problems.append(Diagnostic(node: node, message: message))
        }

        var properties: [StoredProperty] = []
        var hasInitializer = false
        for member in structDecl.memberBlock.members {
            if member.decl.is(InitializerDeclSyntax.self) {
                hasInitializer = true
                continue
            }
            guard let variable = member.decl.as(VariableDeclSyntax.self) else { continue }
            let markers = Markers(variable.attributes)
            let isStatic = variable.modifiers.contains { [.keyword(.static), .keyword(.class)].contains($0.name.tokenKind) }
            let isLazy = variable.modifiers.contains { $0.name.tokenKind == .keyword(.lazy) }
            if isStatic || isLazy {
                for marker in markers.present { fail(marker.attribute, .markerOnUnstoredProperty(marker: marker.name)) }
                continue
            }
            let bindings = Array(variable.bindings)
            for (position, binding) in bindings.enumerated() {
                if let accessors = binding.accessorBlock, Self.isComputed(accessors) {
                    for marker in markers.present { fail(marker.attribute, .markerOnUnstoredProperty(marker: marker.name)) }
                    continue
                }
                guard let identifier = binding.pattern.as(IdentifierPatternSyntax.self) else {
                    fail(binding.pattern, .unsupportedPattern)
                    continue
                }
                // `var a, b: Int` gives `a` the type written after `b`.
                var type = binding.typeAnnotation?.type.trimmed
                if type == nil, binding.initializer == nil {
                    type = bindings[(position + 1)...].lazy.compactMap { $0.typeAnnotation?.type.trimmed }.first
                }
                let property = StoredProperty(
                    name: identifier.identifier.trimmed,
                    nameText: Naming.unescaped(identifier.identifier.text),
                    type: type,
                    initializer: binding.initializer?.value.trimmed,
                    isLet: variable.bindingSpecifier.tokenKind == .keyword(.let),
                    access: AccessLevel(variable.modifiers),
                    markers: markers
                )
                if property.isBase {
                    for marker in markers.present { fail(marker.attribute, .markerOnBaseProperty(property: property.nameText, marker: marker.name)) }
                } else if property.isTransient {
                    if property.initializer == nil { fail(identifier, .transientWithoutDefault(property: property.nameText)) }
                    for marker in markers.present where marker.name != "Transient" {
                        fail(marker.attribute, .transientWithMarker(property: property.nameText, marker: marker.name))
                    }
                } else {
                    if type == nil { fail(identifier, .missingType(property: property.nameText)) }
                    if property.isLet && property.initializer != nil { fail(identifier, .constantWithInitialValue(property: property.nameText)) }
                }
                properties.append(property)
            }
        }
        let versions = properties.compactMap(\.markers.version)
        for extra in versions.dropFirst() { fail(extra, .secondVersion) }
        for property in properties {
            guard let version = property.markers.version, !property.isBase, !property.isTransient else { continue }
            for marker in property.markers.present where ["Index", "Unique", "References"].contains(marker.name) {
                fail(marker.attribute, .versionWithMarker(property: property.nameText, marker: marker.name))
            }
            if let column = property.markers.column, case .argumentList(let arguments) = column.arguments,
               arguments.contains(where: { $0.label?.text == "type" || $0.label?.text == "default" }) {
                fail(version, .versionWithMarker(property: property.nameText, marker: "Column(type:/default:)"))
            }
        }
        guard problems.isEmpty else {
            problems.forEach(diagnose)
            return nil
        }
        return ModelDescription(
            typeName: Naming.unescaped(structDecl.name.text),
            access: AccessLevel(structDecl.modifiers),
            arguments: ModelArguments(attribute),
            properties: properties,
            hasInitializer: hasInitializer
        )
    }

    /// A property with a getter (or `set`, `_read`, …) computes its value; one with only
    /// `willSet`/`didSet` observers is still stored.
    static func isComputed(_ accessors: AccessorBlockSyntax) -> Bool {
        switch accessors.accessors {
        case .getter:
            return true
        case .accessors(let list):
            return list.contains { ![.keyword(.willSet), .keyword(.didSet)].contains($0.accessorSpecifier.tokenKind) }
        }
    }
}
