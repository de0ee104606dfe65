// A cxllab YAML file's root node, every way of failing to get it said in words at its place:
// the guard's refusals, libyaml's syntax errors, text that is not UTF-8, and an empty file.
// Topology and matrix files both read through here, so neither shows Yams' own error text.

import Yams

public enum YAMLReading {
    /// The root node of `yaml`, or nil after reporting to `sink` why there is none. `empty`
    /// says what the file should hold and where to start, for a file with nothing in it.
    public static func root(of yaml: String, sink: DiagnosticSink, empty: (message: String, fix: String)) -> Node? {
        // Before Yams composes it: an alias used as a key makes composing exponential in the
        // nesting (481 bytes once took 8.6 s), and no cxllab file needs one.
        do {
            try YAMLGuard.check(yaml)
        } catch {
            sink.error(SourcePosition(line: error.line, column: error.column), error.message, fix: error.fix)
            return nil
        }
        do {
            guard let root = try Yams.compose(yaml: yaml), !root.isNull else {
                sink.error(.start, empty.message, fix: empty.fix)
                return nil
            }
            return root
        } catch let error as YamlError {
            report(error, in: yaml, to: sink)
        } catch {
            sink.error(.start, "the YAML cannot be read: \(error)", fix: "check that the file is UTF-8 text in YAML")
        }
        return nil
    }

    private static func report(_ error: YamlError, in yaml: String, to sink: DiagnosticSink) {
        let syntaxFix = "check the indentation (spaces only, the same depth for keys of one mapping) and the punctuation near here"
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
            sink.error(SourcePosition(mark), "YAML syntax: \(problem)\(detail)", fix: syntaxFix)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "`\($0)`" }.joined(separator: ", ")
            sink.error(SourcePosition(context.mark), "the key \(keys) appears more than once in the same mapping",
                       fix: "keep one of them: a later one would silently replace the earlier")
        case let .reader(problem, offset, _, _):
            let location = offset.map { SourcePosition(yaml, utf8Offset: $0) } ?? .start
            sink.error(location, "the file cannot be read as text: \(problem)", fix: "save the file as UTF-8 text")
        default:
            sink.error(.start, "the YAML cannot be read", fix: syntaxFix)
        }
    }
}
