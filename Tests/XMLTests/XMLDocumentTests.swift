import Testing
import XML

@Suite struct XMLDocumentTests {
    @Test func queriesElementsAndAttributes() throws {
        let document = try XMLDocument(parsing: "<a><b id='1'>one</b><b id='2'>two</b></a>")
        #expect(try document.strings("/a/b") == ["one", "two"])
        #expect(try document.strings("/a/b/@id") == ["1", "2"])
        #expect(try document.string("/a/c") == nil)
    }

    @Test func malformedXMLNamesTheDocumentAndLine() throws {
        let error = try #require(throws: XMLError.self) {
            try XMLDocument(parsing: "<a>\n<b></a>", name: "caps.xml")
        }
        #expect(error.description.contains("caps.xml"))
        #expect(error.description.contains("line 2"))
    }

    @Test func badXPathIsAnError() throws {
        let document = try XMLDocument(parsing: "<a/>")
        #expect(throws: XMLError.self) { try document.strings("///[") }
    }
}
