import Dispatch
import EncoderKernels
import Foundation
import QGEMM
import QGEMMBaseline

/// A BERT sentence encoder (all-MiniLM-L6-v2 and its kin): token, position
/// and type embeddings with LayerNorm; layers of multi-head self-attention,
/// residual and LayerNorm, an erf-GELU feed-forward block, residual and
/// LayerNorm; mean pooling over each sentence's tokens and L2 normalization.
///
/// Every Linear layer is int8 (``Precision/int8(_:)``, dynamic
/// ``QuantizedLinear``) or Float (``Precision/float``, OpenBLAS sgemm), or
/// follows a ``LayerRecipe`` of its own (calibrated static or static-input
/// int8, and 4-bit weights, among them); the rest of the model is the same
/// Float code either way. When Q, K and V are Float, dynamic or 4-bit
/// alike they share one fused layer (their weights stacked), which gives the
/// same values as three; 4-bit ones with searched scales are searched
/// together, so that they share their smoothing factors. Calibrated int8
/// ones, whose input parameters are each layer's own, run as three.
///
/// A batch's sentences are stacked row by row without padding: attention runs
/// per sentence over its own tokens, which is what a padding mask does, and
/// no padded position is ever computed.
///
/// One encoder may embed from several tasks at once; the values do not
/// change. The Float path sets OpenBLAS's thread count for its calls and
/// restores it after, and that count is one per process: two Float embeds
/// running at once may each run their sgemm on the other's count (the same
/// values, other speeds) and leave the one the last to finish found.
public final class SentenceEncoder: Sendable {
    struct Layer: Sendable {
        let qkv: LinearLayer
        let attentionOutput: LinearLayer
        let attentionNorm: BertWeights.Norm
        let intermediate: LinearLayer
        let output: LinearLayer
        let outputNorm: BertWeights.Norm
        /// The Linear layers' names (``linearNames(layer:)``).
        let names: [String]
        /// Whether all four Linear layers run in Float.
        var isFloat: Bool { [qkv, attentionOutput, intermediate, output].allSatisfy(\.isFloat) }
    }

    public let config: BertConfig
    public let tokenizer: WordPieceTokenizer
    let embeddings: (word: [Float], position: [Float], type: [Float], norm: BertWeights.Norm)
    let layers: [Layer]
    /// The calibrated layers by name (what ``saveLayers(to:)`` writes):
    /// static and static-input int8 ones, 4-bit ones with searched scales,
    /// and those loaded from a folder.
    let calibratedLayers: [String: QuantizedLinear]
    /// The fingerprint of the checkpoint layer each calibrated layer was
    /// made from (SavedLayersManifest), by name: what ``saveLayers(to:)``
    /// writes beside it.
    let calibratedSources: [String: String]
    /// A layer with per-tensor input parameters sees the whole batch at once.
    let wholeBatch: Bool
    /// How attention's two products run (Float unless the init said int8).
    public let attentionProducts: AttentionProducts

    /// Every Linear layer in one precision.
    /// `attention` chooses how attention's two products run (Float by default).
    public convenience init(checkpoint: Checkpoint, precision: Precision, attention: AttentionProducts = .float) throws {
        try self.init(checkpoint: checkpoint, recipe: { _ in precision.recipe }, calibration: nil, attention: attention)
    }

    /// Each Linear layer as `recipe(name)` says (names from
    /// ``linearNames(layer:)``). Calibrated recipes take their layer's inputs
    /// from `calibration` (``CalibrationInputs/init(checkpoint:sentences:)``).
    /// `progress`, if given, is called before each encoder layer is built
    /// with its index and the number of layers (searched 4-bit layers take
    /// seconds each).
    public convenience init(checkpoint: Checkpoint, recipe: (String) throws -> LayerRecipe,
                            calibration: CalibrationInputs?, attention: AttentionProducts = .float,
                            progress: ((_ layer: Int, _ of: Int) -> Void)? = nil) throws {
        try self.init(checkpoint: checkpoint, source: { .recipe(try recipe($0)) }, calibration: calibration, attention: attention,
                      progress: progress)
    }

    /// Every Linear layer given, by name, with the fingerprints of their
    /// checkpoint layers where already taken (SavedLayersManifest).
    convenience init(checkpoint: Checkpoint, loaded: [String: QuantizedLinear], sources: [String: String] = [:]) throws {
        try self.init(checkpoint: checkpoint, source: { name in
            guard let q = loaded[name] else { throw QGEMMError(.invalidArgument, "no layer \(name)") }
            return .loaded(q, source: sources[name])
        }, calibration: nil)
    }

    /// Where a Linear layer comes from: built by a recipe, or already built.
    enum LayerSource {
        case recipe(LayerRecipe)
        /// With the fingerprint of its checkpoint layer, if already taken.
        case loaded(QuantizedLinear, source: String?)
    }

    init(checkpoint: Checkpoint, source: (String) throws -> LayerSource, calibration: CalibrationInputs?,
         attention: AttentionProducts = .float, progress: ((Int, Int) -> Void)? = nil) throws {
        config = checkpoint.config
        attentionProducts = attention
        tokenizer = checkpoint.tokenizer
        let w = checkpoint.weights
        embeddings = (w.wordEmbeddings, w.positionEmbeddings, w.tokenTypeEmbeddings, w.embeddingNorm)
        var calibrated: [String: QuantizedLinear] = [:], calibratedFrom: [String: String] = [:], perTensor = false
        layers = try w.layers.enumerated().map { l, weights in
            progress?(l, w.layers.count)
            let names = Self.linearNames(layer: l)
            let sources = try names.map(source)
            let parts = weights.linears
            // A calibrated (or loaded) layer and the checkpoint layer it stands for.
            func keep(_ i: Int, _ q: QuantizedLinear, source: String? = nil) {
                calibrated[names[i]] = q
                calibratedFrom[names[i]] = source ?? SavedLayersManifest.checkpointFingerprint(parts[i])
            }
            // Layers `slots` (one, or several that read one input) with 4-bit weights whose
            // AWQ-style scales are searched over their stacked weights, as one call; each is
            // kept (and saved) as its own channels of it, the same bits.
            func searched(_ slots: [Int], groupSize: Int, compensation: Int4Weights.ErrorCompensation,
                          activations: Int4Weights.Activations) throws -> LinearLayer {
                guard let inputs = calibration?.inputs[names[slots[0]]] else {
                    throw QGEMMError(.invalidArgument, "layer \(names[slots[0]]) searches its 4-bit scales, but there are no calibration inputs for it")
                }
                let stacked = slots.map { parts[$0] }
                let w = try Int4Weights.searchingScales(
                    weights: stacked.flatMap(\.weight), outputChannels: stacked.reduce(0) { $0 + $1.outputs },
                    inputChannels: stacked[0].inputs, groupSize: groupSize, bias: stacked.flatMap(\.bias),
                    calibrationInput: inputs.values, rows: inputs.rows, errorCompensation: compensation, activations: activations).weights
                let q = QuantizedLinear(w)
                var start = 0
                for (i, part) in zip(slots, stacked) {
                    keep(i, slots.count == 1 ? q : QuantizedLinear(try w.channels(start..<start + part.outputs)))
                    start += part.outputs
                }
                return .quantized(q)
            }
            func recipe(_ i: Int) -> LayerRecipe? {
                if case .recipe(let r) = sources[i] { return r }
                return nil
            }
            perTensor = perTensor || names.indices.contains { recipe($0) == .dynamic(.perTensor) }
            func layer(_ slots: Range<Int>) throws -> LinearLayer {
                // Float, dynamic or int4 alike: one fused layer (int4 groups
                // run along K, so stacking output channels changes no group).
                if let r = recipe(slots.lowerBound), r == .float || r == .orderedFloat || r.modeName == "dynamic" || r.modeName == "int4",
                   slots.allSatisfy({ recipe($0) == r }) {
                    return try .fused(Array(parts[slots]), recipe: r)
                }
                // Searched 4-bit layers that read one input (query, key and value): one
                // search for them all, as AWQ scales the three together, so that they
                // share their smoothing factors and run as one call.
                if slots.count > 1, let r = recipe(slots.lowerBound), case .int4Searched(let groupSize, let compensation, let activations) = r,
                   slots.allSatisfy({ recipe($0) == r }) {
                    return try searched(Array(slots), groupSize: groupSize, compensation: compensation, activations: activations)
                }
                // Loaded 4-bit layers that can run as one call with the same bits.
                let loaded4 = slots.compactMap { i -> Int4Weights? in
                    if case .loaded(let q, _) = sources[i] { return q.int4Weights }
                    return nil
                }
                if slots.count > 1, loaded4.count == slots.count, let w = try Int4Weights.stacked(loaded4) {
                    for i in slots {
                        if case .loaded(let q, let source) = sources[i] { keep(i, q, source: source) }
                    }
                    return .quantized(QuantizedLinear(w))
                }
                let built = try slots.map { i -> LinearLayer in
                    switch sources[i] {
                    case .loaded(let q, let source):
                        keep(i, q, source: source)
                        return .quantized(q)
                    case .recipe(.calibrated(let mode, let observer, let alpha)):
                        guard let inputs = calibration?.inputs[names[i]] else {
                            throw QGEMMError(.invalidArgument, "layer \(names[i]) is calibrated, but there are no calibration inputs for it")
                        }
                        let q = try LinearLayer.calibrate(parts[i], mode: mode, observer: observer, smoothingAlpha: alpha, on: inputs)
                        keep(i, q)
                        return .quantized(q)
                    case .recipe(.int4Searched(let groupSize, let compensation, let activations)):
                        return try searched([i], groupSize: groupSize, compensation: compensation, activations: activations)
                    case .recipe(let r):
                        return try .fused([parts[i]], recipe: r)
                    }
                }
                return built.count == 1 ? built[0] : .stacked(built)
            }
            return Layer(qkv: try layer(0..<3), attentionOutput: try layer(3..<4), attentionNorm: weights.attentionNorm,
                         intermediate: try layer(4..<5), output: try layer(5..<6), outputNorm: weights.outputNorm, names: names)
        }
        calibratedLayers = calibrated
        calibratedSources = calibratedFrom
        wholeBatch = perTensor
        chunkRowsPerThread = layers.allSatisfy(\.isFloat) ? Self.floatChunkRowsPerThread : Self.int8ChunkRowsPerThread
    }

    /// The unit-length embedding of each sentence, in order.
    public func embed(_ sentences: [String], threads: Int = 1) throws -> [[Float]] {
        var profile = EncoderProfile()
        return try embed(sentences, threads: threads, profile: &profile)
    }

    /// ``embed(_:threads:)`` that also adds where the time went to `profile`.
    public func embed(_ sentences: [String], threads: Int, profile: inout EncoderProfile) throws -> [[Float]] {
        let t0 = EncoderProfile.now()
        let batch = tokenizer.encodeBatch(sentences)
        profile.rest += EncoderProfile.now() - t0
        return try embed(batch, threads: threads, profile: &profile)
    }

    /// Rows (tokens) per thread the encoder takes through its layers at
    /// once (``chunkRowsPerThread``). A larger batch goes in chunks of whole
    /// sentences, so that a layer's input, output and quantized copy stay in
    /// cache (at 4,096 rows the FFN's 1,536 columns alone are 25 MB). Rows
    /// are independent in every step but attention, which stays within a
    /// sentence, so chunks change no int8 bit (in Float, at most how OpenBLAS
    /// rounds a different M), except with per-tensor input parameters: those
    /// span the whole batch, which then goes in one piece.
    ///
    /// With QGEMM layers (int8, or 4-bit weights), 192 rows: the FFN's 1,536
    /// Float columns are then 1.2 MB, and its input quantization and GELU
    /// find them in the L2.
    /// Emerald Rapids (2 MiB L2), one thread, fastest of four interleaved
    /// rounds: batch 32 at 128 tokens 249.7 ms at 512 rows, 236.8 at 192,
    /// 241.7 at 128; batch 8 at 128 tokens 61.9, 60.8, 60.1; the 32
    /// evaluation sentences 18.1, 17.6, 17.5.
    public static let int8ChunkRowsPerThread = 192
    /// With every Linear layer in Float, 512 rows: at 192, OpenBLAS's sgemm
    /// took 9–13 % longer over batch 32 at 128 tokens (3,105–3,231 ms against
    /// 2,847, the same machine).
    public static let floatChunkRowsPerThread = 512
    /// This encoder's rows per thread at once: ``floatChunkRowsPerThread``
    /// when every Linear layer is Float, else ``int8ChunkRowsPerThread``.
    public let chunkRowsPerThread: Int

    /// The embeddings of an already tokenized batch (its padding is ignored).
    /// An empty sequence gets an empty embedding.
    public func embed(_ batch: TokenBatch, threads: Int, profile: inout EncoderProfile) throws -> [[Float]] {
        try embed(batch, threads: threads, profile: &profile, tap: nil)
    }

    /// ``embed(_:threads:profile:)`` with every Linear layer's input and
    /// output shown to `tap`.
    func embed(_ batch: TokenBatch, threads: Int, profile: inout EncoderProfile, tap: LinearTap?) throws -> [[Float]] {
        // QGEMM's own limit, which also bounds the attention scratch checkWorkingSet counts.
        guard (1...1024).contains(threads) else { throw QGEMMError(.invalidValue, "threads must be in 1...1024, got \(threads)") }
        for ids in batch.sequences {
            guard ids.count <= config.maxPositions else {
                throw QGEMMError(.invalidShape, "a sequence of \(ids.count) tokens exceeds max_position_embeddings \(config.maxPositions)")
            }
            guard ids.allSatisfy({ $0 >= 0 && $0 < config.vocabularySize }) else {
                throw QGEMMError(.invalidValue, "a token id is outside the vocabulary of \(config.vocabularySize)")
            }
        }
        let sequences = batch.sequences
        // Several sentences and threads: each thread takes a share of the
        // sentences (about the same number of tokens each) through the whole
        // model alone, which scales better than sharing every step; the bits
        // are the same, since rows are independent. One sentence, per-tensor
        // parameters (the whole batch at once) or a tap share every step.
        let workers = min(threads, sequences.count)
        guard workers > 1, !wholeBatch, tap == nil else {
            return try embedChunks(sequences[...], threads: threads, profile: &profile, tap: tap)
        }
        let cuts = Self.shareBounds(sequences.map(\.count), workers: workers)
        let shares = cuts.count - 1
        // The shares run at once, each with its own buffers: together they
        // must fit where one chunk alone must (checkWorkingSet). Where they
        // would not, the sentences go through in turn, every step shared.
        let together = (0..<shares).reduce(0.0) { total, w in
            total + shareWorkingSetBytes(sequences[cuts[w]..<cuts[w + 1]].map(\.count))
        }
        guard together <= Double(CPUFeatures.usableMemoryBytes()) / 2 else {
            return try embedChunks(sequences[...], threads: threads, profile: &profile, tap: tap)
        }
        let results = ShareResults(count: shares)
        let blasThreads = BLAS.threads
        BLAS.threads = 1
        defer { BLAS.threads = blasThreads }
        // Dispatch's threads keep whatever floating-point state they have;
        // each share takes the caller's (rounding mode, flush to zero), as
        // QGEMM's pool does, so that it computes what the calling thread
        // would, whichever thread runs it.
        var callerState = fenv_t()
        fegetenv(&callerState)
        let caller = callerState
        DispatchQueue.concurrentPerform(iterations: shares) { w in
            var previous = fenv_t(), state = caller
            fegetenv(&previous)
            fesetenv(&state)
            defer { fesetenv(&previous) }
            var own = EncoderProfile()
            do {
                let e = try embedChunks(sequences[cuts[w]..<cuts[w + 1]], threads: 1, profile: &own, tap: nil)
                results.set(w, .success((e, own)))
            } catch {
                results.set(w, .failure(error))
            }
        }
        var embeddings: [[Float]] = []
        embeddings.reserveCapacity(sequences.count)
        for result in results.all {
            let (e, own) = try result.get()
            embeddings += e
            profile.linear += own.linear; profile.quantization += own.quantization
            profile.attention += own.attention; profile.rest += own.rest
        }
        return embeddings
    }

    /// Where `workers` shares of sentences with these token counts begin,
    /// then the end (workers + 1 ascending indices, 1 ≤ workers ≤ count):
    /// each cut at the sentence boundary nearest its share of the tokens,
    /// every share at least one sentence.
    static func shareBounds(_ tokens: [Int], workers: Int) -> [Int] {
        var prefix = [0], running = 0
        for t in tokens { running += t; prefix.append(running) }
        var bounds = [0]
        for w in 1..<max(workers, 1) {
            let target = Double(running) * Double(w) / Double(workers)
            let lowest = bounds[bounds.count - 1] + 1, highest = tokens.count - (workers - w)
            guard lowest <= highest else { break }
            var best = lowest
            for c in lowest...highest where abs(Double(prefix[c]) - target) < abs(Double(prefix[best]) - target) { best = c }
            bounds.append(best)
        }
        bounds.append(tokens.count)
        return bounds
    }

    /// The sentences in chunks of whole sentences of at most
    /// ``chunkRowsPerThread`` × `threads` rows (one chunk with per-tensor
    /// parameters), each chunk through every layer.
    private func embedChunks(_ sequences: ArraySlice<[Int32]>, threads: Int, profile: inout EncoderProfile,
                             tap: LinearTap?) throws -> [[Float]] {
        let chunkRows = chunkRowsPerThread * min(threads, 1024)
        // encode sets OpenBLAS's process-wide thread count; the caller gets its own back.
        let blasThreads = BLAS.threads
        defer { BLAS.threads = blasThreads }
        var buffers = Buffers()
        var embeddings: [[Float]] = []
        embeddings.reserveCapacity(sequences.count)
        var start = sequences.startIndex
        while start < sequences.endIndex {
            var end = start + 1, rows = sequences[start].count
            while end < sequences.endIndex && (wholeBatch || rows + sequences[end].count <= chunkRows) {
                rows += sequences[end].count
                end += 1
            }
            embeddings += try encode(sequences[start..<end], threads: threads, profile: &profile, tap: tap, buffers: &buffers)
            start = end
        }
        return embeddings
    }

    /// The activations of one chunk, kept from chunk to chunk of a call so
    /// that each chunk reuses the memory (and its pages) of the one before.
    /// Every buffer is written whole before it is read.
    struct Buffers {
        var hidden: [Float] = [], qkv: [Float] = [], context: [Float] = [], attended: [Float] = [], inner: [Float] = []
        var workspace = QuantizedLinear.Workspace()
        /// A stacked layer's parts' outputs, before they go to their columns.
        var stackedParts: [Float] = []
        /// A dynamic layer's input, quantized (the layer's first half).
        var input = QuantizedLinear.DynamicInput()
        /// Each attention worker's buffers, kept from layer to layer and
        /// chunk to chunk.
        var attentionWork: [AttentionWork] = []

        /// Sizes the buffers for `rows` rows, keeping their memory.
        mutating func fit(rows: Int, hidden h: Int, intermediate: Int) {
            func fit(_ a: inout [Float], _ n: Int) {
                if a.count > n { a.removeLast(a.count - n) } else if a.count < n { a.append(contentsOf: repeatElement(0, count: n - a.count)) }
            }
            fit(&hidden, rows * h); fit(&qkv, rows * 3 * h); fit(&context, rows * h); fit(&attended, rows * h)
            fit(&inner, rows * intermediate)
        }
    }

    /// One chunk of ``embed(_:threads:profile:)``: its sentences stacked row
    /// by row through every layer.
    private func encode(_ sequences: ArraySlice<[Int32]>, threads: Int, profile: inout EncoderProfile,
                        tap: LinearTap?, buffers b: inout Buffers) throws -> [[Float]] {
        let h = config.hiddenSize, lengths = sequences.map(\.count)
        let rows = lengths.reduce(0, +)
        guard rows > 0 else { return sequences.map { _ in [] } }
        try checkWorkingSet(rows: rows, longest: lengths.max() ?? 0, threads: threads)
        BLAS.threads = threads
        var clock = EncoderProfile.now()
        func lap(_ part: WritableKeyPath<EncoderProfile, Double>) {
            let now = EncoderProfile.now()
            profile[keyPath: part] += now - clock
            clock = now
        }
        b.fit(rows: rows, hidden: h, intermediate: config.intermediateSize)
        var row = 0
        for ids in sequences {
            for (position, id) in ids.enumerated() {
                let word = Int(id) * h, pos = position * h, base = row * h
                for j in 0..<h {
                    b.hidden[base + j] = embeddings.word[word + j] + embeddings.position[pos + j] + embeddings.type[j]
                }
                row += 1
            }
        }
        Self.layerNorm(&b.hidden, residual: nil, rows: rows, h, embeddings.norm, config.layerNormEpsilon, threads: threads)
        lap(\.rest)
        for layer in layers {
            func run(_ linear: LinearLayer, _ slots: Range<Int>, _ x: [Float], _ y: inout [Float],
                     _ workspace: inout QuantizedLinear.Workspace, _ input: inout QuantizedLinear.DynamicInput,
                     _ parts: inout [Float]) throws {
                do {
                    try self.linear(linear, x, rows, &y, &workspace, &input, &parts, threads, &profile, &clock)
                } catch let e as QGEMMError where e.code == .invalidValue {
                    // A value the layer cannot quantize (NaN or ±Inf) comes from the
                    // model itself: its values overflowed Float on the way here.
                    throw QGEMMError(.invalidValue, "\(layer.names[slots].joined(separator: ", ")): \(e.message); the model's "
                                     + "values overflow Float before this layer (damaged weights in model.safetensors?)")
                }
                if let tap {
                    try tap.record(Array(layer.names[slots]), input: x, rows: rows, k: x.count / rows, output: y,
                                   outputs: linear.outputs)
                    clock = EncoderProfile.now()
                }
            }
            try run(layer.qkv, 0..<3, b.hidden, &b.qkv, &b.workspace, &b.input, &b.stackedParts)
            try attention(b.qkv, lengths: lengths, into: &b.context, work: &b.attentionWork, threads: threads)
            lap(\.attention)
            try run(layer.attentionOutput, 3..<4, b.context, &b.attended, &b.workspace, &b.input, &b.stackedParts)
            Self.layerNorm(&b.attended, residual: b.hidden, rows: rows, h, layer.attentionNorm, config.layerNormEpsilon,
                           threads: threads)
            lap(\.rest)
            try run(layer.intermediate, 4..<5, b.attended, &b.inner, &b.workspace, &b.input, &b.stackedParts)
            Self.gelu(&b.inner, rows: rows, config.intermediateSize, threads: threads)
            lap(\.rest)
            try run(layer.output, 5..<6, b.inner, &b.hidden, &b.workspace, &b.input, &b.stackedParts)
            Self.layerNorm(&b.hidden, residual: b.attended, rows: rows, h, layer.outputNorm, config.layerNormEpsilon,
                           threads: threads)
            lap(\.rest)
        }
        var out: [[Float]] = []
        out.reserveCapacity(lengths.count)
        var start = 0
        for t in lengths {
            guard t > 0 else { out.append([]); continue }
            var e = [Float](repeating: 0, count: h)
            b.hidden.withUnsafeBufferPointer { hb in
                e.withUnsafeMutableBufferPointer { enc_mean_pool_normalize(hb.baseAddress! + start * h, t, h, $0.baseAddress) }
            }
            // Finite weights can still overflow Float on the way (a LayerNorm
            // of scale 3e38, say); say so rather than return NaN.
            guard e.allSatisfy(\.isFinite) else {
                throw QGEMMError(.invalidValue, "a sentence's embedding is not finite: the model's values overflow Float (damaged weights in model.safetensors?)")
            }
            // A mean of zeros has no direction to give a unit vector (zero
            // weights of the last LayerNorm, say): not an embedding.
            guard e.contains(where: { $0 != 0 }) else {
                throw QGEMMError(.invalidValue, "a sentence's mean hidden state is zero, so it has no direction to embed (damaged weights in model.safetensors?)")
            }
            out.append(e)
            start += t
        }
        lap(\.rest)
        return out
    }

    /// Refuses a chunk whose activations (rows × (6·hidden + intermediate)
    /// floats, and each attention worker's scores for the longest sentence)
    /// would take more than half of the memory this process may use: a small
    /// checkpoint with a wide intermediate size or many positions could
    /// otherwise ask for more than there is and end the process.
    private func checkWorkingSet(rows: Int, longest: Int, threads: Int) throws {
        let bytes = workingSetBytes(rows: rows, longest: longest, threads: threads)
        let usable = Double(CPUFeatures.usableMemoryBytes())
        guard bytes <= usable / 2 else {
            throw QGEMMError(.invalidShape, String(format: "%d tokens (the longest %d) need %.1f GiB of activations with hidden_size %d and intermediate_size %d, more than half of the %.1f GiB this process may use",
                                                  rows, longest, bytes / 1_073_741_824, config.hiddenSize, config.intermediateSize, usable / 1_073_741_824))
        }
    }

    /// The bytes of activations and attention scratch a chunk of `rows` rows
    /// whose longest sentence has `longest` tokens holds on `threads` threads.
    func workingSetBytes(rows: Int, longest: Int, threads: Int) -> Double {
        4 * (Double(rows) * Double(6 * config.hiddenSize + config.intermediateSize)
             + Double(min(threads, 1024)) * Double(enc_attention_scratch_count(longest, config.headSize)))
    }

    /// The most bytes a share of sentences of these token counts holds at
    /// once on one thread: its largest chunk (at most a thread's chunk of rows,
    /// or its longest sentence where that is longer, as embedChunks cuts them).
    func shareWorkingSetBytes(_ tokens: [Int]) -> Double {
        let longest = tokens.max() ?? 0
        let rows = min(tokens.reduce(0, +), max(chunkRowsPerThread, longest))
        return workingSetBytes(rows: rows, longest: longest, threads: 1)
    }

    /// One Linear layer, timed into `profile.linear`. A dynamic int8 layer
    /// runs in its two halves (the input quantized into `input`, then the
    /// GEMM on it: the bits of one call), and the first half's time also goes
    /// to `profile.quantization`.
    private func linear(_ layer: LinearLayer, _ x: [Float], _ rows: Int, _ y: inout [Float],
                        _ workspace: inout QuantizedLinear.Workspace, _ input: inout QuantizedLinear.DynamicInput,
                        _ parts: inout [Float], _ threads: Int, _ profile: inout EncoderProfile, _ clock: inout Double) throws {
        if case .quantized(let q) = layer, case .dynamic = q.mode {
            try x.withUnsafeBufferPointer { try q.quantizeDynamicInput($0, rows: rows, into: &input, threads: threads) }
            let quantized = EncoderProfile.now()
            profile.quantization += quantized - clock
            try y.withUnsafeMutableBufferPointer { try q(input, into: $0, threads: threads) }
        } else {
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try layer(xb, rows: rows, into: yb, workspace: &workspace, parts: &parts, threads: threads)
                }
            }
        }
        let now = EncoderProfile.now()
        profile.linear += now - clock
        clock = now
    }

    /// x ← LayerNorm(x + residual) row by row.
    static func layerNorm(_ x: inout [Float], residual: [Float]?, rows: Int, _ n: Int, _ norm: BertWeights.Norm, _ eps: Float,
                          threads: Int) {
        x.withUnsafeMutableBufferPointer { xb in
            norm.gamma.withUnsafeBufferPointer { g in
                norm.beta.withUnsafeBufferPointer { b in
                    // proof: x holds rows × n values, and `rows` > 0 wherever a layer runs.
                    nonisolated(unsafe) let (x, gamma, beta) = (xb.baseAddress!, g.baseAddress, b.baseAddress)
                    guard let residual else {
                        forEachRowPiece(rows: rows, columns: n, threads: threads) { r in
                            enc_add_layer_norm(x + r.lowerBound * n, nil, r.count, n, gamma, beta, eps)
                        }
                        return
                    }
                    residual.withUnsafeBufferPointer { rb in
                        nonisolated(unsafe) let add = rb.baseAddress!
                        forEachRowPiece(rows: rows, columns: n, threads: threads) { r in
                            enc_add_layer_norm(x + r.lowerBound * n, add + r.lowerBound * n, r.count, n, gamma, beta, eps)
                        }
                    }
                }
            }
        }
    }

    /// erf-GELU of `rows` rows of `n` values, in place.
    static func gelu(_ x: inout [Float], rows: Int, _ n: Int, threads: Int) {
        x.withUnsafeMutableBufferPointer { xb in
            // proof: x holds rows × n values, and `rows` > 0 wherever a layer runs.
            nonisolated(unsafe) let x = xb.baseAddress!
            forEachRowPiece(rows: rows, columns: n, threads: threads) { r in enc_gelu_erf(x + r.lowerBound * n, r.count * n) }
        }
    }

    /// Values below which a row-wise step stays on one thread: waking a
    /// pool worker and handing it a piece costs about as much as a
    /// LayerNorm of that many values.
    static let valuesPerPiece = 1 << 13

    /// `body` over rows 0..<rows in contiguous pieces, one per thread of
    /// QGEMM's ``WorkerPool`` (at most one per ``valuesPerPiece`` values),
    /// or in one piece on this thread. Each row's values are computed alone,
    /// so the pieces change no bit.
    static func forEachRowPiece(rows: Int, columns: Int, threads: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let pieces = max(1, min(threads, rows, rows * columns / valuesPerPiece))
        guard pieces > 1 else {
            if rows > 0 { body(0..<rows) }
            return
        }
        // proof: pieces is in 2...threads ≤ 1024, which forEachTask takes.
        try! WorkerPool.forEachTask(pieces, threads: pieces) { p, _ in body((p * rows / pieces)..<((p + 1) * rows / pieces)) }
    }

    /// Scaled dot-product attention of every sentence and head: Q, K and V are
    /// the three column blocks of `qkv` [rows × 3H]; each head's context goes
    /// to its columns of `context` [rows × H]. Both products and the softmax
    /// of one (sentence, head) are one C kernel (`enc_attention_head`), in
    /// Float; with ``AttentionProducts/int8`` the products are QGEMM's
    /// ``ActivationProduct`` instead, around the same softmax step
    /// (`enc_softmax_rows`), each context row then times its 1 / sum.
    private func attention(_ qkv: [Float], lengths: [Int], into context: inout [Float], work: inout [AttentionWork],
                           threads: Int) throws {
        let h = config.hiddenSize, d = config.headSize
        let scale = 1 / Float(d).squareRoot(), longest = lengths.max() ?? 0
        guard attentionProducts == .int8 else {
            let scratchCount = enc_attention_scratch_count(longest, d)
            try forEachHead(qkv, lengths: lengths, into: &context, work: &work, threads: threads,
                            prepare: { $0.scores.grow(to: scratchCount) }) { work, t, q, out in
                work.scores.withUnsafeMutableBufferPointer { sb in
                    enc_attention_head(q, q + h, q + 2 * h, 3 * h, t, d, scale, out, h, sb.baseAddress)
                }
            }
            return
        }
        // Scores rows t rounded up to 16 apart: the softmax's last masked step writes that far.
        let padded = (longest + 15) / 16 * 16
        try forEachHead(qkv, lengths: lengths, into: &context, work: &work, threads: threads,
                        prepare: { $0.scores.grow(to: longest * padded); $0.inv.grow(to: longest) }) { work, t, q, out in
            guard t > 0 else { return }
            let tp = (t + 15) / 16 * 16, span = (t - 1) * 3 * h + d
            let (queries, keys, values) = (UnsafeBufferPointer(start: q, count: span), UnsafeBufferPointer(start: q + h, count: span),
                                           UnsafeBufferPointer(start: q + 2 * h, count: span))
            let context = UnsafeMutableBufferPointer(start: out, count: (t - 1) * h + d)
            try work.scores.withUnsafeMutableBufferPointer { sb in
                try work.inv.withUnsafeMutableBufferPointer { ib in
                    let scores = UnsafeMutableBufferPointer(rebasing: sb[0..<(t * tp)])
                    try work.product.multiply(queries, rows: t, inputChannels: d, rowStride: 3 * h, by: keys, outputChannels: t,
                                              layout: .outputMajor, bRowStride: 3 * h, into: scores, outputRowStride: tp, threads: 1)
                    enc_softmax_rows(scores.baseAddress, t, t, tp, scale, ib.baseAddress)
                    try work.product.multiply(UnsafeBufferPointer(scores), rows: t, inputChannels: t, rowStride: tp, by: values,
                                              outputChannels: d, layout: .inputMajor, bRowStride: 3 * h, into: context,
                                              outputRowStride: h, threads: 1)
                    enc_scale_rows(context.baseAddress, t, d, h, ib.baseAddress)
                }
            }
        }
    }

    /// Runs `body(work, t, q, out)` for every (sentence, head): t the
    /// sentence's tokens, q its head's first Q value (K h and V 2h further,
    /// rows 3h apart), out its first context value (rows h apart). With
    /// several threads the pairs are tasks of QGEMM's ``WorkerPool``, one at
    /// a time to whichever thread is free, each thread with `work[worker]`
    /// (grown here, each made ready by `prepare`) kept from layer to layer.
    /// The pool's workers are the GEMMs' own, still awake after the QKV
    /// projection; Dispatch's took as long to wake as a short sentence's
    /// heads take to run. A thread that meets an error skips its later
    /// pairs; one of the errors met is thrown after all have ended.
    private func forEachHead(_ qkv: [Float], lengths: [Int], into context: inout [Float], work: inout [AttentionWork],
                             threads: Int, prepare: (inout AttentionWork) -> Void,
                             _ body: @escaping @Sendable (inout AttentionWork, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let h = config.hiddenSize, heads = config.attentionHeads, d = config.headSize
        var offsets: [Int] = [], s = 0
        for t in lengths { offsets.append(s); s += t }
        let starts = offsets
        let tasks = lengths.count * heads
        let workers = min(threads, tasks)
        guard workers > 0 else { return }
        if work.count < workers { work += (work.count..<workers).map { _ in AttentionWork() } }
        for w in 0..<workers { prepare(&work[w]) }
        var errors = [Error?](repeating: nil, count: workers)
        try qkv.withUnsafeBufferPointer { qkvBuffer in
            try context.withUnsafeMutableBufferPointer { contextBuffer in
                try work.withUnsafeMutableBufferPointer { workBuffer in
                    try errors.withUnsafeMutableBufferPointer { errorBuffer in
                        // Each (sentence, head) writes its own columns of
                        // `context`; each thread its own element of `work`
                        // and of `errors` (the pool's worker index).
                        // proof: embed returns before attention when there are no rows.
                        nonisolated(unsafe) let q = qkvBuffer.baseAddress!, c = contextBuffer.baseAddress!
                        nonisolated(unsafe) let own = workBuffer.baseAddress!, failed = errorBuffer.baseAddress!
                        try WorkerPool.forEachTask(tasks, threads: workers) { task, worker in
                            guard failed[worker] == nil else { return }
                            let sentence = task / heads, head = task % heads
                            do {
                                try body(&own[worker], lengths[sentence], q + starts[sentence] * 3 * h + head * d,
                                         c + starts[sentence] * h + head * d)
                            } catch {
                                failed[worker] = error
                            }
                        }
                    }
                }
            }
        }
        if let error = errors.lazy.compactMap({ $0 }).first { throw error }
    }
}

/// One attention worker's buffers: the Float kernel's scratch (in
/// `scores`), or for int8 its ``ActivationProduct`` and a head's scores and
/// 1 / sums.
struct AttentionWork {
    var product = ActivationProduct()
    var scores: [Float] = [], inv: [Float] = []
}

extension Array where Element == Float {
    /// At least `count` elements (zeros added), keeping what it holds.
    mutating func grow(to count: Int) {
        if self.count < count { self += repeatElement(0, count: count - self.count) }
    }
}

/// How attention's two products, the scores Q·Kᵀ and the context P·V, run.
public enum AttentionProducts: String, Sendable, CaseIterable {
    /// In Float, each output one chain of fused multiply-adds
    /// (`enc_attention_head`): the same code for int8 and Float encoders.
    case float
    /// In int8 through QGEMM's ``ActivationProduct``: Q, K, the softmax's
    /// exponentials and V quantized per call (Q and P per row, K per key
    /// token, V per head dimension), int32 sums, Float out.
    case int8
}

/// The result of each share of a batch run on its own thread.
final class ShareResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<([[Float]], EncoderProfile), Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<([[Float]], EncoderProfile), Error>) { lock.lock(); results[i] = r; lock.unlock() }
    /// Every share's result, in order (call after all have finished).
    var all: [Result<([[Float]], EncoderProfile), Error>] {
        lock.lock(); defer { lock.unlock() }
        return results.map { $0 ?? .failure(QGEMMError(.invalidArgument, "a share of the batch did not finish")) }
    }
}
