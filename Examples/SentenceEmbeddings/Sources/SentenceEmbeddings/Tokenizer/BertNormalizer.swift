import Foundation

/// The options of Hugging Face's `BertNormalizer`.
public struct NormalizerOptions: Sendable, Equatable {
    /// Drop control characters, NUL and U+FFFD; turn every whitespace into a space.
    public var cleanText = true
    /// Put spaces around CJK ideographs, so that each becomes a word.
    public var handleChineseCharacters = true
    /// Decompose (NFD) and drop nonspacing marks.
    public var stripAccents = true
    /// Map each character to its full Unicode lower case.
    public var lowercase = true

    public init() {}
}

/// BERT's character classes, as the reference tokenizer defines them.
enum BertCharacters {
    /// `\t`, `\n`, `\r` and every Unicode White_Space character.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// The "other" categories (Cc, Cf, Cn, Co, Cs), except `\t`, `\n`, `\r`.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) and
    /// every Unicode punctuation category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT treats as words of their own.
    static func isChinese(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    /// The text `BertNormalizer` makes of `text`, as scalars: clean, CJK
    /// spacing, accents stripped (NFD, nonspacing marks dropped), lower case,
    /// in that order.
    static func normalize(_ text: ArraySlice<Unicode.Scalar>, _ o: NormalizerOptions) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for s in text {
            if o.cleanText {
                if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
                if isWhitespace(s) { out.append(" "); continue }
            }
            if o.handleChineseCharacters && isChinese(s) {
                out += [" ", s, " "]
                continue
            }
            out.append(s)
        }
        if o.stripAccents {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: out)
            out = String(view).decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }
        }
        if o.lowercase {
            // Each character's own full lower case, without context (no final
            // sigma), as the reference does.
            out = out.flatMap { s -> [Unicode.Scalar] in
                s.properties.changesWhenLowercased ? Array(s.properties.lowercaseMapping.unicodeScalars) : [s]
            }
        }
        return out
    }
}
