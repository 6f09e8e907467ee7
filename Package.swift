// swift-tools-version:6.0
import PackageDescription

// Four modules, pointing one way (see shared/DESIGN.md):
//   Orchestrator -> ClusterNode -> Raft
//                \-> Transport  <-/
// RaftSimulation is the deterministic, in-process harness over the Raft core; the
// tests and the `orchestrator simulate` / `orchestrator bench raft` commands share it.
let package = Package(
    name: "orchestrator",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "orchestrator", targets: ["Orchestrator"]),
    ],
    targets: [
        .target(name: "Raft"),
        .target(name: "RaftSimulation", dependencies: ["Raft"]),
        .target(name: "Transport"),
        .target(name: "ClusterNode", dependencies: ["Raft", "Transport"]),
        .executableTarget(
            name: "Orchestrator",
            dependencies: ["ClusterNode", "Transport", "Raft", "RaftSimulation"]
        ),
        .testTarget(name: "RaftTests", dependencies: ["Raft", "RaftSimulation"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "ClusterNodeTests", dependencies: ["ClusterNode", "Raft", "Transport"]),
        .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "ClusterNode", "Transport"]),
    ]
)
