/// A device on one of the buses the agent reports (dax, nd, cxl), and the driver bound to it.
public struct BusDevice: Sendable, Hashable {
    public let bus: String
    public let name: String
    public let driver: String?
    /// A few sysfs attributes worth reporting (dax: size, target_node, mode).
    public let attributes: [String: String]

    public init(bus: String, name: String, driver: String?, attributes: [String: String] = [:]) {
        self.bus = bus
        self.name = name
        self.driver = driver
        self.attributes = attributes
    }

    public var json: JSONValue {
        ["bus": .string(bus), "name": .string(name), "driver": driver.map { .string($0) } ?? .null,
         "attributes": .object(attributes.mapValues { .string($0) })]
    }

    public init?(json: JSONValue) {
        guard let bus = json["bus"]?.stringValue, let name = json["name"]?.stringValue else { return nil }
        self.init(bus: bus, name: name, driver: json["driver"]?.stringValue,
                  attributes: (json["attributes"]?.objectValue ?? [:]).compactMapValues(\.stringValue))
    }
}

/// What a program run in the guest did.
public struct ToolOutcome: Sendable, Hashable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// stdout parsed as JSON, when it is JSON (ndctl, daxctl and cxl list print JSON).
    public let json: JSONValue?

    public init(status: Int32, stdout: String, stderr: String, json: JSONValue?) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.json = json
    }

    public var jsonValue: JSONValue {
        ["status": .int(Int64(status)), "stdout": .string(stdout), "stderr": .string(stderr), "json": json ?? .null]
    }

    public init(json: JSONValue) {
        self.init(status: Int32(clamping: json["status"]?.intValue ?? -1), stdout: json["stdout"]?.stringValue ?? "",
                  stderr: json["stderr"]?.stringValue ?? "", json: json["json"].flatMap { $0 == .null ? nil : $0 })
    }
}

/// A loaded module, from /proc/modules.
public struct LoadedModule: Sendable, Hashable {
    public let name: String
    public let size: Int64
    public let usedBy: [String]

    public init(name: String, size: Int64, usedBy: [String]) {
        self.name = name
        self.size = size
        self.usedBy = usedBy
    }

    public var json: JSONValue { ["name": .string(name), "size": .int(size), "used_by": .array(usedBy.map { .string($0) })] }

    public init?(json: JSONValue) {
        guard let name = json["name"]?.stringValue else { return nil }
        self.init(name: name, size: json["size"]?.intValue ?? 0, usedBy: json["used_by"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
