import NIOCore
import Phylactery
import PostgresNIO
import Testing

/// `Vector`'s binary wire format and its checks, without a database.
@Suite struct VectorTests {
    @Test func binaryRoundTripIsBitExact() throws {
        let vector = try Vector([1, -2.5, 0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1])
        var buffer = ByteBuffer()
        vector.encode(into: &buffer, context: .default)
        // int16 dim, int16 unused, then big-endian float4s.
        #expect(buffer.readableBytes == 4 + 4 * 6)
        #expect(buffer.getInteger(at: 0, as: Int16.self) == 6)
        #expect(buffer.getInteger(at: 2, as: Int16.self) == 0)
        #expect(buffer.getInteger(at: 8, as: UInt32.self) == Float(-2.5).bitPattern)
        let decoded = try Vector(from: &buffer, type: PostgresDataType(16_385), format: .binary, context: .default)
        #expect(decoded == vector)
        #expect(decoded.elements.map(\.bitPattern) == vector.elements.map(\.bitPattern))
    }

    @Test func badElementsAreRefusedWithTheirPosition() {
        let nan = #expect(throws: PhylacteryError.self) { try Vector([1, 2, .nan]) }
        #expect(nan?.code == .invalidVector)
        #expect(nan?.message.contains("element 2 of 3 is NaN") == true)
        let infinite = #expect(throws: PhylacteryError.self) { try Vector([-.infinity]) }
        #expect(infinite?.code == .invalidVector)
        #expect(infinite?.message.contains("infinite") == true)
        #expect(throws: PhylacteryError.self) { try Vector([Float]()) }
        #expect(throws: PhylacteryError.self) { try Vector([Float](repeating: 0, count: Vector.maximumDimensions + 1)) }
    }

    @Test func truncatedAndMismatchedWireValuesAreRefused() {
        var short = ByteBuffer(bytes: [0, 2, 0])
        #expect(throws: PhylacteryError.self) { try Vector(from: &short, type: .null, format: .binary, context: .default) }
        var mismatched = ByteBuffer()
        mismatched.writeInteger(Int16(3))
        mismatched.writeInteger(Int16(0))
        mismatched.writeInteger(Float(1).bitPattern)
        #expect(throws: PhylacteryError.self) { try Vector(from: &mismatched, type: .null, format: .binary, context: .default) }
        var text = ByteBuffer(string: "[1,2]")
        #expect(throws: PhylacteryError.self) { try Vector(from: &text, type: .null, format: .text, context: .default) }
    }

    @Test func dimensionMismatchNamesBoth() throws {
        let vector = try Vector([1, 2, 3])
        let error = #expect(throws: PhylacteryError.self) { try vector.requireDimensions(384) }
        #expect(error?.code == .dimensionMismatch)
        #expect(error?.message.contains("384") == true && error?.message.contains("has 3") == true)
        #expect(Vector.dimensions(of: .vector(384)) == 384)
        #expect(Vector.dimensions(of: Vector.sqlType) == nil)
        #expect(vector.description == "Vector(3 dimensions)")
        #expect(vector.literal == "[1.0,2.0,3.0]")
    }
}
