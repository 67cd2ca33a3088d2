import XCTest
@testable import Server

final class ServerErrorTests: XCTestCase {
    func testStatusCodes() {
        XCTAssertEqual(ServerError.unauthorized.status, 401)
        XCTAssertEqual(ServerError.queueFull(limit: 1).status, 429)
        XCTAssertEqual(ServerError.bodyTooLarge(limit: 10).status, 413)
    }
}
