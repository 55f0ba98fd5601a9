// The calibration observers on any batches, and their saved state from any
// bytes. Bytes choose an observer (its kind and settings, valid or not) and
// batches of floats (the ends of Float's range, subnormals, values one ulp
// apart, NaN and ±Inf among arbitrary bit patterns). Each step either throws
// a QGEMMError or leaves a range that is finite (a ClosedRange is in order,
// or the library traps building it); the parameters of that range (what
// `parameters(type:)` computes) are valid or refused; a JSON round trip keeps
// the range. The same bytes, read as JSON (non-finite numbers allowed),
// either decode into an observer that holds those properties and keeps
// observing, or are refused.
import Foundation
import FuzzMutators
import QGEMM

/// Floats a range computation can trip on, and arbitrary bit patterns.
func value(_ r: inout ByteReader) -> Float {
    let special: [Float] = [0, -0.0, 1, -1, 3e38, -3e38, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                            .leastNonzeroMagnitude, -.leastNormalMagnitude, 16_777_216, 16_777_218, 1e-30, .nan, .infinity]
    let b = r.byte()
    if Int(b) < special.count * 8 { return special[Int(b) % special.count] }
    return Float(bitPattern: UInt32(r.byte()) | UInt32(r.byte()) << 8 | UInt32(r.byte()) << 16 | UInt32(r.byte()) << 24)
}

func check<O: CalibrationObserver>(_ o: O, _ r: inout ByteReader) throws {
    // Each range is computed once: the histogram searches cost O(bins²).
    guard let range = o.range else { return }
    precondition(range.lowerBound.isFinite && range.upperBound.isFinite, "\(O.self) range \(range)")
    do {
        let p = try QuantizationParameters(observedMin: range.lowerBound, observedMax: range.upperBound,
                                           type: r.byte() % 2 == 0 ? .int8 : .uint8)
        precondition(p.scale.isFinite && p.scale > 0, "\(O.self) parameters \(p)")
    } catch is QGEMMError {}
    // The observer's own saved state must load again: a refusal here is a finding, not a refused input.
    let again = mustNotThrow("\(O.self): decoding its own saved state") {
        try JSONDecoder().decode(O.self, from: try JSONEncoder().encode(o)).range
    }
    precondition(again == range, "\(O.self): a JSON round trip moved the range \(range) to \(String(describing: again))")
}

/// An observer's whole state as JSON with sorted keys.
func state<O: CalibrationObserver>(_ o: O) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return try encoder.encode(o)
}

func run<O: CalibrationObserver>(_ make: () throws -> O, _ r: inout ByteReader) throws {
    var o = try make()
    for _ in 0..<r.int(1...4) {
        let batch = (0..<r.int(0...48)).map { _ in value(&r) }
        // A refused batch leaves the observer as it was (its saved state, keys sorted, byte for byte).
        let before = try state(o)
        do { try o.observe(batch) } catch is QGEMMError {
            let after = try state(o)
            precondition(after == before, "\(O.self): a refused batch changed the observer")
            continue
        }
        try check(o, &r)
    }
}

func bins(of o: any CalibrationObserver) -> Int {
    (o as? PercentileObserver)?.bins ?? (o as? MSEObserver)?.bins ?? (o as? EntropyObserver)?.bins ?? 0
}

func decoded<O: CalibrationObserver>(_: O.Type, _ bytes: [UInt8], _ r: inout ByteReader) throws {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var o: O
    do { o = try decoder.decode(O.self, from: Data(bytes)) } catch is DecodingError { return } catch is QGEMMError { return }
    // A saved histogram of up to 2^20 empty bins is valid, but its searches
    // and round trips would take most of the run's time.
    if bins(of: o) > 4096 { return }
    try check(o, &r)
    do { try o.observe((0..<r.int(0...8)).map { _ in value(&r) }) } catch is QGEMMError { return }
    try check(o, &r)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzObservers(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard !bytes.isEmpty else { return 0 }
    var r = ByteReader(bytes: bytes)
    // Few bins, so that each run is quick (the range searches grow with the
    // bins; the decoders take up to 2^20), and some refused.
    let bins = r.byte() % 16 == 0 ? r.int(0...20) : r.int(16...128)
    refusedOnlyWithQGEMMError {
        switch r.byte() % 5 {
        case 0: try run({ MinMaxObserver() }, &r)
        case 1:
            let c: Float = r.byte() % 8 == 0 ? r.scale() : Float(r.int(1...100)) / 100
            try run({ try MovingAverageMinMaxObserver(averagingConstant: c) }, &r)
        case 2:
            let p = r.byte() % 8 == 0 ? Double(r.scale()) * 100 : 50 + Double(r.int(1...100)) / 2
            try run({ try PercentileObserver(percentile: p, bins: bins) }, &r)
        case 3: try run({ try MSEObserver(bins: bins) }, &r)
        default: try run({ try EntropyObserver(bins: bins < 16 ? bins : bins + 240) }, &r)
        }
        try decoded(MinMaxObserver.self, bytes, &r)
        try decoded(MovingAverageMinMaxObserver.self, bytes, &r)
        try decoded(PercentileObserver.self, bytes, &r)
        try decoded(MSEObserver.self, bytes, &r)
        try decoded(EntropyObserver.self, bytes, &r)
    }
    return 0
}

/// Edits the input as JSON (the saved observers), mixed with libFuzzer's
/// byte-level edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateObservers(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in
        mutateJSONDocument(bytes, maxSize: maxSize, vocabulary: ["range", "averagingConstant", "percentile", "histogram", "magnitudes",
                                                                 "bins", "lo", "hi", "counts", "total", "inf", "-inf", "nan"], &rng)
    }
}
