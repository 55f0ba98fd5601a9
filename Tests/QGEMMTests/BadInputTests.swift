import Testing
@testable import QGEMM
import QGEMMBaseline

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
        // A float multiplier that overflows Float: refused where .float rounding would use it.
        let hugeX = try QuantizationParameters(type: .int8, scale: 1e30, zeroPoint: 0)
        let tinyY = try QuantizationParameters(type: .int8, scale: 1e-30, zeroPoint: 0)
        #expect(errorCode { _ = try PackedWeights(weights: [1], outputChannels: 1, inputChannels: 1, scales: .perTensor(1e10), input: hugeX, output: tinyY,
                                                  rounding: .float) } == .invalidScale)
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

    /// quantize and dequantize on buffers refuse an output over their input:
    /// writing the narrower or wider elements would overwrite values not yet
    /// read. Nothing is written then.
    @Test func quantizeAndDequantizeRefuseOverlap() throws {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
        defer { memory.deallocate() }
        let floats = memory.bindMemory(to: Float.self)
        for i in floats.indices { floats[i] = Float(i) / 4 }
        let before = Array(floats)
        // Only addresses are compared before the refusal: the byte views are never read or written.
        let bytes = UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer(memory.baseAddress! + 8).assumingMemoryBound(to: Int8.self),
                                               count: 8)
        #expect(errorCode { try quantize(UnsafeBufferPointer(rebasing: floats[0..<8]), into: bytes, parameters: xp) } == .aliasing)
        #expect(errorCode { try dequantize(UnsafeBufferPointer(bytes), into: UnsafeMutableBufferPointer(rebasing: floats[0..<8]), parameters: xp) } == .aliasing)
        #expect(Array(floats) == before)
        var apart = [Int8](repeating: 0, count: 8)
        try apart.withUnsafeMutableBufferPointer { try quantize(UnsafeBufferPointer(rebasing: floats[0..<8]), into: $0, parameters: xp) }
        #expect(apart == (0..<8).map { Int8(try! xp.quantize(Float($0) / 4)) })
    }

    /// A dynamic row scale whose product with the largest weight scale
    /// overflows Float is refused, and nothing is written: that row's
    /// outputs would be ±inf, and NaN where a sum is 0 (the answer there is
    /// the bias). By the GEMM, a dynamic layer of either granularity (per
    /// tensor, the small second row shares the first's scale), on the
    /// layer's Span and workspace routes and in two steps (quantizeDynamicInput,
    /// then the call on its input), and by ActivationProduct; a row
    /// just inside Float runs, with finite outputs.
    @Test func dynamicScaleProductsPastFloatAreRefused() throws {
        let x: [Float] = [0, 1e30, -1e30, 0, 1, 2, 3, 4], w: [Float] = [1e13, 0, 0, 0, 1, 1, 1, 1]
        for granularity in [QuantizedLinear.InputGranularity.perRow, .perTensor] {
            let layer = try QuantizedLinear(weights: w, outputChannels: 2, inputChannels: 4, bias: [5, 6], mode: .dynamic(granularity))
            var y = [Float](repeating: -1, count: 4), workspace = QuantizedLinear.Workspace()
            for call in [{ _ = try layer(x, rows: 2) },
                         { try x.withUnsafeBufferPointer { xb in
                             try y.withUnsafeMutableBufferPointer { try layer(xb, rows: 2, into: $0, workspace: &workspace) } } },
                         { var out = y.mutableSpan
                           try layer(x.span, rows: 2, into: &out, workspace: &workspace) },
                         // In two steps: quantized first, then multiplied.
                         { var input = QuantizedLinear.DynamicInput()
                           try x.withUnsafeBufferPointer { try layer.quantizeDynamicInput($0, rows: 2, into: &input) }
                           try y.withUnsafeMutableBufferPointer { try layer(input, into: $0) } }] as [() throws -> Void] {
                do {
                    try call()
                    Issue.record("\(granularity): a row scale past Float with the weights' was multiplied")
                } catch let e as QGEMMError {
                    // Per tensor, the one scale is named as such, not as a row's.
                    let name = granularity == .perRow ? "row scale [0]" : "the per-tensor input scale"
                    #expect(e.code == .invalidScale && e.message.hasPrefix(name) && e.message.contains("overflows Float"),
                            "\(granularity): \(e.message)")
                }
            }
            #expect(y.allSatisfy { $0 == -1 }, "\(granularity)")
        }
        // The GEMM alone: row 1's scale is the one past Float; row 0's is fine.
        let p = try PackedWeights(quantizing: w, outputChannels: 2, inputChannels: 4, bias: .float([5, 6]))
        let q: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7]
        let largest = p.weightScales.max()!
        #expect(throws: QGEMMError(.invalidScale, "")) {
            do {
                _ = try p.gemmDynamic(q, rows: 2, rowScales: [1, .greatestFiniteMagnitude / largest * 2], rowZeroPoints: [0, 0])
            } catch let e as QGEMMError {
                #expect(e.message.hasPrefix("row scale [1]"), "\(e.message)")
                throw e
            }
        }
        // The parameters come first (QGEMMError's order): a later row's bad
        // zero point is named before an earlier row's product.
        #expect(errorCode {
            _ = try p.gemmDynamic(q, rows: 2, rowScales: [.greatestFiniteMagnitude / largest * 2, 1], rowZeroPoints: [0, 256])
        } == .invalidZeroPoint)
        // Just inside: the largest row scale whose product stays finite runs;
        // channel 0's sum there is 0 (127·(255 − 255)), so its output is the
        // bias, and channel 1's is finite.
        var inside = Float.greatestFiniteMagnitude / largest
        while !(inside * largest).isFinite { inside = inside.nextDown }
        let y = try p.gemmDynamic([0, 1, 2, 3, 255, 0, 0, 0] as [UInt8], rows: 2, rowScales: [1, inside], rowZeroPoints: [0, 255])
        #expect(y[2] == 5 && y.allSatisfy(\.isFinite), "\(y)")
        // ActivationProduct: A's row 0 spans ±1e30, B's channel 0 reaches 1e13.
        var product = ActivationProduct()
        do {
            _ = try product.multiply(x, rows: 2, inputChannels: 4, by: w, outputChannels: 2, layout: .outputMajor)
            Issue.record("an A row scale past Float with B's was multiplied")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidScale && e.message.hasPrefix("A row [0]") && e.message.contains("overflows Float"), "\(e.message)")
        }
        let small = try product.multiply([Float](x[4...]), rows: 1, inputChannels: 4, by: w, outputChannels: 2, layout: .outputMajor)
        #expect(small.allSatisfy { $0.isFinite }, "\(small)")
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
        // The library's order: the parameters before the row values, the stride before the row scales' size.
        #expect(errorCode { _ = try intBias.gemmDynamic(x, rows: 2, rowScales: [0.1, 0], rowZeroPoints: [0, 0]) } == .incompatibleParameters)
        x.withUnsafeBufferPointer { xb in
            var y = [Float](repeating: 0, count: 4)
            y.withUnsafeMutableBufferPointer { yb in
                func code(rowStride: Int? = nil, _ s: [Float], _ z: [Int32], threads: Int? = nil) -> QGEMMError.Code? {
                    s.withUnsafeBufferPointer { sb in
                        z.withUnsafeBufferPointer { zb in
                            errorCode { try p.gemmDynamic(xb, rows: 2, rowStride: rowStride, rowScales: sb, rowZeroPoints: zb, into: yb, threads: threads) }
                        }
                    }
                }
                #expect(code(rowStride: 1, [0.1], [0]) == .invalidStride)
                // Short row scales are a buffer fault: before the threads (they came after them once).
                #expect(code([0.1], [0], threads: 0) == .bufferTooSmall)
                #expect(code([0.1, .nan], [0, 0], threads: 0) == .invalidArgument)
            }
            // Short row scales before an output over x.
            let raw = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 16)
            defer { raw.deallocate() }
            raw.initialize(repeating: 1)
            let over = UnsafeMutableRawBufferPointer(raw).bindMemory(to: Float.self)
            let xOver = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(raw)[0..<4])
            [Float(0.1)].withUnsafeBufferPointer { sb in
                [Int32(0)].withUnsafeBufferPointer { zb in
                    #expect(errorCode { try p.gemmDynamic(xOver, rows: 2, rowScales: sb, rowZeroPoints: zb, into: over) } == .bufferTooSmall)
                }
            }
        }
        // An output over the row scales or zero points: the first row's output would be the second row's scale.
        var memory: [Float] = [0.1, 0.1, 0, 0, 0, 0]
        var zeros: [Int32] = [0, 0, 0, 0, 0, 0]
        x.withUnsafeBufferPointer { xb in
            memory.withUnsafeMutableBufferPointer { all in
                let scales = UnsafeBufferPointer(rebasing: all[0..<2])
                let separate = UnsafeMutableBufferPointer(rebasing: all[2..<6])
                let overScales = UnsafeMutableBufferPointer(rebasing: all[1..<5])
                zeros.withUnsafeMutableBufferPointer { z in
                    let rowZeros = UnsafeBufferPointer(rebasing: z[0..<2])
                    #expect(errorCode { try p.gemmDynamic(xb, rows: 2, rowScales: scales, rowZeroPoints: rowZeros, into: overScales) } == .aliasing)
                    #expect(errorCode { try p.gemmDynamic(xb, rows: 2, rowScales: scales, rowZeroPoints: rowZeros, into: separate) } == nil)
                    // Int32 zero points read through a Float view of the same memory.
                    z.withMemoryRebound(to: Float.self) { zf in
                        let overZeros = UnsafeMutableBufferPointer(rebasing: zf[1..<5])
                        #expect(errorCode { try p.gemmDynamic(xb, rows: 2, rowScales: scales, rowZeroPoints: rowZeros, into: overZeros) } == .aliasing)
                    }
                }
            }
        }
        #expect(memory[0] == 0.1 && memory[1] == 0.1 && zeros.allSatisfy { $0 == 0 })
    }

    /// Every layer mode refuses bad arguments in the library's one order: the
    /// shape and buffer sizes, then overlapping x and y, then the kernel path,
    /// then the thread count, and only then a value it cannot quantize. The
    /// path and thread count are checked at M = 0 too, as the GEMM checks them.
    @Test func everyLayerModeChecksItsArgumentsInOneOrder() throws {
        let k = 16, n = 3, rows = 2
        var rng = SplitMix64(seed: 97)
        let w = (0..<(n * k)).map { _ in Float(Int(rng.next() % 200) - 100) / 64 }
        let u8 = try QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 128)
        let modes: [QuantizedLinear.Mode] = [.dynamic(.perRow), .dynamic(.perTensor), .staticInput(u8),
                                             .static(input: u8, output: yp, activation: .relu), .int4Weights(groupSize: 8)]
        // The test-only paths run on every CPU and have no 4-bit tiles.
        let noInt4 = KernelPath.allIncludingTestOnly.first { $0.isSupported && !$0.hasInt4Kernel }
        let missing = KernelPath.allIncludingTestOnly.first { !$0.isSupported }
        for mode in modes {
            let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: mode)
            let badPath: KernelPath?
            if case .int4Weights = mode { badPath = missing ?? noInt4 } else { badPath = missing }
            var memory = [Float](repeating: 0.5, count: rows * k + rows * n)
            memory[k + 5] = .nan
            var workspace = QuantizedLinear.Workspace()
            memory.withUnsafeMutableBufferPointer { all in
                let x = UnsafeBufferPointer(rebasing: all[0..<(rows * k)])
                let apart = UnsafeMutableBufferPointer(rebasing: all[(rows * k)...])
                let overlapping = UnsafeMutableBufferPointer(rebasing: all[(rows * k - 1)..<(rows * k - 1 + rows * n)])
                func code(_ y: UnsafeMutableBufferPointer<Float>, rows: Int = rows, _ path: KernelPath?, _ threads: Int?) -> QGEMMError.Code? {
                    errorCode { try layer(x, rows: rows, into: y, workspace: &workspace, kernel: path, threads: threads) }
                }
                let short = UnsafeMutableBufferPointer(rebasing: apart[0..<(rows * n - 1)])
                #expect(code(short, badPath, 0) == .bufferTooSmall, "\(mode.name)")
                #expect(code(overlapping, badPath, 0) == .aliasing, "\(mode.name)")
                if let badPath {
                    #expect(code(apart, badPath, 0) == .unsupportedKernel, "\(mode.name)")
                    #expect(code(apart, rows: 0, badPath, 1) == .unsupportedKernel, "\(mode.name) at M = 0")
                } else {
                    print("everyLayerModeChecksItsArgumentsInOneOrder: the path check skipped for \(mode.name): this CPU runs every path")
                }
                #expect(code(apart, nil, 0) == .invalidArgument, "\(mode.name)")
                #expect(code(apart, rows: 0, nil, 1025) == .invalidArgument, "\(mode.name) at M = 0")
                #expect(code(apart, nil, 1) == .invalidValue, "\(mode.name)")
                #expect(code(apart, rows: 0, nil, 1) == nil, "\(mode.name) at M = 0")
            }
            // Nothing was written by any refusal.
            #expect(memory[(rows * k)...].allSatisfy { $0 == 0.5 }, "\(mode.name)")
        }
    }

    /// The layer's other entry points and the buffer quantizers check in the
    /// same order: the shape and sizes before the mode or the types.
    @Test func theOtherEntryPointsCheckInTheSameOrder() throws {
        let k = 4, n = 2
        let dynamic = try QuantizedLinear(weights: [Float](repeating: 0.5, count: n * k), outputChannels: n, inputChannels: k,
                                          mode: .dynamic(.perRow))
        let u8 = try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 128)
        let staticInput = try QuantizedLinear(weights: [Float](repeating: 0.5, count: n * k), outputChannels: n, inputChannels: k,
                                              mode: .staticInput(u8))
        // forward: the count before the mode, the threads before the mode.
        #expect(errorCode { let _: [Int8] = try dynamic.forward([UInt8](repeating: 0, count: k + 1), rows: 1) } == .invalidShape)
        #expect(errorCode { let _: [Int8] = try dynamic.forward([UInt8](repeating: 0, count: k), rows: 1, threads: 0) } == .invalidArgument)
        #expect(errorCode { let _: [Int8] = try dynamic.forward([UInt8](repeating: 0, count: k), rows: 1) } == .incompatibleParameters)
        // quantizeInput: whole rows of K first (with or without smoothing), then the mode, then the element type.
        #expect(errorCode { let _: [UInt8] = try staticInput.quantizeInput([1, 2, 3]) } == .invalidShape)
        #expect(errorCode { let _: [UInt8] = try dynamic.quantizeInput([1, 2, 3]) } == .invalidShape)
        #expect(errorCode { let _: [Int8] = try dynamic.quantizeInput([1, 2, 3, 4]) } == .incompatibleParameters)
        #expect(errorCode { let _: [Int8] = try staticInput.quantizeInput([1, 2, 3, 4]) } == .incompatibleParameters)
        // Its NaN by row and column, without smoothing as with it.
        do {
            let _: [UInt8] = try staticInput.quantizeInput([1, 2, 3, 4, 5, 6, .nan, 8])
            Issue.record("a NaN was quantized")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidValue && e.message == "input value [1, 2] is nan; it cannot be quantized", "\(e.message)")
        }
        // quantize / dequantize on buffers: the size before the types.
        let values: [Float] = [1, 2, 3]
        var short = [UInt8](repeating: 0, count: 2)
        values.withUnsafeBufferPointer { vb in
            short.withUnsafeMutableBufferPointer { sb in
                #expect(errorCode { try quantize(vb, into: sb, parameters: xp) } == .bufferTooSmall) // xp is int8
            }
        }
        var out = [Float](repeating: 0, count: 2)
        [UInt8](repeating: 1, count: 3).withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                #expect(errorCode { try dequantize(qb, into: ob, parameters: xp) } == .bufferTooSmall)
            }
        }
    }

    /// The float baseline's buffer calls refuse what BLAS would misread: a bad
    /// shape, stride or size, and an output over an input (BLAS would read
    /// values it had overwritten). Nothing is written then.
    @Test func blasBaselineRefusesBadBuffers() throws {
        let (m, k, n) = (2, 3, 2)
        var memory = (0..<32).map { Float($0 % 5) - 2 }
        let before = memory
        try memory.withUnsafeMutableBufferPointer { all in
            let a = UnsafeBufferPointer(rebasing: all[0..<(m * k)])
            let b = UnsafeBufferPointer(rebasing: all[8..<(8 + k * n)])
            let c = UnsafeMutableBufferPointer(rebasing: all[16..<(16 + m * n)])
            func code(_ body: () throws -> Void) -> QGEMMError.Code? { errorCode(body) }
            #expect(code { try BLAS.sgemm(m: -1, k: k, n: n, a: a, b: b, c: c) } == .invalidShape)
            #expect(code { try BLAS.sgemm(m: m, k: k, n: n, a: a, lda: 2, b: b, c: c) } == .invalidStride)
            #expect(code { try BLAS.sgemm(m: m, k: k, n: n, a: a, b: b, c: UnsafeMutableBufferPointer(rebasing: all[16..<19])) } == .bufferTooSmall)
            #expect(code { try BLAS.sgemm(m: m, k: k, n: n, a: a, b: b, c: UnsafeMutableBufferPointer(rebasing: all[4..<8])) } == .aliasing)
            #expect(code { try BLAS.sgemm(m: m, k: k, n: n, a: a, b: b, c: UnsafeMutableBufferPointer(rebasing: all[12..<16])) } == .aliasing)
            let x = UnsafeBufferPointer(rebasing: all[8..<11]), y = UnsafeMutableBufferPointer(rebasing: all[24..<26])
            #expect(code { try BLAS.sgemv(m: m, n: k, a: a, x: x, y: UnsafeMutableBufferPointer(rebasing: all[9..<11])) } == .aliasing)
            #expect(code { try BLAS.sgemv(m: m, n: k, a: a, x: x, y: UnsafeMutableBufferPointer(rebasing: all[5..<7])) } == .aliasing)
            // Transposed: A stored [K×M] at all[0..<6] still spans those six, and C right after it only touches it.
            #expect(code { try BLAS.sgemm(m: m, k: k, n: n, a: a, transposeA: true, b: b, c: UnsafeMutableBufferPointer(rebasing: all[5..<9])) } == .aliasing)
            #expect(Array(all) == before, "a refused call wrote memory")
            try BLAS.sgemm(m: m, k: k, n: n, a: a, transposeA: true, b: UnsafeBufferPointer(rebasing: all[10..<16]),
                           c: UnsafeMutableBufferPointer(rebasing: all[6..<10]))
            // Apart, the calls run: C = A·B and y = A·x, exactly (small integers).
            try BLAS.sgemm(m: m, k: k, n: n, a: a, b: b, c: c)
            try BLAS.sgemv(m: m, n: k, a: a, x: x, y: y)
            for i in 0..<m {
                for j in 0..<n { #expect(c[i * n + j] == (0..<k).reduce(Float(0)) { $0 + a[i * k + $1] * b[$1 * n + j] }) }
                #expect(y[i] == (0..<k).reduce(Float(0)) { $0 + a[i * k + $1] * x[$1] })
            }
            // An empty sum: y = beta·y, as the formula says (BLAS alone would leave y as it was).
            try BLAS.sgemv(m: m, n: 0, a: a, x: x, beta: 2, y: y)
            #expect(y[0] == 2 * (0..<k).reduce(Float(0)) { $0 + a[$1] * x[$1] })
            try BLAS.sgemv(m: m, n: 0, a: a, x: x, y: y)
            #expect(y[0] == 0 && y[1] == 0)
            try BLAS.sgemv(m: 0, n: 2, a: a, transpose: true, x: x, y: y)
            #expect(y[0] == 0 && y[1] == 0)
        }
    }

    @Test func unknownKernelNames() {
        #expect(errorCode { _ = try KernelPath.resolve("avx9000") } == .unsupportedKernel)
        #expect((try? KernelPath.resolve("reference")) == .reference)
        // The C registry compares names up to a NUL: "avx2\0junk" was avx2
        // under another name. And the test-only paths are no one's default.
        #expect(KernelPath(rawValue: "avx2\u{0}junk") == nil && KernelPath(rawValue: "\u{0}") == nil)
        #expect(errorCode { _ = try KernelPath.resolve("reference\u{0}x") } == .unsupportedKernel)
        #expect(errorCode { _ = try KernelPath.resolve("test3x5") } == .unsupportedKernel)
    }

    /// A conversion's result is refused when it fits the memory this process
    /// may use only without its source (a .npy file's float16 bytes taking
    /// twice their size as Float), at the byte; nothing is allocated.
    @Test func aResultMustFitBesideWhatIsHeld() throws {
        let limit = Int(availableMemoryBytes()), half = limit / 2
        try checkResultFits(half, of: UInt8.self, holding: limit - half, "fits")
        #expect(errorCode { try checkResultFits(half, of: UInt8.self, holding: limit - half + 1, "one byte over") } == .invalidShape)
        let floats = limit / 8
        try checkResultFits(floats, of: Float.self, holding: limit - 4 * floats, "Floats that fit")
        #expect(errorCode { try checkResultFits(floats, of: Float.self, holding: limit - 4 * floats + 1, "Floats a byte over") } == .invalidShape)
        #expect(errorCode { try checkResultFits(0, of: Float.self, holding: limit + 1, "held alone over") } == .invalidShape)
        do {
            try checkResultFits(half, of: UInt16.self, holding: 2, "the values")
            Issue.record("fitted")
        } catch {
            #expect(error.message.contains("beside the 2 bytes held already"), "\(error.message)")
        }
    }
}
