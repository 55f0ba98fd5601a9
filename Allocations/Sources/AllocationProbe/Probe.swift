// Every call that promises "no heap allocation once warm" is run 10 times to
// warm up (workspaces grow, the thread pool starts, per-thread scratch and
// weight-layout copies are made), then 20 more times with the interposer
// counting every malloc, calloc, realloc and posix_memalign of the process,
// worker threads included. Any count above zero fails the run. The file
// formats' readers and writers are held to a byte budget instead: about the
// data once, never the whole file beside it.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MallocInterposerSwift
import QGEMM

@main
struct AllocationProbe {
    static func main() throws {
        var failures = 0

        /// `threads`: the call's thread count where it names one (the label
        /// then ends with it). On one
        /// thread no pool worker takes a task, so the first counted round
        /// must be 0 already; on more, a worker that first meets a task of
        /// this size now sizes its scratch once, and a second round decides.
        func check(_ label: String, threads: Int? = nil, _ body: () throws -> Void) throws {
            // Warm-up: besides the workspace, each pool worker sizes its own
            // scratch the first time it runs a task of this size, which a
            // single warm call does not guarantee for every worker.
            for _ in 0..<10 { try body() }
            // Counted: 20 calls. A worker thread that first ran a task of this
            // size now (scheduling decides which worker takes tasks) sizes its
            // scratch once; a steady per-call allocation shows in every round,
            // so a second round of 20 decides (on more than one thread).
            var counts: [Int] = []
            counts.reserveCapacity(2)
            for _ in 0..<2 {
                MallocInterposerSwift.initialize()
                MallocInterposerSwift.hook()
                for _ in 0..<20 { try body() }
                MallocInterposerSwift.unhook()
                counts.append(MallocInterposerSwift.getStatistics().mallocCount)
                if counts.last == 0 || threads == 1 { break }
            }
            let ok = counts.last == 0
            if !ok { failures += 1 }
            let named = threads.map { "\(label), \($0) thread\($0 > 1 ? "s" : "")" } ?? label
            print("check-allocations: \(named): \(counts.map(String.init).joined(separator: ", then ")) allocations in 20 calls: \(ok ? "none" : "FAIL")")
        }

        // The counter must see allocations at all (is the interposer preloaded?).
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        var sink = [Int](repeating: 1, count: 1000 + Int.random(in: 0...1))
        MallocInterposerSwift.unhook()
        guard MallocInterposerSwift.getStatistics().mallocCount > 0, sink.count > 0 else {
            print("check-allocations: the interposer counted no allocation of a fresh array; is it LD_PRELOADed?")
            exit(2)
        }
        sink = []

        let m = 48, k = 96, n = 80
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 500
        }
        let w = (0..<n * k).map { _ in 0.1 * next() }, b = (0..<n).map { _ in next() }
        let x = (0..<m * k).map { _ in next() }
        let xp = try QuantizationParameters(observedMin: -2, observedMax: 2, type: .uint8)
        let yp = try QuantizationParameters(observedMin: -8, observedMax: 8, type: .int8)
        let smoothing = try Smoothing(factors: (0..<k).map { 0.5 + Float($0 % 5) * 0.25 })
        let layers: [(String, QuantizedLinear)] = [
            ("dynamic per-row layer", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perRow))),
            ("dynamic per-tensor layer with smoothing",
             try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perTensor), smoothing: smoothing)),
            ("static-input layer with smoothing",
             try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .staticInput(xp), smoothing: smoothing)),
            ("static layer (uint8 in, int8 out, ReLU)",
             try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .static(input: xp, output: yp, activation: .relu))),
            ("int4-weights layer with smoothing, group 32",
             try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .int4Weights(groupSize: 32), smoothing: smoothing)),
        ]
        var y = [Float](repeating: 0, count: m * n)
        for (label, layer) in layers {
            for threads in [1, 2] {
                var workspace = QuantizedLinear.Workspace()
                try x.withUnsafeBufferPointer { xb in
                    try y.withUnsafeMutableBufferPointer { yb in
                        try check(label, threads: threads) {
                            try layer(xb, rows: m, into: yb, workspace: &workspace, threads: threads)
                        }
                    }
                }
            }
        }

        // Dynamic mode in two halves: the input quantized once, two layers on it.
        let second = try QuantizedLinear(weights: Array(w.reversed()), outputChannels: n, inputChannels: k, mode: .dynamic(.perRow))
        for threads in [1, 2] {
            var input = QuantizedLinear.DynamicInput()
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try check("dynamic layer in two halves (quantizeDynamicInput, then two layers)", threads: threads) {
                        try layers[0].1.quantizeDynamicInput(xb, rows: m, into: &input, threads: threads)
                        try layers[0].1(input, into: yb, threads: threads)
                        try second(input, into: yb, threads: threads)
                    }
                }
            }
        }

        for (group, activations) in [(8, Int4Weights.Activations.int8), (32, .int8), (32, .uint8)] {
            let layer = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: group, bias: b,
                                        activations: activations)
            for threads in [1, 2] {
                var workspace = Int4Weights.Workspace()
                try x.withUnsafeBufferPointer { xb in
                    try y.withUnsafeMutableBufferPointer { yb in
                        try check("4-bit weights, group \(group), \(activations) rows", threads: threads) {
                            try layer(xb, rows: m, into: yb, workspace: &workspace, threads: threads)
                        }
                    }
                }
            }
        }

        // Both layouts of B (the transposed copy of inputMajor is a buffer
        // too), and a path with a weight layout of its own (the test-only
        // 4x8k8: K groups of 8 in panels of 8), where ActivationProduct
        // repacks B into a buffer of its own and PackedWeights (below) keeps a
        // repacked copy: each made once.
        let ownLayout = KernelPath(rawValue: "test4x8k8")!
        let products: [(String, PackedWeights.Layout, KernelPath?)] = [
            ("outputMajor", .outputMajor, nil), ("inputMajor", .inputMajor, nil),
            ("on a path with its own weight layout (\(ownLayout))", .outputMajor, ownLayout),
        ]
        for (name, layout, kernel) in products {
            for threads in [1, 2] {
                var product = ActivationProduct()
                try x.withUnsafeBufferPointer { ab in
                    try w.withUnsafeBufferPointer { bb in
                        try y.withUnsafeMutableBufferPointer { yb in
                            try check("ActivationProduct, \(name)", threads: threads) {
                                try product.multiply(ab, rows: m, inputChannels: k, by: bb, outputChannels: n, layout: layout,
                                                     into: yb, kernel: kernel, threads: threads)
                            }
                        }
                    }
                }
            }
        }

        // Inputs large enough that their quantization is shared over the
        // call's threads (one part per 2^15 values): 512 rows of K = 256.
        let bigM = 512, bigK = 256
        let bigX = (0..<bigM * bigK).map { _ in next() }, bigW = (0..<n * bigK).map { _ in 0.1 * next() }
        let bigLayer = try QuantizedLinear(weights: bigW, outputChannels: n, inputChannels: bigK, bias: b, mode: .dynamic(.perRow))
        var bigY = [Float](repeating: 0, count: bigM * n)
        for threads in [1, 2] {
            var workspace = QuantizedLinear.Workspace()
            var input = QuantizedLinear.DynamicInput()
            try bigX.withUnsafeBufferPointer { xb in
                try bigY.withUnsafeMutableBufferPointer { yb in
                    try check("dynamic per-row layer, \(bigM) rows of K = \(bigK) (quantization in parts)", threads: threads) {
                        try bigLayer(xb, rows: bigM, into: yb, workspace: &workspace, threads: threads)
                    }
                    try check("quantizeDynamicInput and a layer on it, \(bigM) rows of K = \(bigK)", threads: threads) {
                        try bigLayer.quantizeDynamicInput(xb, rows: bigM, into: &input, threads: threads)
                        try bigLayer(input, into: yb, threads: threads)
                    }
                }
            }
        }

        var xq = [UInt8](repeating: 0, count: m * k)
        var back = [Float](repeating: 0, count: m * k)
        try x.withUnsafeBufferPointer { xb in
            try xq.withUnsafeMutableBufferPointer { qb in
                try check("quantize(_:into:parameters:)", threads: 1) { try quantize(xb, into: qb, parameters: xp) }
            }
        }
        try xq.withUnsafeBufferPointer { qb in
            try back.withUnsafeMutableBufferPointer { fb in
                try check("dequantize(_:into:parameters:)", threads: 1) { try dequantize(qb, into: fb, parameters: xp) }
            }
        }

        let packed = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, bias: .float(b), input: xp, output: yp)
        var y8 = [Int8](repeating: 0, count: m * n), y32 = [Int32](repeating: 0, count: m * n)
        let rowScales = [Float](repeating: 0.02, count: m), rowZeros = [Int32](repeating: 128, count: m)
        try xq.withUnsafeBufferPointer { qb in
            for threads in [1, 2] {
                try y8.withUnsafeMutableBufferPointer { yb in
                    try check("PackedWeights.gemm int8 output", threads: threads) { try packed.gemm(qb, rows: m, into: yb, threads: threads) }
                }
                try y32.withUnsafeMutableBufferPointer { yb in
                    try check("PackedWeights.gemm int32 output", threads: threads) { try packed.gemm(qb, rows: m, into: yb, threads: threads) }
                }
                try y.withUnsafeMutableBufferPointer { yb in
                    try check("PackedWeights.gemm Float output", threads: threads) { try packed.gemm(qb, rows: m, into: yb, threads: threads) }
                }
                try y8.withUnsafeMutableBufferPointer { yb in
                    try check("PackedWeights.gemm int8 output on \(ownLayout) (a repacked copy)", threads: threads) {
                        try packed.gemm(qb, rows: m, into: yb, kernel: ownLayout, threads: threads)
                    }
                }
            }
            try rowScales.withUnsafeBufferPointer { s in
                try rowZeros.withUnsafeBufferPointer { z in
                    try y.withUnsafeMutableBufferPointer { yb in
                        try check("PackedWeights.gemmDynamic") { try packed.gemmDynamic(qb, rows: m, rowScales: s, rowZeroPoints: z, into: yb) }
                    }
                }
            }
        }

        // uint8 output, and int8 activations: VNNI paths read uint8 rows in
        // place but pack int8 ones per call (as x + 128), in scratch of their own.
        let yu = try QuantizationParameters(observedMin: 0, observedMax: 8, type: .uint8)
        let packedU8 = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k, bias: .float(b), input: xp, output: yu)
        let open = try PackedWeights(quantizing: w, outputChannels: n, inputChannels: k)
        let xSigned = xq.map { Int8(bitPattern: $0 &- 128) }
        let xpSigned = try QuantizationParameters(type: .int8, scale: xp.scale, zeroPoint: xp.zeroPoint - 128)
        var yU8 = [UInt8](repeating: 0, count: m * n)
        for threads in [1, 2] {
            try xq.withUnsafeBufferPointer { qb in
                try yU8.withUnsafeMutableBufferPointer { yb in
                    try check("PackedWeights.gemm uint8 output", threads: threads) { try packedU8.gemm(qb, rows: m, into: yb, threads: threads) }
                }
            }
            try xSigned.withUnsafeBufferPointer { sb in
                try y32.withUnsafeMutableBufferPointer { yb in
                    try check("PackedWeights.gemm, int8 X, int32 output", threads: threads) {
                        try open.gemm(sb, rows: m, input: xpSigned, into: yb, threads: threads)
                    }
                }
            }
        }

        // The Span forms (each a view of the arrays above: making one allocates nothing).
        var spanWorkspace = QuantizedLinear.Workspace(), spanInt4Workspace = Int4Weights.Workspace()
        let int4 = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: 32, bias: b)
        try check("QuantizedLinear on Span / MutableSpan", threads: 1) {
            var ys = y.mutableSpan
            try layers[0].1(x.span, rows: m, into: &ys, workspace: &spanWorkspace, threads: 1)
        }
        try check("Int4Weights on Span / MutableSpan", threads: 1) {
            var ys = y.mutableSpan
            try int4(x.span, rows: m, into: &ys, workspace: &spanInt4Workspace, threads: 1)
        }
        try check("PackedWeights.gemm on Span / MutableSpan, int8 output", threads: 1) {
            var ys = y8.mutableSpan
            try packed.gemm(xq.span, rows: m, into: &ys, threads: 1)
        }
        try check("PackedWeights.gemmDynamic on Span / MutableSpan", threads: 1) {
            var ys = y.mutableSpan
            try packed.gemmDynamic(xq.span, rows: m, rowScales: rowScales.span, rowZeroPoints: rowZeros.span, into: &ys, threads: 1)
        }
        try check("quantize and dequantize on Span / MutableSpan", threads: 1) {
            var qs = xq.mutableSpan
            try quantize(x.span, into: &qs, parameters: xp)
            var fs = back.mutableSpan
            try dequantize(xq.span, into: &fs, parameters: xp)
        }

        // The file formats read and write in parts: loading a file allocates
        // its tensors' (or array's) bytes once, not the whole file again
        // beside them, and writing one allocates little beyond its header.
        // Counted in bytes over one call, which bounds its peak.
        func bytesAllocated(_ body: () throws -> Void) throws -> Int {
            MallocInterposerSwift.initialize()
            MallocInterposerSwift.hook()
            defer { MallocInterposerSwift.unhook() }
            try body()
            return MallocInterposerSwift.getStatistics().mallocBytesCount
        }
        func checkBytes(_ label: String, _ bytes: Int, limit: Int) {
            let ok = bytes <= limit
            if !ok { failures += 1 }
            print("check-allocations: \(label): \(bytes) bytes allocated, at most \(limit) allowed: \(ok ? "ok" : "FAIL")")
        }
        let mib = 1 << 20
        let fileURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qgemm-allocations-\(getpid())")
        defer { try? FileManager.default.removeItem(at: fileURL) }
        var parts: [String: SafeTensorsFile.Tensor] = [:]
        for i in 0..<4 { parts["t\(i)"] = try .init(dtype: .uint8, shape: [8 * mib], bytes: [UInt8](repeating: UInt8(i), count: 8 * mib)) }
        let tensorFile = SafeTensorsFile(tensors: parts, metadata: ["k": "v"])
        checkBytes("SafeTensorsFile.write(to:), 32 MiB of tensors", try bytesAllocated { try tensorFile.write(to: fileURL) }, limit: mib)
        checkBytes("SafeTensorsFile(contentsOf:), 32 MiB of tensors",
                   try bytesAllocated { _ = try SafeTensorsFile(contentsOf: fileURL) }, limit: 33 * mib)
        let array = try NPYArray(uint8: [UInt8](repeating: 7, count: 32 * mib), shape: [32, mib])
        checkBytes("NPYArray.write(to:), 32 MiB", try bytesAllocated { try array.write(to: fileURL) }, limit: mib)
        checkBytes("NPYArray(contentsOf:), 32 MiB", try bytesAllocated { _ = try NPYArray(contentsOf: fileURL) }, limit: 33 * mib)

        if failures > 0 {
            print("check-allocations: \(failures) check(s) failed: a call allocated once warm, or a file format passed its budget")
            exit(1)
        }
        let path = (try? KernelPath.processDefault.get())?.rawValue ?? "none"
        print("check-allocations: every call allocated nothing once warm (kernel path \(path), and \(ownLayout) where named), and the file formats kept to their budgets")
    }
}
