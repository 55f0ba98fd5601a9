// The one wording of an input value that cannot be quantized, for every mode
// and kind of weights, so a caller sees the same message whichever call read
// the value: "<name> [row, column] is <value>; it cannot be quantized".

extension QGEMMError {
    /// The refusal of the value at flat index `index` (row · k + column) of
    /// rows ldx apart, the rows numbered from `firstRow`. With smoothing
    /// `factors`, a finite input that its factor made infinite is named with
    /// the factor and the quotient.
    static func unquantizable(_ x: UnsafePointer<Float>, at index: Int64, k: Int, ldx: Int, firstRow: Int = 0,
                              name: String = "input value", factors: [Float]? = nil) -> QGEMMError {
        let r = Int(index) / Swift.max(k, 1), c = Int(index) % Swift.max(k, 1), value = x[r * ldx + c]
        let place = "\(name) [\(firstRow + r), \(c)]"
        if let factors, value.isFinite {
            return QGEMMError(.invalidValue, "\(place) = \(value) divided by its smoothing factor \(factors[c]) is \(value / factors[c]); it cannot be quantized")
        }
        return QGEMMError(.invalidValue, "\(place) is \(value); it cannot be quantized")
    }
}
