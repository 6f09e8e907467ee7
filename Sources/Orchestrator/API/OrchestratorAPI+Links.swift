import ClusterNode
import Foundation
import Transport

extension OrchestratorAPI {
    /// `POST /clusters/:id/links {"from": 8001, "to": 8002, "up": false}` (or `delayMs`, `loss`):
    /// one direction of one link, set on the sending node (for the dashboard, which may only
    /// talk to the orchestrator).
    func setLink(_ cluster: ManagedCluster, _ request: HTTPRequest) throws -> HTTPResponse {
        struct Link: Decodable {
            var from: JSONValue
            var to: JSONValue
            var up: Bool?
            var delayMs: Int?
            var loss: Double?
        }
        let link = try JSONBody.decode(Link.self, from: request)
        func node(_ value: JSONValue, _ field: String) throws -> Int {
            let port: Int? = switch value {
            case .number(let number): Int(exactly: number)
            case .string(let text): NodeAddress(parsing: text)?.port
            default: nil
            }
            guard let port, cluster.ports.contains(port) else { throw HTTPError(.badRequest, "\(field) must be a node of cluster \(cluster.id) (\(cluster.ports.map(String.init).joined(separator: ", "))), got \(value.summary)") }
            return port
        }
        let from = try node(link.from, "from")
        let to = try node(link.to, "to")
        guard from != to else { throw HTTPError(.badRequest, "from and to are the same node") }
        if let delay = link.delayMs, !(0...60_000).contains(delay) { throw HTTPError(.badRequest, "delayMs must be from 0 to 60000, got \(delay)") }
        if let loss = link.loss, !(0...1).contains(loss) { throw HTTPError(.badRequest, "loss must be from 0 to 1, got \(loss)") }
        let body = #"{"localhost:\#(to)": {"up": \#(link.up ?? true), "delayMs": \#(link.delayMs ?? 0), "loss": \#(link.loss ?? 0)}}"#
        let response = try supervisor.client.postJSON(host: "127.0.0.1", port: from, path: "/connections", body: Array(body.utf8), timeoutSeconds: 2, isIdempotent: true)
        events.publish("fault", cluster: cluster.id, ["action": "link", "from": from, "to": to, "up": link.up ?? true, "delayMs": link.delayMs ?? 0, "loss": link.loss ?? 0])
        return response
    }
}
