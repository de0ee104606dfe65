/// Text from a guest made safe to show and to store: the one sanitizer for reports, XML and
/// the terminal. Control characters (an ESC from a console, a NUL) become their visible
/// Unicode pictures (␛, ␀), which XML allows and people can read; C1 controls (a lone 0x9B
/// is a terminal's CSI) and the noncharacters U+FFFE and U+FFFF, which XML 1.0 cannot carry,
/// become a visible `[U+XXXX]`. Line breaks and tabs stay.
public enum VisibleText {
    public static func of(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case _ where !needsEscape(scalar): scalars.append(scalar)
            case 0..<0x20: scalars.append(Unicode.Scalar(0x2400 + scalar.value) ?? "?")
            case 0x7F: scalars.append("\u{2421}")
            default: scalars.append(contentsOf: "[U+\(String(scalar.value, radix: 16, uppercase: true))]".unicodeScalars)
            }
        }
        return String(scalars)
    }

    /// Whether a scalar is shown escaped: what XML 1.0 cannot carry or a terminal would obey.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return (value < 0x20 && scalar != "\n" && scalar != "\t") || (0x7F...0x9F).contains(value) || value == 0xFFFE || value == 0xFFFF
    }

    /// At most `limit` characters of one line, with a note of what was cut.
    public static func capped(_ line: String, limit: Int) -> String {
        guard line.count > limit else { return line }
        return String(line.prefix(limit)) + " [… \(line.count - limit) more characters cut]"
    }
}
