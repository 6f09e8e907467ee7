#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A failed socket call, with the operation and `errno` read right after it.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let code: Int32
    public var description: String { "\(operation): \(String(cString: strerror(code))) (errno \(code))" }
    public var isTimeout: Bool { code == EAGAIN || code == EWOULDBLOCK || code == ETIMEDOUT }
}

/// Thin wrappers over the POSIX socket calls the transport needs.
public enum Socket {
    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// A write to a closed peer must be an error, never the end of the process.
    static func ignoreBrokenPipes() { _ = ignoreSIGPIPE }

    static func ipv4Address(host: String, port: Int) throws(SocketError) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let name = host == "localhost" ? "127.0.0.1" : (host.isEmpty || host == "*" ? "0.0.0.0" : host)
        if inet_pton(AF_INET, name, &address.sin_addr) == 1 { return address }
        // A host name: resolve it once (IPv4).
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &result)
        guard status == 0, let info = result, let found = info.pointee.ai_addr else {
            throw SocketError(operation: "resolve \(host)", code: ENOENT)
        }
        defer { freeaddrinfo(result) }
        found.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address.sin_addr = $0.pointee.sin_addr }
        return address
    }

    /// A listening TCP socket bound to `host:port` (port 0 picks a free one).
    static func listen(host: String, port: Int, backlog: Int32) throws(SocketError) -> Int32 {
        ignoreBrokenPipes()
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SocketError(operation: "socket", code: errno) }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        var address = try ipv4Address(host: host, port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(descriptor)
            throw SocketError(operation: "bind \(host):\(port)", code: code)
        }
        guard Glibc.listen(descriptor, backlog) == 0 else {
            let code = errno
            close(descriptor)
            throw SocketError(operation: "listen \(host):\(port)", code: code)
        }
        return descriptor
    }

    static func localPort(_ descriptor: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func peerAddress(_ descriptor: Int32) -> String? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
        }
        guard status == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &address.sin_addr, &text, socklen_t(INET_ADDRSTRLEN))
        let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "\(host):\(UInt16(bigEndian: address.sin_port))"
    }

    static func setNoDelay(_ descriptor: Int32) {
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sets SO_RCVTIMEO or SO_SNDTIMEO; a zero or negative timeout becomes 1 ms (0 would mean "forever").
    public static func setTimeout(_ descriptor: Int32, option: Int32, seconds: Double) {
        let clamped = max(seconds, 0.001)
        var value = timeval(tv_sec: Int(clamped), tv_usec: Int((clamped - Double(Int(clamped))) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads what is available (blocking up to the receive timeout): >0 bytes read, 0 at end of stream.
    public static func receive(_ descriptor: Int32, into buffer: inout [UInt8]) throws(SocketError) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count >= 0 { return count }
            let code = errno
            if code == EINTR { continue }
            throw SocketError(operation: "recv", code: code)
        }
    }

    /// Writes every byte (blocking up to the send timeout per call).
    public static func sendAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(SocketError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw SocketError(operation: "send", code: code)
            }
            offset += count
        }
    }

    /// True when the peer has closed the connection or it failed (a read would return end of
    /// file or an error). Never blocks; data waiting to be read does not count as closed.
    static func isClosedByPeer(_ descriptor: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(descriptor, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        if count == 0 { return true }
        if count > 0 { return false }
        let code = errno
        return code != EAGAIN && code != EWOULDBLOCK && code != EINTR
    }

    /// Starts connecting to `host:port` without blocking: a non-blocking socket, and whether
    /// it is connected already (false: in progress; writability tells when it is, `SO_ERROR`
    /// whether it failed).
    static func startConnecting(host: String, port: Int) throws(SocketError) -> (descriptor: Int32, isConnected: Bool) {
        ignoreBrokenPipes()
        var address = try ipv4Address(host: host, port: port)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SocketError(operation: "socket", code: errno) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if status == 0 { return (descriptor, true) }
        let code = errno
        guard code == EINPROGRESS else {
            close(descriptor)
            throw SocketError(operation: "connect \(host):\(port)", code: code)
        }
        return (descriptor, false)
    }

    /// The error a connection attempt ended with (0: connected).
    static func pendingError(_ descriptor: Int32) -> Int32 {
        var socketError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &socketError, &length)
        return socketError
    }

    /// Connects to `host:port` within `timeoutSeconds`.
    public static func connect(host: String, port: Int, timeoutSeconds: Double) throws(SocketError) -> Int32 {
        let (descriptor, isConnected) = try startConnecting(host: host, port: port)
        if !isConnected {
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, timeoutSeconds * 1_000)))
            let code = ready == 1 ? pendingError(descriptor) : (ready == 0 ? ETIMEDOUT : errno)
            guard code == 0 else {
                close(descriptor)
                throw SocketError(operation: "connect \(host):\(port)", code: code)
            }
        }
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK)
        setNoDelay(descriptor)
        return descriptor
    }
}

/// Seconds on a monotonic clock (for timeouts and measurements, never for dates).
public func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}
