import KilnQuant
import KilnTensor
import KilnTestSupport
import XCTest

/// Observers against ranges computed by hand.
final class ObserverTests: XCTestCase {
    func testMinMaxIsTheExtremesOverAllSamples() {
        var o = RangeObserver(.minMax)
        XCTAssertNil(o.range)
        o.observe([0.5, -1.25, 3])
        o.observe([2, 7.5, -0.5])
        o.observe([])
        XCTAssertEqual(o.range, ValueRange(min: -1.25, max: 7.5))
        XCTAssertEqual(o.samples, 2)
    }

    func testNonFiniteValuesAreSkippedAndCounted() {
        var o = RangeObserver(.minMax)
        o.observe([.nan, 1, .infinity, -2, -.infinity])
        XCTAssertEqual(o.range, ValueRange(min: -2, max: 1))
        XCTAssertEqual(o.nonFinite, 3)
        var empty = RangeObserver(.minMax)
        empty.observe([.nan])
        XCTAssertNil(empty.range, "a tensor with no finite value has no range")
    }

    func testMovingAverageFollowsTheRecurrence() {
        // Sample extremes (-1, 2), (-3, 4), (1, 10) with momentum 0.5:
        // min: -1 → -1 + 0.5(-3 + 1) = -2 → -2 + 0.5(1 + 2) = -0.5
        // max:  2 →  2 + 0.5(4 - 2) =  3 →  3 + 0.5(10 - 3) = 6.5
        var o = RangeObserver(.movingAverage(momentum: 0.5))
        o.observe([-1, 0, 2])
        o.observe([4, -3])
        o.observe([1, 10, 5])
        XCTAssertEqual(o.range, ValueRange(min: -0.5, max: 6.5))
        XCTAssertEqual(o.extremes, ValueRange(min: -3, max: 10))
    }

    func testPercentileClipsOutliersByHand() {
        // 10,000 values 0, 1, ..., 9999 / 10000 (uniform on [0, 1)) and one outlier at 100.
        // The 99th percentile of 10,001 values lies near 0.99; the 1st near 0.01.
        var values = (0..<10_000).map { Float($0) / 10_000 }
        values.append(100)
        var o = RangeObserver(.percentile(99, bins: 2048))
        o.observe(values)
        let r = o.range!
        XCTAssertEqual(r.max, 0.99, accuracy: 0.1, "the outlier at 100 is clipped")
        XCTAssertEqual(r.min, 0.01, accuracy: 0.06)
        XCTAssertEqual(o.extremes, ValueRange(min: 0, max: 100))
        // At 100% the percentile is the extremes.
        var all = RangeObserver(.percentile(100, bins: 2048))
        all.observe(values)
        XCTAssertEqual(all.range!.max, 100, accuracy: 1e-9)
        XCTAssertEqual(all.range!.min, 0, accuracy: 0.06)
    }

    func testPercentileIsExactOnAHandHistogram() {
        // 16 bins over [0, 16): value k lands in bin k. 100 values: 98 at 0.5, one at 14.5, one at 15.5.
        // p = 99: the 99th of 100 counts is reached in bin 14 → 14 + (99 - 98) / 1 = 15.
        var h = Histogram(bins: 16, covering: ValueRange(min: 0, max: 16))
        h.add([Float](repeating: 0.5, count: 98) + [14.5, 15.5])
        XCTAssertEqual(h.counts[0], 98)
        XCTAssertEqual(h.counts[14], 1)
        XCTAssertEqual(h.quantile(0.99), 15, accuracy: 1e-12)
        XCTAssertEqual(h.quantile(0.49), 0.5, accuracy: 1e-12)  // 49 of 98 into bin 0
        XCTAssertEqual(h.quantile(1), 16, accuracy: 1e-12)
    }

    func testMinimumErrorRangeByHand() {
        // 16 bins of width 1 over [0, 16): 10,000 values at 0.5 and one at 15.5, 4 levels (step
        // b/3 for a range [0, b]). Rounding costs 10,000 · (b/3)² / 12 ≈ 92.6 b², clipping the
        // outlier (15.5 - b)²: b = 1 costs ≈ 302.8, b = 2 ≈ 552, the full range b = 16 ≈ 23,706.
        var h = Histogram(bins: 16, covering: ValueRange(min: 0, max: 16))
        h.add([Float](repeating: 0.5, count: 10_000) + [15.5])
        XCTAssertEqual(h.minimumErrorRange(levels: 4), ValueRange(min: 0, max: 1))
        // One value per bin at 256 levels: rounding costs 16 · (16/255)² / 12 ≈ 0.005, less than
        // clipping any value: the full range.
        var even = Histogram(bins: 16, covering: ValueRange(min: 0, max: 16))
        even.add((0..<16).map { Float($0) + 0.5 })
        XCTAssertEqual(even.minimumErrorRange(levels: 256), ValueRange(min: 0, max: 16))
    }

    func testMSEObserverClipsARareOutlierThatMinMaxKeeps() {
        // N values uniform on [-1, 1] and one at 50, 256 levels. A range [-1, b] costs about
        // (50 - b)² for the outlier plus N · ((b + 1) / 255)² / 12 for rounding, least at
        // b = (50 - k) / (1 + k) with k = N / (12 · 255²): 13.31 for N = 2,000,000 and 39.59 for
        // N = 200,000 (candidates lie 8 bins = 0.2 apart). minmax keeps 50.
        for (n, expected) in [(2_000_000, 13.31), (200_000, 39.59)] {
            var values = (0..<n).map { Float($0) / Float(n / 2) - 1 }
            values.append(50)
            var o = RangeObserver(.mse(bins: 2048))
            o.observe(values)
            XCTAssertEqual(o.range!.max, expected, accuracy: 0.25, "N = \(n)")
            XCTAssertEqual(o.range!.min, -1, accuracy: 0.03, "N = \(n)")
            XCTAssertEqual(o.extremes!.max, 50)
        }
    }

    func testHistogramGrowthMergesBinsExactly() {
        var h = Histogram(bins: 4, covering: ValueRange(min: 0, max: 4))
        h.add([0.5, 1.5, 2.5, 3.5, 3.5])
        XCTAssertEqual(h.counts, [1, 1, 1, 2])
        h.add([7])  // doubles upward: width 2 over [0, 8)
        XCTAssertEqual(h.low, 0)
        XCTAssertEqual(h.width, 2)
        XCTAssertEqual(h.counts, [2, 3, 0, 1])
        h.add([-5])  // doubles downward: width 4 over [-8, 8)
        XCTAssertEqual(h.low, -8)
        XCTAssertEqual(h.width, 4)
        XCTAssertEqual(h.counts, [1, 0, 5, 1])
        XCTAssertEqual(h.total, 7)
    }

    func testObserverKindsValidateAndRoundTripThroughJSON() throws {
        XCTAssertNil(ObserverKind.minMax.problem)
        XCTAssertNotNil(ObserverKind.movingAverage(momentum: 0).problem)
        XCTAssertNotNil(ObserverKind.movingAverage(momentum: 1.5).problem)
        XCTAssertNotNil(ObserverKind.percentile(40, bins: 2048).problem)
        XCTAssertNotNil(ObserverKind.percentile(99.9, bins: 7).problem)
        XCTAssertNotNil(ObserverKind.mse(bins: 3).problem)
        XCTAssertNil(ObserverKind.mse(bins: 2048).problem)
        for kind in [ObserverKind.minMax, .movingAverage(momentum: 0.01), .percentile(99.99, bins: 2048), .mse(bins: 2048)] {
            let data = try JSONEncoder().encode(kind)
            XCTAssertEqual(try JSONDecoder().decode(ObserverKind.self, from: data), kind)
        }
        XCTAssertThrowsError(try JSONDecoder().decode(ObserverKind.self, from: Data(#"{"kind":"kl"}"#.utf8)))
    }
}
