import Foundation
import GuestImage
import HostSupport
import Kernels

/// Cold and warm builds of one image. Cold: the image, the kernel's decompressed modules and
/// the digest memo removed first. Warm: builds that must hit the cache.
public enum ImageBenchmark {
    public struct Figures: Codable, Sendable {
        public let kernel: String
        public let recipe: String
        public let coldSeconds: Double
        public let warmMedianSeconds: Double
        public let warmMinimumSeconds: Double
        public let warmRuns: Int
        public let sizeBytes: Int
        public let files: Int
    }

    public static func measure(cache: CacheDirectory, kernel: Kernels.Kernel, recipe: ImageRecipe, features: Set<String>, repeats: Int) async throws -> Figures {
        let request = ImageRequest(recipe: recipe, kernel: kernel, features: features)
        let builder = try ImageBuilder(cache: cache)
        let first = try await builder.build(request)
        let fm = FileManager.default
        try? fm.removeItem(atPath: (first.path as NSString).deletingLastPathComponent)
        try? fm.removeItem(atPath: kernel.folder + "/plain")
        try? fm.removeItem(atPath: cache.path + "/images/digests.json")
        let clock = ContinuousClock()
        var start = clock.now
        let cold = try await builder.build(request)
        let coldSeconds = (clock.now - start).seconds
        var warm: [Double] = []
        for _ in 0..<max(1, repeats) {
            start = clock.now
            let hit = try await builder.build(request)
            warm.append((clock.now - start).seconds)
            guard hit.cacheHit else { throw BenchError("a warm build missed the cache") }
        }
        warm.sort()
        return Figures(kernel: kernel.release, recipe: recipe.name, coldSeconds: coldSeconds, warmMedianSeconds: warm[warm.count / 2],
                       warmMinimumSeconds: warm[0], warmRuns: warm.count, sizeBytes: cold.size, files: cold.programs.count + cold.modules.count)
    }
}

/// A step of the bench that could not be measured, and why.
public struct BenchError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
