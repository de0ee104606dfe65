// One guard for every YAML file cxllab reads: libyaml's events walked before Yams composes
// anything, so hostile input is refused in linear time. Yams' composer is exponential when an
// alias stands as a mapping key (it hashes the expanded keys), and it recurses once per level
// of nesting; cxllab's files need neither aliases nor deep nesting, nor many values.

// Yams' own libyaml (its CYaml target, in the closure of the Yams product): the same parser
// the readers use, so the guard and the readers agree on what the text is.
internal import CYaml

/// Why a YAML text was refused, with the 1-based place of the offending part (libyaml counts
/// columns in characters, as the readers' diagnostics do).
public struct YAMLRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public var fix: String

    public init(line: Int, column: Int, message: String, fix: String) {
        self.line = line
        self.column = column
        self.message = message
        self.fix = fix
    }

    /// `LINE:COLUMN: <what>; fix: <how>`: each reader puts the file name in front.
    public var description: String { "\(line):\(column): \(message); fix: \(fix)" }
}

public enum YAMLGuard {
    /// How much a file may hold; cxllab's own files are far below each bound.
    public struct Limits: Sendable, Hashable {
        public var maximumBytes: Int
        public var maximumDepth: Int
        public var maximumEvents: Int

        public init(maximumBytes: Int, maximumDepth: Int, maximumEvents: Int) {
            self.maximumBytes = maximumBytes
            self.maximumDepth = maximumDepth
            self.maximumEvents = maximumEvents
        }

        /// 1 MiB, 64 levels, 200,000 events: far above what cxllab's own files hold (the
        /// largest shipped one is 5.4 KB and nests a few levels), far below what takes a
        /// composer a second.
        public static let standard = Limits(maximumBytes: 1 << 20, maximumDepth: 64, maximumEvents: 200_000)
    }

    /// Throws the first thing in `text` that no cxllab file holds: a size over the limit, an
    /// anchor or alias, nesting too deep, too many events, a second document. A YAML syntax
    /// error is not thrown: the reader that follows reports it in its own words.
    public static func check(_ text: String, limits: Limits = .standard) throws(YAMLRefusal) {
        let size = text.utf8.count
        guard size <= limits.maximumBytes else {
            throw YAMLRefusal(line: 1, column: 1, message: "the file is \(size) bytes, over the limit of \(limits.maximumBytes) bytes for a YAML file",
                              fix: "check that this is the file you meant: cxllab's YAML files are a few kilobytes")
        }
        // NUL-terminated, so never empty: libyaml asserts that its input is not NULL.
        let bytes = text.utf8CString
        let refusal: YAMLRefusal? = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt8.self) { walk($0.baseAddress!, count: size, limits: limits) }
        }
        if let refusal { throw refusal }
    }

    /// The events of `count` bytes at `input`, until the first refusal, a syntax error or the end.
    private static func walk(_ input: UnsafePointer<UInt8>, count: Int, limits: Limits) -> YAMLRefusal? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return YAMLRefusal(line: 1, column: 1, message: "the YAML parser cannot start (out of memory)", fix: "try again with more free memory")
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, input, count)
        var depth = 0
        var events = 0
        var documents = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { return nestingLimitReached(parser, limits: limits) }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1
            events += 1
            if events > limits.maximumEvents {
                return YAMLRefusal(line: line, column: column, message: "the file holds more than \(limits.maximumEvents) YAML values",
                                   fix: "check that this is the file you meant: cxllab's YAML files hold a few hundred values")
            }
            if let anchor = anchor(of: event) {
                return YAMLRefusal(line: line, column: column, message: "`\(anchor)`: YAML anchors and aliases are not read in cxllab's files",
                                   fix: "write the value out where the alias stands")
            }
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    return YAMLRefusal(line: line, column: column, message: "the file holds more than one YAML document",
                                       fix: "keep one document: delete this `---` and what follows, or move it to a file of its own")
                }
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                depth += 1
                if depth > limits.maximumDepth {
                    return YAMLRefusal(line: line, column: column, message: "the YAML nests deeper than \(limits.maximumDepth) levels",
                                       fix: deepNestingFix)
                }
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                depth -= 1
            default:
                break
            }
        }
    }

    /// A syntax error is left to the reader, whose message says it in its own terms; but
    /// libyaml's own nesting limit (1000 levels) is hit before the guard's when its scanner,
    /// looking ahead for a key, has already counted that many open brackets: the parser then
    /// fails at one of the first of them, which is where this refusal points.
    private static func nestingLimitReached(_ parser: yaml_parser_t, limits: Limits) -> YAMLRefusal? {
        guard parser.error == YAML_PARSER_ERROR, let problem = parser.problem,
              String(cString: problem).hasPrefix("Maximum nesting level reached") else { return nil }
        return YAMLRefusal(line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1,
                           message: "the YAML nests deeper than \(limits.maximumDepth) levels", fix: deepNestingFix)
    }

    private static let deepNestingFix = "close the lists and mappings opened before here: cxllab's files nest a few levels"

    /// The anchor or alias an event carries, as written (`&name`, `*name`), shortened.
    private static func anchor(of event: yaml_event_t) -> String? {
        let sigil: String
        let name: UnsafeMutablePointer<yaml_char_t>?
        switch event.type {
        case YAML_ALIAS_EVENT: (sigil, name) = ("*", event.data.alias.anchor)
        case YAML_SCALAR_EVENT: (sigil, name) = ("&", event.data.scalar.anchor)
        case YAML_SEQUENCE_START_EVENT: (sigil, name) = ("&", event.data.sequence_start.anchor)
        case YAML_MAPPING_START_EVENT: (sigil, name) = ("&", event.data.mapping_start.anchor)
        default: return nil
        }
        guard let name else { return nil }
        let text = String(cString: name)
        return sigil + (text.count > 40 ? text.prefix(40) + "…" : text)
    }
}
