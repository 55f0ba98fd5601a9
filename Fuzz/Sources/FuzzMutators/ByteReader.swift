/// Reads a fuzz input as a stream of choices: bytes, numbers in a range,
/// and scales that are mostly sensible (the input repeats when it runs out).
public struct ByteReader {
    public init(bytes: [UInt8]) { self.bytes = bytes }
    let bytes: [UInt8]
    var index = 0
    public mutating func byte() -> UInt8 {
        guard !bytes.isEmpty else { return 0 }
        defer { index += 1 }
        return bytes[index % bytes.count]
    }
    public mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(byte()) % (range.count) }
    public mutating func int32() -> Int32 { Int32(bitPattern: UInt32(byte()) | UInt32(byte()) << 8 | UInt32(byte()) << 16 | UInt32(byte()) << 24) }
    /// Mostly sensible scales, sometimes 0, negative, NaN, ±Inf or tiny.
    public mutating func scale() -> Float {
        switch byte() % 16 {
        case 0: return 0
        case 1: return -0.5
        case 2: return .nan
        case 3: return .infinity
        case 4: return 1e-38
        case 5: return 3e38
        default: return Float(byte() % 200 + 1) * 0.001
        }
    }
}
