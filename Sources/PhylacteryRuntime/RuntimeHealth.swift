import Foundation
import Synchronization

/// What a daemon can expose as its health: the runtime is *live* while it runs (starting, serving,
/// restarting its server), and *ready* while the database answers and the workers run.
///
/// ```swift
/// try await runtime.health.waitUntilReady()     // a daemon service that needs the database
/// if runtime.health.isReady { … }               // a /ready endpoint
/// ```
public final class RuntimeHealth: Sendable {
    /// Where the runtime stands.
    public enum Phase: String, Sendable, Hashable {
        /// ``PhylacteryRuntime/run()`` has not begun.
        case idle
        /// Starting (or waiting for) the server.
        case waitingForServer
        /// Preparing the database: chambers, start-up steps, migrations.
        case migrating
        /// Serving: the database answers, the tracer and the workers run.
        case running
        /// The embedded server died and is being restarted.
        case restartingServer
        /// Graceful shutdown under way.
        case stopping
        /// Stopped after a graceful shutdown.
        case stopped
        /// Stopped by an error (``Snapshot/detail`` says which).
        case failed
    }

    /// The health at one moment.
    public struct Snapshot: Sendable, Hashable {
        /// Where the runtime stands.
        public var phase: Phase
        /// What went wrong, when ``phase`` is ``Phase/failed``, or what the server is doing while restarting.
        public var detail: String?
        /// How often the embedded server was restarted after it died or failed to start.
        public var serverRestarts: Int
        /// Live: running, or on its way (a supervisor may restart it).
        public var isLive: Bool { self.phase != .failed && self.phase != .stopped }
        /// Ready: the database answers and the workers run.
        public var isReady: Bool { self.phase == .running }
    }

    private struct State {
        /// The runtime's own progress.
        var phase: Phase = .idle
        var detail: String?
        /// Whether the server answers (an embedded one can die and come back; an external one is
        /// assumed up once it answered).
        var serverUp = false
        var serverRestarts = 0
        var waiters: [UUID: CheckedContinuation<Void, any Error>] = [:]
        var failure: (any Error)?

        var snapshot: Snapshot {
            if self.phase == .running, !self.serverUp {
                return Snapshot(phase: .restartingServer, detail: self.detail, serverRestarts: self.serverRestarts)
            }
            return Snapshot(phase: self.phase, detail: self.detail, serverRestarts: self.serverRestarts)
        }
    }

    private let state = Mutex(State())

    init() {}

    /// The health now.
    public var snapshot: Snapshot { self.state.withLock { $0.snapshot } }
    /// Whether the runtime is live (see ``Snapshot/isLive``).
    public var isLive: Bool { self.snapshot.isLive }
    /// Whether the runtime is ready (see ``Snapshot/isReady``).
    public var isReady: Bool { self.snapshot.isReady }

    /// Returns once the runtime is ready; throws the error that stopped it if it fails or stops first.
    public func waitUntilReady() async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = self.state.withLock { state -> Result<Void, any Error>? in
                    if state.snapshot.isReady { return .success(()) }
                    if let failure = self.endedError(state) { return .failure(failure) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func endedError(_ state: State) -> (any Error)? {
        switch state.phase {
        case .failed: state.failure ?? RuntimeStopped(phase: .failed)
        case .stopped, .stopping: RuntimeStopped(phase: state.phase)
        default: nil
        }
    }

    /// The error ``waitUntilReady()`` throws when the runtime stops before it was ready.
    public struct RuntimeStopped: Error, CustomStringConvertible {
        /// The phase it ended in.
        public var phase: Phase
        public var description: String { "the Phylactery runtime stopped before it was ready (\(self.phase.rawValue))" }
    }

    /// The runtime moved on to `phase`.
    func enter(_ phase: Phase, detail: String? = nil, failure: (any Error)? = nil) {
        self.update { state in
            // Once stopping, only the end of the shutdown counts; once ended, nothing does.
            if state.phase == .stopped || state.phase == .failed { return }
            if state.phase == .stopping, phase != .stopped, phase != .failed { return }
            state.phase = phase
            state.detail = detail
            if let failure { state.failure = failure }
        }
    }

    /// The server answers (again).
    func serverUp() {
        self.update { state in
            state.serverUp = true
            state.detail = nil
        }
    }

    /// The embedded server died or failed to start, and will be restarted.
    func serverDown(restarting detail: String) {
        self.update { state in
            state.serverUp = false
            state.serverRestarts += 1
            state.detail = detail
        }
    }

    private func update(_ change: (inout State) -> Void) {
        let (waiters, outcome) = self.state.withLock { state -> ([CheckedContinuation<Void, any Error>], Result<Void, any Error>?) in
            change(&state)
            let outcome: Result<Void, any Error>?
            if state.snapshot.isReady {
                outcome = .success(())
            } else if let error = self.endedError(state) {
                outcome = .failure(error)
            } else {
                outcome = nil
            }
            guard outcome != nil else { return ([], nil) }
            defer { state.waiters = [:] }
            return (Array(state.waiters.values), outcome)
        }
        if let outcome { for waiter in waiters { waiter.resume(with: outcome) } }
    }
}
