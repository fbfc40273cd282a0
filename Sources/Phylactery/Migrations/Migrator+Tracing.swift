import Tracing

extension Migrator {
    /// Runs `body` inside a span of the globally bootstrapped tracer (`InstrumentationSystem`), so a
    /// daemon that bootstraps a ``PhylacteryTracer`` sees its migrations in `traces.spans`; without
    /// one, the no-op tracer makes this free. Nothing here knows the tracer's type.
    static func traced<R>(
        _ operation: String,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (any Span) async throws -> R
    ) async throws -> R {
        try await withSpan(operation, ofKind: .internal, isolation: isolation) { span in
            try await body(span)
        }
    }

    /// `withMigrationLock`'s caller as an operation name: `auto(message:)` → `phylactery.migrate.auto`.
    static func operationName(_ function: String) -> String {
        "phylactery.migrate." + function.prefix { $0 != "(" }
    }
}
