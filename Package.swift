// swift-tools-version:6.0
import PackageDescription

// Modules pointing one way (see shared/DESIGN.md):
//   Orchestrator -> RaftSimulation -> ClusterNode -> RaftStorage -> Raft
//                \-> Transport <-------------/
// Raft (the core) imports nothing but the standard library; RaftStorage (write-ahead log,
// snapshot files) is the only Raft code that touches files. ClusterNode is the node in two
// layers: the replica (core, storage, round order) and the cluster service (the replicated
// state machine and what is built on it). RaftSimulation is the deterministic, in-process
// harness that runs the node's own replica rounds and state machine over simulated disks
// and a simulated network; the tests and `orchestrator simulate` / `bench raft` share it.
// CEpoll is a system module over the C library (epoll, eventfd, accept4) for Transport's
// event-driven server.
let optimized: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "orchestrator",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "orchestrator", targets: ["Orchestrator"]),
    ],
    targets: [
        .target(name: "Raft", swiftSettings: optimized),
        .target(name: "RaftStorage", dependencies: ["Raft"], swiftSettings: optimized),
        .target(name: "RaftSimulation", dependencies: ["Raft", "RaftStorage", "ClusterNode"], swiftSettings: optimized),
        // Linux's epoll, eventfd and accept4 (the C library has them; Glibc does not export them).
        .systemLibrary(name: "CEpoll", path: "Sources/CEpoll"),
        .target(name: "Transport", dependencies: ["CEpoll"], swiftSettings: optimized),
        .target(name: "ClusterNode", dependencies: ["Raft", "RaftStorage", "Transport"], swiftSettings: optimized),
        .executableTarget(
            name: "Orchestrator",
            dependencies: ["ClusterNode", "Transport", "Raft", "RaftSimulation"],
            swiftSettings: optimized
        ),
        .testTarget(name: "RaftTests", dependencies: ["Raft", "RaftSimulation"]),
        .testTarget(name: "RaftStorageTests", dependencies: ["Raft", "RaftStorage"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "ClusterNodeTests", dependencies: ["ClusterNode", "Raft", "RaftStorage", "Transport"]),
        // The schemathesis settings are read from the source tree by the test that runs it.
        .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "ClusterNode", "Transport"], exclude: ["schemathesis.toml"]),
    ]
)
