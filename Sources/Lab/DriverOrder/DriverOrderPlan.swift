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

/// A failure rate with its 95% Wilson score interval: honest for small samples and for
/// rates near 0 or 1, where the normal approximation claims certainty it does not have.
public struct FailureRate: Sendable, Hashable, Codable {
    public let failures: Int
    public let trials: Int
    public let rate: Double
    public let lower: Double
    public let upper: Double

    public init(failures: Int, trials: Int, z: Double = 1.959963984540054) {
        self.failures = failures
        self.trials = trials
        guard trials > 0 else {
            rate = 0
            lower = 0
            upper = 1
            return
        }
        let n = Double(trials)
        let p = Double(failures) / n
        let z2 = z * z
        let center = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z * ((p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()) / (1 + z2 / n)
        rate = p
        lower = max(0, center - half)
        upper = min(1, center + half)
    }

    public var description: String {
        String(format: "%d of %d failed (%.1f%%, 95%% CI %.1f%%–%.1f%%)", failures, trials, rate * 100, lower * 100, upper * 100)
    }
}
