import Foundation
import HostSupport

/// A scenario's own record of a run, and the parts of every report it renders itself: the
/// text report's heading, case lines and closing, the summary JUnit and HTML show, JUnit
/// properties, and what `cxllab diff` says of two runs of one cell.
public protocol ScenarioReport: Codable, Sendable {
    /// How stored results name this kind of record (`ScenarioDetail`'s key): never changed,
    /// or stored runs could no longer be read.
    static var detailKey: String { get }
    /// The text report's first lines, after `heading` (scenario, topology, kernel).
    func headingLines(_ heading: String, facts: [Fact]) -> [String]
    /// The text report's case lines in place of the case table; nil: the table.
    var caseLines: [String]? { get }
    /// The text report's lines after the cases (steps, violations, a suite's summary).
    var closingLines: [String] { get }
    /// The scenario's summary (JUnit system-out, the HTML report's section).
    var summaryLines: [String] { get }
    /// Properties besides the facts, for JUnit.
    var properties: [Fact] { get }
    /// A case's name as JUnit shows it.
    func caseTitle(_ name: String) -> String
    /// What changed from an earlier run of the same cell; nil: only the verdict and the
    /// failure rate, as for any scenario.
    func diffLines(label: String, earlier: any ScenarioReport, verdicts: (before: Verdict, after: Verdict)) -> [String]?
}

extension ScenarioReport {
    public func headingLines(_ heading: String, facts: [Fact]) -> [String] {
        [heading] + facts.map { "\($0.name): \($0.value)" }
    }

    public var caseLines: [String]? { nil }
    public var closingLines: [String] { [] }
    public var summaryLines: [String] { [] }
    public var properties: [Fact] { [] }
    public func caseTitle(_ name: String) -> String { name }
    public func diffLines(label: String, earlier: any ScenarioReport, verdicts: (before: Verdict, after: Verdict)) -> [String]? { nil }
}

extension ScenarioDevice {
    /// The devices a run made, in one line for the text report ("devices: dax0.0 (devdax, ...)").
    public static func line(_ devices: [ScenarioDevice]) -> [String] {
        devices.isEmpty ? [] : ["devices: " + devices.map { "\($0.name) (\($0.role.rawValue), \($0.source) \($0.parent))" }.joined(separator: ", ")]
    }
}

extension Verdict {
    /// NEW FAILURE, FIXED or CHANGED when the verdict moved between two runs of a cell; nil
    /// when it did not.
    public static func changeLine(_ label: String, _ before: Verdict, _ after: Verdict) -> String? {
        guard before != after else { return nil }
        let kind = after == .fail ? "NEW FAILURE" : before == .fail && after == .pass ? "FIXED" : "CHANGED"
        return "\(kind.padding(toLength: 12, withPad: " ", startingAt: 0)) \(label): \(before.rawValue) -> \(after.rawValue)"
    }
}

/// A scenario's record of a run, whatever the scenario: stored under its report's key, as
/// `{"driverOrder": {"_0": {...}}}` (the form results were always stored in), and read back
/// through the registry. No record (a cell that never ran) is `{"none": {}}`.
public struct ScenarioDetail: Sendable, Codable {
    public let report: (any ScenarioReport)?

    public init(_ report: (any ScenarioReport)?) { self.report = report }

    public static let none = ScenarioDetail(nil)

    /// The record as its scenario's own type.
    public func report<R: ScenarioReport>(as type: R.Type) -> R? { report as? R }

    public var summaryLines: [String] { report?.summaryLines ?? [] }

    typealias Key = StringCodingKey

    static let noneKey = "none"
    static let payloadKey = "_0"

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        guard let key = container.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a scenario detail without its kind"))
        }
        if key.stringValue == Self.noneKey {
            report = nil
            return
        }
        guard let plugin = ScenarioRegistry.plugin(reportKey: key.stringValue) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [key],
                                                    debugDescription: "a record of '\(key.stringValue)', which no scenario of this cxllab keeps"))
        }
        let payload = try container.nestedContainer(keyedBy: Key.self, forKey: key)
        report = try plugin.decodeReport(from: try payload.superDecoder(forKey: Key(Self.payloadKey)))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        guard let report else {
            _ = container.nestedContainer(keyedBy: Key.self, forKey: Key(Self.noneKey))
            return
        }
        var payload = container.nestedContainer(keyedBy: Key.self, forKey: Key(type(of: report).detailKey))
        try report.encode(to: payload.superEncoder(forKey: Key(Self.payloadKey)))
    }
}
