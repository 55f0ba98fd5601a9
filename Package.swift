// swift-tools-version:6.0
//===----------------------------------------------------------------------===//
//
// swift-qgemm: exact int8 quantized matrix multiplication, checked and timed
// against OpenBLAS.
//
//===----------------------------------------------------------------------===//

import PackageDescription

// MARK: - Targets

let targets: [Target] = [
    // OpenBLAS, the float reference and the speed baseline. Found with
    // pkg-config; `scripts/install-deps` installs it on Debian.
    .systemLibrary(
        name: "CSystemBLAS",
        path: "CSystemBLAS",
        pkgConfig: "openblas",
        providers: [.apt(["libopenblas-dev"])]
    ),
    // The C core: include/ (the public C API), core/ (registry, driver,
    // thread pool, CPU detection, packing, quantization, peak probes),
    // reference/ (the scalar reference, requantization)
    // and kernels/<path>/.
    // Every exported symbol starts with `qg_`. ISA-specific functions carry
    // `__attribute__((target(...)))`, so no unsafe flags in any product.
    .target(
        name: "CQGEMM",
        path: "Sources/CQGEMM",
        exclude: ["KERNELS.md"],
        cSettings: [.define("_GNU_SOURCE"), .headerSearchPath("core")],
        linkerSettings: [.linkedLibrary("pthread", .when(platforms: [.linux]))]
    ),
    // The library: quantization, packing, GEMM, QuantizedLinear, observers,
    // .npy files. Needs nothing but the C kernels (no BLAS).
    .target(
        name: "QGEMM",
        dependencies: ["CQGEMM"],
        path: "Sources/QGEMM"
    ),
    // What checks and times the library: the OpenBLAS float reference (BLAS),
    // the accuracy and bit-exactness checks, the peak probes.
    .target(
        name: "QGEMMBaseline",
        dependencies: ["QGEMM", "CQGEMM", "CSystemBLAS"],
        path: "Sources/QGEMMBaseline"
    ),
    // The `qgemm` command-line tool.
    .executableTarget(
        name: "qgemm",
        dependencies: [
            "QGEMM",
            "QGEMMBaseline",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        path: "Sources/qgemm"
    ),
    // scripts/test runs the suite against a release build of the library
    // (what users link: optimized C and Swift); the suite's own code is
    // compiled without optimization there too, which halves that build
    // (optimizing this module took 180 CPU-seconds, running it unoptimized
    // costs 25 more). Test targets belong to no product, so this flag
    // reaches no package that depends on this one.
    .testTarget(
        name: "QGEMMTests",
        dependencies: ["QGEMM", "QGEMMBaseline", "CQGEMM", "CSystemBLAS"],
        path: "Tests/QGEMMTests",
        swiftSettings: [.unsafeFlags(["-Onone"], .when(configuration: .release))]
    ),
]

// MARK: - Products

let products: [Product] = [
    .library(name: "QGEMM", targets: ["QGEMM"]),
    .library(name: "QGEMMBaseline", targets: ["QGEMMBaseline"]),
    .executable(name: "qgemm", targets: ["qgemm"]),
]

// MARK: - Dependencies

let dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    // `swift package generate-documentation` (scripts/docs): the DocC catalogs
    // of QGEMM and QGEMMBaseline. A command plugin: nothing of it is linked.
    .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
]

// MARK: - Package

let package = Package(
    name: "swift-qgemm",
    products: products,
    dependencies: dependencies,
    targets: targets
)
