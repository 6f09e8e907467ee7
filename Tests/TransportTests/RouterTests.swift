import Testing
@testable import Transport

extension RouterTests {
    @Test func pathSegmentsAreSplitOnSlashesSkippingEmptyOnesAndPercentDecoded() {
        let cases: [(String, [String])] = [
            ("/", []), ("", []), ("//", []), ("/services", ["services"]), ("services/12", ["services", "12"]),
            ("//services//12/", ["services", "12"]), ("/services/a%2Fb/load", ["services", "a/b", "load"]),
            ("/x/%41%42%43", ["x", "ABC"]), ("/x/100%", ["x", "100%"]), ("/x/a+b", ["x", "a+b"]), ("/é/ü", ["é", "ü"]),
        ]
        for (path, expected) in cases {
            #expect(Router.decodedSegments(of: path) == expected, "path \(path.debugDescription)")
            // The same as splitting and then decoding each part.
            #expect(Router.decodedSegments(of: path) == path.split(separator: "/").map { percentDecode($0, plusIsSpace: false) })
        }
    }
}
