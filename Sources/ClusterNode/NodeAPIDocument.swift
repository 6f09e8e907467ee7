import Transport

/// The node's API as an OpenAPI 3.1 document (`GET /openapi.json`): every route the node's
/// router registers, with its parameters, body and every answer it can give. The
/// orchestrator's document reuses these operations for the routes it forwards to a leader.
public enum NodeAPIDocument: APIDescription {
    // MARK: - Answers shared by many operations

    /// Through the leader: no leader, a leader moving, a cut link to it, an overloaded node.
    static let unavailable = Answer(503, "No leader now, leadership is moving, this node cannot reach the leader, or the node is overloaded; retry after Retry-After.",
                                    .json(error), headers: retryAfter)
    static let timedOut = fail(504, "The entry was not committed in time (it may still commit: retry with the same Idempotency-Key).")
    static let badRequest = fail(400, "The body, a query parameter or a field is invalid; the error names it.")
    static let notFound = fail(404, "No such service, container or resource.")
    static let keyReused = fail(422, "The request ID (Idempotency-Key or requestId) was already used for a different request.")
    static let conflict = fail(409, "Refused by the cluster's state: no room, a port taken, a replica count over the limit.")

    /// A linearizable read through the leader.
    static func read(_ summary: String, _ ok: JSONValue, tags: [String], query: [Parameter] = [], found: Bool = false) -> Operation {
        Operation(summary, tags: tags, query: query + [pretty],
                  answers: [Answer(200, "OK", .json(ok))] + (found ? [notFound] : []) + [badRequest, unavailable, timedOut])
    }

    /// A change committed through the leader.
    /// `keyed`: a retry with the same Idempotency-Key (or body requestId) applies once.
    static func write(_ summary: String, tags: [String], body: Body?, ok: Answer, extra: [Answer] = [], query: [Parameter] = [], keyed: Bool = true) -> Operation {
        Operation(summary, tags: tags, query: query + (ok.content.isJSON ? [pretty] : []), headers: keyed ? [idempotencyKey] : [], body: body,
                  answers: [ok] + extra + [badRequest, tooLarge] + (keyed ? [keyReused] : []) + [unavailable, timedOut])
    }

    /// A request ID, in a body (`requestId`) or the `Idempotency-Key` header.
    static let requestID: JSONValue = .object(["type": .string("string"), "minLength": .number(1), "maxLength": .number(256)])
    static let idempotencyKey = Parameter("Idempotency-Key", requestID,
                                          "Makes a retried change apply once (else a fresh UUID); a key reused for a different request answers 422.")

    static func json(_ description: String, _ schema: JSONValue) -> Body { Body(description, .json(schema)) }

    // MARK: - Schemas

    static let port = Schema.integer(1...65_535)
    static let nodeName: JSONValue = Schema.anyOf(port, Schema.string)
    static let linkState = Schema.oneOf(Schema.integer(0...1), Schema.object(["up": Schema.boolean, "delayMs": Schema.integer, "loss": Schema.number], required: ["up", "delayMs", "loss"]))

    public static let schemas: [String: JSONValue] = [
        "Error": Schema.object(["error": Schema.string], required: ["error"], description: "Every error answer: what went wrong, naming the field or resource."),
        "NodeDefinition": Schema.object([
            "id": uint, "address": Schema.string, "cluster": Schema.string, "peers": Schema.array(Schema.string),
            "state": Schema.enumeration(["leader", "follower", "candidate"]), "term": uint, "leader": Schema.string,
            "roleSince": Schema.number, "leaderships": uint, "recentLeaders": Schema.map(Schema.string),
        ], required: ["id", "address", "cluster", "peers", "state", "term"]),
        "LinkTable": Schema.map(linkState),
        "LinkUpdate": .object([
            "type": .string("object"),
            "description": .string(#"Peers ("localhost:PORT" or "PORT") to 1 (up), 0 (cut), true/false, or {"up", "delayMs", "loss"}; peers left out keep their link."#),
            "additionalProperties": Schema.anyOf(Schema.integer(0...1), Schema.boolean,
                                                 Schema.object(["up": Schema.boolean, "delayMs": Schema.integer(0...60_000),
                                                                "loss": .object(["type": .string("number"), "minimum": .number(0), "maximum": .number(1)])], closed: true)),
        ]),
        "NodeResources": Schema.object(["slots": Schema.integer, "cpuMillicores": Schema.integer, "memoryMB": Schema.integer], required: ["slots", "cpuMillicores", "memoryMB"]),
        "NodeStats": Schema.object([
            "id": uint, "address": Schema.string, "cluster": Schema.string, "state": Schema.string, "term": uint, "votedFor": Schema.string,
            "leader": Schema.string, "commitIndex": uint, "appliedIndex": uint, "logLength": uint,
            "lastEntries": Schema.array(Schema.object(["index": uint, "term": uint, "kind": Schema.string, "summary": Schema.string], required: ["index", "term", "kind"])),
            "capacity": Schema.ref("NodeResources"), "load": Schema.ref("NodeResources"), "cpuUsage": Schema.number,
            "replicas": Schema.integer, "services": Schema.integer, "unhealthyNodes": Schema.array(Schema.string),
            "connections": Schema.ref("LinkTable"), "counters": Schema.map(Schema.integer), "voters": Schema.array(Schema.string),
            "learners": Schema.array(Schema.string), "snapshotIndex": uint, "firstLogIndex": uint, "leaders": Schema.map(Schema.string),
            "pid": Schema.integer, "dataDirectory": Schema.string, "commitLatency": Schema.ref("Histogram"),
        ], required: ["id", "address", "cluster", "state", "term", "commitIndex", "appliedIndex", "logLength", "capacity", "load", "connections", "voters"]),
        "Histogram": Schema.object(["bounds": Schema.array(Schema.number), "counts": Schema.array(uint), "sum": Schema.number], required: ["bounds", "counts", "sum"],
                                   description: "Counts per bucket (seconds, upper bounds; the last bucket is above every bound)."),
        "LogPage": Schema.object([
            "commitIndex": uint, "term": uint,
            "entries": Schema.array(Schema.object(["index": uint, "term": uint, "kind": Schema.string, "digest": uint], required: ["index", "term", "kind", "digest"])),
        ], required: ["commitIndex", "term", "entries"]),
        "Service": Schema.object([
            "id": Schema.integer, "name": Schema.string, "description": Schema.string, "label": Schema.string, "image": Schema.string,
            "containerId": Schema.integer, "replicas": Schema.integer, "cpu": Schema.integer, "memory": Schema.integer,
            "placement": Schema.map(Schema.integer), "placed": Schema.integer, "pending": Schema.integer, "pendingReason": Schema.string,
            "status": Schema.string, "index": uint, "term": uint, "updatedIndex": uint, "requestId": requestID,
            "load": Schema.ref("Load"), "autoscaler": Schema.ref("Autoscaler"), "publishedPort": port, "privatePort": port, "vital": Schema.boolean,
        ], required: ["id", "replicas", "cpu", "memory", "placement", "placed", "pending", "status", "index", "term", "requestId", "privatePort", "vital"]),
        "ServiceList": Schema.object(["results": Schema.array(Schema.ref("Service"))], required: ["results"]),
        "ServiceRequest": Schema.object([
            "container": Schema.ref("ServiceSpec"), "containers": Schema.array(Schema.ref("ServiceSpec")),
            "replicas": Schema.integer(1...ServiceRequest.maxReplicas), "requestId": requestID,
        ], description: #"Seed 003's body: {"container": {...}, "replicas": N} or {"containers": [...]}."#),
        "ServiceSpec": Schema.object([
            "id": Schema.integer, "name": Schema.string, "description": Schema.string, "label": Schema.string, "image": Schema.string,
            "replicas": Schema.integer(1...ServiceRequest.maxReplicas), "cpu": Schema.integer(ServiceRequest.cpuMillicores), "memory": Schema.integer(ServiceRequest.memoryMB),
            "publish": Schema.anyOf(Schema.boolean, port), "privatePort": port,
        ]),
        "SimpleServiceRequest": Schema.object([
            "image": Schema.string, "publish": Schema.anyOf(Schema.boolean, port), "detached": Schema.boolean, "name": Schema.string,
            "replicas": Schema.integer(1...ServiceRequest.maxReplicas), "cpu": Schema.integer(ServiceRequest.cpuMillicores), "memory": Schema.integer(ServiceRequest.memoryMB),
            "privatePort": port, "requestId": requestID,
        ], required: ["image"], description: "Seed 000's create."),
        "CreatedServices": Schema.object(["index": uint, "term": uint, "requestId": requestID, "leader": Schema.string, "services": Schema.array(Schema.ref("Service"))],
                                         required: ["index", "term", "requestId", "leader", "services"]),
        "Scale": Schema.object(["replicas": Schema.integer(0...ServiceRequest.maxReplicas), "requestId": requestID], required: ["replicas"]),
        "ScaledService": Schema.object(["requestId": requestID, "replicas": Schema.integer, "index": uint, "term": uint, "service": Schema.ref("Service")],
                                       required: ["requestId", "replicas", "index", "term"]),
        "LoadPattern": Schema.object([
            "pattern": Schema.enumeration(["constant", "step", "ramp", "sine", "spike"]), "millicores": Schema.integer, "from": Schema.integer, "to": Schema.integer,
            "atMs": Schema.integer, "mean": Schema.integer, "amplitude": Schema.integer, "base": Schema.integer, "peak": Schema.integer,
            "periodMs": Schema.integer, "durationMs": Schema.integer, "requestId": requestID,
        ], required: ["pattern"], description: "The offered load of a service in millicores over time; each pattern names its own fields."),
        "Load": Schema.object(["pattern": Schema.string, "sinceMs": Schema.integer, "offeredMillicores": Schema.integer, "perReplica": Schema.ref("ContainerLoad")],
                              required: ["pattern", "sinceMs", "offeredMillicores", "perReplica"]),
        "ContainerLoad": Schema.object(["cpuMillicores": Schema.integer, "cpuPercent": Schema.number, "memoryMB": Schema.integer,
                                        "rxBytesPerSecond": Schema.integer, "txBytesPerSecond": Schema.integer],
                                       required: ["cpuMillicores", "cpuPercent", "memoryMB", "rxBytesPerSecond", "txBytesPerSecond"]),
        "LoadSet": Schema.object(["requestId": requestID, "index": uint, "term": uint, "service": Schema.ref("Service")], required: ["requestId", "index", "term"]),
        "AutoscalerRequest": Schema.object([
            "cpuTarget": .object(["type": .string("number"), "minimum": .number(1), "maximum": .number(100)]),
            "kp": Schema.number, "ki": Schema.number, "kd": Schema.number, "minReplicas": Schema.integer(1...ServiceRequest.maxReplicas), "maxReplicas": Schema.integer(1...ServiceRequest.maxReplicas),
            "intervalMs": Schema.integer(100...3_600_000), "cooldownMs": Schema.integer(0...3_600_000), "requestId": requestID,
        ], description: "PUT needs cpuTarget; PATCH changes only the fields given."),
        "Autoscaler": Schema.object([
            "status": Schema.string, "image": Schema.string, "cpu_target": Schema.number,
            "constants": Schema.object(["kp": Schema.number, "ki": Schema.number, "kd": Schema.number], required: ["kp", "ki", "kd"]),
            "error": Schema.number, "avg_cpu_usage": Schema.number, "containers": Schema.integer, "cpu_usage": Schema.array(Schema.number),
            "settings": Schema.any, "integral": Schema.number, "decisions": Schema.array(Schema.any),
        ], required: ["status", "cpu_target", "constants", "error", "avg_cpu_usage", "containers", "cpu_usage", "settings", "integral", "decisions"],
        description: "Seed 002's autoscaler view."),
        "ContainerRequest": Schema.object([
            "image": Schema.string, "cmd": Schema.anyOf(Schema.string, Schema.array(Schema.string)), "name": Schema.string,
            "cpu": Schema.integer(ServiceRequest.cpuMillicores), "memory": Schema.integer(ServiceRequest.memoryMB), "service": Schema.string,
            "publish": Schema.anyOf(Schema.boolean, port), "privatePort": port, "node": nodeName, "requestId": requestID,
        ], required: ["image"]),
        "Container": Schema.object([
            "id": Schema.integer, "name": Schema.string, "image": Schema.string, "cmd": Schema.array(Schema.string), "node": Schema.string,
            "state": Schema.string, "sinceMs": Schema.integer, "history": Schema.array(Schema.any), "keepsReservation": Schema.boolean,
            "cpu": Schema.integer, "memory": Schema.integer, "service": Schema.string, "publicPort": port, "privatePort": port, "index": uint, "requestId": requestID,
        ], required: ["id", "image", "cmd", "state", "sinceMs", "history", "cpu", "memory", "privatePort", "index", "requestId"]),
        "ContainerList": Schema.object(["results": Schema.array(Schema.ref("Container"))], required: ["results"]),
        "DockerContainerSummary": Schema.object([
            "Id": Schema.string, "Names": Schema.array(Schema.string), "Image": Schema.string, "Command": Schema.string, "Created": Schema.integer,
            "Ports": Schema.array(Schema.object(["IP": Schema.string, "PrivatePort": port, "PublicPort": port, "Type": Schema.string], required: ["PrivatePort", "Type"])),
            "Labels": Schema.map(Schema.string), "State": Schema.string, "Status": Schema.string,
        ], required: ["Id", "Names", "Image", "Command", "Created", "Ports", "Labels", "State", "Status"], description: "Docker's list shape (seed 004)."),
        "DockerContainer": Schema.object([
            "Id": Schema.string, "Name": Schema.string, "Created": Schema.integer, "Image": Schema.string, "State": Schema.any, "Config": Schema.any,
            "HostConfig": Schema.any, "NetworkSettings": Schema.any,
        ], required: ["Id", "Name", "Created", "Image", "State", "Config", "HostConfig", "NetworkSettings"], description: "Docker's inspect shape (seed 004)."),
        "Traffic": Schema.object(["rx": Schema.integer, "tx": Schema.integer], required: ["rx", "tx"]),
        "HostStatus": Schema.object(["cpus": Schema.map(Schema.integer), "memory": Schema.integer, "free_memory": Schema.integer,
                                     "net": Schema.map(Schema.ref("Traffic")), "nb_containers": Schema.integer],
                                    required: ["cpus", "memory", "free_memory", "net", "nb_containers"], description: "Seed 004's host status."),
        "ContainerStatus": Schema.object(["cpu": Schema.number, "memory": Schema.integer, "free_memory": Schema.integer, "net": Schema.ref("Traffic"), "state": Schema.string],
                                         required: ["cpu", "memory", "free_memory", "net", "state"]),
        "Runtime": Schema.object(["node": Schema.string, "resources": Schema.ref("NodeResources"), "load": Schema.number, "cores": Schema.array(Schema.integer),
                                  "containers": Schema.array(Schema.any)], required: ["node", "resources", "load", "cores", "containers"]),
        "Membership": Schema.object(["voters": Schema.array(Schema.string), "learners": Schema.array(Schema.string), "index": uint, "isCommitted": Schema.boolean,
                                     "leader": Schema.string, "term": uint, "milliseconds": Schema.number], required: ["voters", "learners", "index", "isCommitted", "term"]),
        "NodeChoice": Schema.object(["node": nodeName], required: ["node"], description: #"A node by port or "localhost:PORT"."#),
        "Transfer": Schema.object(["from": Schema.string, "to": Schema.string, "term": uint, "milliseconds": Schema.number], required: ["from", "to", "term", "milliseconds"]),
        "State": Schema.object(["leader": Schema.string, "term": uint, "calls": Schema.array(Schema.any), "services": Schema.array(Schema.ref("Service"))],
                               required: ["leader", "term", "calls", "services"]),
        "DesiredStateFile": Schema.object(["services": Schema.array(Schema.ref("ServiceSpec")), "requestId": requestID], required: ["services"],
                                          description: "Seed 000's vital services; each needs a unique name."),
        "DesiredState": Schema.object([
            "services": Schema.array(Schema.object(["name": Schema.string, "image": Schema.string, "replicas": Schema.integer, "publish": Schema.string,
                                                    "serviceId": Schema.integer, "placed": Schema.integer,
                                                    "status": Schema.enumeration(["kept", "missing", "scaling", "replacing"])],
                                                   required: ["name", "replicas", "publish", "placed", "status"])),
            "appliedIndex": uint, "term": uint,
        ], required: ["services", "appliedIndex", "term"]),
    ]

    public static let pathParameters: [String: (schema: JSONValue, description: String)] = [
        "sid": (.object(["type": .string("string"), "examples": .array([.string("1")])]), "A service's ID (a whole number)."),
        "cid": (.object(["type": .string("string"), "examples": .array([.string("1")])]), "A container's ID."),
        "member": (.object(["type": .string("string"), "examples": .array([.string("8002")])]), #"A node, by port or "localhost:PORT"."#),
        "name": (Schema.string, "A service's name."),
        "image": (Schema.string, "An image name."),
    ]

    // MARK: - Operations

    public static var operations: [String: OpenAPIDocument.Operation] {
        let raft = ["raft"], services = ["services"], containers = ["containers"], agent = ["node agent (seed 004)"], node = ["node"]
        let serviceLink = ["GetService": (operation: "GET /services/:sid", parameters: ["sid": "$response.body#/id"]),
                           "ScaleService": (operation: "PATCH /services/:sid", parameters: ["sid": "$response.body#/id"]),
                           "DeleteService": (operation: "DELETE /services/:sid", parameters: ["sid": "$response.body#/id"])]
        let firstServiceLink = ["GetService": (operation: "GET /services/:sid", parameters: ["sid": "$response.body#/services/0/id"]),
                                "DeleteService": (operation: "DELETE /services/:sid", parameters: ["sid": "$response.body#/services/0/id"])]
        let containerLink = ["GetContainer": (operation: "GET /cluster/containers/:cid", parameters: ["cid": "$response.body#/id"]),
                             "StopContainer": (operation: "POST /cluster/containers/:cid/stop", parameters: ["cid": "$response.body#/id"])]
        let noContent = Answer(204, "Done.")
        return [
            "GET /": Operation("This node: ID, address, cluster, peers, role, term, leader.", tags: node, query: [pretty],
                               answers: [Answer(200, "OK", .json(Schema.ref("NodeDefinition")))]),
            "GET /connections": Operation("This node's outgoing links (seed 003): 1 up, 0 cut, or the link's delay and loss.", tags: ["faults"], query: [pretty],
                                          answers: [Answer(200, "OK", .json(Schema.ref("LinkTable")))]),
            "POST /connections": Operation("Set some outgoing links; answers the whole table.", tags: ["faults"], query: [pretty],
                                           body: json("Peers to their new link state.", Schema.ref("LinkUpdate")),
                                           answers: [Answer(200, "The table now.", .json(Schema.ref("LinkTable"))), badRequest, tooLarge]),
            "GET /stats": Operation("Everything this node knows: role, term, indexes, last entries, load, links, followers (on the leader), counters.", tags: node,
                                    query: [pretty], answers: [Answer(200, "OK", .json(Schema.ref("NodeStats")))]),
            "GET /log": Operation("A page of this node's log: index, term, kind and CRC32C of each entry.", tags: raft,
                                  query: [Parameter("from", uint, "First index (1 by default)."), Parameter("to", uint, "Last index (at most 1,000 entries a page)."), pretty],
                                  answers: [Answer(200, "OK", .json(Schema.ref("LogPage"))), badRequest]),
            "GET /metrics": Operation("Prometheus text: Raft gauges, counters, and histograms of commit, fsync, election and request durations.", tags: node,
                                      answers: [Answer(200, "OK", .media("text/plain", Schema.string))]),
            "POST /raft/messages": Operation("Raft messages from a peer (this project's binary wire format; internal).", tags: raft,
                                             headers: [Parameter("X-Cluster-ID", Schema.string, "The sender's cluster; messages from another cluster are refused.")],
                                             body: Body("Length-prefixed binary messages.", .media("application/octet-stream", .object(["type": .string("string"), "contentEncoding": .string("binary")]))),
                                             answers: [noContent, fail(400, "Not a valid message batch."), fail(403, "From another cluster."), tooLarge,
                                                       Answer(503, "The node's inbox is full; the sender retries.", .json(error), headers: retryAfter)]),
            "POST /raft/stream": Operation("Raft messages from a peer as a stream (internal; what the nodes use): with Connection: Upgrade and Upgrade: raft-frames the connection switches to frames, each a 4-byte big-endian length and a batch in the wire format of /raft/messages, with no answers; a malformed frame closes it.", tags: raft,
                                           headers: [Parameter("X-Cluster-ID", Schema.string, "The sender's cluster; messages from another cluster are refused.")],
                                           answers: [Answer(101, "Switched: frames follow on this connection."), fail(403, "From another cluster."),
                                                     fail(426, "Asked without Connection: Upgrade and Upgrade: raft-frames.")]),
            "POST /service": write("Create services (seed 003): placed by the leader on nodes by load and capacity.", tags: services,
                                   body: json("One container or several.", Schema.ref("ServiceRequest")),
                                   ok: Answer(201, "Created and committed.", .json(Schema.ref("CreatedServices")), links: firstServiceLink), extra: [conflict]),
            "POST /leader": write("Transfer leadership to a node (timed).", tags: raft, body: json("The node to lead.", Schema.ref("NodeChoice")),
                                  ok: Answer(200, "Transferred.", .json(Schema.ref("Transfer"))), extra: [fail(403, "The node may not lead (a learner, or not a member)."), conflict], keyed: false),
            "GET /members": Operation("The membership in this node's log.", tags: raft, query: [pretty], answers: [Answer(200, "OK", .json(Schema.ref("Membership")))]),
            "POST /members": write("Add a node as a learner (promoted once it catches up).", tags: raft, body: json("The node to add.", Schema.ref("NodeChoice")),
                                   ok: Answer(200, "Added.", .json(Schema.ref("Membership"))), extra: [fail(403, "Refused by the membership rules."), conflict], keyed: false),
            "DELETE /members/:member": write("Remove a node from the membership.", tags: raft, body: nil, ok: Answer(200, "Removed.", .json(Schema.ref("Membership"))),
                                             extra: [fail(403, "Refused by the membership rules."), conflict, notFound], keyed: false),
            "GET /services": read("Every service (linearizable through the leader; `?local` reads this node's applied state instead).", Schema.ref("ServiceList"),
                                  tags: services, query: [Parameter("local", Schema.string, "Any value: this node's own applied state, not linearizable.")]),
            "POST /services": write("Create one service (seed 000), optionally publishing a port on every node it runs on.", tags: services,
                                    body: json("The service.", Schema.ref("SimpleServiceRequest")),
                                    ok: Answer(201, "Created.", .json(Schema.ref("Service")), links: serviceLink), extra: [conflict, notFound]),
            "GET /services/running": read("Services with at least one placed replica.", Schema.ref("ServiceList"), tags: services),
            "PUT /desired-state": write("Commit the desired-state file (seed 000's vital services).", tags: services,
                                        body: json("The file.", Schema.ref("DesiredStateFile")), ok: Answer(200, "Committed.", .json(Schema.ref("DesiredState")))),
            "GET /desired-state": read("The desired-state file as committed, and each vital service now.", Schema.ref("DesiredState"), tags: services),
            "GET /services/latest": read("The newest service.", Schema.ref("Service"), tags: services, found: true),
            "GET /services/latest/:image": read("The newest service of an image.", Schema.ref("Service"), tags: services, found: true),
            "GET /services/name/:name": read("The services of a name.", Schema.ref("ServiceList"), tags: services, found: true),
            "GET /services/:sid": read("One service.", Schema.ref("Service"), tags: services, found: true),
            "PATCH /services/:sid": write("Scale a service.", tags: services, body: json("The replica count.", Schema.ref("Scale")),
                                          ok: Answer(200, "Scaled: what this request set, and the service now.", .json(Schema.ref("ScaledService"))), extra: [notFound, conflict]),
            "DELETE /services/:sid": write("Delete a service (its replicas stop).", tags: services, body: nil, ok: noContent, extra: [notFound]),
            "PUT /services/:sid/load": write("Set a service's offered load pattern.", tags: services, body: json("The pattern.", Schema.ref("LoadPattern")),
                                             ok: Answer(200, "Set.", .json(Schema.ref("LoadSet"))), extra: [notFound]),
            "GET /services/:sid/load": read("A service's load pattern and what it offers now.", Schema.ref("Load"), tags: services, found: true),
            "PUT /services/:sid/autoscaler": write("Set a service's autoscaler (seed 002).", tags: services, body: json("Its settings.", Schema.ref("AutoscalerRequest")),
                                                   ok: Answer(200, "Set.", .json(Schema.ref("Autoscaler"))), extra: [notFound]),
            "PATCH /services/:sid/autoscaler": write("Change some of an autoscaler's settings.", tags: services, body: json("The settings to change.", Schema.ref("AutoscalerRequest")),
                                                     ok: Answer(200, "Changed.", .json(Schema.ref("Autoscaler"))), extra: [notFound]),
            "DELETE /services/:sid/autoscaler": write("Stop a service's autoscaler.", tags: services, body: nil, ok: noContent, extra: [notFound]),
            "GET /services/:sid/autoscaler": read("A service's autoscaler and its latest steps.", Schema.ref("Autoscaler"), tags: services, found: true),
            "DELETE /services/:sid/replicas/:member": write("Remove one replica of a service from a node (one replica fewer).", tags: services, body: nil,
                                                            ok: noContent, extra: [notFound, conflict]),
            "GET /state": read("The leader's recent service calls and the replicated services.", Schema.ref("State"), tags: services),
            "POST /cluster/containers": write("Create a container (seed 001), placed by the leader (or on `node`).", tags: containers,
                                              body: json("The container.", Schema.ref("ContainerRequest")),
                                              ok: Answer(201, "Created.", .json(Schema.anyOf(Schema.ref("Container"), Schema.ref("DockerContainer"))), links: containerLink),
                                              extra: [conflict, notFound],
                                              query: [Parameter("view", Schema.enumeration(["docker"]), "docker: answer in Docker's inspect shape.")]),
            "GET /cluster/containers": read("Every container of the cluster.", Schema.ref("ContainerList"), tags: containers),
            "GET /cluster/containers/:cid": read("One container and its history.", Schema.ref("Container"), tags: containers, found: true),
            "POST /cluster/containers/:cid/start": write("Start a stopped container.", tags: containers, body: nil, ok: Answer(200, "Started.", .json(Schema.ref("Container"))),
                                                         extra: [notFound, conflict]),
            "POST /cluster/containers/:cid/stop": write("Stop a container (it keeps its place and reservation).", tags: containers, body: nil,
                                                        ok: Answer(200, "Stopped.", .json(Schema.ref("Container"))), extra: [notFound, conflict]),
            "DELETE /cluster/containers/:cid": write("Delete a container.", tags: containers, body: nil, ok: noContent, extra: [notFound],
                                                     query: [Parameter("node", Schema.string, "Delete it only if it is on this node.")]),
            "GET /status": Operation("Seed 004: per-core CPU, memory, free memory, network, container count.", tags: agent, query: [pretty],
                                     answers: [Answer(200, "OK", .json(Schema.ref("HostStatus")))]),
            "GET /runtime": Operation("The simulated containers on this node, with the load model's use.", tags: agent, query: [pretty],
                                      answers: [Answer(200, "OK", .json(Schema.ref("Runtime")))]),
            "GET /containers": Operation("Seed 004: containers on this node in Docker's list shape (running only unless `all`).", tags: agent,
                                         query: [Parameter("all", Schema.string, "Any value but false or 0: exited ones too."),
                                                 Parameter("service", Schema.string, "Only this service's (by name or ID)."), pretty],
                                         answers: [Answer(200, "OK", .json(Schema.array(Schema.ref("DockerContainerSummary"))))]),
            "GET /container/:cid": Operation("Seed 004: one container here, Docker's inspect shape.", tags: agent, query: [pretty],
                                             answers: [Answer(200, "OK", .json(Schema.ref("DockerContainer"))), notFound]),
            "GET /container/:cid/status": Operation("Seed 004: one container's CPU, memory and network.", tags: agent, query: [pretty],
                                                    answers: [Answer(200, "OK", .json(Schema.ref("ContainerStatus"))), notFound]),
            "POST /containers": write("Seed 004: create a container on this node (through the leader), JSON or form.", tags: agent,
                                      body: Body("image, service, port.", .json(Schema.ref("ContainerRequest")),
                                                 .media("application/x-www-form-urlencoded", Schema.object(["image": Schema.string, "service": Schema.string, "port": Schema.string], required: ["image"]))),
                                      ok: Answer(201, "Created, Docker's shape.", .json(Schema.ref("DockerContainer"))), extra: [conflict, notFound]),
            "DELETE /container/:cid": write("Seed 004: remove a container from this node (a replica leaves its service one fewer).", tags: agent, body: nil,
                                            ok: noContent, extra: [notFound, conflict]),
            "GET /openapi.json": Operation("This document.", tags: node, query: [pretty], answers: [Answer(200, "OpenAPI 3.1", .json(Schema.any))]),
        ]
    }

    /// The document for a node's router.
    public static func document() -> OpenAPIDocument {
        OpenAPIDocument(title: "orchestrator node", version: "1",
                        description: "One node of a Raft-replicated cluster: its Raft state, links, services (through the leader), containers and seed 004's agent. Errors are {\"error\": ...}.",
                        operations: operations, schemas: schemas, pathParameters: pathParameters)
    }
}

extension OpenAPIDocument.Content {
    var isJSON: Bool { if case .json = self { true } else { false } }
}
