import SwiftDiagnostics
public import SwiftSyntax
import SwiftSyntaxBuilder
public import SwiftSyntaxMacros

/// `@JSONBCodable`: generates `JSONBFastEncodable` / `JSONBFastDecodable` conformances whose code
/// writes each stored property straight to the encoder's writer and reads it straight from the
/// decoder's parsed document, producing the bytes synthesized `Codable` produces.
///
/// Shape of the generated code: keys are static byte literals (`"\"name\":"`), values go through
/// `JSONBWriter.write(_:)` / `JSONBReader.decode(_:at:)` overloads the compiler picks from the
/// property's type; optionals, arrays and `[String: _]` dictionaries are unrolled by the macro into
/// calls of the writer's and reader's inlinable combinators. The decoding code names each
/// property's innermost type through a member type alias (`_JSONBValue_name`), since types nested in
/// or next to the struct do not resolve in an extension at file scope.
public struct JSONBCodableMacro: ExtensionMacro, MemberMacro {
    /// The member role: one type alias per decoded property naming the type its generated code
    /// reads (the innermost element type of optionals, arrays and dictionaries). The extension sits
    /// at file scope, where types nested in or next to the struct do not resolve; in the struct body
    /// they do, and the alias carries them over.
    public static func expansion(
        of node: AttributeSyntax,
        providingMembersOf declaration: some DeclGroupSyntax,
        conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        // The extension role reports the problems; this one stays silent and adds nothing then.
        guard let description = JSONBCodableDescription.read(declaration, attribute: node, diagnose: { _ in }), !description.hasCustomDecode else { return [] }
        return description.decoded.map { "typealias \(raw: $0.valueAlias) = \(raw: $0.kind.leafType)" }
    }

    public static func expansion(
        of node: AttributeSyntax,
        attachedTo declaration: some DeclGroupSyntax,
        providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        guard let description = JSONBCodableDescription.read(declaration, attribute: node, diagnose: context.diagnose) else { return [] }
        let requested = Set(protocols.map(\.trimmedDescription))
        let modifier = description.access.memberModifier
        let typeName = type.trimmedDescription
        var extensions: [ExtensionDeclSyntax] = []

        if requested.contains("JSONBFastEncodable"), !description.hasCustomEncode {
            var lines = ["extension \(typeName): JSONBFastEncodable {", "    \(modifier)func encodeJSONB(to writer: JSONBWriter) throws {", "        writer.beginObject()"]
            let encoded = description.encoded
            if !encoded.isEmpty { lines.append("        var first = true") }
            for property in encoded {
                let access = "self.\(property.name.text)"
                if let inner = property.kind.optionalWrapped {
                    lines.append("        if let value = \(access) {")
                    lines.append("            \(Self.memberCall(property.key))")
                    lines.append("            \(Self.encode(inner, "value"))")
                    lines.append("        }")
                } else if property.kind.mayHideOptional {
                    // The type may be an Optional behind an alias: left out when nil, as Codable does.
                    lines.append("        if writer.isPresent(\(access)) {")
                    lines.append("            \(Self.memberCall(property.key))")
                    lines.append("            \(Self.encode(property.kind, access))")
                    lines.append("        }")
                } else {
                    lines.append("        \(Self.memberCall(property.key))")
                    lines.append("        \(Self.encode(property.kind, access))")
                }
            }
            lines += ["        writer.endObject()", "    }", "}"]
            extensions.append(try ExtensionDeclSyntax("\(raw: lines.joined(separator: "\n"))"))
        }

        if requested.contains("JSONBFastDecodable"), !description.hasCustomDecode {
            var lines = ["extension \(typeName): JSONBFastDecodable {", "    \(modifier)init(jsonb reader: JSONBReader, at value: Int) throws {"]
            let decoded = description.decoded
            lines.append(decoded.isEmpty ? "        _ = try reader.object(at: value)" : "        var object = try reader.object(at: value)")
            for property in decoded {
                let key = StringLiteralExprSyntax(content: property.key).description
                let access = "self.\(property.name.text)"
                if let inner = property.kind.optionalWrapped {
                    lines.append("        if let member = reader.find(\(key), in: &object), !reader.isNull(member) {")
                    lines.append("            \(access) = .some(\(Self.decode(inner, "member", property.valueAlias)))")
                    lines.append("        } else {")
                    lines.append("            \(access) = nil")
                    lines.append("        }")
                } else if property.kind.mayHideOptional {
                    // The overloads of decodeMember tell an Optional behind an alias (missing or null: nil).
                    lines.append("        \(access) = try reader.decodeMember(\(property.valueAlias).self, \(key), in: &object)")
                } else {
                    lines.append("        \(access) = \(Self.decode(property.kind, "try reader.require(\(key), in: &object)", property.valueAlias))")
                }
            }
            lines += ["    }", "}"]
            extensions.append(try ExtensionDeclSyntax("\(raw: lines.joined(separator: "\n"))"))
        }
        return extensions
    }

    /// The call that starts a member: a static literal of the escaped key when it needs no
    /// escaping, otherwise the key escaped at run time.
    static func memberCall(_ key: String) -> String {
        let needsEscaping = key.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        if needsEscaping {
            return "writer.member(key: \(StringLiteralExprSyntax(content: key).description), first: &first)"
        }
        return "writer.member(\(StringLiteralExprSyntax(content: "\"\(key)\":").description), first: &first)"
    }

    /// A statement writing `value` (of shape `kind`) with `writer`.
    static func encode(_ kind: JSONBValueKind, _ value: String) -> String {
        switch kind {
        case .leaf: "try writer.write(\(value))"
        case .optional(let inner): "try writer.writeOptional(\(value)) { writer, value in \(encode(inner, "value")) }"
        case .array(let element): "try writer.writeArray(\(value)) { writer, value in \(encode(element, "value")) }"
        case .stringDictionary(let element): "try writer.writeDictionary(\(value)) { writer, value in \(encode(element, "value")) }"
        }
    }

    /// An expression reading the value at tape index `index` (of shape `kind`, innermost type named
    /// by the member alias `alias`) with `reader`.
    static func decode(_ kind: JSONBValueKind, _ index: String, _ alias: String) -> String {
        switch kind {
        case .leaf: "try reader.decode(\(alias).self, at: \(index))"
        case .optional(let inner): "try reader.decodeOptional(at: \(index)) { reader, value in \(decode(inner, "value", alias)) }"
        case .array(let element): "try reader.decodeArray(at: \(index)) { reader, value in \(decode(element, "value", alias)) }"
        case .stringDictionary(let element): "try reader.decodeDictionary(at: \(index)) { reader, value in \(decode(element, "value", alias)) }"
        }
    }
}

/// The shape of a property's type as far as the generated code unrolls it.
indirect enum JSONBValueKind {
    /// Written and read by one overload (scalars, generated types, `Codable` fallback); the type as written.
    case leaf(String)
    case optional(JSONBValueKind)
    case array(JSONBValueKind)
    /// `[String: V]`; dictionaries with other keys are leaves (their `Codable` conformance).
    case stringDictionary(JSONBValueKind)

    /// The innermost type: what the generated code reads with one overload.
    var leafType: String {
        switch self {
        case .leaf(let type): type
        case .optional(let inner), .array(let inner), .stringDictionary(let inner): inner.leafType
        }
    }

    /// A leaf whose type the macro cannot see to be non-optional: anything but the scalars the
    /// writer and reader have overloads for. It reads syntax only, so `typealias Count = Int?` looks
    /// like any other type; the generated code asks the compiler instead (`isPresent`,
    /// `decodeMember`), which costs nothing when the type is not an Optional.
    var mayHideOptional: Bool {
        guard case .leaf(let type) = self else { return false }
        let name = type.hasPrefix("Swift.") || type.hasPrefix("Foundation.") ? String(type.split(separator: ".", maxSplits: 1)[1]) : type
        return !Self.knownScalars.contains(name)
    }

    static let knownScalars: Set<String> = [
        "String", "Bool", "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64",
        "Double", "Float", "Date", "UUID", "URL", "Decimal", "Data",
    ]

    var optionalWrapped: JSONBValueKind? {
        if case .optional(let inner) = self { return inner }
        return nil
    }

    /// The shape of `type`, or why it cannot be `Codable`.
    static func of(_ type: TypeSyntax) -> Result<JSONBValueKind, JSONBCodableDiagnostic.Reason> {
        if let optional = type.as(OptionalTypeSyntax.self) { return of(optional.wrappedType).map { .optional($0) } }
        if let optional = type.as(ImplicitlyUnwrappedOptionalTypeSyntax.self) { return of(optional.wrappedType).map { .optional($0) } }
        if let array = type.as(ArrayTypeSyntax.self) { return of(array.element).map { .array($0) } }
        if let dictionary = type.as(DictionaryTypeSyntax.self) {
            let value = of(dictionary.value)
            return isString(dictionary.key) ? value.map { .stringDictionary($0) } : value.map { _ in .leaf(type.trimmedDescription) }
        }
        if let attributed = type.as(AttributedTypeSyntax.self) { return of(attributed.baseType) }
        if type.is(FunctionTypeSyntax.self) { return .failure(.function) }
        if type.is(MetatypeTypeSyntax.self) { return .failure(.metatype) }
        if type.is(SomeOrAnyTypeSyntax.self) || type.is(CompositionTypeSyntax.self) { return .failure(.existential) }
        if let tuple = type.as(TupleTypeSyntax.self) {
            if tuple.elements.count == 1, let only = tuple.elements.first, only.firstName == nil { return of(only.type) }
            return .failure(.tuple)
        }
        if let identifier = type.as(IdentifierTypeSyntax.self) {
            let arguments = identifier.genericArgumentClause.map { Array($0.arguments) } ?? []
            switch (identifier.name.text, arguments.count) {
            case ("Any", 0), ("AnyObject", 0): return .failure(.existential)
            case ("Optional", 1): return genericArgument(arguments[0]).map { of($0).map { .optional($0) } } ?? .success(.leaf(type.trimmedDescription))
            case ("Array", 1): return genericArgument(arguments[0]).map { of($0).map { .array($0) } } ?? .success(.leaf(type.trimmedDescription))
            case ("Dictionary", 2):
                guard let key = genericArgument(arguments[0]), let value = genericArgument(arguments[1]) else { return .success(.leaf(type.trimmedDescription)) }
                return isString(key) ? of(value).map { .stringDictionary($0) } : of(value).map { _ in .leaf(type.trimmedDescription) }
            default: return .success(.leaf(type.trimmedDescription))
            }
        }
        return .success(.leaf(type.trimmedDescription))
    }

    private static func genericArgument(_ argument: GenericArgumentSyntax) -> TypeSyntax? {
        switch argument.argument {
        case .type(let type): type
        default: nil
        }
    }

    private static func isString(_ type: TypeSyntax) -> Bool {
        ["String", "Swift.String"].contains(type.trimmedDescription)
    }
}

/// One property the generated code writes or reads.
struct JSONBCodedProperty {
    /// The name as written (with backticks if the user wrote them).
    var name: TokenSyntax
    /// The JSON key: the name, or the raw value of its `CodingKeys` case.
    var key: String
    var kind: JSONBValueKind
    /// A `let` with an initial value: written, never read (synthesized `Decodable` skips it too).
    var isReadable: Bool
    /// The property's name as written, without backticks.
    var nameText: String

    /// The member type alias naming the type the decoding code reads.
    var valueAlias: String { "_JSONBValue_\(nameText)" }
}

/// Everything `@JSONBCodable` learns from the struct it is attached to.
struct JSONBCodableDescription {
    var access: AccessLevel
    var properties: [JSONBCodedProperty]
    var hasCustomEncode: Bool
    var hasCustomDecode: Bool

    var encoded: [JSONBCodedProperty] { properties }
    var decoded: [JSONBCodedProperty] { properties.filter(\.isReadable) }

    /// Reads the struct, reporting what `@JSONBCodable` cannot handle. Returns `nil` after an error.
    static func read(_ declaration: some DeclGroupSyntax, attribute: AttributeSyntax, diagnose: (Diagnostic) -> Void) -> JSONBCodableDescription? {
        guard let structDecl = declaration.as(StructDeclSyntax.self) else {
            diagnose(Diagnostic(node: attribute, message: JSONBCodableDiagnostic.notAStruct))
            return nil
        }
        var problems: [Diagnostic] = []
        var hasCustomEncode = false
        var hasCustomDecode = false
        var codingKeys: [String: String]?  // case name → key, in declaration order below
        // `written` is the type node in the source (for diagnostics' positions), `type` its trimmed copy.
        var stored: [(name: TokenSyntax, nameText: String, type: TypeSyntax, written: TypeSyntax, isReadable: Bool)] = []

        for member in structDecl.memberBlock.members {
            let decl = member.decl
            if let function = decl.as(FunctionDeclSyntax.self), function.name.text == "encode",
               function.signature.parameterClause.parameters.count == 1,
               function.signature.parameterClause.parameters.first?.firstName.text == "to" {
                hasCustomEncode = true
                continue
            }
            if let initializer = decl.as(InitializerDeclSyntax.self),
               initializer.signature.parameterClause.parameters.count == 1,
               initializer.signature.parameterClause.parameters.first?.firstName.text == "from" {
                hasCustomDecode = true
                continue
            }
            if let enumDecl = decl.as(EnumDeclSyntax.self), enumDecl.name.text == "CodingKeys" {
                codingKeys = Self.codingKeys(enumDecl, problems: &problems)
                continue
            }
            guard let variable = decl.as(VariableDeclSyntax.self) else { continue }
            if variable.modifiers.contains(where: { [.keyword(.static), .keyword(.class)].contains($0.name.tokenKind) }) { continue }
            let isLazy = variable.modifiers.contains { $0.name.tokenKind == .keyword(.lazy) }
            let isLet = variable.bindingSpecifier.tokenKind == .keyword(.let)
            let bindings = Array(variable.bindings)
            for (position, binding) in bindings.enumerated() {
                if let accessors = binding.accessorBlock, ModelDescription.isComputed(accessors) { continue }
                guard let identifier = binding.pattern.as(IdentifierPatternSyntax.self) else {
                    problems.append(Diagnostic(node: binding.pattern, message: JSONBCodableDiagnostic.unsupportedPattern))
                    continue
                }
                let nameText = Naming.unescaped(identifier.identifier.text)
                if isLazy {
                    problems.append(Diagnostic(node: identifier, message: JSONBCodableDiagnostic.lazyProperty(property: nameText)))
                    continue
                }
                var written = binding.typeAnnotation?.type
                if written == nil, binding.initializer == nil {
                    written = bindings[(position + 1)...].lazy.compactMap { $0.typeAnnotation?.type }.first
                }
                guard let written else {
                    problems.append(Diagnostic(node: identifier, message: JSONBCodableDiagnostic.missingType(property: nameText)))
                    continue
                }
                stored.append((identifier.identifier.trimmed, nameText, written.trimmed, written, !(isLet && binding.initializer != nil)))
            }
        }

        var properties: [JSONBCodedProperty] = []
        for property in stored {
            // Properties CodingKeys leaves out are not coded (synthesized Codable needs a default for them).
            let key: String
            if let codingKeys {
                guard let mapped = codingKeys[property.nameText] else { continue }
                key = mapped
            } else {
                key = property.nameText
            }
            switch JSONBValueKind.of(property.type) {
            case .success(let kind):
                properties.append(JSONBCodedProperty(name: property.name, key: key, kind: kind, isReadable: property.isReadable, nameText: property.nameText))
            case .failure(let reason):
                problems.append(Diagnostic(node: property.written, message: JSONBCodableDiagnostic.notCodable(property: property.nameText, type: property.type.trimmedDescription, reason: reason)))
            }
        }
        guard problems.isEmpty else {
            problems.forEach(diagnose)
            return nil
        }
        return JSONBCodableDescription(access: AccessLevel(structDecl.modifiers), properties: properties, hasCustomEncode: hasCustomEncode, hasCustomDecode: hasCustomDecode)
    }

    /// The text of a string literal without interpolation (what a raw value is): escapes resolved,
    /// raw strings (`#"…"#`) taken as written. `nil` for interpolation or an escape not understood.
    static func plainText(_ literal: StringLiteralExprSyntax) -> String? {
        var source = ""
        for segment in literal.segments {
            guard let plain = segment.as(StringSegmentSyntax.self) else { return nil }
            source += plain.content.text
        }
        if literal.openingPounds != nil { return source.contains("\\#") ? nil : source }
        var text = ""
        var characters = source.unicodeScalars.makeIterator()
        while let scalar = characters.next() {
            guard scalar == "\\" else { text.unicodeScalars.append(scalar); continue }
            switch characters.next() {
            case "\\": text += "\\"
            case "\"": text += "\""
            case "'": text += "'"
            case "n": text += "\n"
            case "r": text += "\r"
            case "t": text += "\t"
            case "0": text += "\0"
            case "u":
                guard characters.next() == "{" else { return nil }
                var hex = ""
                while let digit = characters.next(), digit != "}" { hex.unicodeScalars.append(digit) }
                guard let value = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(value) else { return nil }
                text.unicodeScalars.append(decoded)
            default: return nil
            }
        }
        return text
    }

    /// The keys of a `CodingKeys` enum: a `String` raw value written as a literal, else the case name.
    static func codingKeys(_ enumDecl: EnumDeclSyntax, problems: inout [Diagnostic]) -> [String: String] {
        let rawIsString = enumDecl.inheritanceClause?.inheritedTypes.contains { ["String", "Swift.String"].contains($0.type.trimmedDescription) } ?? false
        var keys: [String: String] = [:]
        for member in enumDecl.memberBlock.members {
            guard let caseDecl = member.decl.as(EnumCaseDeclSyntax.self) else { continue }
            for element in caseDecl.elements {
                let name = Naming.unescaped(element.name.text)
                if rawIsString, let rawValue = element.rawValue?.value {
                    guard let literal = rawValue.as(StringLiteralExprSyntax.self), let value = Self.plainText(literal) else {
                        problems.append(Diagnostic(node: rawValue, message: JSONBCodableDiagnostic.unreadableCodingKey(name: name)))
                        continue
                    }
                    keys[name] = value
                } else {
                    keys[name] = name
                }
            }
        }
        return keys
    }
}

/// What `@JSONBCodable` refuses, with the message the compiler shows.
enum JSONBCodableDiagnostic: DiagnosticMessage {
    enum Reason: Error {
        case function, metatype, existential, tuple

        var text: String {
            switch self {
            case .function: "function types are not Codable"
            case .metatype: "metatypes are not Codable"
            case .existential: "existential types (any P, Any) are not Codable; use a concrete Codable type or an enum"
            case .tuple: "tuples are not Codable; use a struct"
            }
        }
    }

    case notAStruct
    case missingType(property: String)
    case unsupportedPattern
    case lazyProperty(property: String)
    case notCodable(property: String, type: String, reason: Reason)
    case unreadableCodingKey(name: String)

    var message: String {
        switch self {
        case .notAStruct:
            "@JSONBCodable can only be applied to a struct"
        case .missingType(let property):
            "@JSONBCodable needs an explicit type for '\(property)'"
        case .unsupportedPattern:
            "@JSONBCodable needs one name per stored property; declare the names of this pattern separately"
        case .lazyProperty(let property):
            "@JSONBCodable cannot code lazy property '\(property)'; make it a stored or computed property"
        case .notCodable(let property, let type, let reason):
            "@JSONBCodable cannot code '\(property)' of type '\(type)': \(reason.text)"
        case .unreadableCodingKey(let name):
            "@JSONBCodable reads the key of CodingKeys.\(name) from its raw value, which must be a plain string literal (no interpolation)"
        }
    }

    var diagnosticID: MessageID {
        let id = switch self {
        case .notAStruct: "jsonbNotAStruct"
        case .missingType: "jsonbMissingType"
        case .unsupportedPattern: "jsonbUnsupportedPattern"
        case .lazyProperty: "jsonbLazyProperty"
        case .notCodable: "jsonbNotCodable"
        case .unreadableCodingKey: "jsonbUnreadableCodingKey"
        }
        return MessageID(domain: "PhylacteryMacros", id: id)
    }

    var severity: DiagnosticSeverity { .error }
}
