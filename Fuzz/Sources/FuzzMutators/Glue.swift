import FuzzHooks
import QGEMM

/// The body of a target's `LLVMFuzzerCustomMutator`: most calls make one to
/// three structure-aware edits with `structured`; the rest, and every input
/// `structured` cannot read (it returns nil), get libFuzzer's byte-level edits,
/// so that the framing itself (lengths, magic, truncation) is fuzzed too.
public func customMutate(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32,
                         _ structured: ([UInt8], Int, inout FuzzRandom) -> [UInt8]?) -> Int {
    guard let data else { return 0 }
    var rng = FuzzRandom(seed: seed)
    if !rng.oneIn(4), let out = structured(Array(UnsafeBufferPointer(start: data, count: size)), maxSize, &rng),
       out.count <= maxSize {
        out.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: src.count) }
        }
        return out.count
    }
    return LLVMFuzzerMutate(data, size, maxSize)
}

/// One to three JSON-level edits of a JSON document (see JSONMutator); nil
/// when the bytes are not JSON this reader understands.
public func mutateJSONDocument(_ bytes: [UInt8], maxSize: Int, vocabulary: [String], _ rng: inout FuzzRandom) -> [UInt8]? {
    guard var json = JSONText.parse(bytes) else { return nil }
    let mutator = JSONMutator(vocabulary: vocabulary)
    for _ in 0...rng.below(3) { json = mutator.mutate(json, &rng) }
    let out = Array(json.text.utf8)
    return out.count <= maxSize ? out : nil
}

/// Runs a target's body: a QGEMMError is the documented refusal; any other
/// error is a finding.
public func refusedOnlyWithQGEMMError(_ body: () throws -> Void) {
    do { try body() } catch is QGEMMError {
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
}

/// Whether two outputs hold the same bits. `==` on Float arrays is false
/// wherever both hold the same NaN, which a layer with extreme (but valid)
/// scales legitimately returns: S_X·S_W overflows to infinity and meets a
/// zero sum.
public func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }
}
