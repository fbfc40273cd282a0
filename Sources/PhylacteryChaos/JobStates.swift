import PostgresNIO

/// Counts of a run's jobs by state.
struct JobStates {
    var completed = 0, running = 0, available = 0, other = 0

    init() {}

    /// From the rows of `SELECT state, count(*) … GROUP BY state`.
    init(_ rows: [PostgresRow]) throws {
        for row in rows {
            let (state, count) = try row.decode((String, Int64).self)
            switch state {
            case "completed": self.completed = Int(count)
            case "running": self.running = Int(count)
            case "available": self.available = Int(count)
            default: self.other += Int(count)
            }
        }
    }
}
