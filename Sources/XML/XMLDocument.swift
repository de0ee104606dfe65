import CLibXML2
import Foundation

/// A failure to parse, query or validate XML, with libxml2's own words where it gave any.
public struct XMLError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A parsed XML document (libxml2's `xmlDoc`), read-only, queried with XPath.
// @unchecked: never modified after parsing, and libxml2 allows concurrent reads (each query has its own XPath context); freed only in deinit.
public final class XMLDocument: @unchecked Sendable {
    let document: xmlDocPtr

    /// Parses `text`. Network access and entity expansion stay off: the text may come from
    /// anywhere (libvirt, a user's file).
    public init(parsing text: String, name: String = "document") throws {
        XMLLibrary.ensureInitialized()
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
        let parsed = text.withCString { pointer in
            xmlReadMemory(pointer, Int32(strlen(pointer)), name, "UTF-8", options)
        }
        guard let parsed else {
            throw XMLError("\(name) is not well-formed XML: \(XMLLibrary.lastErrorMessage() ?? "no detail")")
        }
        self.document = parsed
    }

    deinit {
        xmlFreeDoc(document)
    }

    /// The string value of every node `expression` selects: text content for elements,
    /// the value for attributes.
    public func strings(_ expression: String) throws -> [String] {
        guard let context = xmlXPathNewContext(document) else { throw XMLError("out of memory for an XPath context") }
        defer { xmlXPathFreeContext(context) }
        // A handler on the context keeps libxml2 from printing; a thread-wide one would also
        // capture the errors of libvirt's own libxml2 use on this thread.
        context.pointee.error = silentStructuredError
        guard let result = xmlXPathEvalExpression(expression, context) else {
            throw XMLError("invalid XPath expression: \(expression)")
        }
        defer { xmlXPathFreeObject(result) }
        guard let nodes = result.pointee.nodesetval, nodes.pointee.nodeNr > 0 else { return [] }
        return (0..<Int(nodes.pointee.nodeNr)).compactMap { index in
            guard let node = nodes.pointee.nodeTab[index], let content = xmlNodeGetContent(node) else { return nil }
            // libxml2 allocates with malloc unless told otherwise; its xmlFree global is not
            // concurrency-safe to read from Swift.
            defer { free(content) }
            return String(cString: content)
        }
    }

    /// The first string `expression` selects, or nil.
    public func string(_ expression: String) throws -> String? {
        try strings(expression).first
    }
}

enum XMLLibrary {
    private static let initialized: Bool = {
        xmlInitParser()
        // RelaxNG's type libraries (XML Schema's datatypes) are registered in a process-wide
        // table on the first schema parse; two first parses at once raced there ("type 'string'
        // is not exported by type library"): registered once here, before any parse.
        _ = xmlRelaxNGInitTypes()
        return true
    }()

    static func ensureInitialized() { _ = initialized }

    static func lastErrorMessage() -> String? {
        guard let error = xmlGetLastError(), let message = error.pointee.message else { return nil }
        let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
        return "line \(error.pointee.line): \(text)"
    }
}

private func silentStructuredError(_: UnsafeMutableRawPointer?, _: xmlErrorPtr?) {}
