import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded

/// `phylactery migrate …`: the federation's schema, planned and applied.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Plan, generate, apply and undo migrations for the core and every registered extension.",
        discussion: """
            The wanted schema is the core's models plus those of the extensions this binary registers \
            (\(PhylacteryCommands.extensions.map(\.slug).joined(separator: ", "))). Steps with hazards (data-loss, \
            table-rewrite, long-lock) are never applied without the matching --allow flag.
            """,
        subcommands: [Plan.self, Generate.self, Up.self, Down.self, Status.self, History.self, Check.self, Auto.self]
    )

    /// Options every migrate subcommand takes.
    struct Common: ParsableArguments {
        @Option(name: .long, help: "Directory of migration files (default: $PHYLACTERY_MIGRATIONS or ./migrations).")
        var directory: String?

        func migrator(_ client: PhylacteryClient) throws -> Migrator {
            let directory = self.directory ?? ProcessInfo.processInfo.environment["PHYLACTERY_MIGRATIONS"] ?? "migrations"
            return Migrator(client: client, federation: try PhylacteryCommands.federation(), options: .init(directory: directory))
        }

        func withMigrator<R: Sendable>(_ body: (Migrator) async throws -> R) async throws -> R {
            let url = try EmbeddedServer.resolveDatabaseURL()
            return try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                try await body(try self.migrator(client))
            }
        }
    }

    /// The consent flags.
    struct Consent: ParsableArguments {
        @Flag(name: .long, help: "Allow steps that lose data (dropped tables or columns, narrowing type changes).")
        var allowDestructive = false
        @Flag(name: .long, help: "Allow steps that rewrite a whole table (most type changes).")
        var allowTableRewrite = false
        @Flag(name: .long, help: "Allow steps that hold an exclusive lock while scanning a table (SET NOT NULL on rows).")
        var allowLongLock = false

        var hazards: Set<Hazard> {
            var set: Set<Hazard> = []
            if self.allowDestructive { set.insert(.dataLoss) }
            if self.allowTableRewrite { set.insert(.tableRewrite) }
            if self.allowLongLock { set.insert(.longLock) }
            return set
        }
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the DDL the federation needs now; hazardous steps are marked.")
        @OptionGroup var common: Common

        func run() async throws {
            try await reportingErrors {
                let plan = try await self.common.withMigrator { try await $0.plan() }
                print(Printer.plan(plan))
            }
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the current plan as a reviewable migration file.")
        @OptionGroup var common: Common
        @Option(name: .shortAndLong, help: "What the migration is for.")
        var message: String

        func run() async throws {
            try await reportingErrors {
                if let (file, path) = try await self.common.withMigrator({ try await $0.generate(message: self.message) }) {
                    print("Wrote \(path) (revision \(file.revision), parent \(file.parent ?? "none"), \(file.up.count) statements\(file.hazards.isEmpty ? "" : ", hazards: " + file.hazards.sorted().map(\.rawValue).joined(separator: ", "))).")
                } else {
                    print("Nothing to generate: the database matches the models.")
                }
            }
        }
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending migration files, in order, under the migration lock.")
        @OptionGroup var common: Common
        @OptionGroup var consent: Consent

        func run() async throws {
            try await reportingErrors {
                let applied = try await self.common.withMigrator { try await $0.up(allowing: self.consent.hazards) }
                if applied.isEmpty { print("Nothing to apply.") }
                for file in applied { print("Applied \(file.revision): \(file.message)") }
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Undo the last N applied migrations with the down SQL recorded when they were applied.")
        @OptionGroup var common: Common
        @OptionGroup var consent: Consent
        @Argument(help: "How many migrations to undo.")
        var count: Int = 1

        func validate() throws {
            guard self.count >= 1 else { throw ValidationError("N must be at least 1") }
        }

        func run() async throws {
            try await reportingErrors {
                let undone = try await self.common.withMigrator { try await $0.down(self.count, allowing: self.consent.hazards) }
                if undone.isEmpty { print("Nothing to undo.") }
                for file in undone { print("Undid \(file.revision): \(file.message)") }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the head, pending files, owners and whether the database matches the models.")
        @OptionGroup var common: Common

        func run() async throws {
            try await reportingErrors {
                let status = try await self.common.withMigrator { try await $0.status() }
                print(Printer.status(status))
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applied migrations, oldest first.")
        @OptionGroup var common: Common

        func run() async throws {
            try await reportingErrors {
                let history = try await self.common.withMigrator { try await $0.history() }
                if history.isEmpty { print("No migration applied yet.") }
                for entry in history {
                    print("\(entry.revision)  \(Printer.timestamp(entry.appliedAt))  \(entry.source.padding(toLength: 4, withPad: " ", startingAt: 0))  \(entry.message)")
                }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Exit 1 when the database and the models differ (for CI).")
        @OptionGroup var common: Common

        func run() async throws {
            try await reportingErrors {
                let plan = try await self.common.withMigrator { try await $0.plan() }
                if plan.isEmpty {
                    print("The database matches the models.")
                } else {
                    print("The database differs from the models:")
                    print(Printer.steps(plan))
                    throw ExitCode.failure
                }
            }
        }
    }

    struct Auto: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate and apply at once when every step is additive (what a daemon does at start-up).")
        @OptionGroup var common: Common

        func run() async throws {
            try await reportingErrors {
                if let file = try await self.common.withMigrator({ try await $0.auto() }) {
                    print("Applied \(file.revision) (\(file.up.count) statements).")
                } else {
                    print("Nothing to apply: the database matches the models.")
                }
            }
        }
    }
}

/// Text for people.
enum Printer {
    static func steps(_ plan: MigrationPlan) -> String {
        var lines: [String] = []
        for (number, step) in plan.steps.enumerated() {
            var line = "  \(number + 1). \(step.summary) [\(step.owner)]"
            if step.up.contains(where: { !$0.transactional }) { line += " (outside transaction)" }
            if !step.hazards.isEmpty { line += "  !! \(step.hazards.sorted().map(\.rawValue).joined(separator: ", "))" }
            lines.append(line)
        }
        for refusal in plan.refusals { lines.append("  refused: \(refusal)") }
        return lines.joined(separator: "\n")
    }

    static func plan(_ plan: MigrationPlan) -> String {
        var out: [String] = []
        if plan.isEmpty {
            out.append("-- The database matches the models (\(plan.catalogQueries) catalog queries).")
        } else {
            out.append("-- \(plan.steps.count) steps (\(plan.catalogQueries) catalog queries)\(plan.hazards.isEmpty ? "" : "; hazardous: " + plan.hazards.sorted().map(\.rawValue).joined(separator: ", "))")
            out.append(steps(plan).split(separator: "\n").map { "--" + $0 }.joined(separator: "\n"))
            out.append("")
            out.append(MigrationFile(plan: plan, parent: nil, message: "plan", revision: "plan").upSection)
        }
        for notice in plan.notices { out.append("-- notice: \(notice)") }
        return out.joined(separator: "\n")
    }

    static func status(_ status: Migrator.Status) -> String {
        var lines = ["Head: \(status.head ?? "none") (\(status.applied.count) applied)"]
        if status.pending.isEmpty {
            lines.append("Pending files: none")
        } else {
            lines.append("Pending files:")
            lines += status.pending.map { "  \($0.revision)  \($0.message)" }
        }
        lines.append("Owners:")
        for owner in status.owners {
            lines.append("  \(owner.owner) \(owner.ownerVersion)  \(owner.model) → \(owner.table)\(owner.isRegistered ? "" : "  (orphaned: owner not registered)")")
        }
        if status.owners.isEmpty { lines.append("  none recorded yet") }
        lines.append(status.plan.isEmpty ? "Models: the database matches." : "Models: \(status.plan.steps.count) steps needed (`migrate plan`).")
        for notice in status.plan.notices { lines.append("Notice: \(notice)") }
        return lines.joined(separator: "\n")
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
