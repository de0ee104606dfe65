/// A coding key read or written by its name alone: for containers whose keys are data (a
/// scenario's name in a stored detail, the keys of a matrix file's entry).
public struct StringCodingKey: CodingKey, Sendable {
    public let stringValue: String
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public var intValue: Int? { nil }
    public init?(intValue: Int) { nil }
}
