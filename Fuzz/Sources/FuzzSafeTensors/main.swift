// Any byte string is either parsed into a safetensors file and, when it holds a
// QuantizedLinear or Int4Weights, a layer, or refused with a QGEMMError; a
// parsed file and a loaded layer survive a save/load round trip unchanged,
// without a refusal, and the layer and its reloaded copy run an input alike.
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    var parsed: SafeTensorsFile?
    refusedOnlyWithQGEMMError { parsed = try SafeTensorsFile(bytes: bytes) }
    guard let file = parsed else { return 0 }
    let again = mustNotThrow("serializing a parsed file and reading it again") { try SafeTensorsFile(bytes: try file.serialized()) }
    precondition(again == file, "write/read round trip changed the file")
    if file.metadata["format"] == Int4Weights.safeTensorsFormat {
        var loaded: Int4Weights?
        refusedOnlyWithQGEMMError { loaded = try Int4Weights(safeTensors: file) }
        guard let weights = loaded else { return 0 }
        let saved = mustNotThrow("saving loaded 4-bit weights") { try weights.safeTensors() }
        let reloaded = mustNotThrow("loading saved 4-bit weights") { try Int4Weights(safeTensors: saved) }
        let resaved = mustNotThrow("saving reloaded 4-bit weights") { try reloaded.safeTensors() }
        precondition(resaved == saved, "loaded 4-bit weights do not save as they were loaded")
        let x = [Float](repeating: 0.5, count: weights.inputChannels * 2)
        sameOutcome({ try weights(x, rows: 2, threads: 1) }, { try reloaded(x, rows: 2, threads: 1) }, "reloaded 4-bit weights")
        return 0
    }
    var loaded: QuantizedLinear?
    refusedOnlyWithQGEMMError { loaded = try QuantizedLinear(safeTensors: file) }
    guard let layer = loaded else { return 0 }
    let saved = mustNotThrow("saving a loaded layer") { try layer.safeTensors() }
    let reloaded = mustNotThrow("loading a saved layer") { try QuantizedLinear(safeTensors: saved) }
    let resaved = mustNotThrow("saving a reloaded layer") { try reloaded.safeTensors() }
    precondition(resaved == saved, "a loaded layer does not save as it was loaded")
    // Run it once on a small input: whatever loaded computes, or is refused alike.
    let x = [Float](repeating: 0.5, count: layer.inputChannels * 2)
    sameOutcome({ try layer(x, rows: 2, threads: 1) }, { try reloaded(x, rows: 2, threads: 1) }, "a reloaded layer")
    return 0
}

/// Edits the header as JSON (see SafeTensorsMutator), mixed with libFuzzer's
/// byte-level edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateSafeTensors(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in SafeTensorsMutator.mutate(bytes, maxSize: maxSize, &rng) }
}
