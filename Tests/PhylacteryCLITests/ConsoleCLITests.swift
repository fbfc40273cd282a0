import Foundation
import Testing

/// `phylactery console` refuses addresses beyond loopback without `--listen` and TLS, in one line
/// naming the fix, before anything connects.
@Suite struct ConsoleCLITests {
    static let nowhere = ["PHYLACTERY_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"]

    @Test func listenWithoutTLSIsRefused() throws {
        let run = try PhylacteryProcess.run(["console", "--listen", "0.0.0.0"], environment: Self.nowhere)
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output == "error: --listen serves the console beyond this machine, which needs HTTPS: add --tls-cert FILE and --tls-key FILE (PEM)\n")
    }

    @Test func aCertificateNeedsItsKey() throws {
        let run = try PhylacteryProcess.run(["console", "--tls-cert", "/tmp/cert.pem"], environment: Self.nowhere)
        #expect(run.status == 64, "\(run.output)")
        #expect(run.output.contains("--tls-cert and --tls-key go together."))
    }

    @Test func unreadableCertificatesAreRefused() throws {
        let run = try PhylacteryProcess.run(["console", "--listen", "0.0.0.0", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem", "--port", "18797"],
                                            environment: Self.nowhere)
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("cannot read the TLS certificate /nonexistent/c.pem"))
    }
}
