/// Native PostgreSQL partitioning of a model's table (`CREATE TABLE … PARTITION BY …`).
///
/// The migration planner creates the partitioned parent; the partitions themselves are runtime
/// data, created and dropped by whoever owns the table (the traces chamber creates one partition
/// per day ahead of time and drops whole days on `prune`). The catalog reader skips partitions, so
/// they never show up as unknown tables.
///
/// PostgreSQL requires every primary key and unique constraint of a partitioned table to contain
/// the partition key. Every model's primary key is its ``UUIDBase/id``, so on a partitioned table
/// the primary key becomes `(id, <partition columns>)`: `id` stays unique in practice (a v7 UUID),
/// but the database only enforces uniqueness of the pair. Unique constraints declared by the model
/// must name the partition columns too, or the federation refuses the model.
///
/// The partitioning of an existing table is never changed by a migration (PostgreSQL cannot turn a
/// plain table into a partitioned one in place): the planner refuses with the reason.
///
/// Not supported on partitioned tables: foreign keys pointing *at* them (the key would have to name
/// the partition columns too), and unique constraints added to a table that already exists.
public struct TablePartitioning: Sendable, Hashable {
    /// A partitioning method.
    public enum Method: String, Sendable, Hashable, CaseIterable {
        /// `PARTITION BY RANGE`: each partition holds a range of key values (days, months, …).
        case range = "RANGE"
        /// `PARTITION BY LIST`: each partition holds listed key values.
        case list = "LIST"
        /// `PARTITION BY HASH`: rows spread by a hash of the key.
        case hash = "HASH"
    }

    /// The method.
    public var method: Method
    /// The partition key: column names (SQL names, not Swift property names).
    public var columns: [String]

    /// Partitioning by `method` over `columns`.
    public init(_ method: Method, columns: [String]) {
        self.method = method
        self.columns = columns
    }

    /// `PARTITION BY RANGE (column)`: the usual choice for time-ordered data.
    public static func range(_ column: String) -> TablePartitioning {
        TablePartitioning(.range, columns: [column])
    }

    /// The key as PostgreSQL's `pg_get_partkeydef` prints it: `RANGE (start_us)`. Column names are
    /// plain identifiers (the federation checks), so they need no quotes, as in the server's output.
    var definition: String {
        "\(self.method.rawValue) (\(self.columns.joined(separator: ", ")))"
    }

    /// Refuses partitioning that PostgreSQL would refuse, before any DDL.
    func validate(in schema: ModelSchema, label: String) throws {
        guard !self.columns.isEmpty else {
            throw PhylacteryError(.invalidModel, "\(label): partitioning names no column")
        }
        let names = Set(schema.allColumns.map(\.name))
        for column in self.columns where !names.contains(column) {
            throw PhylacteryError(.invalidModel, "\(label): partition column \(column) is not a column of the model")
        }
        for column in schema.allColumns where self.columns.contains(column.name) && column.isNullable && self.method == .range {
            throw PhylacteryError(.invalidModel, "\(label): partition column \(column.name) must not be optional (a NULL key has no range partition)")
        }
        for unique in schema.allUniqueConstraints where !Set(self.columns).isSubset(of: Set(unique.columns)) {
            throw PhylacteryError(.invalidModel, "\(label): unique constraint \(unique.name ?? "") must include the partition columns \(self.columns.joined(separator: ", ")) (PostgreSQL enforces uniqueness per partition)")
        }
    }

    /// The primary key of a model's table: `id`, then the partition columns when partitioned.
    static func primaryKeyColumns(for schema: ModelSchema) -> [String] {
        ["id"] + (schema.partitioning?.columns.filter { $0 != "id" } ?? [])
    }
}
