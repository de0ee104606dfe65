import Foundation
import Testing
import XML

@Suite struct XMLBuilderTests {
    static let qemu = XMLNamespace(prefix: "qemu", uri: "http://libvirt.org/schemas/domain/qemu/1.0")

    @Test func writesIndentedStableXMLWithNamespaces() throws {
        let tree = XMLTree("domain", ["type": "qemu", "id": "7"], declaring: [Self.qemu]) {
            XMLTree("name", text: "lab")
            XMLTree("devices") {
                XMLTree("memballoon", ["model": "none"])
            }
            XMLTree("commandline", namespace: Self.qemu) {
                for value in ["-M", "cxl=on"] { XMLTree("arg", namespace: Self.qemu, ["value": value]) }
            }
        }
        let expected = """
            <domain xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0" type="qemu" id="7">
              <name>lab</name>
              <devices>
                <memballoon model="none"/>
              </devices>
              <qemu:commandline>
                <qemu:arg value="-M"/>
                <qemu:arg value="cxl=on"/>
              </qemu:commandline>
            </domain>

            """
        #expect(try tree.serialized() == expected)
        #expect(try tree.serialized() == tree.serialized())
        #expect(try tree.serialized(declaration: true).hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<domain"))
    }

    @Test func escapesTextAndAttributes() throws {
        let tree = XMLTree("a", ["v": "x<y & \"z\" 'w'"], text: "1 < 2 && 3 > 2 ]]>")
        let text = try tree.serialized()
        let parsed = try XMLDocument(parsing: text)
        #expect(try parsed.string("/a/@v") == "x<y & \"z\" 'w'")
        #expect(try parsed.string("/a") == "1 < 2 && 3 > 2 ]]>")
    }

    @Test func refusesUndeclaredNamespacesAndControlCharacters() {
        #expect(throws: XMLError.self) { try XMLTree("arg", namespace: Self.qemu).serialized() }
        #expect(throws: XMLError.self) { try XMLTree("a", text: "bell\u{7}").serialized() }
        #expect(throws: XMLError.self) { try XMLTree("a", ["v": "nul\u{0}"]).serialized() }
    }

    @Test func builderHandlesOptionalsAndConditions() throws {
        let missing: XMLTree? = nil
        let flag = false
        let tree = XMLTree("r") {
            missing
            if flag { XMLTree("never") } else { XMLTree("else") }
            [XMLTree("x"), XMLTree("y")]
        }
        #expect(tree.elements.map(\.name) == ["else", "x", "y"])
    }
}

@Suite struct RelaxNGSchemaTests {
    static func schemaFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-test-\(getpid()).rng").path
        try """
            <element name="a" xmlns="http://relaxng.org/ns/structure/1.0">
              <attribute name="n"><data type="integer" datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes"/></attribute>
              <zeroOrMore><element name="b"><text/></element></zeroOrMore>
            </element>
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func validatesAndReportsProblemsWithLines() throws {
        let path = try Self.schemaFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let schema = try RelaxNGSchema(path: path)
        try schema.validate("<a n='3'><b>x</b></a>")
        let problems = schema.problems(in: try XMLDocument(parsing: "<a n='x'>\n<c/></a>"))
        #expect(!problems.isEmpty)
        #expect(problems.contains { $0.hasPrefix("line ") })
        let error = try #require(throws: XMLError.self) { try schema.validate("<a/>", name: "bad.xml") }
        #expect(error.description.contains("bad.xml does not match"))
    }

    @Test func missingSchemaIsAnError() {
        #expect(throws: XMLError.self) { try RelaxNGSchema(path: "/nonexistent/schema.rng") }
    }

    @Test func readsLibvirtsDomainSchema() throws {
        let schema = try RelaxNGSchema(path: RelaxNGSchema.libvirtDomainPath)
        try schema.validate("<domain type='qemu'><name>x</name><memory>1024</memory><os><type>hvm</type></os></domain>")
        #expect(!schema.problems(in: try XMLDocument(parsing: "<domain type='qemu'><nonsense/></domain>")).isEmpty)
    }

    @Test func validatesFromManyTasksAtOnce() async throws {
        let schema = try RelaxNGSchema(path: RelaxNGSchema.libvirtDomainPath)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 {
                group.addTask {
                    try schema.validate("<domain type='qemu'><name>x\(index)</name><memory>1024</memory><os><type>hvm</type></os></domain>")
                }
            }
            try await group.waitForAll()
        }
    }
}
