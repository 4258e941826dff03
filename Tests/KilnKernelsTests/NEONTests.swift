import Foundation
import KilnTestSupport
import XCTest

/// The NEON kernels, which this x86 machine cannot run natively: `scripts/check-neon.sh`
/// cross-compiles CKilnKernels for aarch64 and runs `Tests/NEONCheck/neon_check.c` under
/// qemu (NEON against naive C and the portable build). Skipped where the cross tools are not
/// installed (`qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross`).
final class NEONTests: XCTestCase {
    func testNEONKernelsUnderQEMU() throws {
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: "/usr/bin/qemu-aarch64-static"), fm.fileExists(atPath: "/usr/aarch64-linux-gnu/lib"),
            fm.fileExists(atPath: "/usr/lib/gcc-cross/aarch64-linux-gnu")
        else {
            throw XCTSkip("no aarch64 cross tools (apt-get install qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross)")
        }
        let r = try runProcess("/bin/bash", [repositoryRoot.appendingPathComponent("scripts/check-neon.sh").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains(" passed, 0 failed"), r.stdout)
    }
}
