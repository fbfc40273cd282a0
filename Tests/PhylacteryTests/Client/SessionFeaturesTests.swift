import Phylactery
import Testing

@Suite struct SessionFeaturesTests {
    @Test("sessions are available directly or through a session URL; only a transaction pooler without one falls back")
    func availability() {
        let direct = SessionFeatures(transactionPooler: false, usesSessionURL: false)
        #expect(direct.sessionAvailable && direct.fallbacks.isEmpty)
        #expect(direct.description == "no transaction pooler detected; sessions are direct")
        let bridged = SessionFeatures(transactionPooler: true, usesSessionURL: true)
        #expect(bridged.sessionAvailable && bridged.fallbacks.isEmpty)
        #expect(bridged.description == "transaction pooler detected; session features use the session URL")
        let pooled = SessionFeatures(transactionPooler: true, usesSessionURL: false)
        #expect(!pooled.sessionAvailable)
        #expect(pooled.fallbacks.count == 3)
        #expect(pooled.fallbacks[0].contains("poll") && pooled.fallbacks[1].contains("periodic") && pooled.fallbacks[2].contains("migrations"))
        #expect(pooled.description.hasPrefix("transaction pooler detected and no session URL: queue workers poll"))
    }

    @Test("the session URL comes from PHYLACTERY_DATABASE_SESSION_URL; a malformed one is refused naming the variable")
    func environment() throws {
        let configuration = try PhylacteryClient.Configuration.fromEnvironment([
            "PHYLACTERY_DATABASE_URL": "postgres://app:pw@127.0.0.1:6432/app",
            "PHYLACTERY_DATABASE_SESSION_URL": "postgres://app:pw@127.0.0.1:5432/app",
        ])
        #expect(configuration?.url.endpoint == .tcp(host: "127.0.0.1", port: 6432))
        #expect(configuration?.options.sessionURL?.endpoint == .tcp(host: "127.0.0.1", port: 5432))
        #expect(try PhylacteryClient.Configuration.fromEnvironment(["PHYLACTERY_DATABASE_URL": "postgres://app@h/app"])?.options.sessionURL == nil)
        let refused = #expect(throws: PhylacteryError.self) {
            try PhylacteryClient.Configuration.fromEnvironment([
                "PHYLACTERY_DATABASE_URL": "postgres://app@h/app", "PHYLACTERY_DATABASE_SESSION_URL": "mysql://app@h/app",
            ])
        }
        #expect(refused?.code == .invalidConfiguration)
        #expect(refused?.message.hasPrefix("PHYLACTERY_DATABASE_SESSION_URL: ") == true, "\(String(describing: refused))")
    }
}
