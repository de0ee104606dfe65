import Foundation
import Kernels
import Scenarios

/// A matrix ready to run: every kernel it names resolved once, at its start, so all its cells
/// use the same release even if a suite alias moves while it runs; and its cells on them.
public struct MatrixPlan: Sendable {
    /// What the plan keeps of a kernel: its pin and what fsdev_dax can be on it; not its
    /// config, which a long matrix would carry for nothing (a Debian config is a megabyte).
    public struct PlannedKernel: Sendable, Hashable {
        public let pinned: PinnedKernel
        public let fsdev: FsdevAvailability
        /// The store's kernel, handed on to every cell: resolved here, once.
        public let kernel: Kernel

        public init(_ kernel: KernelUnderTest) {
            pinned = kernel.pinned
            fsdev = FsdevAvailability(kernel)
            self.kernel = kernel.kernel
        }
    }

    /// The kernels of the plan as the runner hands them on, by the matrix's names.
    public var resolvedKernels: [String: Kernel] { kernels.mapValues(\.kernel) }

    public let matrix: MatrixFile
    public let kernels: [String: PlannedKernel]
    public let cells: [MatrixCell]

    /// `earlier`: kernels a run already pinned (`--resume`): those names keep their kernel.
    public static func make(
        _ matrix: MatrixFile, resolver: some KernelResolving, standInSource: String, earlier: [String: PinnedKernel] = [:],
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> MatrixPlan {
        var kernels: [String: PlannedKernel] = [:]
        for name in matrix.kernels where kernels[name] == nil {
            let reference = earlier[name]?.exactReference ?? name
            let kernel = try await resolver.kernel(try KernelReference(parsing: reference), progress: progress)
            kernels[name] = PlannedKernel(KernelUnderTest(kernel: kernel, reference: name))
        }
        let cells = MatrixExpansion.cells(matrix, kernels: kernels, standInSource: standInSource)
        try Expectations(matrix.expect).validate(against: cells)
        return MatrixPlan(matrix: matrix, kernels: kernels, cells: cells)
    }

    public var expectations: Expectations { Expectations(matrix.expect) }

    /// What each kernel name stood for in a stored run.
    public static func pins(of results: [CellResult]) -> [String: PinnedKernel] {
        Dictionary(results.map { ($0.cell.kernel, $0.cell.pinned) }, uniquingKeysWith: { first, _ in first })
    }
}
