import CLibXML2
import Foundation
import HostSupport

/// An XML namespace: a prefix bound to a URI (`xmlns:qemu='http://libvirt.org/...'`).
public struct XMLNamespace: Sendable, Hashable {
    public var prefix: String
    public var uri: String

    public init(prefix: String, uri: String) {
        self.prefix = prefix
        self.uri = uri
    }
}

/// An element with its attributes and children, as a value: built in Swift, then written out
/// by libxml2, which does the escaping and the indentation.
///
/// ```swift
/// let qemu = XMLNamespace(prefix: "qemu", uri: "http://libvirt.org/schemas/domain/qemu/1.0")
/// let domain = XMLTree("domain", ["type": "qemu"], declaring: [qemu]) {
///     XMLTree("name", text: "cxllab-example")
///     XMLTree("commandline", namespace: qemu) {
///         XMLTree("arg", namespace: qemu, ["value": "-M"])
///     }
/// }
/// let text = try domain.serialized()
/// ```
public struct XMLTree: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        case element(XMLTree)
        case text(String)
    }

    public struct Attribute: Sendable, Hashable {
        public var name: String
        public var value: String
        public var namespace: XMLNamespace?

        public init(_ name: String, _ value: String, namespace: XMLNamespace? = nil) {
            self.name = name
            self.value = value
            self.namespace = namespace
        }
    }

    public var name: String
    /// The namespace of the element itself; it must be declared on this element or an ancestor.
    public var namespace: XMLNamespace?
    /// Namespaces declared on this element (`xmlns:prefix='uri'`).
    public var declarations: [XMLNamespace]
    /// In the order given: serialization keeps it, so output is stable.
    public var attributes: [Attribute]
    public var children: [Content]

    public init(
        _ name: String,
        namespace: XMLNamespace? = nil,
        _ attributes: KeyValuePairs<String, String> = [:],
        declaring declarations: [XMLNamespace] = [],
        @XMLTreeBuilder children: () -> [Content] = { [] }
    ) {
        self.name = name
        self.namespace = namespace
        self.declarations = declarations
        self.attributes = attributes.map { Attribute($0.key, $0.value) }
        self.children = children()
    }

    /// An element holding only text: `<name>cxllab-example</name>`.
    public init(_ name: String, namespace: XMLNamespace? = nil, _ attributes: KeyValuePairs<String, String> = [:], text: String) {
        self.init(name, namespace: namespace, attributes) { Content.text(text) }
    }

    /// Elements among the children, in order.
    public var elements: [XMLTree] {
        children.compactMap { if case .element(let element) = $0 { element } else { nil } }
    }

    /// The same tree with every attribute value and text passed through `VisibleText`: what
    /// a guest printed can hold characters XML 1.0 cannot carry (U+FFFE, an ESC), and a report
    /// must be written whatever it holds. Documents for libvirt are not sanitized: there a bad
    /// character is an error to show, not text to change.
    public func carryingAnyText() -> XMLTree {
        var copy = self
        copy.attributes = attributes.map { Attribute($0.name, VisibleText.of($0.value), namespace: $0.namespace) }
        copy.children = children.map { child in
            switch child {
            case .text(let text): .text(VisibleText.of(text))
            case .element(let element): .element(element.carryingAnyText())
            }
        }
        return copy
    }

    /// Writes the tree as a document through libxml2: two-space indentation, attributes in the
    /// order given, no XML declaration unless asked. The same tree always gives the same text.
    public func serialized(declaration: Bool = false) throws -> String {
        XMLLibrary.ensureInitialized()
        try XMLTree.checkCharacters(self)
        guard let document = xmlNewDoc("1.0") else { throw XMLError("out of memory for an XML document") }
        defer { xmlFreeDoc(document) }
        let root = try makeNode(in: document, inScope: [:])
        xmlDocSetRootElement(document, root)

        guard let buffer = xmlBufferCreate() else { throw XMLError("out of memory for an XML buffer") }
        defer { xmlBufferFree(buffer) }
        var options = Int32(XML_SAVE_FORMAT.rawValue)
        if !declaration { options |= Int32(XML_SAVE_NO_DECL.rawValue) }
        guard let context = xmlSaveToBuffer(buffer, "UTF-8", options) else {
            throw XMLError("libxml2 could not start writing the document")
        }
        let written = xmlSaveDoc(context, document)
        xmlSaveClose(context)
        guard written >= 0, let content = xmlBufferContent(buffer) else {
            throw XMLError("libxml2 could not write the document")
        }
        return String(cString: content)
    }

    /// Creates the libxml2 node for this element and its subtree. `scope` maps a prefix to the
    /// namespace pointer declared on an ancestor.
    private func makeNode(in document: xmlDocPtr, inScope scope: [String: (uri: String, pointer: xmlNsPtr)]) throws -> xmlNodePtr {
        guard let node = xmlNewDocNode(document, nil, name, nil) else {
            throw XMLError("out of memory for element <\(name)>")
        }
        var scope = scope
        for declaration in declarations {
            guard let pointer = xmlNewNs(node, declaration.uri, declaration.prefix) else {
                xmlFreeNode(node)
                throw XMLError("namespace prefix '\(declaration.prefix)' is declared twice on <\(name)>")
            }
            scope[declaration.prefix] = (declaration.uri, pointer)
        }
        func resolve(_ namespace: XMLNamespace) throws -> xmlNsPtr {
            guard let found = scope[namespace.prefix], found.uri == namespace.uri else {
                throw XMLError("namespace '\(namespace.prefix)' (\(namespace.uri)) used on <\(name)> is not declared on it or above it")
            }
            return found.pointer
        }
        do {
            if let namespace { xmlSetNs(node, try resolve(namespace)) }
            for attribute in attributes {
                let made = if let namespace = attribute.namespace {
                    xmlNewNsProp(node, try resolve(namespace), attribute.name, attribute.value)
                } else {
                    xmlNewProp(node, attribute.name, attribute.value)
                }
                guard made != nil else { throw XMLError("could not set attribute \(attribute.name) on <\(name)>") }
            }
            for child in children {
                switch child {
                case .text(let text):
                    // A text node is stored as given and escaped when written out.
                    guard let textNode = xmlNewDocText(document, text) else { throw XMLError("out of memory for text") }
                    xmlAddChild(node, textNode)
                case .element(let element):
                    xmlAddChild(node, try element.makeNode(in: document, inScope: scope))
                }
            }
        } catch {
            xmlFreeNode(node)
            throw error
        }
        return node
    }

    /// XML 1.0 has no way to write most control characters, not even escaped; libxml2 would
    /// write them as character references that no parser accepts.
    private static func checkCharacters(_ tree: XMLTree) throws {
        func check(_ text: String, _ what: @autoclosure () -> String) throws {
            for scalar in text.unicodeScalars {
                let value = scalar.value
                let allowed = value == 0x9 || value == 0xA || value == 0xD || (value >= 0x20 && value != 0xFFFE && value != 0xFFFF)
                if !allowed {
                    throw XMLError("\(what()) holds the control character U+\(String(value, radix: 16, uppercase: true)), which XML cannot carry")
                }
            }
        }
        for attribute in tree.attributes {
            try check(attribute.value, "attribute \(attribute.name) of <\(tree.name)>")
        }
        for child in tree.children {
            switch child {
            case .text(let text): try check(text, "the text of <\(tree.name)>")
            case .element(let element): try checkCharacters(element)
            }
        }
    }
}

/// Builds the children of an `XMLTree` from elements, text, optionals, `if` and `for`.
@resultBuilder
public enum XMLTreeBuilder {
    public static func buildExpression(_ element: XMLTree) -> [XMLTree.Content] { [.element(element)] }
    public static func buildExpression(_ element: XMLTree?) -> [XMLTree.Content] { element.map { [.element($0)] } ?? [] }
    public static func buildExpression(_ elements: [XMLTree]) -> [XMLTree.Content] { elements.map { .element($0) } }
    public static func buildExpression(_ content: XMLTree.Content) -> [XMLTree.Content] { [content] }
    public static func buildExpression(_ text: String) -> [XMLTree.Content] { [.text(text)] }
    public static func buildBlock(_ parts: [XMLTree.Content]...) -> [XMLTree.Content] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [XMLTree.Content]?) -> [XMLTree.Content] { part ?? [] }
    public static func buildEither(first part: [XMLTree.Content]) -> [XMLTree.Content] { part }
    public static func buildEither(second part: [XMLTree.Content]) -> [XMLTree.Content] { part }
    public static func buildArray(_ parts: [[XMLTree.Content]]) -> [XMLTree.Content] { parts.flatMap { $0 } }
}
