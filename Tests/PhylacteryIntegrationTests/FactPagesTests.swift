import Foundation
import Phylactery
import PhylacteryTestSupport
import Testing

/// The fact queries behind the console's pages, against a real server: namespaces with counts and
/// a namespace's keys by prefix, both in keyset pages.
@Suite struct FactPagesTests {
    @Test func namespacesAreListedInPagesWithTheirCounts() async throws {
        try await TestDatabase.withFreshDatabase("fact_namespaces") { client in
            try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto(message: "facts")
            try await client.transaction { tx in
                #expect(try await tx.facts.namespaces().namespaces.isEmpty)
                for namespace in ["network", "alpha", "zeta"] {
                    for key in ["a", "b"] { try await tx.facts.put(namespace, key: key, value: 1, source: "test") }
                }
                try await tx.facts.supersede("network", key: "a", value: 2, source: "test")
                try await tx.facts.retract("network", key: "b", reason: "gone", source: "test")
            }
            let (first, second, all) = try await client.transaction { tx in
                let first = try await tx.facts.namespaces(limit: 2)
                let second = try await tx.facts.namespaces(after: first.next, limit: 2)
                return (first, second, try await tx.facts.namespaces())
            }
            #expect(first.namespaces.map(\.name) == ["alpha", "network"] && first.next == "network")
            #expect(second.namespaces.map(\.name) == ["zeta"] && second.next == nil)
            #expect(all.namespaces.map(\.name) == ["alpha", "network", "zeta"] && all.next == nil)
            let network = try #require(all.namespaces.first { $0.name == "network" })
            #expect(network.keys == 2 && network.versions == 4)
            await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.facts.namespaces(limit: 0) } }
        }
    }

    @Test func keysArePagedByPrefixWithTheirNewestVersion() async throws {
        try await TestDatabase.withFreshDatabase("fact_keys") { client in
            try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto(message: "facts")
            try await client.transaction { tx in
                for key in ["host.a", "host.b", "host.c", "host.d", "host_x", "hostess", "port"] {
                    try await tx.facts.put("net", key: key, value: ["name": key], source: "test")
                }
                try await tx.facts.supersede("net", key: "host.b", value: ["name": "bee"], source: "op")
                try await tx.facts.retract("net", key: "host.c", reason: "decommissioned", source: "op")
                try await tx.facts.put("net", key: "host.e", value: "s3cret", source: "op", sensitivity: .secret)
                try await tx.facts.put("other", key: "host.z", value: 1, source: "test")
            }
            // Pages of two over the keys that start with "host." (the dot literal, "_" too).
            var after: String?
            var keys: [FactKeySummary] = []
            var pages = 0
            repeat {
                let page = try await client.transaction { tx in try await tx.facts.keys("net", prefix: "host.", after: after, limit: 2) }
                keys += page.keys
                after = page.next
                pages += 1
            } while after != nil && pages < 10
            #expect(pages == 3)
            // The secret key is left out of its page (a page may hold fewer keys than its limit).
            #expect(keys.map(\.key) == ["host.a", "host.b", "host.c", "host.d"])
            let b = keys[1], c = keys[2]
            #expect(b.version == 2 && b.source == "op" && b.valuePreview == #"{"name": "bee"}"# && !b.isRetracted)
            #expect(c.version == 2 && c.isRetracted && c.valuePreview == nil)
            #expect(keys[0].version == 1 && keys[0].sensitivity == .private)

            let underscore = try await client.transaction { tx in try await tx.facts.keys("net", prefix: "host_") }
            #expect(underscore.keys.map(\.key) == ["host_x"])
            let secrets = try await client.transaction { tx in try await tx.facts.keys("net", prefix: "host.", visible: Sensitivity.visible(upTo: .secret)) }
            #expect(secrets.keys.map(\.key) == ["host.a", "host.b", "host.c", "host.d", "host.e"] && secrets.next == nil)
            let everything = try await client.transaction { tx in try await tx.facts.keys("net") }
            #expect(everything.keys.count == 7 && everything.keys.map(\.key) == everything.keys.map(\.key).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
            #expect(try await client.transaction { tx in try await tx.facts.keys("nowhere") } == FactKeyPage(keys: [], next: nil))
            await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.facts.keys("net", limit: 1001) } }
        }
    }
}
