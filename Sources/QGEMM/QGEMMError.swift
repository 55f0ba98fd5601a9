import Foundation

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
///
/// Two errors are equal when their codes are: `==` does not compare the
/// message, which is for people and may change wording between releases.
///
/// A call with several faults reports the first in one order, the same for
/// every GEMM, ``ActivationProduct``, ``Int4Weights`` and
/// ``QuantizedLinear`` mode (a generic GEMM call first refuses an element
/// type of its own adopting ``QuantizedScalar`` or ``GEMMOutputScalar``, with
/// ``Code/incompatibleParameters``, before any of these):
/// 1. the shape, strides and buffer sizes;
/// 2. an output that overlaps an input;
/// 3. the kernel path, then the thread count (these two at M = 0 too);
/// 4. whether the layer's mode and the quantization parameters fit the call;
/// 5. the values, operand by operand as the call reads them: in each, the
///    first value that cannot be quantized, named by its row and column
///    ("input value [1, 2] is nan; it cannot be quantized"), then a row or
///    channel whose range is too wide for a Float grid (it would end past
///    Float's largest value), and for Float output, a scale product
///    `S_X·S_W` that overflows Float (a dynamic input's, row by row).
///
/// Nothing is written to the output when a call throws, except where a
/// thread's scratch memory cannot be allocated: the threads that had theirs
/// may have written their share (see
/// ``PackedWeights/gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)``).
public struct QGEMMError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The kind of problem. The raw value is the case name, a stable
    /// identifier; ``summary`` is the words for people.
    public enum Code: String, Sendable, CaseIterable, Codable {
        /// A dimension is zero, negative or inconsistent with another.
        case invalidShape
        /// A buffer holds fewer elements than its shape and stride need.
        case bufferTooSmall
        /// A row stride (leading dimension) is smaller than a row.
        case invalidStride
        /// A scale is not finite, not positive, or a multiplier is out of range.
        case invalidScale
        /// A zero point is outside its type's range.
        case invalidZeroPoint
        /// A value cannot be quantized (NaN) or a range is unusable.
        case invalidValue
        /// The weights (and bias) could overflow the int32 accumulator.
        case accumulatorOverflow
        /// The kernel path does not exist or this CPU cannot run it.
        case unsupportedKernel
        /// Types or parameters that do not fit together (int8 vs uint8, missing parameters).
        case incompatibleParameters
        /// An output buffer overlaps an input buffer.
        case aliasing
        /// Any other argument out of its documented range.
        case invalidArgument
        /// A file could not be read or written, or is malformed.
        case file
    }

    /// What kind of problem it was, for programs.
    public let code: Code
    /// What was wrong and with which value, for people.
    public let message: String

    /// An error of kind `code`, explained by `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// "<summary>: <message>", e.g. "invalid scale: scale must be finite and > 0, got 0.0".
    public var description: String { "\(code.summary): \(message)" }

    /// The same text as ``description`` (what `localizedDescription` shows).
    public var errorDescription: String? { description }

    /// Equal codes; the messages are not compared.
    public static func == (a: QGEMMError, b: QGEMMError) -> Bool { a.code == b.code }
}

extension QGEMMError.Code {
    /// The kind in words, as errors print it: "invalid shape", "buffer too small", ….
    public var summary: String {
        switch self {
        case .invalidShape: "invalid shape"
        case .bufferTooSmall: "buffer too small"
        case .invalidStride: "invalid stride"
        case .invalidScale: "invalid scale"
        case .invalidZeroPoint: "invalid zero point"
        case .invalidValue: "invalid value"
        case .accumulatorOverflow: "accumulator overflow"
        case .unsupportedKernel: "unsupported kernel"
        case .incompatibleParameters: "incompatible parameters"
        case .aliasing: "aliasing"
        case .invalidArgument: "invalid argument"
        case .file: "file"
        }
    }
}

extension QGEMMError {
    /// The same error with the place it arose in ("input row [3]", a file's
    /// path) put before its message, as every message that names a place
    /// reads: "place: message".
    func placed(_ place: String) -> QGEMMError {
        QGEMMError(code, "\(place): \(message)")
    }
}
