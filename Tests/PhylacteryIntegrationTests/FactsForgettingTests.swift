import Foundation
import Logging
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Retracting, erasing and labelling facts, against a real PostgreSQL: tombstones in the history,
/// erasure through the one database function the triggers allow (and nothing else), the value gone
/// from the table's files, labels that hide facts.
@Suite struct FactsForgettingTests {
    static let logger = Logger(label: "facts-forgetting-tests")

    static func migrated<R: Sendable>(_ label: String, _ body: (PhylacteryClient) async throws -> R) async throws -> R {
        try await TestDatabase.withFreshDatabase(label) { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            return try await body(client)
        }
    }

    /// Runs `sql` on its own connection in a transaction that is rolled back, with `setup` first;
    /// the SQLSTATE it failed with, or nil when it succeeded.
    static func failure(_ client: PhylacteryClient, _ sql: String, setup: [String] = []) async throws -> String? {
        try await client.withConnection { connection in
            _ = try await connection.query("BEGIN", logger: Self.logger).collect()
            do {
                for statement in setup { _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: Self.logger).collect() }
                _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).collect()
                _ = try await connection.query("ROLLBACK", logger: Self.logger).collect()
                return nil
            } catch let error as PSQLError {
                _ = try await connection.query("ROLLBACK", logger: Self.logger).collect()
                return error.serverInfo?[.sqlState]
            }
        }
    }

    // MARK: - Retract

    @Test func aRetractionIsATombstoneInTheHistoryAndPutStartsAgainAfterIt() async throws {
        try await Self.migrated("facts_retract") { client in
            let (first, second, tombstone) = try await client.transaction { tx async throws in
                let first = try await tx.facts.put("network", key: "dns", value: "1.1.1.1", source: "dhcp")
                let second = try await tx.facts.supersede("network", key: "dns", value: "9.9.9.9", source: "operator", sensitivity: .public)
                let tombstone = try await tx.facts.retract("network", key: "dns", reason: "the resolver was decommissioned", source: "operator")
                return (first, second, tombstone)
            }
            #expect(tombstone.version == 3 && tombstone.isRetraction && tombstone.value == nil && tombstone.supersedes == second.id)
            #expect(tombstone.reason == "the resolver was decommissioned" && tombstone.sensitivity == .public, "a tombstone keeps the label of what it retracts")
            try await client.transaction { tx async throws in
                #expect(try await tx.facts.get("network", key: "dns") == nil)
                #expect(try await tx.facts.get("network", keys: ["dns"]).isEmpty)
                #expect(try await tx.facts.list("network").isEmpty)
                let history = try await tx.facts.history("network", key: "dns")
                #expect(history.map(\.version) == [1, 2, 3] && history.map(\.isRetraction) == [false, false, true])
                #expect(history.map(\.id) == [first.id, second.id, tombstone.id])
                #expect(try history[0].decode(String.self) == "1.1.1.1", "retracting keeps the old values")
                #expect(throws: PhylacteryError.self) { try history[2].decode(String.self) }
            }
            // Supersede and retract of a retracted key are refused with the fix; the database is unchanged.
            for attempt in ["supersede", "retract"] {
                let error = await #expect(throws: PhylacteryError.self) {
                    try await client.transaction { tx async throws in
                        if attempt == "supersede" {
                            try await tx.facts.supersede("network", key: "dns", value: "8.8.8.8", source: "x")
                        } else {
                            try await tx.facts.retract("network", key: "dns", reason: "again", source: "x")
                        }
                    }
                }
                #expect(error?.code == .factRetracted, "\(attempt)")
                #expect(error?.message.contains("record it again with put") == true, "\(String(describing: error))")
            }
            // put after a retraction: the sequence goes on, pointing at the tombstone.
            let again = try await client.transaction { tx in try await tx.facts.put("network", key: "dns", value: "8.8.4.4", source: "operator") }
            #expect(again.version == 4 && again.supersedes == tombstone.id && !again.isRetraction && again.sensitivity == .private)
            try await client.transaction { tx async throws in
                #expect(try await tx.facts.get("network", key: "dns")?.id == again.id)
                #expect(try await tx.facts.history("network", key: "dns").map(\.version) == [1, 2, 3, 4])
                // And it is a live fact again: supersede works, a second put is refused.
                #expect(try await tx.facts.supersede("network", key: "dns", value: "8.8.8.8", source: "operator").version == 5)
            }
            let exists = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.put("network", key: "dns", value: 1, source: "x") }
            }
            #expect(exists?.code == .factExists)
            let missing = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.retract("network", key: "nothing", reason: "r", source: "x") }
            }
            #expect(missing?.code == .notFound)
            let noReason = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.retract("network", key: "dns", reason: "", source: "x") }
            }
            #expect(noReason?.code == .invalidArgument)
        }
    }

    // MARK: - Erase

    /// Every file of `verbatim.facts` (heap, TOAST heap and index, indexes) as one byte array each, after a checkpoint.
    /// Read as the administrator (``TestDatabase/adminURL()``): CHECKPOINT and `pg_read_binary_file` are the server's.
    static func tableFiles(_ client: PhylacteryClient) async throws -> [String: [UInt8]] {
        try await TestDatabase.withAdminClient(database: client.configuration.url.database) { admin in
            try await Self.tableFilesAsAdministrator(admin)
        }
    }

    private static func tableFilesAsAdministrator(_ client: PhylacteryClient) async throws -> [String: [UInt8]] {
        try await client.execute("CHECKPOINT")
        let rows = try await client.query("""
            WITH rels AS (
                SELECT c.oid FROM pg_class c WHERE c.oid = 'verbatim.facts'::regclass
                UNION SELECT c.reltoastrelid FROM pg_class c WHERE c.oid = 'verbatim.facts'::regclass AND c.reltoastrelid <> 0
                UNION SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = 'verbatim.facts'::regclass
                UNION SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.reltoastrelid = i.indrelid WHERE c.oid = 'verbatim.facts'::regclass
            )
            SELECT oid::regclass::text, pg_relation_filepath(oid), pg_read_binary_file(pg_relation_filepath(oid)) FROM rels
            """).collect()
        var files: [String: [UInt8]] = [:]
        for row in rows {
            let (name, path, bytes) = try row.decode((String, String, ByteBuffer).self)
            files["\(name) (\(path))"] = Array(bytes.readableBytesView)
        }
        return files
    }

    static func holders(of marker: String, in files: [String: [UInt8]]) -> [String] {
        let needle = Array(marker.utf8)
        return files.filter { _, bytes in
            bytes.count >= needle.count && (0...(bytes.count - needle.count)).contains { i in bytes[i] == needle[0] && Array(bytes[i..<(i + needle.count)]) == needle }
        }.map(\.key).sorted()
    }

    @Test func eraseRemovesTheValueOfEveryVersionFromTheRowsAndTheTablesFiles() async throws {
        try await Self.migrated("facts_erase") { client in
            // Three versions of one key (one small, one TOASTed, incompressible), a retraction, and a
            // neighbour that must keep its value; other facts around them, before and after.
            let small = "SMALLSECRET-5d1e0a"
            var big = "BIGSECRET-c41b7f-"
            var state: UInt64 = 42
            while big.utf8.count < 12_000 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                big += String(state >> 33, radix: 36)
            }
            let bigValue = big
            try await client.transaction { tx async throws in
                for i in 0..<40 { try await tx.facts.put("filler", key: "before.\(i)", value: "value \(i) " + String(repeating: "x", count: i * 50), source: "t") }
                try await tx.facts.put("people", key: "alice.phone", value: small, source: "alice")
                try await tx.facts.supersede("people", key: "alice.phone", value: ["phone": bigValue], source: "alice")
                try await tx.facts.supersede("people", key: "alice.phone", value: "MIDSECRET-77aa01 and more words", source: "alice")
                try await tx.facts.retract("people", key: "alice.phone", reason: "RETRACTSECRET-0b9e she moved", source: "alice")
                try await tx.facts.put("people", key: "bob.phone", value: "KEEPME-0042", source: "bob")
                for i in 0..<40 { try await tx.facts.put("filler", key: "after.\(i)", value: "value \(i) " + String(repeating: "y", count: i * 60), source: "t") }
            }
            let markers = ["SMALLSECRET-5d1e0a", "BIGSECRET-c41b7f-", "MIDSECRET-77aa01", "RETRACTSECRET-0b9e"]
            let before = try await Self.tableFiles(client)
            for marker in markers {
                #expect(!Self.holders(of: marker, in: before).isEmpty, "\(marker) is on disk before the erasure (else this test proves nothing)")
            }

            let record = try await client.transaction { tx async throws in
                try await tx.facts.erase("people", key: "alice.phone", reason: "GDPR request #12", by: "privacy-officer")
            }
            #expect(record.versions == 4 && record.namespace == "people" && record.key == "alice.phone")
            #expect(record.reason == "GDPR request #12" && record.erasedBy == "privacy-officer")

            try await client.transaction { tx async throws in
                let history = try await tx.facts.history("people", key: "alice.phone", visible: Sensitivity.all)
                #expect(history.map(\.version) == [1, 2, 3, 4], "the versions stay")
                #expect(history.allSatisfy { $0.value == nil && $0.reason == nil && $0.isErased }, "no value and no reason on any version")
                #expect(history.map(\.isRetraction) == [false, false, false, true] && history.map(\.source) == ["alice", "alice", "alice", "alice"])
                #expect(try await tx.facts.get("people", key: "alice.phone", visible: Sensitivity.all) == nil)
                #expect(try await tx.facts.get("people", key: "bob.phone")?.decode(String.self) == "KEEPME-0042")
                // The audit row: who, when, why, how many; no value column at all.
                let audit = try await tx.facts.erasures("people", key: "alice.phone")
                #expect(audit.map(\.id) == [record.id])
                let columns = try await tx.rows("""
                    SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM information_schema.columns
                    WHERE table_schema = 'verbatim' AND table_name = 'fact_erasures'
                    """, doing: "reading the audit's columns").first!.decode(String.self)
                #expect(columns == "id,created_at,updated_at,namespace,key,versions,reason,erased_by")
                let auditText = try await tx.rows("SELECT to_jsonb(e)::text FROM verbatim.fact_erasures e", doing: "reading the audit").first!.decode(String.self)
                for marker in markers { #expect(!auditText.contains(marker)) }
            }

            // The rewrite: afterwards no file of the table (heap, TOAST, indexes) holds any of the values.
            let activity = try await client.query("""
                SELECT string_agg(format('%s db=%s type=%s xmin=%s xid=%s state=%s q=%s', pid, datname, backend_type, backend_xmin, backend_xid, state, left(query, 60)), E'\\n')
                FROM pg_stat_activity WHERE backend_xmin IS NOT NULL OR backend_xid IS NOT NULL
                """).collect().first?.decode(String?.self) ?? ""
            try await client.compactFacts()
            let after = try await Self.tableFiles(client)
            if !Self.holders(of: markers[0], in: after).isEmpty { Issue.record("activity before compaction:\n\(activity)") }
            for marker in markers {
                #expect(Self.holders(of: marker, in: after).isEmpty, "\(marker) still on disk in \(Self.holders(of: marker, in: after))")
            }
            #expect(!Self.holders(of: "KEEPME-0042", in: after).isEmpty, "the neighbour's value is still there")

            // The key can be recorded again; erasing a key that has no version is refused.
            let again = try await client.transaction { tx in try await tx.facts.put("people", key: "alice.phone", value: "new", source: "alice") }
            #expect(again.version == 5)
            let missing = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.erase("people", key: "carol.phone", reason: "r", by: "x") }
            }
            #expect(missing?.code == .notFound)
            let noReason = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.erase("people", key: "alice.phone", reason: "", by: "x") }
            }
            #expect(noReason?.code == .invalidArgument)
        }
    }

    @Test func nothingButTheEraseFunctionCanChangeAFactAndTheAuditIsAppendOnly() async throws {
        try await Self.migrated("facts_erase_forgery") { client in
            try await client.transaction { tx async throws in
                try await tx.facts.put("people", key: "alice.phone", value: "555-0100", source: "alice")
                try await tx.facts.put("people", key: "bob.phone", value: "555-0199", source: "bob")
                try await tx.facts.erase("people", key: "bob.phone", reason: "asked", by: "operator")
            }
            let refused = FactStore.immutableSQLState
            let erase = FactStore.eraseStatement
            // The erase function's own statement, sent raw: one frame on the stack, not three.
            let raw = erase.replacingOccurrences(of: "p_namespace", with: "'people'").replacingOccurrences(of: "p_key", with: "'alice.phone'")
            let forgedFrame = "PL/pgSQL function verbatim.erase_fact(text,text,text,text,uuid) line 9 at SQL statement"
            let attempts: [(String, String, [String])] = [
                ("plain update", "UPDATE verbatim.facts SET value = NULL, reason = NULL, erased_at = now() WHERE key = 'alice.phone'", []),
                ("the function's statement, raw", raw, []),
                ("a changed value", "UPDATE verbatim.facts SET value = '\"forged\"' WHERE key = 'alice.phone'", []),
                ("delete", "DELETE FROM verbatim.facts WHERE key = 'alice.phone'", []),
                ("truncate", "TRUNCATE verbatim.facts CASCADE", []),
                ("a session that says it is a replica", raw, ["SET LOCAL session_replication_role = replica"]),
                ("delete as a replica", "DELETE FROM verbatim.facts", ["SET LOCAL session_replication_role = replica"]),
                ("truncate as a replica", "TRUNCATE verbatim.facts CASCADE", ["SET LOCAL session_replication_role = replica"]),
                ("a session setting that claims to be the eraser", raw, ["SELECT set_config('phylactery.erasing', 'on', true)", "SET LOCAL application_name = 'verbatim.erase_fact'"]),
                // A statement whose text carries a forged frame line: the DO block adds its own frame last.
                ("a forged frame in a DO block", """
                    DO $forge$ BEGIN EXECUTE 'UPDATE verbatim.facts SET value = NULL, reason = NULL, erased_at = now() WHERE key = ''alice.phone'' /*' || E'\\n' || '\(forgedFrame)' || '*/'; END $forge$
                    """, []),
                // A look-alike function: same body, same argument types, another schema.
                ("a look-alike erase_fact in public", "SELECT public.erase_fact('people', 'alice.phone', 'r', 'x', gen_random_uuid())", [
                    "CREATE FUNCTION public.erase_fact(p_namespace text, p_key text, p_reason text, p_by text, p_id uuid) RETURNS integer LANGUAGE plpgsql AS $f$\(FactStore.eraseFunctionBody)$f$",
                ]),
                ("a look-alike erase_fact on the search path", "SELECT erase_fact('people', 'alice.phone', 'r', 'x', gen_random_uuid())", [
                    "CREATE FUNCTION public.erase_fact(p_namespace text, p_key text, p_reason text, p_by text, p_id uuid) RETURNS integer LANGUAGE plpgsql SET search_path = public AS $f$\(FactStore.eraseFunctionBody)$f$",
                    "SET LOCAL search_path = public",
                ]),
                // Same name and schema, other arguments: its frame prints other types.
                ("an overload of verbatim.erase_fact", "SELECT verbatim.erase_fact('people', 'alice.phone', 'r', 'x', gen_random_uuid(), 1)", [
                    "CREATE FUNCTION verbatim.erase_fact(p_namespace text, p_key text, p_reason text, p_by text, p_id uuid, extra integer) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$\(FactStore.eraseFunctionBody)$f$",
                ]),
                // The trigger function itself, called by hand.
                ("the trigger function called directly", "SELECT verbatim.facts_facts_immutable_fn()", []),
                // Another table's trigger running the statement: a nested trigger, and its own frame last.
                ("a trigger on another table", "INSERT INTO pg_temp.relay VALUES (1)", [
                    "CREATE TEMP TABLE relay (x int)",
                    // The function's statement word for word, with variables of the same names.
                    "CREATE FUNCTION pg_temp.relay_fn() RETURNS trigger LANGUAGE plpgsql AS $f$ DECLARE p_namespace text := 'people'; p_key text := 'alice.phone'; BEGIN \(erase); RETURN NEW; END $f$",
                    "CREATE TRIGGER relay AFTER INSERT ON pg_temp.relay FOR EACH ROW EXECUTE FUNCTION pg_temp.relay_fn()",
                ]),
            ]
            for (label, sql, setup) in attempts {
                let state = try await Self.failure(client, sql, setup: setup)
                #expect(state != nil, "\(label) went through")
                if label == "the trigger function called directly" {
                    #expect(state == "0A000", "\(label): \(String(describing: state))")
                } else {
                    #expect(state == refused, "\(label): \(String(describing: state))")
                }
            }
            // The real function still works, at top level, and nothing above changed a row.
            try await client.transaction { tx async throws in
                #expect(try await tx.facts.get("people", key: "alice.phone")?.decode(String.self) == "555-0100")
                #expect(try await tx.facts.history("people", key: "bob.phone").map(\.isErased) == [true])
            }
            #expect(try await client.transaction { tx in try await tx.facts.erase("people", key: "alice.phone", reason: "asked", by: "operator") }.versions == 1)

            // The audit is append-only: raw changes are refused, as a replica too.
            for sql in ["UPDATE verbatim.fact_erasures SET reason = 'nothing happened'", "DELETE FROM verbatim.fact_erasures", "TRUNCATE verbatim.fact_erasures"] {
                #expect(try await Self.failure(client, sql) == refused, "\(sql)")
                #expect(try await Self.failure(client, sql, setup: ["SET LOCAL session_replication_role = replica"]) == refused, "\(sql) as a replica")
            }
            #expect(try await client.transaction { tx in try await tx.count(FactErasure.self) } == 2)
        }
    }

    // MARK: - Labels

    @Test func labelsHideFactsFromCallersThatMayNotSeeThem() async throws {
        var options = TestDatabase.defaultOptions
        options.defaultSensitivity = .public
        try await TestDatabase.withFreshDatabase("facts_labels", options: options) { client in
            _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto()
            try await client.transaction { tx async throws in
                let open = try await tx.facts.put("home", key: "wifi.name", value: "castle", source: "t")
                #expect(open.sensitivity == .public, "a write without a label takes the client's default")
                try await tx.facts.put("home", key: "wifi.password", value: "hunter2", source: "t", sensitivity: .secret)
                try await tx.facts.put("home", key: "owner", value: "alice", source: "t", sensitivity: .private)
                // A supersede without a label keeps the label it replaces.
                #expect(try await tx.facts.supersede("home", key: "wifi.password", value: "hunter3", source: "t").sensitivity == .secret)
            }
            try await client.transaction { tx async throws in
                // Default: public and private.
                #expect(try await tx.facts.get("home", key: "wifi.password") == nil)
                #expect(try await tx.facts.get("home", key: "owner")?.decode(String.self) == "alice")
                #expect(try await tx.facts.list("home").map(\.key) == ["owner", "wifi.name"])
                #expect(try await tx.facts.history("home", key: "wifi.password").isEmpty)
                #expect(try await tx.facts.get("home", keys: ["owner", "wifi.password"]).keys.sorted() == ["owner"])
                // Public only.
                let publicOnly = Sensitivity.visible(upTo: .public)
                #expect(try await tx.facts.get("home", key: "owner", visible: publicOnly) == nil)
                #expect(try await tx.facts.list("home", visible: publicOnly).map(\.key) == ["wifi.name"])
                // Everything.
                #expect(try await tx.facts.get("home", key: "wifi.password", visible: Sensitivity.all)?.decode(String.self) == "hunter3")
                #expect(try await tx.facts.history("home", key: "wifi.password", visible: Sensitivity.all).count == 2)
                #expect(try await tx.facts.list("home", visible: Sensitivity.all).map(\.key) == ["owner", "wifi.name", "wifi.password"])
            }
            // A secret current version hides the key even when an older version was private.
            try await client.transaction { tx async throws in
                try await tx.facts.put("people", key: "bob.health", value: "fine", source: "t", sensitivity: .private)
                try await tx.facts.supersede("people", key: "bob.health", value: "diagnosis", source: "t", sensitivity: .secret)
                #expect(try await tx.facts.get("people", key: "bob.health") == nil)
                #expect(try await tx.facts.history("people", key: "bob.health").map(\.version) == [1])
            }
        }
    }

    // MARK: - Migration of an existing table

    @Test func aFactsTableFromBeforeForgettingIsMigratedWithItsRows() async throws {
        try await TestDatabase.withFreshDatabase("facts_migrate_old") { client in
            // The table as the previous release created it, with rows in it.
            try await client.execute("""
                CREATE TABLE verbatim.facts (
                    id uuid PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
                    namespace text NOT NULL, key text NOT NULL, version integer NOT NULL, value jsonb NOT NULL, source text NOT NULL,
                    supersedes uuid REFERENCES verbatim.facts (id), UNIQUE (namespace, key, version))
                """)
            try await client.execute("""
                INSERT INTO verbatim.facts (id, namespace, key, version, value, source)
                VALUES ('018f0000-0000-7000-8000-000000000001', 'network', 'gateway.ip', 1, '"10.0.0.1"', 'operator')
                """)
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            try await client.transaction { tx async throws in
                let fact = try #require(try await tx.facts.get("network", key: "gateway.ip"))
                #expect(try fact.decode(String.self) == "10.0.0.1" && fact.sensitivity == .private && !fact.isRetraction && !fact.isErased)
                try await tx.facts.retract("network", key: "gateway.ip", reason: "moved", source: "operator")
                try await tx.facts.erase("network", key: "gateway.ip", reason: "test", by: "operator")
            }
            #expect(try await client.transaction { tx in try await tx.facts.history("network", key: "gateway.ip") }.map(\.isErased) == [true, true])
        }
    }
}
