import Foundation
import NIOCore
import Phylactery

/// `phylactery-bench jsonb`, the generated fast path (`@JSONBCodable`): the same coders with
/// `usesGeneratedCoding` on and off, on the execution-history documents, alternating rounds.
extension JSONBBenchmark {
    mutating func fastPath(documents: [String: ExecutionHistory]) {
        results.merge(Self.fastPath(documents: documents)) { $1 }
    }

    /// Encode and decode MB/s through the generated code and through `Codable`, measured in
    /// alternating rounds (`Measure.paired`); ratios are medians of the per-round ratios. Needs no
    /// server (`phylactery-bench jsonb --only fastpath` runs just this).
    static func fastPath(documents: [String: ExecutionHistory]) -> [String: Double] {
        var results: [String: Double] = [:]
        // The same date representation as the codec-only section, so the figures compare.
        var fastEncoder = JSONBEncoder()
        fastEncoder.dateEncodingStrategy = .deferredToDate
        var codableEncoder = fastEncoder
        codableEncoder.usesGeneratedCoding = false
        var fastDecoder = JSONBDecoder()
        fastDecoder.dateDecodingStrategy = .deferredToDate
        var codableDecoder = fastDecoder
        codableDecoder.usesGeneratedCoding = false

        line("\nGenerated fast path (@JSONBCodable) against the Codable path of the same coders (MB/s of JSON text)")
        line("size       bytes   enc fast   enc Codable  ratio   dec fast   dec Codable  ratio")
        for label in ["64k", "1m"] {
            guard let document = documents[label] else { continue }
            let encoded = try! fastEncoder.encodeToBuffer(document)
            // Same bytes, same values, or the comparison means nothing.
            precondition(encoded == (try! codableEncoder.encodeToBuffer(document)), "the fast path wrote other bytes than Codable")
            precondition(try! fastDecoder.decode(ExecutionHistory.self, from: encoded) == document)
            precondition(try! codableDecoder.decode(ExecutionHistory.self, from: encoded) == document)
            let bytes = encoded.readableBytes

            var buffer = ByteBuffer()
            buffer.reserveCapacity(bytes + 1024)
            let encode = Measure.paired(bytesPerCall: bytes, rounds: 7, minimum: 0.2, {
                buffer.clear()
                try! fastEncoder.encode(document, into: &buffer)
            }, {
                buffer.clear()
                try! codableEncoder.encode(document, into: &buffer)
            })
            let decode = Measure.paired(bytesPerCall: bytes, rounds: 7, minimum: 0.2, {
                blackHole(try! fastDecoder.decode(ExecutionHistory.self, from: encoded))
            }, {
                blackHole(try! codableDecoder.decode(ExecutionHistory.self, from: encoded))
            })
            line(String(format: "%-6@ %10d %10.1f %12.1f %6.2fx %10.1f %12.1f %6.2fx", label as NSString, bytes,
                        encode.a, encode.b, encode.ratio, decode.a, decode.b, decode.ratio))
            results["encode_mbps_fast_\(label)"] = encode.a
            results["encode_mbps_codable_\(label)"] = encode.b
            results["encode_fast_vs_codable_\(label)"] = encode.ratio
            results["decode_mbps_fast_\(label)"] = decode.a
            results["decode_mbps_codable_\(label)"] = decode.b
            results["decode_fast_vs_codable_\(label)"] = decode.ratio
        }
        return results
    }
}
