import Testing
@testable import QGEMM

/// Every bad input to the public API is refused with the right error code.
@Suite("Bad input")
struct BadInputTests {
    let xp = try! QuantizationParameters(type: .int8, scale: 0.1, zeroPoint: 3)
    let yp = try! QuantizationParameters(type: .int8, scale: 0.5, zeroPoint: -2)

    func packed(n: Int = 4, k: Int = 6) throws -> PackedWeights {
        try PackedWeights(weights: [Int8](repeating: 1, count: n * k), outputChannels: n, inputChannels: k,
                          scales: .perTensor(0.01), input: xp, output: yp)
    }

    @Test func weightShapesAndScales() throws {
        #expect(errorCode { _ = try PackedWeights(weights: [1, 2, 3], outputChannels: 2, inputChannels: 2, scales: .perTensor(1)) } == .invalidShape)
        #expect(errorCode { _ = try PackedWeights(weights: [], outputChannels: 0, inputChannels: 2, scales: .perTensor(1)) } == .invalidShape)
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: -1, scales: .perTensor(1)) } == .invalidShape)
        #expect(errorCode { _ = try PackedWeights(weights: [1, 2], outputChannels: .max, inputChannels: 2, scales: .perTensor(1)) } == .invalidShape)
        for s: Float in [0, -1, .nan, .infinity] {
            #expect(errorCode { _ = try PackedWeights(weights: [1, 2], outputChannels: 1, inputChannels: 2, scales: .perTensor(s)) } == .invalidScale)
            #expect(errorCode { _ = try PackedWeights(weights: [1, 2], outputChannels: 2, inputChannels: 1, scales: .perChannel([1, s])) } == .invalidScale)
        }
        #expect(errorCode { _ = try PackedWeights(weights: [1, 2], outputChannels: 2, inputChannels: 1, scales: .perChannel([1])) } == .invalidShape)
        #expect(errorCode { _ = try PackedWeights(weights: [1, 2], outputChannels: 2, inputChannels: 1, scales: .perTensor(1), bias: .int32([1])) } == .invalidShape)
        #expect(errorCode { _ = try PackedWeights(quantizing: [1, .nan], outputChannels: 1, inputChannels: 2) } == .invalidValue)
        #expect(errorCode { _ = try PackedWeights(quantizing: [1, .infinity], outputChannels: 1, inputChannels: 2) } == .invalidValue)
        #expect(errorCode { _ = try PackedWeights(quantizing: [1, 2], outputChannels: 1, inputChannels: 2, bias: .float([.nan])) } == .invalidValue)
        // Output parameters without input ones; a clamp without output parameters or outside the type.
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1), output: yp) } == .incompatibleParameters)
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1), clamp: 0...5) } == .incompatibleParameters)
        let u8 = try QuantizationParameters(type: .uint8, scale: 1, zeroPoint: 0)
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1), input: xp, output: u8, clamp: -1...5) } == .invalidArgument)
        // A float multiplier that overflows Float.
        let hugeX = try QuantizationParameters(type: .int8, scale: 1e30, zeroPoint: 0)
        let tinyY = try QuantizationParameters(type: .int8, scale: 1e-30, zeroPoint: 0)
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1e10), input: hugeX, output: tinyY) } == .invalidScale)
        // A Float bias too large for int32 at scale S_X·S_W.
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1e-3), bias: .float([1e9]), input: xp) } == .accumulatorOverflow)
    }

    @Test func gemmShapesBuffersAndStrides() throws {
        let p = try packed()
        let x = [Int8](repeating: 1, count: 3 * 6)
        try x.withUnsafeBufferPointer { xb in
            var y = [Int8](repeating: 0, count: 3 * 4)
            try y.withUnsafeMutableBufferPointer { yb in
                #expect(errorCode { try p.gemm(xb, rows: -1, into: yb) } == .invalidShape)
                #expect(errorCode { try p.gemm(xb, rows: 4, into: yb) } == .bufferTooSmall)
                #expect(errorCode { try p.gemm(xb, rows: 3, rowStride: 5, into: yb) } == .invalidStride)
                #expect(errorCode { try p.gemm(xb, rows: 3, into: yb, outputRowStride: 3) } == .invalidStride)
                #expect(errorCode { try p.gemm(xb, rows: 3, rowStride: 7, into: yb) } == .bufferTooSmall)
                #expect(errorCode { try p.gemm(xb, rows: 3, into: yb, outputRowStride: 5) } == .bufferTooSmall)
                #expect(errorCode { try p.gemm(xb, rows: 2, rowStride: .max, into: yb) } == .invalidShape)
                #expect(errorCode { try p.gemm(xb, rows: 3, into: yb, threads: 0) } == .invalidArgument)
                for path in KernelPath.allCases where !path.isSupported {
                    #expect(errorCode { try p.gemm(xb, rows: 3, into: yb, kernel: path) } == .unsupportedKernel)
                }
                // M = 0 is accepted and writes nothing.
                #expect(errorCode { try p.gemm(xb, rows: 0, into: yb) } == nil)
                // Mismatched per-call input parameters.
                let other = try QuantizationParameters(type: .int8, scale: 0.2, zeroPoint: 3)
                #expect(errorCode { try p.gemm(xb, rows: 3, input: other, into: yb) } == .incompatibleParameters)
            }
            var yu = [UInt8](repeating: 0, count: 12)
            yu.withUnsafeMutableBufferPointer { yb in
                let code: QGEMMError.Code? = errorCode { () throws -> Void in try p.gemm(xb, rows: 3, rowStride: 6, input: nil, into: yb, outputRowStride: 4, kernel: nil, threads: nil) }
                #expect(code == .incompatibleParameters)
            }
        }
        // uint8 activations against int8 input parameters.
        #expect(errorCode { let _: [Int32] = try p.gemm([UInt8](repeating: 0, count: 6), rows: 1) } == .incompatibleParameters)
        // No input parameters anywhere.
        let bare = try PackedWeights(weights: [1, 2], outputChannels: 1, inputChannels: 2, scales: .perTensor(1))
        #expect(errorCode { let _: [Int32] = try bare.gemm([Int8](repeating: 0, count: 2), rows: 1) } == .incompatibleParameters)
        #expect(errorCode { let _: [Int8] = try bare.gemm([Int8](repeating: 0, count: 2), rows: 1, input: xp) } == .incompatibleParameters)
        // Per-call parameters work for int32 / float outputs.
        let acc: [Int32] = try bare.gemm([Int8](arrayLiteral: 4, 5), rows: 1, input: xp)
        let want: [Int32] = [1 * (4 - 3) + 2 * (5 - 3)]
        #expect(acc == want)
    }

    @Test func aliasingIsRefused() throws {
        let p = try PackedWeights(weights: [Int8](repeating: 1, count: 8), outputChannels: 2, inputChannels: 4,
                                  scales: .perTensor(0.01), input: xp, output: yp)
        let raw = UnsafeMutableBufferPointer<Int8>.allocate(capacity: 16)
        defer { raw.deallocate() }
        raw.initialize(repeating: 1)
        let x = UnsafeBufferPointer(rebasing: raw[0..<8])
        let overlapping = UnsafeMutableBufferPointer(rebasing: raw[6..<10])
        #expect(errorCode { try p.gemm(x, rows: 2, into: overlapping) } == .aliasing)
        let separate = UnsafeMutableBufferPointer(rebasing: raw[8..<12])
        #expect(errorCode { try p.gemm(x, rows: 2, into: separate) } == nil)
    }

    @Test func dynamicArguments() throws {
        let p = try PackedWeights(quantizing: [0.5, -0.25, 1, 0], outputChannels: 2, inputChannels: 2)
        let x: [UInt8] = [1, 2, 3, 4]
        #expect(errorCode { _ = try p.gemmDynamic(x, rows: 2, rowScales: [0.1], rowZeroPoints: [0, 0]) } == .bufferTooSmall)
        #expect(errorCode { _ = try p.gemmDynamic(x, rows: 2, rowScales: [0.1, 0], rowZeroPoints: [0, 0]) } == .invalidScale)
        #expect(errorCode { _ = try p.gemmDynamic(x, rows: 2, rowScales: [0.1, .nan], rowZeroPoints: [0, 0]) } == .invalidScale)
        #expect(errorCode { _ = try p.gemmDynamic(x, rows: 2, rowScales: [0.1, 0.1], rowZeroPoints: [0, 256]) } == .invalidZeroPoint)
        let withIntBias = try PackedWeights(quantizing: [0.5, -0.25, 1, 0], outputChannels: 2, inputChannels: 2, bias: .float([1, 2]), input: xp)
        #expect(errorCode { _ = try withIntBias.gemmDynamic(x, rows: 2, rowScales: [0.1, 0.1], rowZeroPoints: [0, 0]) } == nil)
        let intBias = try PackedWeights(weights: [1, 2, 3, 4], outputChannels: 2, inputChannels: 2, scales: .perTensor(1), bias: .int32([5, 6]))
        #expect(errorCode { _ = try intBias.gemmDynamic(x, rows: 2, rowScales: [0.1, 0.1], rowZeroPoints: [0, 0]) } == .incompatibleParameters)
    }

    @Test func unknownKernelNames() {
        #expect(errorCode { _ = try KernelPath.resolve("avx9000") } == .unsupportedKernel)
        #expect((try? KernelPath.resolve("reference")) == .reference)
    }
}
