public import SwiftSyntax
public import SwiftSyntaxMacros

/// `@Column`, `@Index`, `@Unique`, `@References` and `@Transient`.
///
/// They generate nothing themselves: `@Model` reads them off the properties of the struct it is
/// attached to. Being macros (rather than bare custom attributes) gives them a declared signature,
/// so the compiler checks their arguments.
public struct PropertyMarkerMacro: PeerMacro {
    public static func expansion(
        of node: AttributeSyntax,
        providingPeersOf declaration: some DeclSyntaxProtocol,
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        []
    }
}
