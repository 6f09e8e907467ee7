/// The top-level help text.
enum Usage {
    static let text = """
        usage: orchestrator [command] [options]      (every command answers --help)

          (none), serve     the REST API on 127.0.0.1:8000 and cluster 0 (see: orchestrator serve --help)
          node              run one node process (the orchestrator spawns these)
          nemesis           inject random faults into a running cluster, then check nothing was lost
          simulate          run the deterministic Raft simulation (see: orchestrator simulate --help)
          bench raft        benchmark the Raft core alone (release builds: swift run -c release orchestrator bench raft)
          bench http        benchmark the HTTP server and client on loopback
          bench failover    kill -9 the leader of real node processes, time until a write commits again
          bench commit      commit latency and throughput through the leader at several concurrencies
          bench scale       idle CPU and memory per node with many clusters, commit latency beside them
          bench compaction  service changes with each node's data directory size: snapshots keep it bounded
          experiment run    run an experiment file: clusters side by side, one workload, one fault schedule, a report
          help              this text
        """
}
