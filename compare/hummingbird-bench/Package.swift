// swift-tools-version:6.0
// The comparison anchor for `scripts/compare-http.sh`: the benchmark server's two routes
// (GET /hello, POST /echo) on Hummingbird 2. Not part of the orchestrator's package, which
// uses no third-party packages; only the comparison script builds it.
import PackageDescription

let package = Package(
    name: "HummingbirdBench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdBench",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")]
        ),
    ]
)
