import Foundation
import HostSupport

/// Which orders of the driver set a run tries.
public enum OrderSelection: Sendable, Hashable, CustomStringConvertible {
    case all
    /// A seeded sample of this many distinct orders (fresh each round of --repeat).
    case sample(Int)

    public init?(argument: String) {
        if argument == "all" { self = .all; return }
        guard let count = Int(argument), count > 0 else { return nil }
        self = .sample(count)
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .sample(let count): "\(count)"
        }
    }
}

/// The orders of a driver set: all of them in lexicographic order of the given list, or a
/// reproducible sample drawn with a seed.
public enum DriverOrders {
    /// Every permutation, the given order first (Heap's algorithm would be faster; n is tiny
    /// and a stable, readable order matters more).
    public static func all(_ drivers: [String]) -> [[String]] {
        guard drivers.count > 1 else { return [drivers] }
        var result: [[String]] = []
        for (index, first) in drivers.enumerated() {
            var rest = drivers
            rest.remove(at: index)
            for tail in all(rest) { result.append([first] + tail) }
        }
        return result
    }

    /// The orders for one round. Round r of a seeded run always draws the same sample.
    public static func orders(_ drivers: [String], selection: OrderSelection, seed: UInt64, round: Int) -> [[String]] {
        let every = all(drivers)
        switch selection {
        case .all:
            return every
        case .sample(let count):
            guard count < every.count else { return every }
            var generator = SeededGenerator(seed: seed &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15)
            var shuffled = every
            shuffled.shuffle(using: &generator)
            return Array(shuffled.prefix(count))
        }
    }
}
