// Any byte string is either parsed into a valid array or refused with a
// QGEMMError; a parsed array reads as its own type and survives a write/read
// round trip unchanged, neither of which may throw.
import FuzzMutators
import QGEMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    var parsed: NPYArray?
    refusedOnlyWithQGEMMError { parsed = try NPYArray(parsing: bytes) }
    guard let array = parsed else { return 0 }
    // Accepted: its own type reads, and it writes and reads back, without a refusal.
    precondition(array.bytes.count == array.count * array.dtype.itemSize, "element bytes disagree with the shape")
    mustNotThrow("reading a parsed array's own type") {
        switch array.dtype {
        case .int8: _ = try array.int8Values()
        case .uint8: _ = try array.uint8Values()
        case .int32: _ = try array.int32Values()
        case .int64: _ = try? array.int32Values() // refused where a value passes Int32
        case .float16, .float32, .float64: _ = try? array.floatValues() // refused where a float64 passes Float
        }
    }
    let again = mustNotThrow("parsing a parsed array's bytes again") { try NPYArray(parsing: array.fileBytes()) }
    precondition(again == array, "write/read round trip changed the array")
    return 0
}

/// Edits the header as a Python dict (see NPYMutator), mixed with libFuzzer's
/// byte-level edits.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateNPY(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    customMutate(data, size, maxSize, seed) { bytes, maxSize, rng in NPYMutator.mutate(bytes, maxSize: maxSize, &rng) }
}
