import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PhylacteryEmbedded
import PhylacteryTestSupport

/// A chromedriver process started by the test on a free port (it picks one and says which), and stopped
/// by it: the WebDriver endpoint a ``WebDriverSession`` talks to.
struct Chromedriver: Sendable {
    let process: Subprocess.Running
    let transport: WebDriverTransport

    private struct Status: Decodable {
        let ready: Bool
    }

    /// Starts `executable` listening on 127.0.0.1 only and waits until it reports ready.
    static func start(_ executable: String) async throws -> Chromedriver {
        // `--port=0` lets the driver bind a free port itself (no race with another test picking the
        // same one); it prints "ChromeDriver was started successfully on port N."
        // Without --allowed-ips it accepts local connections only.
        let process = try Subprocess.spawn(executable, ["--port=0"])
        var port: Int?
        do {
            try await eventually("chromedriver to say which port it listens on", timeout: .seconds(30)) {
                if let outcome = try process.poll() {
                    throw WebDriverError(.driverDidNotStart, "chromedriver exited with status \(outcome.status) before listening: \(outcome.output)")
                }
                port = Self.port(in: process.output(from: 0))
                return port != nil
            }
        } catch let timedOut as ConditionTimedOut {
            let output = process.output(from: 0)
            await Self.stop(process)
            throw WebDriverError(.driverDidNotStart, "\(timedOut); it printed: \(output)")
        }
        let driver = Chromedriver(process: process, transport: WebDriverTransport(host: "127.0.0.1", port: port!))
        var lastAnswer = "nothing yet"
        do {
            try await eventually("chromedriver on port \(port!) to report ready", timeout: .seconds(30)) {
                do {
                    let status: Status = try await driver.transport.get("status")
                    lastAnswer = "ready: \(status.ready)"
                    return status.ready
                } catch {
                    lastAnswer = "\(error)"
                    return false
                }
            }
        } catch {
            await driver.stop()
            throw WebDriverError(.driverDidNotStart, "\(error); its last answer: \(lastAnswer)")
        }
        return driver
    }

    /// The port in chromedriver's start line, once it has printed it.
    static func port(in output: String) -> Int? {
        let marker = "started successfully on port "
        guard let range = output.range(of: marker) else { return nil }
        let digits = output[range.upperBound...].prefix { $0.isNumber }
        return Int(digits)
    }

    /// Stops the driver (SIGTERM, then SIGKILL if it has not exited within ten seconds) and reaps it.
    func stop() async {
        await Self.stop(self.process)
    }

    private static func stop(_ process: Subprocess.Running) async {
        kill(process.pid, SIGTERM)
        do {
            try await eventually("chromedriver to exit", timeout: .seconds(10)) { try process.poll() != nil }
        } catch {
            kill(process.pid, SIGKILL)
            _ = try? process.wait()
        }
    }
}
