import Foundation

/// `body` run with the calling thread rounding to nearest (ties to even),
/// its own rounding mode put back after. The layer loaders use it: a file
/// holds scales as the shortest decimal text that gives the Float back when
/// read to nearest, and the layer's parameters are derived from them again,
/// so reading and deriving in the caller's mode (a `fesetround` of its own)
/// would make another layer than the one saved.
func withRoundingToNearest<T>(_ body: () throws -> T) rethrows -> T {
    let mode = fegetround()
    guard mode != FE_TONEAREST else { return try body() }
    fesetround(FE_TONEAREST)
    defer { fesetround(mode) }
    return try body()
}
