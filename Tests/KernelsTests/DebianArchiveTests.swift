@testable import Kernels
import Testing

@Suite struct AptSourcesTests {
    @Test func readsOneLineEntries() {
        let sources = AptSourcesReader.parseOneLine("""
            # comment
            deb http://mirror.example/debian bookworm main contrib
            deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm-updates main
            deb-src http://mirror.example/debian bookworm main
            """)
        #expect(sources == [
            AptSource(uri: "http://mirror.example/debian", suites: ["bookworm"], components: ["main", "contrib"]),
            AptSource(uri: "http://mirror.example/debian", suites: ["bookworm-updates"], components: ["main"], signedBy: "/k.gpg"),
        ])
    }

    @Test func readsDeb822Stanzas() {
        let sources = AptSourcesReader.parseDeb822("""
            Types: deb
            URIs: http://mirror.example/debian
            Suites: bookworm bookworm-updates
            Components: main
            Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

            Types: deb
            URIs: http://security.example/debian-security
            Suites: bookworm-security
            Components: main

            Types: deb
            Enabled: no
            URIs: http://off.example/debian
            Suites: bookworm
            Components: main
            """)
        #expect(sources.count == 2)
        #expect(sources[0].suites == ["bookworm", "bookworm-updates"])
        #expect(sources[1].uri == "http://security.example/debian-security")
    }

    @Test func privateSourcesReuseTheHostMirrorAndAddSuites() {
        let host = [
            AptSource(uri: "http://mirror.example/debian", suites: ["bookworm"], components: ["main"]),
            AptSource(uri: "http://security.example/debian-security", suites: ["bookworm-security"], components: ["main"]),
            AptSource(uri: "https://vendor.example/apt", suites: ["stable-vendor"], components: ["main"]),
        ]
        let sources = DebianArchive.privateSources(from: host)
        #expect(sources.count == 2)
        #expect(sources[0].uri == "http://mirror.example/debian")
        #expect(sources[0].suites == DebianArchive.suites)
        #expect(sources[1].suites == ["bookworm-security"])
        #expect(sources[0].lines.first == "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main")
    }

    @Test func withoutAHostMirrorDebiansOwnIsUsed() {
        #expect(DebianArchive.privateSources(from: []).first?.uri == "http://deb.debian.org/debian")
    }

    @Test func dependencyNamesDropVersionsAndAlternatives() {
        #expect(dependencyNames("linux-base (>= 4.3~), dracut | initramfs-tools (>= 0.120), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)")
            == ["linux-base", "dracut", "linux-binary-7.3.4+deb13-amd64"])
    }
}

@Suite struct KernelReferenceTests {
    @Test(arguments: [
        ("debian:bookworm", KernelReference.debianSuite("bookworm")),
        ("debian:trixie-backports", .debianSuite("trixie-backports")),
        ("debian:6.12.95+deb12-amd64", .debianRelease("6.12.95+deb12-amd64")),
        ("build:/src/linux", .buildTree("/src/linux")),
        ("files:/k/bzImage", .files(bzImage: "/k/bzImage", modules: nil, config: nil)),
        ("files:/k/bzImage,modules=/k/mods,config=/k/.config", .files(bzImage: "/k/bzImage", modules: "/k/mods", config: "/k/.config")),
    ])
    func parses(text: String, expected: KernelReference) throws {
        let reference = try KernelReference(parsing: text)
        #expect(reference == expected)
        #expect(reference.description == text)
    }

    /// `files:,` once crashed (an index out of range); a Debian release becomes a cache
    /// folder's name, so one that could climb out of it is refused.
    @Test(arguments: ["bookworm", "debian:", "rpm:fedora", "files:/k,initrd=/x", "files:,", "files:,modules=/m",
                      "debian:../../etc", "debian:6.12/../x", "debian:.hidden", "debian:-r"])
    func rejectsWithAHint(text: String) {
        let error = #expect(throws: KernelReferenceError.self) { try KernelReference(parsing: text) }
        #expect(error?.description.contains(text) == true)
    }
}
