import Hummingbird

/// The same 200-byte document `orchestrator bench http` echoes: decoded and encoded again.
struct Document: ResponseCodable {
    var id: Int
    var name: String
    var image: String
    var replicas: Int
    var cpu: Int
    var memory: Int
    var labels: [String]
    var description: String
}

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8090
let router = Router()
router.get("hello") { _, _ in "Hello, world!" }
router.post("echo") { request, context -> Document in
    try await request.decode(as: Document.self, context: context)
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
print("Hummingbird benchmark server on 127.0.0.1:\(port): GET /hello, POST /echo")
try await app.runService()
