/// The one error type of QGEMM. Every invalid input to the public API is
/// reported with one of these, never with a trap.
///
/// `code` says what kind of problem it was, for programs; `message` says
/// what was wrong and with which value, for people.
///
/// ```swift
/// do {
///     _ = try QuantizationParameters(type: .int8, scale: 0, zeroPoint: 0)
/// } catch let error as QGEMMError where error.code == .invalidScale {
///     print(error)   // invalid scale: scale must be finite and > 0, got 0.0
/// }
/// ```
public struct QGEMMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, CaseIterable {
        /// A dimension is zero, negative or inconsistent with another.
        case invalidShape = "invalid shape"
        /// A buffer holds fewer elements than its shape and stride need.
        case bufferTooSmall = "buffer too small"
        /// A row stride (leading dimension) is smaller than a row.
        case invalidStride = "invalid stride"
        /// A scale is not finite, not positive, or a multiplier is out of range.
        case invalidScale = "invalid scale"
        /// A zero point is outside its type's range.
        case invalidZeroPoint = "invalid zero point"
        /// A value cannot be quantized (NaN) or a range is unusable.
        case invalidValue = "invalid value"
        /// The weights (and bias) could overflow the int32 accumulator.
        case accumulatorOverflow = "accumulator overflow"
        /// The kernel path does not exist or this CPU cannot run it.
        case unsupportedKernel = "unsupported kernel"
        /// Types or parameters that do not fit together (int8 vs uint8, missing parameters).
        case incompatibleParameters = "incompatible parameters"
        /// An output buffer overlaps an input buffer.
        case aliasing = "aliasing"
        /// Any other argument out of its documented range.
        case invalidArgument = "invalid argument"
        /// A file could not be read or written, or is malformed.
        case file = "file"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
