import Foundation
import Testing
@testable import ClusterNode
import Transport

/// The answers written directly (`JSONWritable`) must be the bytes the `Encodable` path
/// writes: every field, in sorted key order, nil ones left out.
@Suite struct ServiceViewJSONTests {
    static func record(everything: Bool) -> ServiceRecord {
        guard everything else {
            return ServiceRecord(id: 1, spec: ServiceSpec(replicas: 2), placement: [:], pending: 2, index: 7, term: 1,
                                 updatedIndex: 7, requestID: "r")
        }
        let spec = ServiceSpec(containerID: 5, name: "web \"front\"", description: "tab\there", label: "é🚀", image: "nginx/x",
                               replicas: 3, cpu: 250, memory: 128, publish: .fixed(8080), privatePort: 443, vital: true)
        var record = ServiceRecord(id: 42, spec: spec, placement: [8_003: 1, 8_001: 1, 8_010: 0], pending: 1,
                                   pendingReason: "no node has 250 millicores free", index: 900, term: 4, updatedIndex: 950,
                                   requestID: "request-\u{1}")
        record.load = ServiceLoad(pattern: .sine(mean: 600, amplitude: 400, periodMs: 60_000), sinceMs: 1_700_000_000_000)
        var autoscaler = AutoscalerState(spec: AutoscalerSpec(cpuTarget: 0.6), replicas: 3)
        autoscaler.record(autoscaler.step(averageCPU: 0.9, replicas: 3, nowMs: 1_700_000_001_000))
        record.autoscaler = autoscaler
        record.publishedPort = 8080
        return record
    }

    @Test(arguments: [false, true])
    func serviceViewWritesWhatItEncodes(everything: Bool) throws {
        let view = ServiceView(Self.record(everything: everything), nowMs: 1_700_000_030_000)
        let written = String(decoding: try view.jsonBytes(), as: UTF8.self)
        #expect(written == String(decoding: try CompactJSONEncoder.encode(view), as: UTF8.self))
        if everything {
            // Every field of the view is set here, so none can be missing from the writer unseen.
            let object = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any])
            #expect(object.count == Mirror(reflecting: view).children.count)
        }
    }

    @Test func createdServicesWritesWhatItEncodes() throws {
        let answer = NodeAPI.CreatedServices(index: 950, term: 4, requestId: "abc", leader: "localhost:8001",
                                             services: [false, true].map { ServiceView(Self.record(everything: $0), nowMs: 5) })
        let viaBody = String(decoding: try JSONBody.encode(answer), as: UTF8.self)
        #expect(viaBody == String(decoding: try CompactJSONEncoder.encode(answer), as: UTF8.self))
        // A pretty answer still goes through Encodable and says the same.
        let pretty = try JSONSerialization.jsonObject(with: Data(try JSONBody.encode(answer, pretty: true))) as? NSDictionary
        #expect(pretty == (try JSONSerialization.jsonObject(with: Data(viaBody.utf8)) as? NSDictionary))
    }
}
