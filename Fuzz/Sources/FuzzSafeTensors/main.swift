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
        roundTrip(file, "4-bit weights", load: { try Int4Weights(safeTensors: $0) }, save: { try $0.safeTensors() },
                  inputs: \.inputChannels, run: { try $0($1, rows: 2, threads: 1) })
    } else {
        roundTrip(file, "layer", load: { try QuantizedLinear(safeTensors: $0) }, save: { try $0.safeTensors() },
                  inputs: \.inputChannels, run: { try $0($1, rows: 2, threads: 1) })
    }
    return 0
}

/// A layer loaded from `file` (or refused with a QGEMMError) saves, loads
/// and saves again without a refusal and unchanged, and its reloaded copy
/// runs two rows of 0.5 as it does: the same bits, or the same refusal.
func roundTrip<Layer>(_ file: SafeTensorsFile, _ what: String, load: (SafeTensorsFile) throws -> Layer,
                      save: (Layer) throws -> SafeTensorsFile, inputs: KeyPath<Layer, Int>,
                      run: (Layer, [Float]) throws -> [Float]) {
    var loaded: Layer?
    refusedOnlyWithQGEMMError { loaded = try load(file) }
    guard let layer = loaded else { return }
    let saved = mustNotThrow("saving a loaded \(what)") { try save(layer) }
    let reloaded = mustNotThrow("loading a saved \(what)") { try load(saved) }
    let resaved = mustNotThrow("saving a reloaded \(what)") { try save(reloaded) }
    precondition(resaved == saved, "a loaded \(what) does not save as it was loaded")
    let x = [Float](repeating: 0.5, count: layer[keyPath: inputs] * 2)
    sameOutcome({ try run(layer, x) }, { try run(reloaded, x) }, "a reloaded \(what)")
}

/// Edits the header as JSON (see SafeTensorsMutator), mixed with libFuzzer's
/// byte-level edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateSafeTensors(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in SafeTensorsMutator.mutate(bytes, maxSize: maxSize, &rng) }
}
