// module RaftSimulation
