import Foundation
import QGEMM
import SentenceEmbeddings

/// `embed --study FILE`: configurations of the Linear layers to measure on
/// the same calibration and evaluation sentences (scripts/minilm_check.py
/// writes the file):
///
/// ```json
/// {"calibration": ["…"], "evaluation": ["…"],
///  "configs": [{"label": "static-input-mse",
///               "default": {"mode": "static-input", "observer": "mse", "smooth": 0.5},
///               "layers": {"0.output.dense": {"mode": "dynamic", "granularity": "row"}}}]}
/// ```
///
/// Modes: float, dynamic (granularity row or tensor), int4 and int4-awq
/// ("group": the group size, default 32; "scales": absMax or minimizingError
/// for int4; int4-awq searches AWQ-style scales on the calibration sentences,
/// with minimizingError group scales, and with "gptq": a damping, also
/// GPTQ-style rounding; "activations": int8, the default, or uint8 with a
/// zero point per row), static and
/// static-input (observer minmax, moving, percentile with "percentile",
/// mse or entropy; "smooth": SmoothQuant's alpha). A key the mode does not
/// take, an unknown layer name or an unknown mode is refused, naming the file
/// and the configuration, before anything runs; the calibration sentences are
/// needed only by the calibrated modes (static, static-input, int4-awq).
/// Prints a JSON list of ``AccuracyStudy`` results (an exact layer's SQNR is
/// the string "Infinity").
struct StudySpec: Decodable {
    struct Recipe: Decodable {
        let mode: String
        let granularity: String?
        let observer: String?
        let percentile: Double?
        // Doubles, so that a value past Float's range reads as out of range, not as bad JSON.
        let smooth: Double?
        let group: Int?
        let scales: String?
        let gptq: Double?
        let activations: String?

        /// The keys each mode takes beside "mode" (checkKeys refuses others).
        static let keys: [String: Set<String>] = [
            "float": [], "dynamic": ["granularity"], "static": ["observer", "percentile", "smooth"],
            "static-input": ["observer", "percentile", "smooth"], "int4": ["group", "scales", "activations"],
            "int4-awq": ["group", "gptq", "activations"],
        ]

        /// The group size (default 32), checked by Int4Weights' own rule before anything runs.
        static func checkedGroup(_ group: Int?) throws -> Int {
            let g = group ?? 32
            try Int4Weights.checkGroupSize(g)
            return g
        }

        /// The 4-bit modes' activations (default int8).
        func checkedActivations() throws -> Int4Weights.Activations {
            guard let a = Int4Weights.Activations(rawValue: activations ?? "int8") else {
                throw QGEMMError(.invalidArgument, "activations \(activations ?? ""): int8 or uint8")
            }
            return a
        }

        /// Whether the recipe calibrates on the calibration sentences.
        var calibrated: Bool { ["static", "static-input", "int4-awq"].contains(mode) }

        func recipe() throws -> LayerRecipe {
            switch mode {
            case "float": return .float
            case "dynamic":
                switch granularity ?? "row" {
                case "row": return .dynamic(.perRow)
                case "tensor": return .dynamic(.perTensor)
                case let g: throw QGEMMError(.invalidArgument, "granularity \(g): row or tensor")
                }
            case "static", "static-input":
                let o = try LayerRecipe.Observer(name: observer ?? "minmax", percentile: percentile)
                if let percentile { _ = try PercentileObserver(percentile: percentile) } // its range, before anything runs
                if let smooth, !(smooth >= 0 && smooth <= 1) { throw QGEMMError(.invalidArgument, "smooth must be in [0, 1], got \(smooth)") }
                return .calibrated(mode == "static" ? .static : .staticInput, o, smoothingAlpha: smooth.map(Float.init))
            case "int4":
                guard let rule = Int4Weights.GroupScales(rawValue: scales ?? "absMax") else {
                    throw QGEMMError(.invalidArgument, "scales \(scales ?? ""): absMax or minimizingError")
                }
                return .int4(groupSize: try Self.checkedGroup(group), scales: rule, activations: try checkedActivations())
            case "int4-awq":
                // The group first, then the damping, as Int4Weights checks them; the damping's
                // rule runs on the Float it becomes (1e-50 would become 0), and a refusal names
                // the value as the file wrote it as well.
                let groupSize = try Self.checkedGroup(group)
                let compensation: Int4Weights.ErrorCompensation = gptq.map { .gptq(damping: Float($0)) } ?? .none
                do {
                    try compensation.check()
                } catch {
                    throw QGEMMError(error.code, "\(error.message) (from gptq \(gptq ?? .nan) in the file)")
                }
                return .int4Searched(groupSize: groupSize, errorCompensation: compensation, activations: try checkedActivations())
            default:
                throw QGEMMError(.invalidArgument, "mode \(mode): float, dynamic, static, static-input, int4 or int4-awq")
            }
        }
    }

    struct Config: Decodable {
        let label: String
        let `default`: Recipe
        let layers: [String: Recipe]?
    }

    let calibration: [String]
    let evaluation: [String]
    let configs: [Config]

    /// Refuses keys the format does not have, and keys a recipe's mode does
    /// not take, naming them: such a key would otherwise be dropped without
    /// a word and its configuration measured as something else. (Wrong types
    /// and unknown modes are the decoder's and ``Recipe/recipe()``'s to report.)
    private static func checkKeys(_ data: Data, file: String) throws {
        func refuse(_ keys: some Sequence<String>, _ allowed: Set<String>, _ place: String) throws {
            let extra = Set(keys).subtracting(allowed).sorted()
            guard extra.isEmpty else { throw QGEMMError(.invalidArgument, "\(file): unknown key \(extra.joined(separator: ", ")) \(place)") }
        }
        guard let top = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
        try refuse(top.keys, ["calibration", "evaluation", "configs"], "at the top level")
        let recipeKeys = Recipe.keys.values.reduce(into: Set(["mode"])) { $0.formUnion($1) }
        for (i, item) in ((top["configs"] as? [Any]) ?? []).enumerated() {
            guard let config = item as? [String: Any] else { continue }
            try refuse(config.keys, ["label", "default", "layers"], "in configuration \(i + 1)")
            let recipes = [config["default"] as Any] + ((config["layers"] as? [String: Any]).map { Array($0.values) } ?? [])
            for case let recipe as [String: Any] in recipes {
                try refuse(recipe.keys, recipeKeys, "in a recipe of configuration \(i + 1)")
                guard let mode = recipe["mode"] as? String, let allowed = Recipe.keys[mode] else { continue }
                let extra = Set(recipe.keys).subtracting(allowed.union(["mode"])).sorted()
                guard extra.isEmpty else {
                    throw QGEMMError(.invalidArgument, "\(file), configuration \(i + 1) (\(config["label"] as? String ?? "")): mode \(mode) takes "
                                     + (allowed.isEmpty ? "no other key" : allowed.sorted().joined(separator: ", "))
                                     + ", not " + extra.joined(separator: ", "))
                }
            }
        }
    }

    /// The most bytes a spec may have (the committed one has about 30 KB).
    static let mostBytes = 64 << 20

    /// The file's bytes, read as a stream: a pipe (`--study <(…)`, /dev/stdin)
    /// is read as a file is, and a file or device that never ends
    /// (/dev/zero) is refused past ``mostBytes`` instead of filling memory.
    static func read(_ path: String) throws -> Data {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
            throw QGEMMError(.file, "--study \(path): cannot open it (\((error as NSError).localizedFailureReason ?? error.localizedDescription))")
        }
        defer { try? handle.close() }
        var data = Data()
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                throw QGEMMError(.file, "--study \(path): cannot read it (\(error.localizedDescription))")
            }
            if chunk.isEmpty { return data }
            data += chunk
            if data.count > mostBytes { throw QGEMMError(.file, "--study \(path): more than \(mostBytes >> 20) MiB; not a study spec") }
        }
    }

    static func run(_ path: String, checkpoint: Checkpoint) throws {
        let spec: StudySpec
        do {
            let data = try read(path)
            try checkKeys(data, file: "--study \(path)")
            spec = try JSONDecoder().decode(StudySpec.self, from: data)
        } catch let error as QGEMMError {
            throw error
        } catch {
            throw QGEMMError(.file, "--study \(path): \(error)")
        }
        guard !spec.configs.isEmpty else { throw QGEMMError(.invalidArgument, "--study \(path): no configurations") }
        guard !spec.evaluation.isEmpty else { throw QGEMMError(.invalidArgument, "--study \(path): no evaluation sentences") }
        // Every configuration checked before the first one runs.
        let names = Set((0..<checkpoint.weights.layers.count).flatMap { SentenceEncoder.linearNames(layer: $0) })
        var recipes: [(fallback: LayerRecipe, overrides: [String: LayerRecipe])] = []
        var calibrates = false
        for (i, config) in spec.configs.enumerated() {
            let at = "--study \(path), configuration \(i + 1) (\(config.label))"
            let unknown = Set((config.layers ?? [:]).keys).subtracting(names).sorted()
            guard unknown.isEmpty else {
                throw QGEMMError(.invalidArgument, "\(at): no Linear layer named \(unknown.joined(separator: ", ")) in this "
                                 + "\(checkpoint.weights.layers.count)-layer model (names like 0.attention.self.query, 5.output.dense)")
            }
            do {
                recipes.append((try config.default.recipe(), try (config.layers ?? [:]).mapValues { try $0.recipe() }))
            } catch let error as QGEMMError {
                throw QGEMMError(error.code, "\(at): \(error.message)")
            }
            calibrates = calibrates || config.default.calibrated || (config.layers ?? [:]).values.contains { $0.calibrated }
        }
        if calibrates && spec.calibration.isEmpty {
            throw QGEMMError(.invalidArgument, "--study \(path): calibrated modes (static, static-input, int4-awq) need calibration sentences")
        }
        let calibration = spec.calibration.isEmpty ? nil : try CalibrationInputs(checkpoint: checkpoint, sentences: spec.calibration)
        var results: [AccuracyStudy] = []
        for (i, config) in spec.configs.enumerated() {
            let started = Date()
            let (fallback, overrides) = recipes[i]
            results.append(try AccuracyStudy(label: config.label, checkpoint: checkpoint, recipe: { overrides[$0] ?? fallback },
                                             calibration: calibration, evaluation: spec.evaluation,
                                             threads: ProcessInfo.processInfo.activeProcessorCount))
            FileHandle.standardError.write(Data(String(format: "embed --study: %d/%d %@ (%.1f s)\n", i + 1, spec.configs.count,
                                                       config.label, Date().timeIntervalSince(started)).utf8))
        }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        print(String(decoding: try encoder.encode(results), as: UTF8.self))
    }
}
