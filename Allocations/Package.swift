// swift-tools-version:6.0
//===----------------------------------------------------------------------===//
//
// The allocation probe of swift-qgemm: runs the library's calls that promise
// no heap allocation after their first call, under ordo-one's malloc
// interposer (LD_PRELOADed by `scripts/check-allocations`), and fails when
// any of them allocates. A separate package, like Fuzz/, so that users of
// swift-qgemm never resolve the interposer. `.deps/swift-qgemm` is a link to
// the repository, made by the script (SwiftPM names a path dependency after
// its folder).
//
//===----------------------------------------------------------------------===//

import PackageDescription

let package = Package(
    name: "swift-qgemm-allocations",
    dependencies: [
        .package(path: ".deps/swift-qgemm"),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
    ],
    targets: [
        .executableTarget(
            name: "AllocationProbe",
            dependencies: [
                .product(name: "QGEMM", package: "swift-qgemm"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]
        ),
    ]
)
