import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Every response's security headers, the access token check (401) and the CSRF check on POST (403).
///
/// A first visit carries `?token=…`: the token is checked, set as an HttpOnly, SameSite=Strict cookie
/// and the browser is redirected to the same URL without it (so it stays out of history and logs).
/// Scripts send `Authorization: Bearer …` instead.
struct ConsoleSecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: ConsoleAccess
    let secureCookie: Bool
    let logger: Logger

    static var csrfHeader: HTTPField.Name { HTTPField.Name("X-CSRF-Token")! }

    /// The headers every response carries.
    static var securityHeaders: [(HTTPField.Name, String)] {
        [
            (.contentSecurityPolicy, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
            (.cacheControl, "no-store"),
        ]
    }

    @concurrent func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await self.checked(request, context: context, next: next)
        } catch {
            response = ConsoleErrorPage.response(for: error, path: request.uri.path, logger: self.logger)
        }
        for (name, value) in Self.securityHeaders { response.headers[name] = value }
        return response
    }

    @concurrent private func checked(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        if let offered = request.uri.queryParameters["token"] {
            guard request.method == .get || request.method == .head, self.access.accepts(token: offered) else {
                return ConsoleErrorPage.unauthorized()
            }
            var response = Response(status: .seeOther, headers: [.location: Self.withoutToken(request.uri)])
            response.headers[values: .setCookie].append(
                "\(ConsoleAccess.cookieName)=\(self.access.token); Path=/; HttpOnly; SameSite=Strict\(self.secureCookie ? "; Secure" : "")")
            return response
        }
        guard self.isAuthenticated(request) else { return ConsoleErrorPage.unauthorized() }
        guard request.method == .post else { return try await next(request, context) }
        var request = request
        if let header = request.headers[Self.csrfHeader] {
            guard self.access.accepts(csrf: header) else { return ConsoleErrorPage.forbidden() }
            return try await next(request, context)
        }
        let isForm = request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true
        guard isForm else { return ConsoleErrorPage.forbidden() }
        let body = try await request.collectBody(upTo: 1 << 20)
        guard let offered = ConsoleForm(String(buffer: body))["csrf"], self.access.accepts(csrf: offered) else {
            return ConsoleErrorPage.forbidden()
        }
        return try await next(request, context)
    }

    private func isAuthenticated(_ request: Request) -> Bool {
        if let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            return self.access.accepts(token: authorization.dropFirst("Bearer ".count))
        }
        if let cookie = request.cookies[ConsoleAccess.cookieName] {
            return self.access.accepts(token: cookie.value)
        }
        return false
    }

    /// The request's path and query with the `token` parameter removed.
    static func withoutToken(_ uri: URI) -> String {
        let kept = (uri.query ?? "").split(separator: "&").filter { !$0.hasPrefix("token=") && $0 != "token" }
        return kept.isEmpty ? uri.path : uri.path + "?" + kept.joined(separator: "&")
    }
}
