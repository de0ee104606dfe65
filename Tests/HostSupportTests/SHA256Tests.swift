import Foundation
import HostSupport
import Testing

/// The C SHA-256 against FIPS 180-4's vectors and against coreutils' sha256sum, over inputs
/// fed in pieces of every awkward size.
@Suite struct SHA256Tests {
    static func hex(_ text: String) -> String { FileDigest.sha256(of: Data(text.utf8)) }

    @Test func standardVectors() {
        #expect(Self.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Self.hex(String(repeating: "a", count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test(arguments: [1, 3, 55, 56, 63, 64, 65, 4097])
    func piecesGiveTheSameDigestAsOneUpdate(piece: Int) {
        var generator = SeededGenerator(seed: UInt64(piece))
        let data = Data((0..<20_000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var hasher = SHA256Hasher()
        var offset = 0
        while offset < data.count {
            hasher.update(data[offset..<min(offset + piece, data.count)])
            offset += piece
        }
        #expect(hasher.finalize() == FileDigest.sha256(of: data))
    }

    @Test func aFileHashesAsSha256sumSaysIt() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-sha-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var generator = SeededGenerator(seed: 7)
        try Data((0..<3_000_001).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
        let coreutils = try await ProcessRunner.check("sha256sum", [path], context: "sha256sum")
        #expect(try FileDigest.sha256(ofFile: path) == String(coreutils.output.prefix(64)))
    }
}

@Suite struct UTCTimestampTests {
    @Test func writesAndReadsISO8601() {
        let date = Date(timeIntervalSince1970: 1_795_888_645)
        #expect(UTCTimestamp.iso8601(date) == "2026-11-28T17:57:25Z")
        #expect(UTCTimestamp.compact(date) == "20261128-175725")
        #expect(UTCTimestamp.parse("2026-11-28T17:57:25Z") == date)
        #expect(UTCTimestamp.parse("2026-11-28T17:57:25.5Z") == date.addingTimeInterval(0.5))
        #expect(UTCTimestamp.parse("2026-11-28 17:57:25") == nil)
    }

    @Test func jsonRoundTrip() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .utcISO8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcISO8601
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let data = try encoder.encode([date])
        #expect(String(decoding: data, as: UTF8.self) == #"["2023-11-14T22:13:20Z"]"#)
        #expect(try decoder.decode([Date].self, from: data) == [date])
    }
}
