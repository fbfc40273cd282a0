import Foundation
import Hummingbird
import Mustache
import NIOCore
import Phylactery
import Prometheus
import ServiceLifecycle

/// The navigation's entries, in order.
struct NavigationItem: Sendable {
    var href: String
    var label: String
    var active: Bool

    static let sections: [(href: String, label: String)] = [
        ("/", "Overview"), ("/queue", "Queue"), ("/traces", "Traces"), ("/memory", "Memory"), ("/facts", "Facts"), ("/migrations", "Migrations"), ("/backups", "Backups"),
    ]
}

struct LayoutView: Sendable {
    var title: String
    var nav: [NavigationItem]
    var body: String
    var version: String
}

extension PhylacteryConsole {
    /// Renders `template` with `view` inside the layout, with `section` marked in the navigation.
    func page(_ template: String, title: String, section: String, _ view: Any) -> Response {
        let body = self.templates.render(view, withTemplate: template) ?? ""
        let layout = LayoutView(
            title: title, nav: NavigationItem.sections.map { NavigationItem(href: $0.href, label: $0.label, active: $0.href == section) },
            body: body, version: PhylacteryVersion.current)
        let html = self.templates.render(layout, withTemplate: "layout") ?? ""
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// `/events`: server-sent events telling open pages to refresh, every refresh interval, until the
    /// stream's lifetime ends (the browser reconnects), the client goes away or the server shuts down.
    func events() -> Response {
        let interval = self.configuration.refreshInterval
        let lifetime = self.configuration.streamLifetime
        let milliseconds = Int(interval.seconds * 1000)
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream"],
            body: .init { writer in
                try await writer.write(ByteBuffer(string: "retry: \(max(milliseconds, 1000))\n\n"))
                let end = ContinuousClock.now + lifetime
                var sequence = 0
                while ContinuousClock.now + interval <= end {
                    do {
                        try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    } catch {
                        break
                    }
                    sequence += 1
                    try await writer.write(ByteBuffer(string: "event: refresh\ndata: \(sequence)\n\n"))
                }
                try await writer.finish(nil)
            })
    }

    /// `/metrics`: the Prometheus registry in the text exposition format.
    func metricsResponse() throws -> Response {
        guard let registry = self.metrics else {
            throw ConsoleError(.badRequest, "this console has no metrics registry; start it with `phylactery console` or pass one to PhylacteryConsole(metrics:)")
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
