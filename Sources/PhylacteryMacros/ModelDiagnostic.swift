import SwiftDiagnostics

/// What `@Model` refuses, with the message the compiler shows.
enum ModelDiagnostic: DiagnosticMessage {
    case notAStruct(kind: String)
    case missingType(property: String)
    case unsupportedPattern
    case transientWithoutDefault(property: String)
    case constantWithInitialValue(property: String)
    case transientWithMarker(property: String, marker: String)
    case markerOnBaseProperty(property: String, marker: String)
    case markerOnUnstoredProperty(marker: String)
    case secondVersion
    case versionWithMarker(property: String, marker: String)

    var message: String {
        switch self {
        case .notAStruct(let kind):
            "@Model can only be applied to a struct, not to \(kind)"
        case .missingType(let property):
            "@Model needs an explicit type for '\(property)'"
        case .unsupportedPattern:
            "@Model needs one name per stored property; declare the names of this pattern separately"
        case .transientWithoutDefault(let property):
            "@Transient property '\(property)' needs a default value, since it is not read from the row"
        case .constantWithInitialValue(let property):
            "'let' property '\(property)' has an initial value, so it cannot be read from a row; make it 'var' or mark it @Transient"
        case .transientWithMarker(let property, let marker):
            "@Transient property '\(property)' is not stored, so @\(marker) has no column to describe"
        case .markerOnBaseProperty(let property, let marker):
            "'\(property)' is a base column that Phylactery defines itself; @\(marker) cannot change it"
        case .markerOnUnstoredProperty(let marker):
            "@\(marker) applies only to stored instance properties of a @Model struct"
        case .secondVersion:
            "a @Model struct has at most one @Version property"
        case .versionWithMarker(let property, let marker):
            "@Version property '\(property)' is an integer column Phylactery counts up itself; @\(marker) cannot change it"
        }
    }

    var diagnosticID: MessageID {
        let id: String
        switch self {
        case .notAStruct: id = "notAStruct"
        case .missingType: id = "missingType"
        case .unsupportedPattern: id = "unsupportedPattern"
        case .transientWithoutDefault: id = "transientWithoutDefault"
        case .constantWithInitialValue: id = "constantWithInitialValue"
        case .transientWithMarker: id = "transientWithMarker"
        case .markerOnBaseProperty: id = "markerOnBaseProperty"
        case .markerOnUnstoredProperty: id = "markerOnUnstoredProperty"
        case .secondVersion: id = "secondVersion"
        case .versionWithMarker: id = "versionWithMarker"
        }
        return MessageID(domain: "PhylacteryMacros", id: id)
    }

    var severity: DiagnosticSeverity { .error }
}
