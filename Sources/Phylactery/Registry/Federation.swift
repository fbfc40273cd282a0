/// The schema the database must have: the core's models and every installed extension's, checked
/// as one before any DDL is planned.
///
/// Building a federation refuses, naming both owners, when two owners (or two models) claim one
/// table, index, constraint or model name, or when an extension's table lies outside its
/// namespace. Owners are ordered by their dependencies: an extension whose foreign key points at
/// a core table comes after the core.
public struct Federation: Sendable {
    /// The slug under which the core's own models are registered.
    public static let coreSlug = "core"

    /// One owner of tables: the core or an extension.
    public struct Owner: Sendable {
        /// `core` or the extension's slug.
        public var slug: String
        /// The extension's version (the core's is ``Federation/coreVersion``).
        public var version: String
        /// The owner's models, in registration order.
        public var models: [ModelRegistration]
        /// The job handlers the owner registered (``ExtensionContext/handle(_:_:)``).
        public var jobHandlers: [AnyJobHandler] = []
        /// The jobs the owner scheduled (``ExtensionContext/schedule(_:)``).
        public var periodicJobs: [PeriodicJob] = []
    }

    /// Every owner's scheduled jobs, for the workers of a daemon hosting them.
    public var periodicJobs: [PeriodicJob] { self.owners.flatMap(\.periodicJobs) }

    /// Every owner's job handlers, for the workers of a daemon hosting them.
    public var jobHandlers: JobHandlers {
        var handlers = JobHandlers()
        for owner in self.owners { for handler in owner.jobHandlers { handlers.register(handler) } }
        return handlers
    }

    /// The version recorded for core models.
    public static let coreVersion = "1"

    /// Owners in dependency order, the core first.
    public let owners: [Owner]

    /// An extension compiled in but disabled (by a daemon's configuration): its tables are kept as
    /// they are and reported as dormant, never dropped; its jobs are not claimed and its handlers and
    /// models are not registered. Enabling it again migrates it forward.
    public struct DormantOwner: Sendable, Hashable {
        /// The extension's slug.
        public var slug: String
        /// Its version.
        public var version: String
        /// Its tables, as `schema.table`.
        public var tables: [String]
        /// The job kinds it declared handlers for.
        public var jobKinds: [String]
    }

    /// The extensions left out of this federation by ``init(core:extensions:disabled:)``.
    public private(set) var dormant: [DormantOwner] = []

    /// The job kinds of the dormant extensions, for workers that must leave their jobs alone: every
    /// kind they declared, and every kind starting with their slug and `.`.
    public var dormantJobKinds: SkippedKinds {
        SkippedKinds(kinds: Set(self.dormant.flatMap(\.jobKinds)), prefixes: Set(self.dormant.map { $0.slug + "." }))
    }

    /// Every registered model with its owner, in owner order.
    public var models: [(owner: Owner, model: ModelRegistration)] {
        self.owners.flatMap { owner in owner.models.map { (owner, $0) } }
    }

    /// Assembles the federation from the core's models and the extensions, and checks it.
    public init(core: [ModelRegistration] = [], extensions: [any PhylacteryExtension] = []) throws {
        try self.init(core: core, extensions: extensions, disabled: [])
    }

    /// Assembles the federation from the core's models and the extensions, leaving out the extensions
    /// whose slugs are in `disabled` (see ``DormantOwner``), and checks it.
    ///
    /// Every extension is initialised, so the disabled ones' tables and job kinds are known. Before any
    /// DDL can be planned the federation is refused when an enabled extension has a foreign key into a
    /// disabled one's table (it would dangle), or when `disabled` names an extension that is not compiled in.
    public init(core: [ModelRegistration] = [], extensions: [any PhylacteryExtension] = [], disabled: Set<String>) throws {
        let known = Set(extensions.map(\.slug))
        if let unknown = disabled.subtracting(known).sorted().first {
            throw PhylacteryError(.invalidConfiguration, "the extension '\(unknown)' cannot be disabled: no such extension is compiled in (known: \(known.sorted().joined(separator: ", ")))")
        }
        var owners = [Owner(slug: Self.coreSlug, version: Self.coreVersion, models: core)]
        var seenSlugs: Set<String> = [Self.coreSlug]
        for plugin in extensions {
            let slug = plugin.slug
            try Self.validateSlug(slug)
            guard seenSlugs.insert(slug).inserted else {
                throw PhylacteryError(.federationConflict, "two extensions use the slug '\(slug)'")
            }
            // `notes` and `notes_archive` would share the `notes_archive_` table prefix.
            if let nested = seenSlugs.first(where: { $0 != Self.coreSlug && (slug.hasPrefix($0 + "_") || $0.hasPrefix(slug + "_")) }) {
                throw PhylacteryError(.federationConflict, "extension slugs '\(nested)' and '\(slug)' overlap: tables of one could lie in the namespace of the other")
            }
            let context = ExtensionContext(slug: slug)
            do {
                try plugin.initialize(context)
            } catch {
                throw PhylacteryError(.invalidModel, "extension '\(slug)' failed to initialise: \(error)", underlying: error)
            }
            owners.append(Owner(slug: slug, version: plugin.version, models: context.registrations, jobHandlers: context.jobHandlers, periodicJobs: context.periodicJobs))
        }
        let dormant = owners.filter { disabled.contains($0.slug) }
        let active = owners.filter { !disabled.contains($0.slug) }
        try Self.checkNothingDangles(active: active, dormant: dormant)
        try self.init(owners: active)
        self.dormant = dormant.map { owner in
            DormantOwner(slug: owner.slug, version: owner.version,
                         tables: owner.models.map { "\($0.schema.chamber.schema).\($0.schema.table)" },
                         jobKinds: owner.jobHandlers.map(\.kind).sorted())
        }
    }

    /// Refuses a foreign key of an enabled owner into a table of a disabled one.
    private static func checkNothingDangles(active: [Owner], dormant: [Owner]) throws {
        var dormantTables: [String: String] = [:]
        for owner in dormant { for model in owner.models { dormantTables["\(model.schema.chamber.schema).\(model.schema.table)"] = owner.slug } }
        guard !dormantTables.isEmpty else { return }
        for owner in active {
            for model in owner.models {
                for column in model.schema.columns {
                    guard let reference = column.references else { continue }
                    let target = "\(reference.chamber.schema).\(reference.table)"
                    if let disabledOwner = dormantTables[target] {
                        throw PhylacteryError(.federationConflict, "extension '\(owner.slug)' (model \(model.schema.modelName), column \(column.name)) has a foreign key into \(target) of extension '\(disabledOwner)', which the configuration disables; the key would dangle. Enable '\(disabledOwner)' too, or disable '\(owner.slug)' as well")
                    }
                }
            }
        }
    }

    /// Assembles a federation from owners given directly (tests, benchmarks, tools).
    public init(owners: [Owner]) throws {
        try Self.check(owners)
        var handlerOwners = [String: String]()
        for owner in owners {
            for handler in owner.jobHandlers {
                if let other = handlerOwners.updateValue(owner.slug, forKey: handler.kind) {
                    throw PhylacteryError(.federationConflict, "job kind '\(handler.kind)' is handled by both '\(other)' and '\(owner.slug)'")
                }
            }
        }
        self.owners = try Self.dependencyOrder(owners)
    }

    // MARK: - Checks

    static func validateSlug(_ slug: String) throws {
        guard Self.isPlainIdentifier(slug), !slug.contains("__"), slug != coreSlug, slug != "phylactery", slug.utf8.count <= 32 else {
            throw PhylacteryError(.invalidModel, "extension slug '\(slug)' must be 1–32 lowercase letters, digits or single '_', start with a letter, and not be 'core' or 'phylactery'")
        }
    }

    /// Lowercase ASCII letters, digits and `_`, starting with a letter or `_`, at most 63 bytes.
    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= SQLNaming.maximumIdentifierLength else { return false }
        guard (first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) || first == UInt8(ascii: "_") else { return false }
        return name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }

    private static func check(_ owners: [Owner]) throws {
        // Claims per namespace: who owns each name.
        var modelNames: [String: String] = [:]
        var relations: [String: (owner: String, what: String)] = [:]   // "schema.name": tables and indexes share pg_class
        var constraints: [String: (owner: String, what: String)] = [:] // "schema.name"

        func claim(_ table: inout [String: (owner: String, what: String)], _ key: String, owner: String, what: String, kind: String) throws {
            if let existing = table[key] {
                throw PhylacteryError(.federationConflict, "\(kind) name \(key) is claimed twice: by \(existing.what) (owner '\(existing.owner)') and by \(what) (owner '\(owner)')")
            }
            table[key] = (owner, what)
        }

        for owner in owners {
            for registration in owner.models {
                let schema = registration.schema
                let what = "model \(schema.modelName)"
                try Self.validate(schema, owner: owner.slug)
                if let existing = modelNames[schema.modelName] {
                    throw PhylacteryError(.federationConflict, "model name \(schema.modelName) is registered twice: by owner '\(existing)' and by owner '\(owner.slug)'")
                }
                modelNames[schema.modelName] = owner.slug
                let chamber = schema.chamber.schema
                try claim(&relations, "\(chamber).\(schema.table)", owner: owner.slug, what: what, kind: "table")
                try claim(&relations, "\(chamber).\(schema.table)_pkey", owner: owner.slug, what: "\(what) (primary key)", kind: "index")
                try claim(&constraints, "\(chamber).\(schema.table)_pkey", owner: owner.slug, what: "\(what) (primary key)", kind: "constraint")
                for index in schema.allIndexes {
                    try claim(&relations, "\(chamber).\(index.name!)", owner: owner.slug, what: "\(what) (index)", kind: "index")
                }
                for unique in schema.allUniqueConstraints {
                    try claim(&relations, "\(chamber).\(unique.name!)", owner: owner.slug, what: "\(what) (unique constraint)", kind: "index")
                    try claim(&constraints, "\(chamber).\(unique.name!)", owner: owner.slug, what: "\(what) (unique constraint)", kind: "constraint")
                }
                for check in schema.allChecks {
                    try claim(&constraints, "\(chamber).\(check.name!)", owner: owner.slug, what: "\(what) (check)", kind: "constraint")
                }
                for column in schema.columns where column.references != nil {
                    let name = schema.foreignKeyName(for: column)
                    try claim(&constraints, "\(chamber).\(name)", owner: owner.slug, what: "\(what) (foreign key)", kind: "constraint")
                }
            }
        }
        // Foreign keys must point at a table of the federation.
        let tables = Set(owners.flatMap { $0.models.map { "\($0.schema.chamber.schema).\($0.schema.table)" } })
        for owner in owners {
            for registration in owner.models {
                for column in registration.schema.columns {
                    guard let reference = column.references else { continue }
                    let target = "\(reference.chamber.schema).\(reference.table)"
                    guard tables.contains(target) else {
                        throw PhylacteryError(.invalidModel, "model \(registration.schema.modelName) (owner '\(owner.slug)'): column \(column.name) references \(target), which no registered model declares")
                    }
                }
            }
        }
    }

    private static func validate(_ schema: ModelSchema, owner: String) throws {
        let label = "model \(schema.modelName) (owner '\(owner)')"
        guard Self.isPlainIdentifier(schema.table) else {
            throw PhylacteryError(.invalidModel, "\(label): table name '\(schema.table)' must be lowercase letters, digits and '_', at most 63 bytes")
        }
        try schema.partitioning?.validate(in: schema, label: label)
        if owner != coreSlug && !schema.table.hasPrefix(owner + "_") {
            throw PhylacteryError(.federationConflict, "\(label): table \(schema.table) lies outside the namespace of owner '\(owner)'; extension tables must start with '\(owner)_'")
        }
        for old in schema.renamedFrom where !Self.isPlainIdentifier(old) {
            throw PhylacteryError(.invalidModel, "\(label): former table name '\(old)' is not a plain identifier")
        }
        var names: Set<String> = []
        for column in schema.allColumns {
            guard Self.isPlainIdentifier(column.name) else {
                throw PhylacteryError(.invalidModel, "\(label): column name '\(column.name)' must be lowercase letters, digits and '_', at most 63 bytes")
            }
            guard names.insert(column.name).inserted else {
                throw PhylacteryError(.invalidModel, "\(label): two properties map to column \(column.name)")
            }
        }
        let objectNames = schema.allIndexes.map { $0.name! } + schema.allUniqueConstraints.map { $0.name! } + schema.allChecks.map { $0.name! }
        for object in objectNames where !Self.isPlainIdentifier(object) {
            throw PhylacteryError(.invalidModel, "\(label): index or constraint name '\(object)' must be lowercase letters, digits and '_', at most 63 bytes (PostgreSQL would truncate it)")
        }
        for index in schema.allIndexes {
            for key in index.columns where !IndexDescription.isExpression(key) && !names.contains(key) {
                throw PhylacteryError(.invalidModel, "\(label): index \(index.name!) names column \(key), which the model does not have")
            }
        }
        for unique in schema.allUniqueConstraints {
            for key in unique.columns where !names.contains(key) {
                throw PhylacteryError(.invalidModel, "\(label): unique constraint \(unique.name!) names column \(key), which the model does not have")
            }
        }
    }

    /// The core first, then extensions such that every foreign key points at an earlier (or the same) owner.
    private static func dependencyOrder(_ owners: [Owner]) throws -> [Owner] {
        var ownerOfTable: [String: String] = [:]
        for owner in owners { for model in owner.models { ownerOfTable["\(model.schema.chamber.schema).\(model.schema.table)"] = owner.slug } }
        var dependsOn: [String: Set<String>] = [:]
        for owner in owners {
            var needs = Set<String>()
            for model in owner.models {
                for column in model.schema.columns {
                    if let reference = column.references, let target = ownerOfTable["\(reference.chamber.schema).\(reference.table)"], target != owner.slug {
                        needs.insert(target)
                    }
                }
            }
            dependsOn[owner.slug] = needs
        }
        var ordered: [Owner] = []
        var placed: Set<String> = []
        var remaining = owners
        while !remaining.isEmpty {
            guard let next = remaining.firstIndex(where: { dependsOn[$0.slug, default: []].isSubset(of: placed) }) else {
                let cycle = remaining.map(\.slug).joined(separator: ", ")
                throw PhylacteryError(.federationConflict, "owners \(cycle) reference each other's tables in a cycle; no order can create them")
            }
            let owner = remaining.remove(at: next)
            placed.insert(owner.slug)
            ordered.append(owner)
        }
        return ordered
    }
}
