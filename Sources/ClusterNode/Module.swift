// module ClusterNode
