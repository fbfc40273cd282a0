extension Federation {
    /// The owner registered under `slug`, if any.
    public func owner(_ slug: String) -> Owner? {
        self.owners.first { $0.slug == slug }
    }

    /// A federation of one owner and what it needs: the core, the owners its foreign keys point at
    /// (and theirs), and the owner itself. Migrating it creates or updates that owner's tables
    /// without touching the other owners' (their registry rows are left alone, as orphans are).
    ///
    /// - Throws: ``PhylacteryError/Code/notFound`` when no owner has that slug.
    public func restricted(to slug: String) throws -> Federation {
        guard self.owner(slug) != nil else {
            throw PhylacteryError(.notFound, "no owner '\(slug)' is registered (registered: \(self.owners.map(\.slug).joined(separator: ", ")))")
        }
        var ownerOfTable: [String: String] = [:]
        for owner in self.owners {
            for model in owner.models { ownerOfTable["\(model.schema.chamber.schema).\(model.schema.table)"] = owner.slug }
        }
        var needed: Set<String> = []
        var pending = [Self.coreSlug, slug]
        while let next = pending.popLast() {
            guard needed.insert(next).inserted, let owner = self.owner(next) else { continue }
            for model in owner.models {
                for column in model.schema.columns {
                    if let reference = column.references, let target = ownerOfTable["\(reference.chamber.schema).\(reference.table)"], !needed.contains(target) {
                        pending.append(target)
                    }
                }
            }
        }
        return try Federation(owners: self.owners.filter { needed.contains($0.slug) })
    }
}
