import Foundation
@testable import Phylactery
import Testing

/// Extensions disabled by configuration: left out of the federation (models and handlers), their
/// jobs' kinds listed for the workers to skip, and refused before any DDL when a key would dangle.
@Suite struct DisabledExtensionTests {
    struct Job1: Job { static let kind = "alpha.ping"; var n: Int }
    struct Job2: Job { static let kind = "beta.pong"; var n: Int }

    struct Plugin: PhylacteryExtension {
        let slug: String
        var version = "1"
        let schemas: [ModelSchema]
        var handles: Bool = false
        func initialize(_ context: ExtensionContext) throws {
            for schema in self.schemas { context.append(ModelRegistration(schema: schema)) }
            if self.handles, self.slug == "alpha" { context.handle(Job1.self) { _, _ in } }
            if self.handles, self.slug == "beta" { context.handle(Job2.self) { _, _ in } }
        }
    }

    static func table(_ model: String, _ table: String, references: ForeignKey? = nil) -> ModelSchema {
        var columns = [ModelSchema.column("title", String.self)]
        if let references { columns.append(ModelSchema.column("parent", UUID.self, references: references)) }
        return ModelSchema(modelName: model, table: table, chamber: .public, columns: columns)
    }

    let alpha = Plugin(slug: "alpha", schemas: [Self.table("AlphaNote", "alpha_notes")], handles: true)
    let beta = Plugin(slug: "beta", schemas: [Self.table("BetaNote", "beta_notes")], handles: true)

    @Test func aDisabledExtensionIsLeftOutButKnown() throws {
        let federation = try Federation(extensions: [alpha, beta], disabled: ["beta"])
        #expect(federation.owners.map(\.slug) == ["core", "alpha"])
        #expect(federation.jobHandlers.kinds == ["alpha.ping"])
        #expect(federation.dormant == [Federation.DormantOwner(slug: "beta", version: "1", tables: ["public.beta_notes"], jobKinds: ["beta.pong"])])
        let skipped = federation.dormantJobKinds
        #expect(skipped.contains("beta.pong") && skipped.contains("beta.anything"))
        #expect(!skipped.contains("alpha.ping") && !skipped.contains("betamax.x"))
        #expect(WantedSchema(federation: federation).dormantOwners == ["beta"])
    }

    @Test func nothingDisabledIsTheUsualFederation() throws {
        let federation = try Federation(extensions: [alpha, beta], disabled: [])
        #expect(federation.owners.map(\.slug) == ["core", "alpha", "beta"])
        #expect(federation.dormant.isEmpty && federation.dormantJobKinds.isEmpty)
    }

    @Test func aForeignKeyIntoADisabledExtensionIsRefused() {
        let child = Plugin(slug: "gamma", schemas: [Self.table("GammaNote", "gamma_notes", references: ForeignKey(table: "beta_notes"))])
        #expect(throws: PhylacteryError.self) {
            do {
                _ = try Federation(extensions: [beta, child], disabled: ["beta"])
            } catch let error as PhylacteryError {
                #expect(error.code == .federationConflict)
                #expect(error.message.contains("extension 'gamma'") && error.message.contains("public.beta_notes of extension 'beta'"), "\(error)")
                #expect(error.message.contains("Enable 'beta' too, or disable 'gamma'"))
                throw error
            }
        }
        // Disabling both is fine: nothing dangles.
        #expect(throws: Never.self) { _ = try Federation(extensions: [beta, child], disabled: ["beta", "gamma"]) }
    }

    @Test func disablingAnExtensionThatIsNotCompiledInIsRefused() {
        #expect(throws: PhylacteryError.self) {
            do {
                _ = try Federation(extensions: [alpha], disabled: ["betta"])
            } catch let error as PhylacteryError {
                #expect(error.code == .invalidConfiguration && error.message.contains("'betta'") && error.message.contains("known: alpha"))
                throw error
            }
        }
    }

    @Test func skippedKinds() {
        let skipped = SkippedKinds(kinds: ["x.one"], prefixes: ["tasks."])
        #expect(skipped.contains("x.one") && skipped.contains("tasks.close") && !skipped.contains("x.two") && !skipped.contains("tasksx.close"))
        #expect(SkippedKinds().isEmpty && !skipped.isEmpty)
    }
}
