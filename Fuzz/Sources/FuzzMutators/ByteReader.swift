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
    /// A value of `range`: one byte for a range of up to 256 values, two for
    /// a wider one (up to 65,536 values), so that every value of it can occur.
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        let count = range.count
        precondition(count <= 65_536, "ByteReader.int draws from at most 65,536 values")
        let draw = count <= 256 ? Int(byte()) : Int(byte()) | Int(byte()) << 8
        return range.lowerBound + draw % count
    }
    public mutating func int32() -> Int32 { Int32(bitPattern: UInt32(byte()) | UInt32(byte()) << 8 | UInt32(byte()) << 16 | UInt32(byte()) << 24) }
    /// Mostly sensible scales, sometimes 0, negative, NaN, ±Inf, tiny, huge
    /// past any 8-bit grid (3e38), or huge with every 8-bit grid still
    /// within Float (1e36: 255 steps are 2.55e38).
    public mutating func scale() -> Float {
        switch byte() % 16 {
        case 0: return 0
        case 1: return -0.5
        case 2: return .nan
        case 3: return .infinity
        case 4: return 1e-38
        case 5: return 3e38
        case 6: return 1e36
        default: return Float(byte() % 200 + 1) * 0.001
        }
    }
}

extension ByteReader {
    /// An input value: a small integer times 2^exponent, or, as often as
    /// `specials` says (0: never, 1: about one value in 1,000, 2: one in 13),
    /// a value a quantizer can trip on: NaN, ±Inf, a subnormal, Float's ends
    /// or −0.
    public mutating func value(exponent: Int, specials: Int) -> Float {
        let b = byte()
        if specials > 0, b % 64 < 5, specials == 2 || byte() % 16 == 0 {
            switch b % 64 {
            case 0: return .nan
            case 1: return byte() % 2 == 0 ? .infinity : -.infinity
            case 2: return Float(bitPattern: UInt32(byte()) | UInt32(byte() % 8) << 8) // subnormal
            case 3: return byte() % 2 == 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude
            default: return -0.0
            }
        }
        return Float(sign: .plus, exponent: exponent, significand: 1) * Float(Int8(bitPattern: byte()))
    }
}

extension ByteReader {
    /// The reader of one fuzz input, or nil when it has fewer than `minimum`
    /// bytes (too few to choose a case from).
    public init?(_ data: UnsafePointer<UInt8>?, _ size: Int, minimum: Int) {
        guard let data, size >= minimum else { return nil }
        self.init(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    }
}
