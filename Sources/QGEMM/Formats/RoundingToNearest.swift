import Foundation

/// `body` run with the calling thread rounding to nearest (ties to even),
/// its own rounding mode put back after. What reads saved values uses it, so
/// that a saved value loads as itself whatever the caller's mode (a
/// `fesetround` of its own): the layer loaders (a file holds scales as the
/// shortest decimal text that gives the Float back when read to nearest,
/// and the layer's parameters are derived from them again), the `Codable`
/// decoders of parameters and observers (JSONDecoder converts each decimal
/// at its `decode`, inside their `init(from:)`), and the float64 `.npy`
/// reader.
func withRoundingToNearest<T>(_ body: () throws -> T) rethrows -> T {
    let mode = fegetround()
    guard mode != FE_TONEAREST else { return try body() }
    fesetround(FE_TONEAREST)
    defer { fesetround(mode) }
    return try body()
}
