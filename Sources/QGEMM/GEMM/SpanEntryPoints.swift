// Span entry points: the buffer calls for safe code. A `Span` input and an
// `inout MutableSpan` output cannot overlap (exclusive access rules it out),
// so these can never throw `.aliasing`, and no `withUnsafe…` is needed. The
// unsafe-buffer forms stay for C interop.
//
// Span needs a Swift 6.2 compiler; on Apple platforms its types back-deploy
// to the OS versions below (the availability the Swift project recommends).

#if compiler(>=6.2)
@available(macOS 10.14.4, iOS 12.2, watchOS 5.2, tvOS 12.2, visionOS 1.0, *)
extension QuantizedLinear {
    /// ``callAsFunction(_:rows:into:workspace:kernel:threads:)-(UnsafeBufferPointer<Float>,_,_,_,_,_)`` on spans: Float
    /// X [rows×K] in, Float Y [rows×N] out, scratch in a caller-owned workspace
    /// (no heap allocation once warm).
    ///
    /// - Throws: as the buffer form, except `.aliasing`, which cannot happen.
    public func callAsFunction(_ x: Span<Float>, rows: Int, into y: inout MutableSpan<Float>, workspace: inout Workspace,
                               kernel: KernelPath? = nil, threads: Int? = nil) throws {
        try x.withUnsafeBufferPointer { xb in
            try y.withUnsafeMutableBufferPointer { yb in
                try self(xb, rows: rows, into: yb, workspace: &workspace, kernel: kernel, threads: threads)
            }
        }
    }
}

@available(macOS 10.14.4, iOS 12.2, watchOS 5.2, tvOS 12.2, visionOS 1.0, *)
extension Int4Weights {
    /// ``callAsFunction(_:rows:into:workspace:kernel:threads:)-(UnsafeBufferPointer<Float>,_,_,_,_,_)`` on spans:
    /// Float X [rows×K] in, Float Y [rows×N] out, scratch in a caller-owned
    /// workspace (no heap allocation once warm).
    ///
    /// - Throws: as the buffer form, except `.aliasing`, which cannot happen.
    public func callAsFunction(_ x: Span<Float>, rows: Int, into y: inout MutableSpan<Float>, workspace: inout Workspace,
                               kernel: KernelPath? = nil, threads: Int? = nil) throws(QGEMMError) {
        try x.withUnsafeBufferPointer { (xb) throws(QGEMMError) in
            try y.withUnsafeMutableBufferPointer { (yb) throws(QGEMMError) in
                try self(xb, rows: rows, into: yb, workspace: &workspace, kernel: kernel, threads: threads)
            }
        }
    }
}

@available(macOS 10.14.4, iOS 12.2, watchOS 5.2, tvOS 12.2, visionOS 1.0, *)
extension PackedWeights {
    /// ``gemm(_:rows:rowStride:input:into:outputRowStride:kernel:threads:)`` on spans
    /// (rows packed without gaps: strides K and N).
    public func gemm<X: QuantizedScalar, Y: GEMMOutputScalar>(
        _ x: Span<X>, rows: Int, input: QuantizationParameters? = nil, into y: inout MutableSpan<Y>,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws {
        try x.withUnsafeBufferPointer { xb in
            try y.withUnsafeMutableBufferPointer { yb in
                try gemm(xb, rows: rows, input: input, into: yb, kernel: kernel, threads: threads)
            }
        }
    }

    /// ``gemmDynamic(_:rows:rowStride:rowScales:rowZeroPoints:into:outputRowStride:kernel:threads:)``
    /// on spans (rows packed without gaps).
    public func gemmDynamic<X: QuantizedScalar>(
        _ x: Span<X>, rows: Int, rowScales: Span<Float>, rowZeroPoints: Span<Int32>, into y: inout MutableSpan<Float>,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws {
        try x.withUnsafeBufferPointer { xb in
            try rowScales.withUnsafeBufferPointer { s in
                try rowZeroPoints.withUnsafeBufferPointer { z in
                    try y.withUnsafeMutableBufferPointer { yb in
                        try gemmDynamic(xb, rows: rows, rowScales: s, rowZeroPoints: z, into: yb, kernel: kernel, threads: threads)
                    }
                }
            }
        }
    }
}

@available(macOS 10.14.4, iOS 12.2, watchOS 5.2, tvOS 12.2, visionOS 1.0, *)
extension ActivationProduct {
    /// ``multiply(_:rows:inputChannels:rowStride:by:outputChannels:layout:bRowStride:into:outputRowStride:kernel:threads:)-(UnsafeBufferPointer<Float>,_,_,_,UnsafeBufferPointer<Float>,_,_,_,_,_,_,_)``
    /// on spans, strides and all (attention reads one head out of wider rows).
    ///
    /// - Throws: as the buffer form, except `.aliasing`, which cannot happen.
    public mutating func multiply(
        _ a: Span<Float>, rows: Int, inputChannels: Int, rowStride: Int? = nil,
        by b: Span<Float>, outputChannels: Int, layout: PackedWeights.Layout, bRowStride: Int? = nil,
        into y: inout MutableSpan<Float>, outputRowStride: Int? = nil,
        kernel: KernelPath? = nil, threads: Int? = nil
    ) throws {
        try a.withUnsafeBufferPointer { ab in
            try b.withUnsafeBufferPointer { bb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try multiply(ab, rows: rows, inputChannels: inputChannels, rowStride: rowStride, by: bb,
                                 outputChannels: outputChannels, layout: layout, bRowStride: bRowStride, into: yb,
                                 outputRowStride: outputRowStride, kernel: kernel, threads: threads)
                }
            }
        }
    }
}

/// ``quantize(_:into:parameters:)-(UnsafeBufferPointer<Float>,_,_)`` on spans.
@available(macOS 10.14.4, iOS 12.2, watchOS 5.2, tvOS 12.2, visionOS 1.0, *)
public func quantize<Q: QuantizedScalar>(_ values: Span<Float>, into output: inout MutableSpan<Q>,
                                         parameters: QuantizationParameters) throws {
    try values.withUnsafeBufferPointer { v in
        try output.withUnsafeMutableBufferPointer { o in try quantize(v, into: o, parameters: parameters) }
    }
}

/// ``dequantize(_:into:parameters:)-(UnsafeBufferPointer<Q>,_,_)`` on spans.
@available(macOS 10.14.4, iOS 12.2, watchOS 5.2, tvOS 12.2, visionOS 1.0, *)
public func dequantize<Q: QuantizedScalar>(_ values: Span<Q>, into output: inout MutableSpan<Float>,
                                           parameters: QuantizationParameters) throws {
    try values.withUnsafeBufferPointer { v in
        try output.withUnsafeMutableBufferPointer { o in try dequantize(v, into: o, parameters: parameters) }
    }
}
#endif
