// Any byte string is either parsed into a safetensors file and, when it holds a
// QuantizedLinear or Int4Weights, a layer, or refused with a QGEMMError; a
// parsed file and a loaded layer survive a save/load round trip unchanged.
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    refusedOnlyWithQGEMMError {
        let file = try SafeTensorsFile(bytes: bytes)
        let again = try SafeTensorsFile(bytes: try file.serialized())
        precondition(again == file, "write/read round trip changed the file")
        if file.metadata["format"] == Int4Weights.safeTensorsFormat {
            let weights = try Int4Weights(safeTensors: file)
            let saved = try weights.safeTensors()
            let reloaded = try Int4Weights(safeTensors: saved)
            let resaved = try reloaded.safeTensors()
            precondition(resaved == saved, "loaded 4-bit weights do not save as they were loaded")
            let x = [Float](repeating: 0.5, count: weights.inputChannels * 2)
            let y = try weights(x, rows: 2, threads: 1), y2 = try reloaded(x, rows: 2, threads: 1)
            precondition(sameBits(y, y2), "reloaded 4-bit weights give other bits")
            return
        }
        let layer = try QuantizedLinear(safeTensors: file)
        let saved = try layer.safeTensors()
        let reloaded = try QuantizedLinear(safeTensors: saved)
        let resaved = try reloaded.safeTensors()
        precondition(resaved == saved, "a loaded layer does not save as it was loaded")
        // Run it once on a small input: whatever loaded must compute.
        let x = [Float](repeating: 0.5, count: layer.inputChannels * 2)
        let y = try layer(x, rows: 2, threads: 1)
        let y2 = try reloaded(x, rows: 2, threads: 1)
        precondition(sameBits(y, y2), "a reloaded layer gives other bits")
    }
    return 0
}

/// Edits the header as JSON (see SafeTensorsMutator), mixed with libFuzzer's
/// byte-level edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateSafeTensors(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in SafeTensorsMutator.mutate(bytes, maxSize: maxSize, &rng) }
}
