import Foundation
import NIOCore
import Phylactery

/// Instructions per byte of the codec under callgrind: a count that does not depend on what else
/// the machine is doing, so a regression shows even when the MB/s figures are noisy.
///
/// The suite writes each document's JSON to a file and runs this same executable as
/// `phylactery-bench codec-kernel --input FILE --op decode --count N` under
/// `valgrind --tool=callgrind`, once with N and once with 2N operations. The kernel loads the
/// document (reads the file; for encode, decodes it once), then performs the operation N times.
/// Everything but the N extra operations is the same in both runs (process start, runtime set-up,
/// loading), so the difference of the two totals divided by N × the document's bytes is the cost
/// of one byte of encoding or decoding.
extension JSONBBenchmark {
    /// The coder configurations measured, keyed by the suffix of their RESULT keys. The default is
    /// what Phylactery uses unless told otherwise, with the suite's date representation (so the
    /// counts stand beside the suite's MB/s figures). A second configuration is one more entry here.
    /// `default` takes `@JSONBCodable`'s generated path (``ExecutionHistory`` has it); `codable`
    /// forces the `Codable` path of the same coders.
    static let kernelVariants: [(name: String, suffix: String, configure: @Sendable (inout JSONBEncoder, inout JSONBDecoder) -> Void)] = [
        ("default", "", { _, _ in }),
        ("codable", "_codable", { encoder, decoder in
            encoder.usesGeneratedCoding = false
            decoder.usesGeneratedCoding = false
        }),
    ]

    /// The MB/s keys measured by the other sections for the same coders as a variant's suffix.
    static func speedKey(_ op: String, _ label: String, suffix: String) -> String {
        suffix == "_codable" ? "\(op)_mbps_ours_\(label)" : "\(op)_mbps_fast_\(label)"
    }

    /// The encoder and decoder of a variant: the suite's coders, then the variant's changes.
    static func kernelCoders(variant name: String) -> (JSONBEncoder, JSONBDecoder)? {
        guard let variant = kernelVariants.first(where: { $0.name == name }) else { return nil }
        var encoder = Self.encoder
        var decoder = Self.decoder
        variant.configure(&encoder, &decoder)
        return (encoder, decoder)
    }

    /// Operations per run for a document of `bytes`: about 1 MB of JSON, at least 2 operations (the
    /// counts are exact, so a small N is enough; callgrind runs some 50 times slower than the CPU).
    static func kernelCount(bytes: Int) -> Int { max(2, (1 << 20) / max(1, bytes)) }

    /// `encode_instructions_per_byte_<size>` and `decode_instructions_per_byte_<size>` for the
    /// 64 KB and 1 MB documents, beside the MB/s figures of the same documents.
    mutating func instructions(documents: [String: ExecutionHistory]) throws {
        line("\nInstructions per byte of JSON under callgrind (2N − N operations; ÷ N × bytes)")
        guard let valgrind = Self.valgrind() else {
            line("""
                NOTE: valgrind was not found on PATH, so the instruction counts are not measured and their \
                RESULT keys are left out. Install it (Debian: apt-get install valgrind) to measure them.
                """)
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phylactery-bench-callgrind-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // valgrind 3.19 cannot read the DWARF 5 debug information Swift 6 writes and gives up, so the
        // kernel runs from a copy of this executable without it (same code, same instructions).
        let executable = directory.appendingPathComponent("phylactery-bench").path
        guard let strip = Self.onPath("strip") else {
            line("NOTE: strip (binutils) was not found on PATH; valgrind cannot read this executable's debug information, so the instruction counts are left out.")
            return
        }
        try Self.runTool(strip, ["--strip-debug", "-o", executable, FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")])
        line("size       bytes   N   enc instr/byte   dec instr/byte   enc MB/s   dec MB/s")
        for label in ["64k", "1m"] {
            let input = directory.appendingPathComponent("\(label).json")
            let text = try ours.encodeToBuffer(documents[label]!)
            try Data(text.readableBytesView).write(to: input)
            let bytes = text.readableBytes
            let count = Self.kernelCount(bytes: bytes)
            for (name, suffix, _) in Self.kernelVariants {
                var perByte: [String: Double] = [:]
                for op in ["encode", "decode"] {
                    func total(_ n: Int) throws -> Int {
                        try Self.callgrindTotal(
                            valgrind: valgrind, executable: executable, output: directory.appendingPathComponent("\(label)-\(op)\(suffix)-\(n).out"),
                            arguments: ["codec-kernel", "--input", input.path, "--op", op, "--count", "\(n)", "--variant", name])
                    }
                    let once = try total(count)
                    let twice = try total(2 * count)
                    let value = Double(twice - once) / Double(count * bytes)
                    perByte[op] = value
                    results["\(op)_instructions_per_byte_\(label)\(suffix)"] = value
                }
                line(String(format: "%-6@ %10d %3d %16.1f %16.1f %10.1f %10.1f", (label + suffix) as NSString, bytes, count,
                            perByte["encode"]!, perByte["decode"]!,
                            results[Self.speedKey("encode", label, suffix: suffix)] ?? .nan, results[Self.speedKey("decode", label, suffix: suffix)] ?? .nan))
            }
        }
    }

    /// The path of `valgrind` on PATH, or `nil`.
    static func valgrind() -> String? { onPath("valgrind") }

    /// The path of the executable `name` on PATH, or `nil`.
    static func onPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `tool arguments`, throwing with its output when it fails.
    static func runTool(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let log = Pipe()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        let messages = log.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PhylacteryError(.invalidArgument, "\(tool) \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)): \(String(decoding: messages, as: UTF8.self).suffix(3000))")
        }
    }

    /// Runs `executable arguments` under callgrind and returns the total instruction count.
    static func callgrindTotal(valgrind: String, executable: String, output: URL, arguments: [String]) throws -> Int {
        // Swift seeds its hash functions per process; fixed seeds make the two runs hash alike.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_DETERMINISTIC_HASHING"] = "1"
        try runTool(valgrind, ["--tool=callgrind", "--callgrind-out-file=\(output.path)", executable] + arguments, environment: environment)
        let text = try String(contentsOf: output, encoding: .utf8)
        // The last `summary:` or `totals:` line holds the event counts; Ir (instructions) is the first.
        for line in text.split(separator: "\n").reversed() where line.hasPrefix("summary:") || line.hasPrefix("totals:") {
            if let first = line.split(separator: " ").dropFirst().first, let value = Int(first) { return value }
        }
        throw PhylacteryError(.invalidArgument, "\(output.path) has no summary: or totals: line")
    }

    /// `phylactery-bench codec-kernel`: loads the JSON document in `input`, then encodes or decodes
    /// it `count` times with the coders of `variant` (hidden; what the suite runs under callgrind).
    static func runKernel(input: String, op: String, count: Int, variant: String) throws {
        guard let (encoder, decoder) = kernelCoders(variant: variant) else {
            throw PhylacteryError(.invalidArgument, "unknown --variant '\(variant)'; known: \(kernelVariants.map(\.name).joined(separator: ", "))")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: input))
        let text = ByteBuffer(bytes: data)
        switch op {
        case "decode":
            for _ in 0..<count {
                blackHole(try decoder.decode(ExecutionHistory.self, from: text))
            }
        case "encode":
            let document = try decoder.decode(ExecutionHistory.self, from: text)
            var buffer = ByteBuffer()
            buffer.reserveCapacity(text.readableBytes + 4096)
            for _ in 0..<count {
                buffer.clear()
                try encoder.encode(document, into: &buffer)
            }
            blackHole(buffer)
        default:
            throw PhylacteryError(.invalidArgument, "unknown --op '\(op)'; known: encode, decode")
        }
    }
}
