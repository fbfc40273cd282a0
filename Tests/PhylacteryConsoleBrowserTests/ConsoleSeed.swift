import Foundation
import Logging
import Phylactery
import Synchronization
import Tracing

/// What the browser test puts in its database before it opens the console: jobs in several states
/// (one discarded by a handler that has since been fixed), a trace with nested spans, memories and
/// facts with a history.
struct ConsoleSeed {
    /// Fails while ``HandlerSwitch/isBroken`` is set: its job is discarded after its one attempt, and
    /// a retry from the console then completes it.
    struct FlakyDelivery: Job {
        static let kind = "browser.flaky_delivery"
        static let maxAttempts = 1
        var recipient: String
    }

    /// Always succeeds.
    struct SteadyWork: Job {
        static let kind = "browser.steady_work"
        var step: Int
    }

    /// Enqueued for tomorrow: stays scheduled.
    struct LaterWork: Job {
        static let kind = "browser.later_work"
    }

    struct SeededFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The flaky handler's state, shared with the workers.
    final class HandlerSwitch: Sendable {
        private let broken = Atomic<Bool>(true)
        var isBroken: Bool { self.broken.load(ordering: .acquiring) }
        /// The handler is fixed: from now on it succeeds.
        func fix() { self.broken.store(false, ordering: .releasing) }
    }

    static let traceName = "browser.checkout"
    static let memoryTexts = [
        "the lab printer lives on the second floor",
        "the dns server for the lab is 192.168.1.53",
        "the gateway ip might be 10.0.0.254",
    ]
    static let factNamespace = "network"
    static let factKey = "gateway.ip"

    let discardedJob: UUID
    let completedJobs: [UUID]
    let scheduledJob: UUID

    /// The workers' handlers for the seeded kinds.
    static func handlers(_ handlerSwitch: HandlerSwitch) -> JobHandlers {
        var handlers = JobHandlers()
        handlers.register(FlakyDelivery.self) { job, context in
            if handlerSwitch.isBroken {
                throw SeededFailure(description: "the mail relay refused \(job.recipient) (attempt \(context.attempt))")
            }
        }
        handlers.register(SteadyWork.self) { _, _ in }
        handlers.register(LaterWork.self) { _, _ in }
        return handlers
    }

    /// Enqueues the jobs (the running workers take them).
    static func enqueueJobs(_ client: PhylacteryClient) async throws -> ConsoleSeed {
        try await client.transaction { tx in
            let flaky = try await tx.enqueue(FlakyDelivery(recipient: "ops@example.invalid"))
            var steady = [UUID]()
            for step in 1...6 { steady.append(try await tx.enqueue(SteadyWork(step: step)).id) }
            let later = try await tx.enqueue(LaterWork(), options: JobOptions(scheduledAt: Date().addingTimeInterval(86_400)))
            return ConsoleSeed(discardedJob: flaky.id, completedJobs: steady, scheduledJob: later.id)
        }
    }

    /// One trace of three nested spans, written through the tracer and flushed.
    static func writeTrace(_ client: PhylacteryClient, logger: Logger) async throws {
        let tracer = PhylacteryTracer(client: client, configuration: .init(service: "browser-test"), logger: logger)
        tracer.withSpan(Self.traceName, ofKind: .server) { span in
            span.attributes["http.route"] = "/checkout"
            tracer.withSpan("browser.load_cart") { _ in }
            tracer.withSpan("browser.charge_card", ofKind: .client) { charge in
                charge.addEvent("card accepted")
            }
        }
        let written = try await tracer.flush()
        guard written == 3 else { throw SeededFailure(description: "the tracer wrote \(written) spans, not 3") }
    }

    /// Memories (one consecrated) and a fact with two versions.
    static func writeMemoriesAndFacts(_ client: PhylacteryClient) async throws {
        try await client.transaction { tx in
            let memories = Self.memoryTexts.map { Memory(content: $0, owner: "browser-test", source: "seed") }
            _ = try await tx.memory.remember(contentsOf: memories)
            _ = try await tx.memory.consecrate(memories[0].id, by: "browser test")
            _ = try await tx.facts.put(Self.factNamespace, key: Self.factKey, value: "10.0.0.1", source: "browser test")
            _ = try await tx.facts.supersede(Self.factNamespace, key: Self.factKey, value: "10.0.0.254", source: "browser test")
            _ = try await tx.facts.put(Self.factNamespace, key: "dns.primary", value: "192.168.1.53", source: "browser test")
        }
    }
}
