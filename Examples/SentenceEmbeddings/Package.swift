// swift-tools-version:6.0
//===----------------------------------------------------------------------===//
//
// Sentence embeddings with all-MiniLM-L6-v2 in Swift, every Linear layer an
// int8 QuantizedLinear (or, for the baseline, OpenBLAS sgemm): a BERT
// checkpoint reader, a WordPiece tokenizer, the encoder, and the `embed`
// command. An example of swift-qgemm, depending on the repository by path.
//
//===----------------------------------------------------------------------===//

import PackageDescription

// SwiftPM names a path dependency after its folder, which is whatever the
// clone is called: read it off this package's own path.
let rootFolder = Context.packageDirectory.split(separator: "/").dropLast(2).last.map(String.init) ?? "swift-qgemm"

let package = Package(
    name: "SentenceEmbeddings",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SentenceEmbeddings", targets: ["SentenceEmbeddings"]),
        .executable(name: "embed", targets: ["embed"]),
    ],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // LayerNorm, GELU, softmax and pooling over rows, in C so that the
        // compiler vectorizes them.
        .target(name: "EncoderKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        .target(
            name: "SentenceEmbeddings",
            dependencies: [
                "EncoderKernels",
                .product(name: "QGEMM", package: rootFolder),
                .product(name: "QGEMMBaseline", package: rootFolder),
            ]
        ),
        .executableTarget(
            name: "embed",
            dependencies: [
                "SentenceEmbeddings",
                .product(name: "QGEMM", package: rootFolder),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "SentenceEmbeddingsTests",
            dependencies: ["SentenceEmbeddings", "EncoderKernels", .product(name: "QGEMM", package: rootFolder)],
            resources: [.copy("Fixtures")]
        ),
    ]
)
