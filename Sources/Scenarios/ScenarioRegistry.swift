/// Every scenario cxllab has, in the order help and errors list them: matrix files, the store
/// and the reports find a scenario here by its name (or its report by its key), never by
/// comparing names themselves.
public enum ScenarioRegistry {
    public static let plugins: [any ScenarioPlugin.Type] = [
        DriverOrderScenario.self,
        RaceScenario.self,
        NdctlSuiteScenario.self,
    ]

    public static func plugin(named name: String) -> (any ScenarioPlugin.Type)? {
        plugins.first { $0.name == name }
    }

    /// The scenario whose report stored results name by this key.
    public static func plugin(reportKey: String) -> (any ScenarioPlugin.Type)? {
        plugins.first { $0.reportType.detailKey == reportKey }
    }

    /// "driver-order, race and ndctl-suite".
    public static var names: String { Self.list(plugins.map { $0.name }) }

    /// Words joined as a list is said: "a", "a and b", "a, b and c".
    public static func list(_ words: [String]) -> String {
        words.count <= 1 ? words.joined() : words.dropLast().joined(separator: ", ") + " and " + words[words.count - 1]
    }
}
