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

/// What must not throw once its input was accepted (a parsed file saved and
/// read again, a loaded layer saved and loaded again): any error is a finding.
public func mustNotThrow<T>(_ what: String, _ body: () throws -> T) -> T {
    do { return try body() } catch {
        preconditionFailure("\(what) threw: \(error)")
    }
}

/// Two runs of one input, by a layer and by its reloaded copy: both return
/// the same bits, or both are refused with the same QGEMMError code (a valid
/// layer may refuse an input, say one its smoothing makes infinite).
public func sameOutcome(_ a: () throws -> [Float], _ b: () throws -> [Float], _ what: String) {
    func outcome(_ run: () throws -> [Float]) -> Result<[Float], QGEMMError> {
        do { return .success(try run()) } catch let e as QGEMMError { return .failure(e) } catch {
            preconditionFailure("\(what): unexpected error type: \(error)")
        }
    }
    switch (outcome(a), outcome(b)) {
    case (.success(let y), .success(let y2)): precondition(sameBits(y, y2), "\(what) gives other bits")
    case (.failure(let e), .failure(let e2)): precondition(e.code == e2.code, "\(what) is refused otherwise: \(e) vs \(e2)")
    case (let r, let r2): preconditionFailure("\(what): one run returned, the other threw (\(r) vs \(r2))")
    }
}

/// Whether two outputs hold the same bits. `==` on Float arrays is false
/// wherever both hold the same NaN, which a layer with extreme (but valid)
/// scales legitimately returns: S_X·S_W overflows to infinity and meets a
/// zero sum.
public func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }
}
