// Replaced by the real command line once the orchestrator exists.
print("orchestrator")
