import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded
import Testing

/// The parts of backups, exports and upgrades that need no database.
@Suite struct BackupUnitTests {
    static let listing = """
        ;
        ; Archive created at 2026-11-29 22:47:13 UTC
        ;     dbname: a
        ;
        ; Selected TOC Entries:
        ;
        5; 2615 2200 SCHEMA - public pg_database_owner
        2814; 0 0 COMMENT - SCHEMA public pg_database_owner
        2; 3079 16386 EXTENSION - vector 
        2815; 0 0 COMMENT - EXTENSION vector 
        221; 1259 16715 TABLE public t phylactery
        230; 1259 16800 TABLE public spans_p20261129 phylactery
        2807; 0 16715 TABLE DATA public t phylactery
        3001; 0 0 TABLE ATTACH public spans_p20261129 phylactery
        2659; 2606 16722 CONSTRAINT public t t_pkey phylactery
        2660; 2606 16731 FK CONSTRAINT public t t_other_fkey phylactery
        """

    @Test func archiveContentsListTablesAndDropWhatTheTargetHas() {
        let contents = ArchiveContents(Self.listing)
        #expect(contents.entries.count == 10)
        #expect(contents.tables == ["public.t", "public.spans_p20261129"])
        let filtered = contents.listWithout(schemas: ["public"], extensions: ["vector"])
        #expect(!filtered.contains("SCHEMA - public") && !filtered.contains("EXTENSION - vector") && !filtered.contains("COMMENT - SCHEMA"))
        #expect(filtered.contains("TABLE public t phylactery") && filtered.contains("FK CONSTRAINT public t t_other_fkey"))
        #expect(filtered.contains("; Selected TOC Entries:"), "comments stay")
        let untouched = contents.listWithout(schemas: ["vectors"], extensions: [])
        #expect(untouched == Self.listing)
    }

    @Test func thePassfileEscapesAndIsPrivate() throws {
        let directory = try PostgresTools.privateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mode = { (path: String) in (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1 }
        #expect(try mode(directory) == 0o700)
        let file = try PostgresTools.writePassfile(password: #"a:b\c d"#, in: directory)
        #expect(try mode(file) == 0o600)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == #"*:*:*:*:a\:b\\c d"# + "\n")
        #expect(throws: BackupError.self) { try PostgresTools.writePassfile(password: "again", in: directory) }
    }

    @Test func theConnectionEnvironmentNamesTheServerButNeverThePassword() throws {
        let tcp = try DatabaseURL(parsing: "postgres://app:s3cret@db.internal:6543/app?sslmode=verify-full")
        let environment = PostgresTools.connectionEnvironment(tcp)
        #expect(environment["PGHOST"] == "db.internal" && environment["PGPORT"] == "6543")
        #expect(environment["PGUSER"] == "app" && environment["PGDATABASE"] == "app")
        #expect(environment["PGSSLMODE"] == "verify-full" && environment["PGSSLROOTCERT"] == "system")
        #expect(!environment.values.contains { $0.contains("s3cret") } && environment["PGPASSWORD"] == nil)
        let socket = try DatabaseURL(parsing: "postgres://me@/db?host=/run/pg&port=5433")
        #expect(PostgresTools.connectionEnvironment(socket)["PGHOST"] == "/run/pg")
        #expect(PostgresTools.connectionEnvironment(socket)["PGPORT"] == "5433")
        #expect(PostgresTools.connectionEnvironment(socket)["PGSSLMODE"] == nil)
        #expect(PostgresTools.connectionEnvironment(socket)["PGTARGETSESSIONATTRS"] == nil)
        // Several hosts: libpq gets them all and looks for the primary among them.
        let cluster = PostgresTools.connectionEnvironment(try DatabaseURL(parsing: "postgres://app@10.0.0.1:5432,10.0.0.2:5433/app"))
        #expect(cluster["PGHOST"] == "10.0.0.1,10.0.0.2" && cluster["PGPORT"] == "5432,5433")
        #expect(cluster["PGTARGETSESSIONATTRS"] == "read-write")
    }

    @Test func versionsAreComparedByMajorAndNumerically() {
        #expect(PostgresTools.major(of: "18.6") == 18)
        #expect(PostgresTools.major(of: "15.18 (Debian 15.18-0+deb12u1)") == 15)
        #expect(PostgresTools.major(of: "devel") == 0)
        #expect(EmbeddedServer.Configuration.versionOrder("18.6.2", "18.6.3"))
        #expect(EmbeddedServer.Configuration.versionOrder("18.6.9", "18.6.10"))
        #expect(!EmbeddedServer.Configuration.versionOrder("18.6.3", "18.6.3"))
    }

    @Test func theKnownWheelsArePinnedAndTheNewestIsTheDefault() {
        #expect(Distribution.knownWheels.map(\.version) == ["18.6.2", "18.6.3"])
        #expect(Distribution.knownWheels.last?.version == Distribution.wheelVersion)
        #expect(Distribution.pinnedSHA256 == Distribution.wheel(Distribution.wheelVersion)?.sha256)
        for wheel in Distribution.knownWheels {
            #expect(wheel.majorVersion == Distribution.majorVersion)
            #expect(wheel.sha256.values.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
        }
        let configuration = EmbeddedServer.Configuration(home: "/srv/phyl")
        #expect(configuration.wheelVersion(of: configuration.binDirectory(version: "18.6.2")) == "18.6.2")
        #expect(configuration.wheelVersion(of: "/usr/lib/postgresql/15/bin") == nil)
        #expect(configuration.binDirectory == configuration.binDirectory(version: Distribution.wheelVersion))
    }

    @Test func aFederationRestrictedToOneOwnerKeepsWhatItReferences() throws {
        let parent = ModelSchema(modelName: "Parent", table: "alpha_parents", chamber: .public, columns: [ModelSchema.column("name", String.self)])
        let child = ModelSchema(modelName: "Child", table: "beta_children", chamber: .public, columns: [
            ModelSchema.column("parentID", UUID.self, name: "parent_id", references: ForeignKey(chamber: .public, table: "alpha_parents")),
        ])
        let other = ModelSchema(modelName: "Other", table: "gamma_others", chamber: .public, columns: [ModelSchema.column("name", String.self)])
        let federation = try Federation(core: Federation.coreModels, extensions: [
            FederationTests.Plugin(slug: "alpha", schemas: [parent]), FederationTests.Plugin(slug: "beta", schemas: [child]),
            FederationTests.Plugin(slug: "gamma", schemas: [other]),
        ])
        #expect(try federation.restricted(to: "beta").owners.map { $0.slug } == ["core", "alpha", "beta"])
        #expect(try federation.restricted(to: "gamma").owners.map { $0.slug } == ["core", "gamma"])
        #expect(throws: PhylacteryError.self) { try federation.restricted(to: "delta") }
    }

    @Test func theMajorVersionPlanNamesEveryStep() {
        let plan = EmbeddedServer.majorMismatchPlan(dataDirectory: "/srv/phyl/data", clusterMajor: "15", targetMajor: 18, binDirectory: "/srv/phyl/postgresql/18.6.3/bin")
        for step in ["phylactery db upgrade --backup-to DIR", "logical backup", "pg_upgrade --check", "data.pg15-", "PostgreSQL 18"] {
            #expect(plan.contains(step), "\(step)")
        }
        let newer = EmbeddedServer.majorMismatchPlan(dataDirectory: "/srv/phyl/data", clusterMajor: "19", targetMajor: 18, binDirectory: "/x")
        #expect(newer.contains("cannot open it") && !newer.contains("pg_upgrade"))
    }
}
