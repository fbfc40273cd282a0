import SwiftCompilerPlugin
import SwiftSyntaxMacros

/// The compiler plugin: the macros `Phylactery` declares in `Model+Macros.swift` and `JSONBFastCoding.swift`.
@main
struct PhylacteryMacrosPlugin: CompilerPlugin {
    let providingMacros: [any Macro.Type] = [
        ModelMacro.self,
        PropertyMarkerMacro.self,
        JSONBCodableMacro.self,
    ]
}
