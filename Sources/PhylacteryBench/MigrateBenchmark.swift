import Foundation
import Logging
import Phylactery
import PostgresNIO

/// `phylactery-bench migrate`: planning a generated federation against a database that already
/// has it. The figures: plan time for 200 tables × 10 columns, and the number of catalog queries
/// for 200 and for 20 tables (it must not grow). Baseline, in the same run: reading the same
/// tables' columns the way per-table reflection does (one information_schema query per table).
struct MigrateBenchmark {
    let client: PhylacteryClient
    let logger: Logger
    var results: [String: Double] = [:]

    /// Table `i` of the generated federation: ten columns of the common types, an index, and on
    /// every tenth table a default and a CHECK written as free SQL (so the server's spelling is asked for).
    static func table(_ i: Int) -> ModelSchema {
        let name = String(format: "bench_t%03d", i)
        var columns = [
            ModelSchema.column("label", String.self),
            ModelSchema.column("counter", Int.self),
            ModelSchema.column("small", Int32.self),
            ModelSchema.column("ratio", Double.self),
            ModelSchema.column("enabled", Bool.self),
            ModelSchema.column("reference", UUID.self),
            ModelSchema.column("happenedAt", Date.self),
            ModelSchema.column("payload", [String: Int].self),
            ModelSchema.column("note", String?.self),
            ModelSchema.column("amount", Decimal.self),
        ]
        var checks: [CheckConstraint] = []
        if i % 10 == 0 {
            columns[0] = ModelSchema.column("label", String.self, type: "varchar(40)", default: "'draft'")
            checks.append(CheckConstraint(expression: "counter >= 0"))
        }
        return ModelSchema(modelName: "Bench\(i)", table: name, columns: columns,
                           indexes: [IndexDescription(columns: ["counter", "happened_at"])], checks: checks)
    }

    static func federation(tables: Int) throws -> Federation {
        try Federation(core: (0..<tables).map { ModelRegistration(schema: table($0)) })
    }

    mutating func run() async throws {
        let large = 200, small = 20
        line("Applying a federation of \(small) tables…")
        let smallMigrator = Migrator(client: self.client, federation: try Self.federation(tables: small))
        try await smallMigrator.auto(message: "bench \(small)")
        let (smallSeconds, smallQueries) = try await self.planRepeatedly(smallMigrator)
        line("  plan: \(String(format: "%.3f", smallSeconds)) s median, \(smallQueries) catalog queries")

        line("Applying a federation of \(large) tables × 10 columns…")
        let largeMigrator = Migrator(client: self.client, federation: try Self.federation(tables: large))
        let applyStart = ContinuousClock.now
        try await largeMigrator.auto(message: "bench \(large)")
        let applySeconds = Measure.seconds(ContinuousClock.now - applyStart)
        line("  applied in \(String(format: "%.2f", applySeconds)) s")
        let (largeSeconds, largeQueries) = try await self.planRepeatedly(largeMigrator)
        line("  plan: \(String(format: "%.3f", largeSeconds)) s median, \(largeQueries) catalog queries")

        let naive = try await self.perTableReflection(tables: large)
        line("Baseline, one information_schema query per table: \(String(format: "%.3f", naive.seconds)) s, \(naive.queries) queries")
        line("Catalog queries: \(smallQueries) for \(small) tables, \(largeQueries) for \(large) tables (\(largeQueries == smallQueries ? "constant" : "GROWS"))")

        self.results["tables"] = Double(large)
        self.results["plan_seconds"] = largeSeconds
        self.results["plan_seconds_20"] = smallSeconds
        self.results["catalog_queries"] = Double(largeQueries)
        self.results["catalog_queries_20"] = Double(smallQueries)
        self.results["apply_seconds"] = applySeconds
        self.results["per_table_reflection_seconds"] = naive.seconds
        self.results["per_table_reflection_queries"] = Double(naive.queries)
    }

    /// Median of seven plans; each must be empty (the database already matches).
    func planRepeatedly(_ migrator: Migrator) async throws -> (seconds: Double, queries: Int) {
        var times: [Double] = []
        var queries = 0
        for _ in 0..<7 {
            let start = ContinuousClock.now
            let plan = try await migrator.plan()
            times.append(Measure.seconds(ContinuousClock.now - start))
            guard plan.isEmpty else {
                throw PhylacteryError(.migrationFailed, "benchmark: planning a matching database found steps: \(plan.steps.prefix(5).map(\.summary))")
            }
            queries = plan.catalogQueries
        }
        return (Measure.median(times), queries)
    }

    /// What per-table reflection costs: columns of each table with its own query.
    func perTableReflection(tables: Int) async throws -> (seconds: Double, queries: Int) {
        var times: [Double] = []
        for _ in 0..<3 {
            let start = ContinuousClock.now
            try await self.client.withConnection { connection in
                for i in 0..<tables {
                    let name = String(format: "bench_t%03d", i)
                    let rows = try await connection.query("""
                        SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
                        WHERE table_schema = 'public' AND table_name = \(name) ORDER BY ordinal_position
                        """, logger: self.logger).collect()
                    blackHole(rows.count)
                }
            }
            times.append(Measure.seconds(ContinuousClock.now - start))
        }
        return (Measure.median(times), tables)
    }
}
