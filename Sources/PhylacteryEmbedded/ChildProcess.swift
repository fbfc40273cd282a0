import Foundation
package import Phylactery
import Subprocess
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts and supervises the server's programs (`initdb`, `pg_ctl`, `postgres`, `psql`) through
/// swiftlang/swift-subprocess.
///
/// As root, a program runs as the server's user through `setpriv` (util-linux): it sets the user's
/// groups, group and user in its own process and `exec`s the program, so the child *is* the program
/// (no `runuser` session parent in between: a signal sent to the child reaches `postgres` itself).
/// The environment says who it runs as the way `runuser` would (`HOME`, `USER`, `LOGNAME`, `SHELL`).
///
/// swift-subprocess's own user switch (`PlatformOptions.userID`, `groupID`, `supplementaryGroups`)
/// is not used: on Linux it starts the child with the raw `clone3` system call and then calls glibc's
/// `setgroups`/`setgid`/`setuid` in it, which signal every thread glibc still lists — the parent's —
/// and wait forever for one that was being created at the moment of the clone. Seen here: the
/// server restarted after a SIGKILL hung in `__nptl_setxid` before `exec`, in 2 runs out of 2 of the
/// runtime's kill test. Without those options swift-subprocess uses `posix_spawn`.
///
/// Output (standard output and error together) goes to a private file rather than a pipe: a chatty
/// program never blocks on a full pipe, and a server started by `pg_ctl` cannot hold our pipe open.
package enum ChildProcess {
    /// How a program that ran to completion ended.
    package struct Outcome: Sendable {
        /// The exit status; 128 + the signal number when a signal ended it (as a shell reports it).
        package var status: Int32
        /// What it printed on standard output and standard error, interleaved.
        package var output: String
        package var succeeded: Bool { self.status == 0 }
    }

    /// A program could not be started at all.
    package struct SpawnError: Error, CustomStringConvertible {
        package var executable: String
        package var reason: String
        package var description: String { "cannot run \(self.executable): \(self.reason)" }
    }

    /// Runs `executable` with `arguments` — as `user` when given, which needs root — and waits for it.
    ///
    /// - Parameter environment: the complete environment (default: this process's).
    package static func run(
        _ executable: String,
        _ arguments: [String],
        as user: ServerUser? = nil,
        environment: [String: String]? = nil
    ) async throws -> Outcome {
        let outputPath = FileManager.default.temporaryDirectory.path + "/phylactery-\(UUID().uuidString).out"
        defer { unlink(outputPath) }
        let descriptor = try FileDescriptor.open(
            FilePath(outputPath), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
        let status: TerminationStatus
        do {
            let (program, argv) = try Self.command(executable, arguments, as: user)
            status = try await spawnToCompletion(
                program, argv, environment: Self.environment(environment, user: user), platformOptions: PlatformOptions(), output: descriptor)
        } catch let error as SpawnError {
            throw error
        } catch {
            throw SpawnError(executable: executable, reason: "\(error)")
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return Outcome(status: Self.exitCode(status), output: output)
    }

    /// Runs a long-lived program (the server in the foreground) with its output going to the open
    /// file descriptor `output` (the caller keeps and closes it), and hands `body` a ``Running`` handle to watch and signal it while it runs. Returns
    /// `body`'s result with the program's exit status once `body` has returned *and* the program has
    /// exited, so `body` must see to the exit (``Running/waitUntilExited()``). If the calling task is
    /// cancelled, the program is sent `SIGQUIT`, then `SIGKILL` 5 s later.
    ///
    /// - Parameter wake: signalled when the program exits, for a body that waits on several things.
    package static func supervise<Result: Sendable>(
        _ executable: String,
        _ arguments: [String],
        as user: ServerUser? = nil,
        environment: [String: String]? = nil,
        output: Int32,
        wake: WakeSignal? = nil,
        _ body: (Running) async throws -> Result
    ) async throws -> (result: Result, status: Int32) {
        var options = PlatformOptions()
        // PostgreSQL's immediate shutdown: its children are told to quit at once.
        options.teardownSequence = [.send(signal: .quit, allowedDurationToNextStep: .seconds(5))]
        let (program, argv) = try Self.command(executable, arguments, as: user)
        let execution = try await spawnSupervised(
            program, argv, environment: Self.environment(environment, user: user), platformOptions: options,
            output: FileDescriptor(rawValue: output)
        ) { pid, signal in
            let running = Running(pid: pid, wake: wake, signal: signal)
            running.watchExit()
            return try await body(running)
        }
        return (execution.result, Self.exitCode(execution.status))
    }

    /// A program started by ``supervise(_:_:as:environment:output:wake:_:)``, while its body runs.
    package final class Running: Sendable {
        /// The program's process id.
        package let pid: Int32
        private let wake: WakeSignal?
        private let signalling: @Sendable (Int32) throws -> Void
        private let state = Mutex<(exited: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

        init(pid: Int32, wake: WakeSignal?, signal: @escaping @Sendable (Int32) throws -> Void) {
            self.pid = pid
            self.wake = wake
            self.signalling = signal
        }

        /// Sends `signal` (`SIGINT`, `SIGQUIT`, …) to the program; nothing once it has exited.
        package func send(_ signal: Int32) throws {
            guard !self.hasExited else { return }
            try self.signalling(signal)
        }

        /// Whether the program has exited (it is reaped only after the body returns).
        package var hasExited: Bool { self.state.withLock { $0.exited } }

        /// Returns once the program has exited, whether or not the task is cancelled: a body must
        /// not return while its program runs.
        package func waitUntilExited() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let exited = self.state.withLock { state -> Bool in
                    if !state.exited { state.waiters.append(continuation) }
                    return state.exited
                }
                if exited { continuation.resume() }
            }
        }

        /// One thread waits for the exit with `waitid(…, WNOWAIT)`: it sees the exit at once and leaves
        /// the child to be reaped by swift-subprocess.
        func watchExit() {
            let pid = self.pid
            Thread.detachNewThread { [self] in
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
                let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.exited = true
                    defer { state.waiters = [] }
                    return state.waiters
                }
                for waiter in waiters { waiter.resume() }
                self.wake?.signal()
            }
        }
    }

    /// `HOME`, `USER`, `LOGNAME` and `SHELL` of `user`, as `runuser` sets them, over `environment`.
    static func environment(_ environment: [String: String]?, user: ServerUser?) -> [String: String] {
        var environment = environment ?? ProcessInfo.processInfo.environment
        if let user, let entry = getpwnam(user.name) {
            environment["HOME"] = String(cString: entry.pointee.pw_dir)
            environment["SHELL"] = String(cString: entry.pointee.pw_shell)
            environment["USER"] = user.name
            environment["LOGNAME"] = user.name
        }
        return environment
    }

    /// The program and arguments that run `executable` as `user`: through `setpriv`, which takes the
    /// user's id, group and groups (`initgroups`) and then `exec`s it in the same process.
    static func command(_ executable: String, _ arguments: [String], as user: ServerUser?) throws -> (String, [String]) {
        guard let user else { return (executable, arguments) }
        guard let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw SpawnError(executable: executable, reason: "running it as '\(user.name)' needs setpriv (util-linux), which is not installed")
        }
        return (setpriv, ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--", executable] + arguments)
    }

    /// A shell's exit code: the status, or 128 + the signal.
    static func exitCode(_ status: TerminationStatus) -> Int32 {
        switch status {
        case .exited(let code): Int32(code)
        case .signaled(let signal): 128 + Int32(signal)
        }
    }
}

// The calls into swift-subprocess live at file scope: inside `ChildProcess`, `run` would name its own
// method, and the module's name `Subprocess` is taken by the older synchronous helper of this target.

private func environmentValues(_ environment: [String: String]) -> Environment {
    var values: [Environment.Key: String] = [:]
    for (key, value) in environment {
        if let key = Environment.Key(rawValue: key) { values[key] = value }
    }
    return .custom(values)
}

private func spawnToCompletion(
    _ executable: String, _ arguments: [String], environment: [String: String], platformOptions: PlatformOptions, output: FileDescriptor
) async throws -> TerminationStatus {
    let result = try await run(
        .path(FilePath(executable)), arguments: Arguments(arguments), environment: environmentValues(environment),
        platformOptions: platformOptions, input: .none, output: .fileDescriptor(output, closeAfterSpawningProcess: true),
        error: .combinedWithOutput)
    return result.terminationStatus
}

private func spawnSupervised<Result: Sendable>(
    _ executable: String, _ arguments: [String], environment: [String: String], platformOptions: PlatformOptions, output: FileDescriptor,
    _ body: (_ pid: Int32, _ signal: @escaping @Sendable (Int32) throws -> Void) async throws -> Result
) async throws -> (result: Result, status: TerminationStatus) {
    let configuration = Configuration(
        executable: .path(FilePath(executable)), arguments: Arguments(arguments), environment: environmentValues(environment),
        platformOptions: platformOptions)
    let outcome = try await run(
        configuration, input: .none, output: .fileDescriptor(output, closeAfterSpawningProcess: false), error: .combinedWithOutput
    ) { execution in
        let pid = Int32(execution.processIdentifier.value)
        // The handle's `send` only works while the body runs: the child is reaped after it returns.
        return try await body(pid) { signal in try execution.send(signal: Signal(rawValue: signal)) }
    }
    return (outcome.closureResult, outcome.terminationStatus)
}
