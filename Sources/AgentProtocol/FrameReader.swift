/// Splits a byte stream into newline-terminated frames. A frame longer than the limit is
/// dropped up to its newline and reported once as oversized, so a flood cannot exhaust memory.
public struct FrameReader {
    public enum Item: Equatable {
        case frame([UInt8])
        case oversized(Int)
    }

    let limit: Int
    var pending: [UInt8] = []
    var discarding = false
    var discarded = 0

    public init(limit: Int = AgentProtocol.maximumFrameBytes) {
        self.limit = limit
    }

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Item] {
        var items: [Item] = []
        for byte in bytes {
            if byte == 0x0A {
                if discarding {
                    items.append(.oversized(discarded))
                    discarding = false
                    discarded = 0
                } else if !pending.isEmpty {
                    items.append(.frame(pending))
                }
                pending.removeAll(keepingCapacity: true)
                continue
            }
            if discarding {
                discarded += 1
                continue
            }
            pending.append(byte)
            if pending.count > limit {
                discarding = true
                discarded = pending.count
                pending.removeAll()
            }
        }
        return items
    }
}
