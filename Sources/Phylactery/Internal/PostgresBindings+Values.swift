import PostgresNIO

extension PostgresBindings {
    /// Bindings of `values`, in order: `$1`, `$2`, … of a statement.
    init(values: any PostgresNonThrowingEncodable...) {
        self.init(capacity: values.count)
        for value in values { self.append(value) }
    }
}
