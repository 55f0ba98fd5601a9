// Codable conformances of the values a user saves (calibrated parameters,
// multipliers, modes, paths). Decoding goes through the validating
// initialisers, so a value the library would not build (a scale of 0, a zero
// point outside its type, an observer's range out of order) is refused with
// a QGEMMError instead of producing an instance; JSON without the value's
// shape (a missing key, a number outside its Swift type, a name this build
// does not know) is refused by the decoder itself, with its DecodingError.

extension QuantizedType: Codable {}
extension RoundingMode: Codable {}

/// Encoded as its name, e.g. `"avx512vnni"`; decoding a name this build does
/// not have fails (``KernelPath/init(rawValue:)`` returns nil).
extension KernelPath: Codable {}

extension QuantizationParameters: Codable {
    private enum CodingKeys: String, CodingKey { case type, scale, zeroPoint }

    /// Decodes and validates (``init(type:scale:zeroPoint:)``), the scale
    /// read to nearest whatever the caller's rounding mode.
    public init(from decoder: any Decoder) throws {
        self = try withRoundingToNearest { try Self(decoding: decoder) }
    }

    private init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(type: try c.decode(QuantizedType.self, forKey: .type), scale: try c.decode(Float.self, forKey: .scale),
                      zeroPoint: try c.decode(Int32.self, forKey: .zeroPoint))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(scale, forKey: .scale)
        try c.encode(zeroPoint, forKey: .zeroPoint)
    }
}

extension FixedPointMultiplier: Codable {
    private enum CodingKeys: String, CodingKey { case multiplier, shift }

    /// Decodes and validates (``init(multiplier:shift:)``).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(multiplier: try c.decode(Int32.self, forKey: .multiplier), shift: try c.decode(Int32.self, forKey: .shift))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(multiplier, forKey: .multiplier)
        try c.encode(shift, forKey: .shift)
    }
}
