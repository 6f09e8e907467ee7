/// The top-level help text.
enum Usage {
    static let text = """
        usage: orchestrator <command> [options]

          simulate    run the deterministic Raft simulation (see: orchestrator simulate --help)
          bench raft  benchmark the Raft core alone (release builds: swift run -c release orchestrator bench raft)
        """
}
