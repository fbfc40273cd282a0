import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import ServiceLifecycle
import Synchronization

/// Runs the embedded server as a child of this process and keeps it running: the I/O shell of
/// ``RestartStateMachine``. A `Service`, first in the runtime's group, so it stops last.
///
/// A server that dies (killed, crashed) is restarted after a backoff; a server that cannot start is
/// tried again until ``PhylacteryConfiguration/Server/maximumStartFailures`` starts in a row have
/// failed, and then the supervisor throws the last error (its message quotes the server log's tail).
/// On graceful shutdown the server is stopped (a fast shutdown) — if this supervisor started it.
/// While it runs it holds the home (``EmbeddedServer/holdUsage(for:)``): a restore is refused meanwhile.
/// A server that already runs on the data directory (`phylactery db start`) is used as it is and left
/// running at shutdown; should it stop, the supervisor starts its own.
final class EmbeddedServerSupervisor: Service, Sendable {
    let server: EmbeddedServer
    let settings: PhylacteryConfiguration.Server
    let health: RuntimeHealth
    let logger: Logger

    private struct State {
        var machine: RestartStateMachine<ContinuousClock>
        /// The foreground run under way.
        var current: EmbeddedServer.ForegroundControl?
        var stopping = false
        var firstReady: Result<Void, EmbeddedServerError>?
        var readyWaiters: [CheckedContinuation<Void, any Error>] = []
        var lastError: EmbeddedServerError?
    }

    private let state: Mutex<State>
    /// Wakes the supervision loop (a stop request while it waits).
    private let wake = WakeSignal()

    init(server: EmbeddedServer, settings: PhylacteryConfiguration.Server, health: RuntimeHealth, logger: Logger) {
        self.server = server
        self.settings = settings
        self.health = health
        self.logger = logger
        let backoff = RetryBackoff(initial: settings.restartDelay, multiplier: 2, maximum: settings.restartMaximumDelay, jitter: 0.2)
        self.state = Mutex(State(machine: RestartStateMachine(backoff: backoff, maximumStartFailures: settings.maximumStartFailures)))
    }

    /// Returns once the server accepts connections for the first time; throws if supervision gave up first.
    func waitUntilReady() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let ready = self.state.withLock { state -> Result<Void, EmbeddedServerError>? in
                if state.firstReady == nil { state.readyWaiters.append(continuation) }
                return state.firstReady
            }
            if let ready { continuation.resume(with: ready.mapError { $0 as any Error }) }
        }
    }

    private func settle(_ outcome: Result<Void, EmbeddedServerError>) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            guard state.firstReady == nil else { return [] }
            state.firstReady = outcome
            defer { state.readyWaiters = [] }
            return state.readyWaiters
        }
        for waiter in waiters { waiter.resume(with: outcome.mapError { $0 as any Error }) }
    }

    func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await self.supervise()
            } onGracefulShutdown: {
                self.requestStop()
            }
        } catch let error as EmbeddedServerError {
            self.settle(.failure(error))
            throw error
        } catch {
            self.settle(.failure(EmbeddedServerError(.startFailed, "The embedded server's supervision ended: \(error)")))
            throw error
        }
        self.settle(.failure(EmbeddedServerError(.startFailed, "The runtime stopped before the embedded server was ready.")))
    }

    /// Graceful shutdown: stop the server we run, or stop waiting to restart it.
    private func requestStop() {
        let (actions, current) = self.state.withLock { state in
            state.stopping = true
            return (state.machine.stopRequested(), state.current)
        }
        if actions.contains(.stop) { current?.requestStop() }
        self.wake.signal()
    }

    private var isStopping: Bool { self.state.withLock { $0.stopping } }

    private func supervise() async throws {
        // The home is held for as long as the runtime runs: a restore, which swaps the data
        // directory, is refused meanwhile instead of racing a restart.
        let usage = try self.server.holdUsage(for: "the runtime")
        defer { usage.release() }
        try await self.useRunningServer()
        if self.isStopping || Task.isCancelled { return }
        let clock = ContinuousClock()
        var actions = self.state.withLock { $0.machine.begin() }
        while true {
            guard let action = actions.first else {
                // Nothing to do until an event: the loop always has one pending.
                return
            }
            actions.removeFirst()
            switch action {
            case .start:
                actions += await self.startOnce(clock: clock)
            case .wait(let until):
                while clock.now < until, !self.isStopping, !Task.isCancelled {
                    await self.wake.wait(timeout: until - clock.now)
                }
                actions += self.state.withLock { state in
                    state.stopping || Task.isCancelled ? state.machine.stopRequested() : state.machine.delayElapsed(at: clock.now)
                }
            case .stop:
                self.state.withLock { $0.current }?.requestStop()
            case .finish:
                return
            case .giveUp(let failures):
                let last = self.state.withLock { $0.lastError }
                throw EmbeddedServerError(
                    .startFailed,
                    "The embedded server in \(self.server.configuration.home) failed to start \(failures) times in a row; giving up. The last attempt: \(last?.message ?? "no error recorded")",
                    details: last?.details)
            }
        }
    }

    /// One start and, once it is ready, its whole run; returns the machine's next actions.
    private func startOnce(clock: ContinuousClock) async -> [RestartStateMachine<ContinuousClock>.Action] {
        let control = EmbeddedServer.ForegroundControl()
        let stopAlready = self.state.withLock { state -> Bool in
            state.current = control
            return state.stopping
        }
        if stopAlready { control.requestStop() }
        do {
            let exit = try await self.server.runInForeground(
                wheel: self.settings.wheel, readyTimeout: self.settings.startTimeout, control: control
            ) { pid, notes in
                for note in notes { self.logger.info("\(note)") }
                self.logger.info("embedded server ready", metadata: ["pid": "\(pid)", "socket": "\(self.server.configuration.socketPath)"])
                let actions = self.state.withLock { $0.machine.ready(at: clock.now) }
                if actions.contains(.stop) { control.requestStop() }
                self.health.serverUp()
                self.settle(.success(()))
            }
            self.state.withLock { $0.current = nil }
            if !exit.requested {
                self.logger.error("embedded server died; restarting it", metadata: ["pid": "\(exit.pid)", "status": "\(exit.status)"])
                self.health.serverDown(restarting: "the embedded server (pid \(exit.pid)) died with status \(exit.status); restarting it")
            } else {
                self.logger.info("embedded server stopped", metadata: ["pid": "\(exit.pid)"])
            }
            return self.state.withLock { $0.machine.exited(at: clock.now, requested: exit.requested, random: Double.random(in: 0...1)) }
        } catch {
            let failure = error as? EmbeddedServerError ?? EmbeddedServerError(.startFailed, "\(error)")
            self.logger.warning("embedded server did not start", metadata: ["error": "\(failure.message)"])
            if self.state.withLock({ $0.firstReady != nil }) {
                self.health.serverDown(restarting: "the embedded server did not start: \(failure.message)")
            }
            return self.state.withLock { state in
                state.current = nil
                state.lastError = failure
                return state.machine.startFailed(at: clock.now, random: Double.random(in: 0...1))
            }
        }
    }

    /// A server another process started on this data directory (`phylactery db start`) is used as
    /// it is while it runs; it is not this supervisor's to stop or restart.
    private func useRunningServer() async throws {
        guard case .running(let pid, _) = self.server.pidFileState() else { return }
        self.logger.notice("the embedded server in \(self.server.configuration.home) already runs (pid \(pid)); using it, and leaving it running at shutdown")
        try await self.server.ensureDatabase()
        self.health.serverUp()
        self.settle(.success(()))
        while !self.isStopping, !Task.isCancelled {
            await self.wake.wait(timeout: .seconds(1))
            guard case .running = self.server.pidFileState() else {
                self.logger.warning("the embedded server another process started has stopped; starting this runtime's own")
                self.health.serverDown(restarting: "the server another process started has stopped; starting this runtime's own")
                return
            }
        }
    }
}
