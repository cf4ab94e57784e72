import XCTest
import Projector
import Kernels

/// How a global batch is split over the ranks of a data-parallel run (issue 16): every rank must
/// compute the same partition, every item must land on exactly one rank, and no share may hold
/// more items than the step buffers were sized for (⌈batch / ranks⌉).
final class CollectiveTests: XCTestCase {
    /// A rank of a job of `size` that never communicates (only the partition is under test).
    final class FixedRank: Collective {
        let rank: Int, size: Int
        init(rank: Int, size: Int) { self.rank = rank; self.size = size }
        func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
        func sum(_ values: inout [Double]) throws {}
        func maximum(_ values: inout [Double]) throws {}
        func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {}
        func barrier() throws {}
    }

    func testBalancedSharesOfAHandComputedBatch() {
        // sorted by cost: 10 (item 0) -> rank 0, 9 (item 1) -> rank 1, 1 (item 2) -> rank 1 (load 9 < 10),
        // 1 (item 3) -> tie 10/10 -> rank 0. A contiguous split would give loads 19 and 2.
        let costs = [10, 9, 1, 1]
        XCTAssertEqual(FixedRank(rank: 0, size: 2).balancedShare(of: Array(0..<4)) { costs[$0] }, [0, 3])
        XCTAssertEqual(FixedRank(rank: 1, size: 2).balancedShare(of: Array(0..<4)) { costs[$0] }, [1, 2])
        XCTAssertEqual(FixedRank(rank: 1, size: 2).share(of: Array(0..<4)), [2, 3])
        XCTAssertEqual(SingleProcess().balancedShare(of: Array(0..<4)) { costs[$0] }, [0, 1, 2, 3])
    }

    func testBalancedSharesPartitionEveryBatchWithinCapacity() {
        var rng = SplitMix(seed: 16)
        var worstBalanced = 0.0, worstContiguous = 0.0
        for trial in 0..<500 {
            let size = 2 + trial % 4
            let count = size + Int.random(in: 0...13, using: &rng)
            let costs = (0..<count).map { _ in Int.random(in: 20...400, using: &rng) }
            let capacity = (count + size - 1) / size
            var seen = [Int](), loads = [Int](), contiguous = [Int]()
            for r in 0..<size {
                let c = FixedRank(rank: r, size: size)
                let mine = c.balancedShare(of: Array(0..<count)) { costs[$0] }
                XCTAssertLessThanOrEqual(mine.count, capacity)
                XCTAssertEqual(mine, mine.sorted(), "a share keeps the batch's order")
                seen += mine
                loads.append(mine.map { costs[$0] }.reduce(0, +))
                contiguous.append(c.share(of: Array(0..<count)).map { costs[$0] }.reduce(0, +))
            }
            XCTAssertEqual(seen.sorted(), Array(0..<count), "every item on exactly one rank")
            let mean = Double(costs.reduce(0, +)) / Double(size)
            worstBalanced = max(worstBalanced, Double(loads.max()!) / mean)
            worstContiguous = max(worstContiguous, Double(contiguous.max()!) / mean)
        }
        print("slowest share / mean share over 500 random batches: balanced \(worstBalanced), contiguous \(worstContiguous)")
        XCTAssertLessThan(worstBalanced, worstContiguous)
    }
}
