// swift-tools-version:6.0
//===----------------------------------------------------------------------===//
//
// libFuzzer targets for swift-qgemm. Built by `scripts/fuzz`, which links
// `.deps/swift-qgemm` to the repository (SwiftPM names a path dependency
// after its folder). Kept out of the main package: the targets need
// -parse-as-library, an unsafe flag no dependency may carry.
//
//===----------------------------------------------------------------------===//

import PackageDescription

let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "swift-qgemm-fuzz",
    dependencies: [.package(path: ".deps/swift-qgemm")],
    targets: [
        // libFuzzer's byte mutator, declared for the custom mutators.
        .target(name: "FuzzHooks"),
        // Structure-aware mutators: JSON (safetensors headers, and any JSON
        // file) and the .npy header's Python dict; and what the differential
        // targets share: the byte reader, its input values, the x/y buffers
        // and the pieces of the contracts they check.
        .target(name: "FuzzMutators", dependencies: ["FuzzHooks", .product(name: "QGEMM", package: "swift-qgemm")]),
        .executableTarget(name: "FuzzNPY", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
        // The encoder example's config.json and tokenizer.json readers (links
        // to its sources: the example is a package of its own).
        .target(name: "FuzzEncoderReaders", dependencies: [.product(name: "QGEMM", package: "swift-qgemm")]),
        .executableTarget(name: "FuzzConfigJSON", dependencies: ["FuzzEncoderReaders", "FuzzMutators", .product(name: "QGEMM", package: "swift-qgemm")],
                          swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzTokenizerJSON", dependencies: ["FuzzEncoderReaders", "FuzzMutators", .product(name: "QGEMM", package: "swift-qgemm")],
                          swiftSettings: fuzzFlags),
        // Writes the seed corpora (not a fuzz target).
        .executableTarget(name: "FuzzSeeds", dependencies: [.product(name: "QGEMM", package: "swift-qgemm")]),
        .executableTarget(name: "FuzzGEMM", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzActivations", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzInt4", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzLayer", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzObservers", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzSafeTensors", dependencies: [.product(name: "QGEMM", package: "swift-qgemm"), "FuzzMutators"],
                          swiftSettings: fuzzFlags),
    ]
)
