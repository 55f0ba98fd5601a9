/// The integer type of a quantized tensor.
public enum QuantizedType: String, Sendable, CaseIterable, Hashable {
    /// Signed 8-bit: values in −128…127 (`Int8`).
    case int8
    /// Unsigned 8-bit: values in 0…255 (`UInt8`).
    case uint8

    /// Smallest representable value (−128 or 0).
    public var min: Int32 { self == .int8 ? -128 : 0 }
    /// Largest representable value (127 or 255).
    public var max: Int32 { self == .int8 ? 127 : 255 }
    /// `min...max`.
    public var range: ClosedRange<Int32> { min...max }
}

/// Int8 and UInt8: the element types of quantized activations and outputs.
///
/// Only `Int8` and `UInt8` are accepted by the entry points: the kernels read
/// and write these elements as bytes, so any other type adopting the protocol
/// is refused with ``QGEMMError/Code/incompatibleParameters`` before memory
/// is touched.
public protocol QuantizedScalar: FixedWidthInteger, Sendable {
    /// The quantized type this Swift type stores: ``QuantizedType/int8`` for
    /// `Int8`, ``QuantizedType/uint8`` for `UInt8`.
    static var quantizedType: QuantizedType { get }
}

extension QuantizedScalar {
    /// Throws unless `Self` is the one Swift type the C side reads for its kind.
    static func checkElementType() throws(QGEMMError) {
        let expected: Any.Type = quantizedType == .int8 ? Int8.self : UInt8.self
        guard Self.self == expected else {
            throw QGEMMError(.incompatibleParameters,
                             "\(Self.self) declares quantized type \(quantizedType.rawValue); only Int8 and UInt8 can be quantized elements")
        }
    }
}

extension Int8: QuantizedScalar {
    /// ``QuantizedType/int8``.
    public static var quantizedType: QuantizedType { .int8 }
}

extension UInt8: QuantizedScalar {
    /// ``QuantizedType/uint8``.
    public static var quantizedType: QuantizedType { .uint8 }
}

/// What a GEMM can write: requantized Int8 / UInt8, the exact Int32
/// accumulator, or Float.
///
/// Only `Int8`, `UInt8`, `Int32` and `Float` are accepted: the kernels write
/// elements of exactly those widths, so another type adopting the protocol is
/// refused with ``QGEMMError/Code/incompatibleParameters`` before anything is
/// written.
public protocol GEMMOutputScalar: Sendable {
    /// The output a GEMM writes into a buffer of this element type.
    static var gemmOutput: GEMMOutputKind { get }
}

extension GEMMOutputScalar {
    /// Throws unless `Self` is the one Swift type the C side writes for its kind.
    static func checkElementType() throws(QGEMMError) {
        let expected: Any.Type = switch gemmOutput {
        case .int8: Int8.self
        case .uint8: UInt8.self
        case .int32: Int32.self
        case .float: Float.self
        }
        guard Self.self == expected else {
            throw QGEMMError(.incompatibleParameters,
                             "\(Self.self) declares GEMM output \(gemmOutput.rawValue); only Int8, UInt8, Int32 and Float can be GEMM outputs")
        }
    }
}

/// The output a GEMM produces, chosen by the element type of the output buffer.
public enum GEMMOutputKind: String, Sendable, CaseIterable {
    /// Requantized int8 (fixed-point or float multiplier, + Z_Y, clamped).
    case int8
    /// Requantized uint8.
    case uint8
    /// The exact accumulator `Σ q_W·(q_X − Z_X) + q_b`.
    case int32
    /// `Float(acc)·(S_X·S_W[n])` (+ a Float bias).
    case float
}

extension Int8: GEMMOutputScalar {
    /// ``GEMMOutputKind/int8``: requantized int8.
    public static var gemmOutput: GEMMOutputKind { .int8 }
}

extension UInt8: GEMMOutputScalar {
    /// ``GEMMOutputKind/uint8``: requantized uint8.
    public static var gemmOutput: GEMMOutputKind { .uint8 }
}

extension Int32: GEMMOutputScalar {
    /// ``GEMMOutputKind/int32``: the exact accumulator.
    public static var gemmOutput: GEMMOutputKind { .int32 }
}

extension Float: GEMMOutputScalar {
    /// ``GEMMOutputKind/float``: the dequantized accumulator.
    public static var gemmOutput: GEMMOutputKind { .float }
}
