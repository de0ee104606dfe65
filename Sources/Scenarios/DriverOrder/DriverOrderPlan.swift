import Foundation
import HostSupport

/// Which orders of the driver set a run tries.
public enum OrderSelection: Sendable, Hashable, CustomStringConvertible {
    case all
    /// A seeded sample of this many distinct orders (fresh each round of --repeat).
    case sample(Int)
    /// This one order of the whole set (`fsdev_dax,device_dax,kmem`): how a race's failing
    /// registration order is replayed deterministically.
    case exact([String])

    public init?(argument: String) {
        if argument == "all" { self = .all; return }
        if argument.contains(",") || Int(argument) == nil {
            let names = argument.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } }) else { return nil }
            self = .exact(names)
            return
        }
        guard let count = Int(argument), count > 0 else { return nil }
        self = .sample(count)
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .sample(let count): "\(count)"
        case .exact(let order): order.joined(separator: ",")
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

    /// Every order is listed only up to this many drivers (8! = 40,320 orders); past it a
    /// run samples (`--orders N`).
    public static let maximumForAll = 8

    /// The most orders a sample holds: as many as `all` lists at most (8!), hours of guest
    /// work already; also what keeps drawing a sample bounded for any number of drivers.
    public static let maximumSample = 40_320

    /// What is wrong with an `orders` setting for a driver set, in words with the fix; nil
    /// when it can run.
    public static func problem(orders: String, drivers: [String]) -> String? {
        guard let selection = OrderSelection(argument: orders) else {
            return "orders '\(orders)' is neither 'all', a positive number of orders to sample, nor one order of the drivers (a,b,c)"
        }
        if case .exact(let order) = selection, order.sorted() != drivers.sorted() {
            return "orders '\(orders)' is neither 'all', a positive number of orders to sample, nor an order of the drivers "
                + "\(drivers.joined(separator: ",")) (each named once, comma-separated)"
        }
        if selection == .all, drivers.count > maximumForAll {
            return "\(drivers.count) drivers have \(count(drivers.count).map(String.init) ?? "too many") orders; sample some with orders: N (or --orders N)"
        }
        if case .sample(let wanted) = selection, wanted > maximumSample {
            return "orders \(wanted) asks for more orders than a run samples (at most \(maximumSample), as many as `all` lists for \(maximumForAll) drivers); "
                + "give orders: \(maximumSample) or fewer"
        }
        if Set(drivers).count != drivers.count { return "the driver list names a driver twice: \(drivers.joined(separator: ", "))" }
        return nil
    }

    /// n!, or nil past `Int`.
    public static func count(_ drivers: Int) -> Int? {
        (1...max(1, drivers)).reduce(Optional(1)) { product, factor in
            product.flatMap { $0.multipliedReportingOverflow(by: factor) }.flatMap { $0.overflow ? nil : $0.partialValue }
        }
    }

    /// The orders for one round. Round r of a seeded run always draws the same sample.
    public static func orders(_ drivers: [String], selection: OrderSelection, seed: UInt64, round: Int) -> [[String]] {
        var generator = SeededGenerator(seed: seed &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15)
        switch selection {
        case .all:
            return all(drivers)
        case .exact(let order):
            return [order]
        case .sample(let count) where drivers.count <= 7:
            let every = all(drivers)
            guard count < every.count else { return every }
            var shuffled = every
            shuffled.shuffle(using: &generator)
            return Array(shuffled.prefix(count))
        case .sample(let count):
            // Too many orders to list: draw distinct ones, never more than there are (a name
            // given twice makes fewer) nor than a sample holds. Rejection then ends quickly,
            // and the attempts are capped besides: a draw is never an endless loop.
            let wanted = min(count, maximumSample, distinctCount(drivers) ?? count)
            var drawn: [[String]] = []
            var seen: Set<[String]> = []
            var attempts = 0
            while drawn.count < wanted, attempts < wanted * 64 + 1024 {
                attempts += 1
                let order = drivers.shuffled(using: &generator)
                if seen.insert(order).inserted { drawn.append(order) }
            }
            return drawn
        }
    }

    /// How many distinct orders a list has (n! over k! for each name given k times), or nil
    /// past `Int`.
    static func distinctCount(_ drivers: [String]) -> Int? {
        let repeats = Dictionary(drivers.map { ($0, 1) }, uniquingKeysWith: +).values
        guard let all = count(drivers.count) else { return nil }
        return repeats.reduce(all) { $0 / (count($1) ?? 1) }
    }
}
