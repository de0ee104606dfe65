import ArgumentParser
@testable import CXLLabCommands
import Foundation
import Testing

/// `--repeat` is checked where the command line is parsed, with the same bound as a matrix
/// file's `repeat` (MatrixFileRepeatTests).
@Suite struct RepeatBoundTests {
    @Test func repeatOutsideItsRangeIsRefusedWhenParsed() throws {
        for bad in ["0", "-1", "1001", "100000000"] {
            do {
                _ = try CXLLab.Run.parse(["topologies/nvdimm-single.yaml", "--repeat=\(bad)"])
                Issue.record("--repeat \(bad) was accepted")
            } catch {
                let message = CXLLab.Run.message(for: error)
                #expect(message.contains("--repeat \(bad) is out of range") && message.contains("1 to 1000"), "\(message)")
            }
        }
        #expect(try CXLLab.Run.parse(["topologies/nvdimm-single.yaml", "--repeat", "1000"]).repeat == 1000)
        #expect(try CXLLab.Run.parse(["topologies/nvdimm-single.yaml"]).repeat == 1)
    }
}
