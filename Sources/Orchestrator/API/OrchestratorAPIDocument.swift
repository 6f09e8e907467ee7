import ClusterNode
import Transport

/// The orchestrator's API as an OpenAPI 3.1 document (`GET /openapi.json`). Routes the
/// orchestrator forwards to a cluster's leader take the node's own description, with the
/// cluster's `id` and the forwarding's own failures added: the two documents cannot drift.
enum OrchestratorAPIDocument: APIDescription {
    static let unknownCluster = fail(404, "No such cluster (or node, or experiment).")
    static let badRequest = fail(400, "The body or a field is invalid; the error names it.")
    static let member = Schema.anyOf(Schema.integer(1...65_535), Schema.string)

    static let schemas: [String: JSONValue] = NodeAPIDocument.schemas.merging([
        "Root": Schema.object(["service": Schema.string, "clusters": Schema.string, "docs": Schema.string], required: ["service"]),
        "ClusterSettings": Schema.object([
            "nodes": Schema.integer, "heartbeatMs": Schema.integer, "electionTimeoutMs": Schema.integer, "capacity": Schema.integer,
            "unhealthyAfterMs": Schema.integer, "electionJitterMs": Schema.integer, "snapshotEveryEntries": Schema.integer,
            "preVote": Schema.boolean, "checkQuorum": Schema.boolean, "tickUs": Schema.integer, "fixedElectionTimeout": Schema.boolean,
            "fastFirstElection": Schema.boolean,
        ], required: ["nodes", "heartbeatMs", "electionTimeoutMs", "capacity", "unhealthyAfterMs"]),
        "ClusterSummary": Schema.object([
            "id": Schema.string,
            "nodes": Schema.array(Schema.object([
                "address": Schema.string, "port": Schema.integer, "pid": Schema.integer, "process": Schema.enumeration(["running", "paused", "stopped", "killed", "exited"]),
                "accessible": Schema.boolean, "state": Schema.string, "term": uint, "leader": Schema.string, "error": Schema.string,
            ], required: ["address", "port", "process", "accessible"])),
            "leader": Schema.string, "term": uint, "settings": Schema.ref("ClusterSettings"), "dataDirectory": Schema.string,
        ], required: ["id", "nodes", "settings", "dataDirectory"]),
        "ClusterList": Schema.object(["results": Schema.array(Schema.ref("ClusterSummary"))], required: ["results"]),
        "CreateCluster": Schema.object([
            "nodes": Schema.integer(1...15), "id": .object(["type": .string("string"), "pattern": .string("^[A-Za-z0-9_-]{1,32}$")]),
            "heartbeatMs": Schema.integer(1...10_000), "electionTimeoutMs": Schema.integer(2...60_000), "capacity": Schema.integer(1...10_000),
            "unhealthyAfterMs": Schema.integer(1...600_000), "electionJitterMs": Schema.integer(0...60_000), "snapshotEveryEntries": Schema.integer(0...10_000_000),
            "desiredState": Schema.ref("DesiredStateFile"), "preVote": Schema.boolean, "checkQuorum": Schema.boolean, "tickUs": Schema.integer(100...10_000),
            "fixedElectionTimeout": Schema.boolean, "fastFirstElection": Schema.boolean,
        ], description: "Every field optional: the orchestrator's settings fill the rest."),
        "Resize": Schema.object(["nodes": Schema.integer(1...15)], required: ["nodes"]),
        "ResizeResult": Schema.object(["cluster": Schema.ref("ClusterSummary"), "steps": Schema.array(Schema.string), "milliseconds": Schema.number],
                                      required: ["cluster", "steps", "milliseconds"]),
        "ClusterStats": Schema.object([
            "cluster": Schema.string, "leader": Schema.string, "term": uint,
            "staleLeaders": Schema.array(Schema.object(["address": Schema.string, "term": uint], required: ["address", "term"])),
            "nodes": Schema.array(Schema.anyOf(Schema.ref("NodeStats"),
                                               Schema.object(["address": Schema.string, "accessible": Schema.boolean, "process": Schema.string, "error": Schema.string],
                                                             required: ["address", "accessible", "process", "error"]))),
            "links": Schema.map(Schema.ref("LinkTable")), "services": Schema.array(Schema.ref("Service")), "servicesError": Schema.string,
        ], required: ["cluster", "staleLeaders", "nodes", "links", "services"]),
        "FaultResult": Schema.object(["applied": Schema.array(Schema.string), "failed": Schema.map(Schema.string)], required: ["applied", "failed"]),
        "Partition": Schema.object(["groups": .object(["type": .string("array"), "minItems": .number(1), "items": Schema.array(member)])], required: ["groups"],
                                   description: "Groups of nodes (ports or \"localhost:PORT\"); nodes in no group form one more group."),
        "Link": Schema.object(["from": member, "to": member, "up": Schema.boolean, "delayMs": Schema.integer(0...60_000),
                               "loss": .object(["type": .string("number"), "minimum": .number(0), "maximum": .number(1)])], required: ["from", "to"]),
        "ExperimentPlan": Schema.object([
            "name": Schema.string, "seconds": .object(["type": .string("number"), "exclusiveMinimum": .number(0)]),
            "clusters": Schema.array(Schema.object(["name": Schema.string, "nodes": Schema.integer(1...15)], required: ["name"])),
            "workload": Schema.object(["clients": Schema.integer, "rate": Schema.number, "mix": Schema.map(Schema.integer), "services": Schema.integer]),
            "faults": Schema.array(Schema.object(["at": Schema.number, "action": Schema.string], required: ["at", "action"])),
            "randomFaults": Schema.object(["seed": uint, "every": Schema.number], required: ["seed", "every"]),
            "repetitions": Schema.integer, "settleSeconds": Schema.number,
        ], required: ["name", "seconds", "clusters"], description: "An experiment file (see the README's Experiments section)."),
        "Experiment": Schema.object([
            "id": Schema.string, "name": Schema.string, "startedAt": Schema.number,
            "progress": Schema.object(["state": Schema.string, "repetition": Schema.integer, "elapsedSeconds": Schema.number, "totalSeconds": Schema.number,
                                       "currentFault": Schema.string, "operations": Schema.integer, "reportDirectory": Schema.string,
                                       "verdict": Schema.string, "error": Schema.string],
                                      required: ["state", "repetition", "elapsedSeconds", "totalSeconds", "operations", "reportDirectory"]),
            "report": Schema.string,
        ], required: ["id", "name", "startedAt", "progress"]),
        "ExperimentList": Schema.object(["results": Schema.array(Schema.ref("Experiment"))], required: ["results"]),
    ]) { $1 }

    static let pathParameters = NodeAPIDocument.pathParameters.merging([
        "id": (.object(["type": .string("string"), "examples": .array([.string("0")])]), "A cluster's ID."),
        "node": (.object(["type": .string("string"), "examples": .array([.string("8001")])]), #"A node of the cluster, by port or "localhost:PORT"."#),
        "action": (Schema.enumeration(["kill", "stop", "pause", "resume", "restart", "start", "isolate"]), "What to do to the node."),
        "eid": (Schema.string, "An experiment's ID."),
    ]) { $1 }

    /// A node operation as the orchestrator serves it under `/clusters/:id`.
    static func forwarded(_ operation: Operation) -> Operation {
        var copy = operation
        copy.tags = ["cluster (through its leader)"]
        copy.summary += " Forwarded to the cluster's leader."
        let have = Set(copy.answers.map(\.status))
        if !have.contains(404) { copy.answers.append(unknownCluster) }
        if !have.contains(503) { copy.answers.append(Answer(503, "The cluster has no leader now.", .json(error), headers: retryAfter)) }
        if !have.contains(504) { copy.answers.append(fail(504, "The leader took the request and did not answer in time (it may have applied).")) }
        return copy
    }

    static func operations(forwarded routes: [(methods: [String], pattern: String, nodePrefix: String)]) -> [String: Operation] {
        let clusters = ["clusters"], faults = ["faults"], lab = ["experiments"], live = ["live"]
        let summary = Answer(200, "The cluster now.", .json(Schema.ref("ClusterSummary")))
        let stream = OpenAPIDocument.Content.media("text/event-stream", Schema.object([
            "id": .object(["type": .string("string"), "pattern": .string("^[0-9]+$")]),
            "event": Schema.enumeration(["role", "leader", "commit", "links", "fault", "change", "cluster", "skipped"]),
            "data": .object(["type": .string("string"), "contentMediaType": .string("application/json"),
                             "description": .string("The event as JSON: id, time (Unix seconds), type, cluster and the event's fields.")]),
        ], required: ["id", "event", "data"], description: "One server-sent event; comments (keep-alives) carry none."))
        let events = Operation("Live events as server-sent events (role, leader, commit, links, fault, change, cluster, skipped). The stream does not end.", tags: live,
                               query: [Parameter("since", uint, "Resume after this event ID (as Last-Event-ID does).")],
                               headers: [Parameter("Last-Event-ID", Schema.string, "Resume after this event ID.")],
                               answers: [Answer(200, "The stream.", stream), fail(400, "since or Last-Event-ID is not a number."),
                                         Answer(503, "Too many streams open.", .json(error), headers: retryAfter)])
        var operations: [String: Operation] = [
            "GET /": Operation("What this server is.", tags: clusters, query: [pretty], answers: [Answer(200, "OK", .json(Schema.ref("Root")))]),
            "GET /clusters": Operation("Every cluster, with its nodes, leader and term.", tags: clusters, query: [pretty],
                                       answers: [Answer(200, "OK", .json(Schema.ref("ClusterList")))]),
            "POST /clusters": Operation("Start a cluster of node processes on free ports.", tags: clusters, query: [pretty],
                                        body: Body("Its settings (all optional).", .json(Schema.ref("CreateCluster")), required: false),
                                        answers: [Answer(201, "Started: every node answers (its first leader follows within a quarter second or so; GET /clusters/{id} shows it).", .json(Schema.ref("ClusterSummary")),
                                                         links: ["GetCluster": (operation: "GET /clusters/:id", parameters: ["id": "$response.body#/id"]),
                                                                 "DeleteCluster": (operation: "DELETE /clusters/:id", parameters: ["id": "$response.body#/id"])]),
                                                  badRequest, fail(409, "A cluster of that ID exists, a port is taken, or the orchestrator's limit of node processes (--max-nodes) would be passed."), tooLarge,
                                                  fail(503, "No free ports."),
                                                  fail(504, "The nodes did not answer in time.")]),
            "GET /clusters/:id": Operation("One cluster.", tags: clusters, query: [pretty], answers: [summary, unknownCluster]),
            "PUT /clusters/:id": Operation("Grow or shrink a cluster one node at a time through Raft membership changes.", tags: clusters, query: [pretty],
                                           body: Body("The node count wanted.", .json(Schema.ref("Resize"))),
                                           answers: [Answer(200, "Resized: the steps taken.", .json(Schema.ref("ResizeResult"))), badRequest, unknownCluster,
                                                     fail(409, "A resize is already under way, a membership change was refused, or the limit of node processes would be passed."), tooLarge,
                                                     Answer(503, "No leader, or no free port.", .json(error), headers: retryAfter),
                                                     fail(504, "A new node did not catch up or answer in time.")]),
            "DELETE /clusters/:id": Operation("Stop a cluster's nodes and delete its data.", tags: clusters, answers: [Answer(204, "Deleted."), unknownCluster]),
            "GET /clusters/:id/stats": Operation("Every node's stats, the link matrix, the leader's services (or why they cannot be read).", tags: clusters, query: [pretty],
                                                 answers: [Answer(200, "OK", .json(Schema.ref("ClusterStats"))), unknownCluster]),
            "POST /clusters/:id/links": Operation("Set one direction of one link on the sending node.", tags: faults, query: [pretty],
                                                  body: Body("The link.", .json(Schema.ref("Link"))),
                                                  answers: [Answer(200, "The sending node's link table now.", .json(Schema.ref("LinkTable"))), badRequest, unknownCluster, tooLarge,
                                                            fail(502, "The sending node did not take the change.")]),
            "POST /clusters/:id/partition": Operation("Cut every link between groups (both directions).", tags: faults, query: [pretty],
                                                      body: Body("The groups.", .json(Schema.ref("Partition"))),
                                                      answers: [Answer(200, "Which nodes took their new tables.", .json(Schema.ref("FaultResult"))), badRequest, unknownCluster, tooLarge]),
            "POST /clusters/:id/heal": Operation("Restore every link of the cluster.", tags: faults, query: [pretty],
                                                 answers: [Answer(200, "Which nodes took their new tables.", .json(Schema.ref("FaultResult"))), unknownCluster]),
            "POST /clusters/:id/nodes/:node/:action": Operation("Kill (SIGKILL), stop, pause (SIGSTOP), resume, restart or isolate a node.", tags: faults, query: [pretty],
                                                                answers: [summary, unknownCluster, fail(409, "The node is not running."),
                                                                          Answer(502, "Isolation reached only some nodes.", .json(Schema.ref("FaultResult"))),
                                                                          fail(500, "The restarted node exited during its start."),
                                                                          fail(504, "The restarted node did not answer in time.")]),
            "GET /clusters/:id/events": { var one = events; one.summary = "One cluster's live events (server-sent events). The stream does not end."; one.answers.append(unknownCluster); return one }(),
            "GET /events": events,
            "GET /dashboard": Operation("The live dashboard (one self-contained HTML page).", tags: live,
                                        answers: [Answer(200, "The page.", .media("text/html", Schema.string))]),
            "GET /metrics": Operation("Prometheus text: per-cluster series and request histograms.", tags: live,
                                      answers: [Answer(200, "OK", .media("text/plain", Schema.string))]),
            "POST /experiments": Operation("Start an experiment (one at a time) on clusters of its own.", tags: lab, query: [pretty],
                                           body: Body("The experiment file.", .json(Schema.ref("ExperimentPlan"))),
                                           answers: [Answer(202, "Started.", .json(Schema.ref("Experiment")),
                                                            links: ["GetExperiment": (operation: "GET /experiments/:eid", parameters: ["eid": "$response.body#/id"])]),
                                                     badRequest, fail(409, "Another experiment is running."), tooLarge]),
            "GET /experiments": Operation("Experiments started through the API.", tags: lab, query: [pretty], answers: [Answer(200, "OK", .json(Schema.ref("ExperimentList")))]),
            "GET /experiments/:eid": Operation("An experiment's progress, and its verdict once done.", tags: lab, query: [pretty],
                                               answers: [Answer(200, "OK", .json(Schema.ref("Experiment"))), unknownCluster]),
            "GET /experiments/:eid/report": Operation("An experiment's report page.", tags: lab,
                                                      answers: [Answer(200, "The report.", .media("text/html", Schema.string)), fail(404, "No such experiment, or no report yet.")]),
            "DELETE /experiments/:eid": Operation("Cancel an experiment (it still heals, checks and reports what was recorded).", tags: lab, query: [pretty],
                                                  answers: [Answer(202, "Cancelling.", .json(Schema.ref("Experiment"))), unknownCluster]),
            "GET /openapi.json": Operation("This document.", tags: clusters, query: [pretty], answers: [Answer(200, "OpenAPI 3.1", .json(Schema.any))]),
        ]
        let node = NodeAPIDocument.operations
        var orchestratorKey: [String: String] = [:]  // a node route's key → the orchestrator's
        for route in routes {
            for method in route.methods {
                orchestratorKey[OpenAPIDocument.key(method, route.nodePrefix + route.pattern)] = OpenAPIDocument.key(method, "/clusters/:id" + route.pattern)
            }
        }
        for (nodeKey, key) in orchestratorKey {
            guard let operation = node[nodeKey] else { continue }
            var copy = forwarded(operation)
            // Links lead to the orchestrator's forms of the node's operations, in the same cluster.
            copy.answers = copy.answers.map { answer in
                var answer = answer
                answer.links = answer.links.compactMapValues { link in
                    orchestratorKey[link.operation].map { ($0, link.parameters.merging(["id": "$request.path.id"]) { $1 }) }
                }
                return answer
            }
            operations[key] = copy
        }
        return operations
    }

    static func document(forwarded routes: [(methods: [String], pattern: String, nodePrefix: String)]) -> OpenAPIDocument {
        OpenAPIDocument(title: "orchestrator", version: "1",
                        description: "Clusters of Raft node processes: start, resize and break them, run services on them, watch them live, run experiments. Errors are {\"error\": ...}.",
                        operations: operations(forwarded: routes), schemas: schemas, pathParameters: pathParameters)
    }
}
