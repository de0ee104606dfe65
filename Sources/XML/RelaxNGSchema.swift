import CLibXML2
import Foundation
import Synchronization

/// A RelaxNG schema read from a file (with the files it includes), such as libvirt's
/// `/usr/share/libvirt/schemas/domain.rng`, to check documents against.
public final class RelaxNGSchema: Sendable {
    /// libvirt's schema for domain XML, where Debian's libvirt packages install it.
    public static let libvirtDomainPath = "/usr/share/libvirt/schemas/domain.rng"

    /// libxml2's RelaxNG validation keeps state in the schema's compiled automata, so the
    /// schema is reached only under this lock: one validation at a time per schema.
    private let schema: Mutex<xmlRelaxNGPtr>
    public let path: String

    public init(path: String) throws {
        XMLLibrary.ensureInitialized()
        self.path = path
        // libxml2 reports an unreadable file through its thread-wide handler (it would print),
        // so that case is caught here.
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw XMLError("cannot read the RelaxNG schema \(path): no such readable file")
        }
        self.schema = Mutex(try Self.parse(path))
    }

    /// Compiles the schema. The parser context and its error collector are gone before the
    /// schema is returned, so nothing else refers to it when it moves into the lock.
    private static func parse(_ path: String) throws -> sending xmlRelaxNGPtr {
        guard let parserContext = xmlRelaxNGNewParserCtxt(path) else {
            throw XMLError("out of memory for a RelaxNG parser")
        }
        // Handlers on the context, never thread-wide: libvirt uses libxml2 on these threads too.
        let collector = ErrorCollector()
        let unmanaged = Unmanaged.passRetained(collector)
        xmlRelaxNGSetParserStructuredErrors(parserContext, collectStructuredError, unmanaged.toOpaque())
        let parsed = xmlRelaxNGParse(parserContext)
        xmlRelaxNGFreeParserCtxt(parserContext)
        unmanaged.release()
        guard let parsed else {
            let detail = collector.messages.isEmpty ? "no detail" : collector.messages.prefix(5).joined(separator: "; ")
            throw XMLError("cannot read the RelaxNG schema \(path): \(detail)")
        }
        return parsed
    }

    deinit {
        schema.withLock { xmlRelaxNGFree($0) }
    }

    /// The problems libxml2 found in `document`, each with its line; empty when it is valid.
    public func problems(in document: XMLDocument) -> [String] {
        schema.withLock { schema in
            guard let context = xmlRelaxNGNewValidCtxt(schema) else { return ["out of memory for a RelaxNG validation"] }
            defer { xmlRelaxNGFreeValidCtxt(context) }
            let collector = ErrorCollector()
            let unmanaged = Unmanaged.passRetained(collector)
            defer { unmanaged.release() }
            xmlRelaxNGSetValidStructuredErrors(context, collectStructuredError, unmanaged.toOpaque())
            let result = xmlRelaxNGValidateDoc(context, document.document)
            if result == 0 { return [] }
            if collector.messages.isEmpty {
                return [result < 0 ? "libxml2 could not run the validation" : "the document does not match the schema"]
            }
            return collector.messages
        }
    }

    /// Throws an `XMLError` listing every problem when `document` does not match the schema.
    public func validate(_ document: XMLDocument, name: String = "document") throws {
        let problems = problems(in: document)
        guard problems.isEmpty else {
            throw XMLError("\(name) does not match \(path):\n" + problems.map { "  " + $0 }.joined(separator: "\n"))
        }
    }

    /// Parses `text` and validates it.
    public func validate(_ text: String, name: String = "document") throws {
        try validate(try XMLDocument(parsing: text, name: name), name: name)
    }
}

private final class ErrorCollector {
    var messages: [String] = []
}

private func collectStructuredError(_ userData: UnsafeMutableRawPointer?, _ error: xmlErrorPtr?) {
    guard let userData, let error else { return }
    let collector = Unmanaged<ErrorCollector>.fromOpaque(userData).takeUnretainedValue()
    let text = error.pointee.message.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "unknown error"
    let element = error.pointee.node.flatMap { node -> String? in
        let pointer = node.assumingMemoryBound(to: xmlNode.self)
        return pointer.pointee.name.map { String(cString: $0) }
    }
    var message = error.pointee.line > 0 ? "line \(error.pointee.line): \(text)" : text
    if let element, !text.contains(element) { message += " (element \(element))" }
    collector.messages.append(message)
}
