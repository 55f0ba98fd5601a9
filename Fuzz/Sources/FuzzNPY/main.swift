// Any byte string is either parsed into a valid array or refused with a
// QGEMMError; a parsed array survives a write/read round trip unchanged.
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    refusedOnlyWithQGEMMError {
        let array = try NPYArray(parsing: bytes)
        precondition(array.bytes.count == array.count * array.dtype.itemSize, "element bytes disagree with the shape")
        switch array.dtype {
        case .int8: _ = try array.int8Values()
        case .uint8: _ = try array.uint8Values()
        case .int32: _ = try array.int32Values()
        case .int64: _ = try? array.int32Values()
        case .float16, .float32, .float64: _ = try? array.floatValues()
        }
        let again = try NPYArray(parsing: array.fileBytes())
        precondition(again == array, "write/read round trip changed the array")
    }
    return 0
}

/// Edits the header as a Python dict (see NPYMutator), mixed with libFuzzer's
/// byte-level edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateNPY(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in NPYMutator.mutate(bytes, maxSize: maxSize, &rng) }
}
