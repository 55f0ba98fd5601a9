import FuzzHooks

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
