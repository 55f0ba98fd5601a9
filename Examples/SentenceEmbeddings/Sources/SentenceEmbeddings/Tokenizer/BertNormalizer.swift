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
///
/// Hugging Face `tokenizers` takes its "other", punctuation and nonspacing
/// mark classes from the `unicode_categories` crate, whose tables are Unicode
/// 8.0's: a character assigned later (or not at all) is in none of them, and
/// it keeps "other" to Cc, Cf and Co (no Cn), so an unassigned character
/// stays in the text (and becomes `[UNK]`). Swift's properties are today's
/// Unicode, so each class here takes only characters of Unicode 8.0 or
/// earlier, and names the few whose category changed since (checked against
/// `tokenizers` on every code point, each between two letters).
enum BertCharacters {
    /// Whether `s` was assigned by Unicode 8.0.
    static func inUnicode8(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// `\t`, `\n`, `\r` and every Unicode White_Space character.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// Unicode 8.0's Cc, Cf and Co, except `\t`, `\n`, `\r`.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        guard inUnicode8(s) else { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    /// Unicode 8.0's nonspacing marks (Mn), which accent stripping drops:
    /// U+1734 and U+1171E were Mn then (Mc now); U+1885, U+1886 (Lo then),
    /// U+A9BD (Mc) and U+111C9 (Po) were not.
    static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x1734, 0x1171E: return true
        case 0x1885, 0x1886, 0xA9BD, 0x111C9: return false
        default: return inUnicode8(s) && s.properties.generalCategory == .nonspacingMark
        }
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) and
    /// Unicode 8.0's punctuation categories (U+166D and U+111C9 were Po then).
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        if v == 0x166D || v == 0x111C9 { return true }
        guard inUnicode8(s) else { return false }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT treats as words of their own,
    /// as `tokenizers` lists them (its fifth range starts at U+2B920, not at
    /// Extension E's U+2B820 as Google's BERT has it).
    static func isChinese(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
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
                !isNonspacingMark($0)
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
