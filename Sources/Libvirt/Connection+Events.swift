import CLibvirt

/// A domain lifecycle event (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`).
public struct DomainEvent: Sendable, CustomStringConvertible {
    public enum Kind: Int32, Sendable {
        case defined = 0, undefined, started, suspended, resumed, stopped, shutdown, pmSuspended, crashed
    }

    public let domainName: String
    /// nil for event numbers newer than this wrapper knows.
    public let kind: Kind?
    public let rawEvent: Int32
    /// The event's detail (for `stopped`: shutdown, destroyed, crashed, failed, ...).
    public let detail: Int32

    public init(domainName: String, rawEvent: Int32, detail: Int32) {
        self.domainName = domainName
        self.rawEvent = rawEvent
        self.kind = Kind(rawValue: rawEvent)
        self.detail = detail
    }

    /// For `stopped`: the domain crashed, or QEMU failed.
    public var stoppedAbnormally: Bool {
        kind == .stopped
            && (detail == Int32(VIR_DOMAIN_EVENT_STOPPED_CRASHED.rawValue)
                || detail == Int32(VIR_DOMAIN_EVENT_STOPPED_FAILED.rawValue))
    }

    /// For `stopped`: QEMU itself died (its monitor closed: an assertion, a signal), as
    /// opposed to the guest crashing (`VIR_DOMAIN_EVENT_STOPPED_CRASHED`, from pvpanic).
    public var emulatorFailed: Bool {
        kind == .stopped && detail == Int32(VIR_DOMAIN_EVENT_STOPPED_FAILED.rawValue)
    }

    public var description: String {
        "\(domainName): \(kind.map { "\($0)" } ?? "event \(rawEvent)") (detail \(detail))"
    }
}

/// What libvirt keeps while a callback is registered; released by libvirt's free callback.
private final class LifecycleSink: Sendable {
    let continuation: AsyncStream<DomainEvent>.Continuation
    init(_ continuation: AsyncStream<DomainEvent>.Continuation) { self.continuation = continuation }
}

private let lifecycleCallback: @convention(c) (
    OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?
) -> Int32 = { _, domain, event, detail, opaque in
    guard let opaque else { return 0 }
    let sink = Unmanaged<LifecycleSink>.fromOpaque(opaque).takeUnretainedValue()
    let name = domain.flatMap { virDomainGetName($0) }.map { String(cString: $0) } ?? ""
    sink.continuation.yield(DomainEvent(domainName: name, rawEvent: event, detail: detail))
    return 0
}

private let releaseSink: @convention(c) (UnsafeMutableRawPointer?) -> Void = { opaque in
    guard let opaque else { return }
    Unmanaged<LifecycleSink>.fromOpaque(opaque).release()
}

extension Connection {
    /// Lifecycle events of every domain on this connection, as they happen.
    /// The callback is registered before this returns, so an event caused after the call is
    /// never missed; ending the stream's iteration deregisters it.
    public func lifecycleEvents() throws -> AsyncStream<DomainEvent> {
        let (stream, continuation) = AsyncStream<DomainEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let sink = Unmanaged.passRetained(LifecycleSink(continuation))
        let callbackID = virConnectDomainEventRegisterAny(
            handle,
            nil,
            Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
            unsafeBitCast(lifecycleCallback, to: virConnectDomainEventGenericCallback.self),
            sink.toOpaque(),
            releaseSink
        )
        guard callbackID >= 0 else {
            let error = LibvirtError.last("register lifecycle events")
            sink.release()
            throw error
        }
        continuation.onTermination = { _ in
            // Holding `self` here keeps the connection open while the stream lives.
            virConnectDomainEventDeregisterAny(self.handle, callbackID)
        }
        return stream
    }
}
