// Differential fuzzing of the public GEMM entry: bytes decode into a small
// configuration (shape, strides, zero points, scales — valid or not — rounding,
// clamp, threads, kernel path, output type, dynamic or static, the kernel
// variants the CPU would fix) and data. The
// call must either throw a QGEMMError or return exactly what the scalar
// reference returns for the same arguments, and a call that throws writes
// nothing to its output.
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGEMM(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard var r = ByteReader(data, size, minimum: 8) else { return 0 }
    // One input in four takes the larger shapes: a second row group of the
    // 12- and 32-row tiles, and several 64-channel steps to split on threads.
    let large = r.byte() % 4 == 0
    let m = r.int(0...(large ? 40 : 12)), n = r.int(0...(large ? 140 : 40)), k = r.int(0...70)
    let ldxExtra = r.int(-2...5), ldyExtra = r.int(-2...5)
    let unsignedX = r.byte() % 2 == 0
    let zx: Int32 = r.byte() % 8 == 0 ? r.int32() : Int32(r.int(-130...260))
    let zy: Int32 = r.byte() % 8 == 0 ? r.int32() : Int32(r.int(-130...260))
    let sx = r.scale(), sy = r.scale()
    let perChannel = r.byte() % 2 == 0
    let sw: [Float] = (0..<max(n, 1)).map { _ in r.byte() % 32 == 0 ? r.scale() : Float(r.int(1...100)) * 0.001 }
    let rounding = RoundingMode.allCases[r.int(0...2)]
    let clampLo = Int32(r.int(-130...260)), clampHi = Int32(r.int(-130...260))
    let useClamp = r.byte() % 3 == 0
    let threads = r.int(0...4)
    let path = r.path()
    let output = r.int(0...4) // int8, uint8, int32, float, dynamic
    let hasBias = r.byte() % 2 == 0
    let w = (0..<(n * k)).map { _ in Int8(bitPattern: r.byte()) }
    let bias = (0..<n).map { _ in r.byte() % 16 == 0 ? r.int32() : Int32(r.int(-100...100)) * 1000 }
    let ldx = k + ldxExtra, ldy = n + ldyExtra
    let xCount = max(0, m * max(ldx, 0) + r.int(-3...3))
    let xBytes = (0..<xCount).map { _ in r.byte() }
    let yCount = max(0, m * max(ldy, 0) + r.int(-3...3))
    let rowScales = (0..<m).map { _ in r.byte() % 16 == 0 ? r.scale() : Float(r.int(1...50)) * 0.01 }
    let rowZeros = (0..<m).map { _ in Int32(r.int(-10...260)) }

    func run(_ kernel: KernelPath) throws -> [UInt32] {
        let yType: QuantizedType = output == 1 ? .uint8 : .int8
        // Dynamic calls (output 4) take no input parameters: none are built,
        // so a scale they would refuse does not end the run.
        let input = output == 4 ? nil : try QuantizationParameters(type: unsignedX ? .uint8 : .int8, scale: sx, zeroPoint: zx)
        let out = output <= 1 ? try QuantizationParameters(type: yType, scale: sy, zeroPoint: zy) : nil
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k,
                                       scales: perChannel ? .perChannel(Array(sw.prefix(n))) : .perTensor(sw[0]),
                                       bias: hasBias ? (output == 4 ? .float(bias.map { Float($0) * 1e-3 }) : .int32(bias)) : nil,
                                       input: input, output: out, rounding: rounding,
                                       clamp: useClamp && out != nil ? min(clampLo, clampHi)...max(clampLo, clampHi) : nil)
        func go<X: QuantizedScalar>(_ x: [X]) throws -> [UInt32] {
            try x.withUnsafeBufferPointer { xb in
                switch output {
                case 0: return try into([Int8](repeating: 0x55, count: yCount), xb, packed, kernel).map { UInt32(UInt8(bitPattern: $0)) }
                case 1: return try into([UInt8](repeating: 0x55, count: yCount), xb, packed, kernel).map { UInt32($0) }
                case 2: return try into([Int32](repeating: 0x5555, count: yCount), xb, packed, kernel).map { UInt32(bitPattern: $0) }
                case 3: return try into([Float](repeating: 7, count: yCount), xb, packed, kernel).map(\.bitPattern)
                default:
                    var y = [Float](repeating: 7, count: yCount)
                    do {
                        try rowScales.withUnsafeBufferPointer { sb in
                            try rowZeros.withUnsafeBufferPointer { zb in
                                try y.withUnsafeMutableBufferPointer { yb in
                                    try packed.gemmDynamic(xb, rows: m, rowStride: ldx, rowScales: sb, rowZeroPoints: zb, into: yb,
                                                           outputRowStride: ldy, kernel: kernel, threads: threads == 0 ? nil : threads)
                                }
                            }
                        }
                    } catch {
                        precondition(y.allSatisfy { $0 == 7 }, "\(kernel): a dynamic call that threw (\(error)) wrote its output")
                        throw error
                    }
                    return y.map(\.bitPattern)
                }
            }
        }
        func into<Y: GEMMOutputScalar & Equatable>(_ initial: [Y], _ xb: UnsafeBufferPointer<some QuantizedScalar>, _ packed: PackedWeights,
                                       _ kernel: KernelPath) throws -> [Y] {
            var y = initial
            do {
                try y.withUnsafeMutableBufferPointer { yb in
                    try packed.gemm(xb, rows: m, rowStride: ldx, into: yb, outputRowStride: ldy, kernel: kernel,
                                    threads: threads == 0 ? nil : threads)
                }
            } catch {
                // Nothing is written when a call throws (QGEMMError), but where
                // a thread's scratch cannot be allocated, which under ASan ends
                // the run instead.
                precondition(y == initial, "\(kernel): a call that threw (\(error)) wrote its output")
                throw error
            }
            return y
        }
        return unsignedX ? try go(xBytes) : try go(xBytes.map { Int8(bitPattern: $0) })
    }

    let reference: Result<[UInt32], QGEMMError>
    do { reference = .success(try run(.reference)) } catch let e as QGEMMError { reference = .failure(e) } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    // Drawn last, so that committed inputs decode everything before as they did.
    let variants = ForcedVariants(r.byte())
    do {
        let got = try variants.around { try run(path) }
        guard case .success(let want) = reference else { preconditionFailure("\(path) returned where the reference threw") }
        precondition(path.isSupported, "\(path), which this CPU lacks, returned")
        precondition(got == want, "\(path) with \(variants.description) differs from the reference")
    } catch let e as QGEMMError {
        // A path this CPU lacks is refused after the arguments the reference
        // refuses too (shapes, buffers, overlap) and only then; a path it has never is.
        if e.code == .unsupportedKernel {
            precondition(!path.isSupported, "\(path), which this CPU has, was refused: \(e)")
        } else if case .failure(let refError) = reference {
            precondition(refError.code == e.code, "different errors: \(refError) vs \(e)")
        } else {
            preconditionFailure("\(path) threw \(e) where the reference returned")
        }
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    return 0
}
