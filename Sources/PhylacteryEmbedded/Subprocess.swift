import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs helper programs (pip, initdb, pg_ctl) and captures what they print.
///
/// Spawned with `posix_spawn` and reaped with `waitpid` on the child's own pid: Foundation's `Process`
/// was seen to miss the exit of `runuser` once `pg_ctl` had left a server running. Output goes to a
/// temporary file rather than a pipe so a chatty program never blocks on a full pipe, and a server
/// started by `pg_ctl` cannot hold our pipe open.
package enum Subprocess {
    /// How the program ended: the same as the asynchronous helper's.
    package typealias Outcome = ChildProcess.Outcome

    package struct SpawnError: Error, CustomStringConvertible {
        package var executable: String
        package var errno: Int32
        package var description: String { "cannot run \(executable): \(String(cString: strerror(errno)))" }
    }

    /// Runs `executable` with `arguments`, as `user` when given (through `runuser`, which needs root),
    /// and waits for it to exit.
    package static func run(
        _ executable: String,
        _ arguments: [String],
        as user: String? = nil,
        environment: [String: String]? = nil
    ) throws -> Outcome {
        let running = try spawn(executable, arguments, as: user, environment: environment)
        return try running.wait()
    }

    /// A child started by ``spawn(_:_:as:environment:)``: its output goes to a private file that can be
    /// read while it runs (progress lines), and it is reaped by ``wait()`` or ``poll()``.
    package struct Running: Sendable {
        /// The child's process id (of `runuser` when run as another user).
        package let pid: Int32
        /// The file its standard output and error go to; removed when the child is reaped.
        package let outputPath: String
        let program: String

        /// Blocks until the child exits and returns its status and everything it printed.
        package func wait() throws -> Outcome {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 {
                guard errno == EINTR else { throw SpawnError(executable: program, errno: errno) }
            }
            return self.reaped(status)
        }

        /// The outcome when the child has exited, `nil` while it runs. Never blocks.
        package func poll() throws -> Outcome? {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == 0 { return nil }
            if result == -1 {
                guard errno == EINTR else { throw SpawnError(executable: program, errno: errno) }
                return nil
            }
            return self.reaped(status)
        }

        /// What the child printed from byte `offset` on (it may still be writing).
        package func output(from offset: UInt64) -> String {
            guard let handle = FileHandle(forReadingAtPath: outputPath) else { return "" }
            defer { try? handle.close() }
            try? handle.seek(toOffset: offset)
            return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
        }

        private func reaped(_ status: Int32) -> Outcome {
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            unlink(outputPath)
            // WIFEXITED / WEXITSTATUS, spelled out (they are C macros).
            let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return Outcome(status: exitCode, output: output)
        }
    }

    /// Starts `executable` with `arguments` (as `user` when given, through `runuser`) and returns at once.
    /// The caller must reap it with ``Running/wait()`` or ``Running/poll()``.
    package static func spawn(
        _ executable: String,
        _ arguments: [String],
        as user: String? = nil,
        environment: [String: String]? = nil
    ) throws -> Running {
        let program: String
        let argv: [String]
        if let user {
            program = "/usr/sbin/runuser"
            argv = [program, "-u", user, "--", executable] + arguments
        } else {
            program = executable
            argv = [executable] + arguments
        }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let outputPath = FileManager.default.temporaryDirectory.path + "/phylactery-\(UUID().uuidString).out"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var pid: Int32 = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var spawned = posix_spawn(&pid, program, &actions, nil, cArgs, cEnv)
        // A program written a moment ago (a freshly unpacked server) can be busy for a moment: a fork
        // by another thread of this process holds the writer's descriptor until its child execs.
        // That clears within milliseconds, so try again for up to a second before giving up.
        var busy = 0
        while spawned == ETXTBSY, busy < 100 {
            usleep(10_000)
            busy += 1
            spawned = posix_spawn(&pid, program, &actions, nil, cArgs, cEnv)
        }
        guard spawned == 0 else {
            unlink(outputPath)
            throw SpawnError(executable: program, errno: spawned)
        }
        return Running(pid: pid, outputPath: outputPath, program: program)
    }

    /// The absolute path of `name` found on `PATH`, or `nil`.
    package static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
