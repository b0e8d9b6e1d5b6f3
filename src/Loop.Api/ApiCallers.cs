namespace Loop.Api;

using Loop.Domain.Accounts;
using Loop.Runtime;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Works out who is calling: a channel token (scoped to its channel), or a user's session
/// (the <c>loop_session</c> cookie or its token as Bearer) or API token (which may be scoped to a
/// channel). Without credentials only health, the auth status, setup and login answer; everything
/// else under /api is 401. The unix socket is the container endpoint: only channel credentials
/// (a run's token, a channel's API token) work there. The pages outside /api that show the whole
/// node (the Orleans dashboard, the metrics, the API reference) are for users only; the metrics also
/// answer a program on the daemon's machine without a token (<see cref="IsFromThisMachine"/>).
/// </summary>
/// <remarks>Two steps around the rate limiter: <see cref="IdentifyAsync"/> finds the caller, so
/// the limiter counts a user's calls per credential and anonymous ones per address, and
/// <see cref="AdmitAsync"/> then refuses what the caller may not do here, a viewer's changes
/// included (<see cref="UserAccess"/>). A refused call has been counted.</remarks>
public static class ApiCallers
{
    public const string SessionCookie = "loop_session";
    private const string Key = "loop.identity";

    private const string ContainerEndpointOnly =
        "the container endpoint (the daemon's unix socket) accepts only the run's channel token ($LOOP_CHANNEL_TOKEN); " +
        "accounts, logins, sessions and user API tokens are for the daemon's TCP address";

    public static Caller Of(HttpContext context) => IdentityOf(context).Caller
        ?? throw new LoopUnauthorizedException("this endpoint needs a login or a token");

    /// <summary>Whether the call carries a valid user or channel credential.</summary>
    public static bool IsAuthenticated(HttpContext context) => IdentityOf(context).Caller is not null;

    /// <summary>The session or API token behind the call (a channel-scoped API token too); null for
    /// run tokens and anonymous calls.</summary>
    public static AuthPrincipal? PrincipalOf(HttpContext context) => IdentityOf(context).Principal;

    /// <summary>Whether a user calls (a session, an API token or the local token), not a channel's credential.</summary>
    public static bool IsUser(HttpContext context) => IdentityOf(context).Caller is { IsChannel: false };

    /// <summary>Whether the call came in on the unix socket that agent containers reach.</summary>
    public static bool OnContainerEndpoint(HttpContext context) =>
        // Kestrel gives unix-socket connections no IP addresses.
        context.Connection.RemoteIpAddress is null && context.Connection.LocalIpAddress is null;

    /// <summary>What the rate limiter counts this call against: the credential of a caller that has
    /// a valid one, else the client's address, so anonymous failures never spend a user's budget.</summary>
    public static string RateKeyOf(HttpContext context) => IdentityOf(context) switch
    {
        { Principal: { } principal } => principal.CredentialId,
        { Caller.ChannelId: { } channelId } => "channel:" + channelId,
        _ => "address:" + context.Connection.RemoteIpAddress,
    };

    /// <summary>Middleware: finds the caller. Refuses nothing; <see cref="AdmitAsync"/> does.</summary>
    public static async Task IdentifyAsync(HttpContext context, RequestDelegate next, ChannelTokens tokens, AuthService auth)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        var source = string.IsNullOrEmpty(token) ? CredentialSource.None : CredentialSource.Bearer;
        if (source == CredentialSource.None && !OnContainerEndpoint(context) && context.Request.Cookies[SessionCookie] is { Length: > 0 } cookie)
        {
            (token, source) = (cookie, CredentialSource.Cookie);
        }

        var identity = Identity.Anonymous;
        if (token is { Length: > 0 })
        {
            identity = tokens.ChannelOf(token) is { } channelId
                ? new Identity(new Caller(channelId), null, source)
                : await auth.AuthenticateAsync(token, context.RequestAborted) is { } principal
                    ? new Identity(principal.ChannelId is { } scoped ? new Caller(scoped) : Caller.User, principal, source)
                    : new Identity(null, null, source);
        }
        context.Items[Key] = identity;
        await next(context);
    }

    /// <summary>Middleware: refuses what this caller may not do here.</summary>
    public static Task AdmitAsync(HttpContext context, RequestDelegate next)
    {
        var identity = IdentityOf(context);
        var request = context.Request;
        var onSocket = OnContainerEndpoint(context);
        if (onSocket)
        {
            // Login passes here: its endpoint counts the attempt against the account, then refuses it.
            if (identity.Caller is { IsChannel: false } || IsAccountPath(request) && !IsLogin(request))
            {
                throw new LoopForbiddenException(ContainerEndpointOnly);
            }
        }
        else
        {
            CrossSiteRequests.Check(request, signedInByCookie: identity is { Source: CredentialSource.Cookie, Caller: not null });
        }

        // The Orleans dashboard shows every grain of the node, the metrics the whole node, the API
        // reference every endpoint: for people signed in, never for agents.
        if (identity.Caller is { IsChannel: true } && UserPageName(request) is { } page)
        {
            throw new LoopForbiddenException($"{page} is for users of the daemon, not for channel tokens");
        }
        if (identity.Caller is null && !IsAnonymousAllowed(context, onSocket))
        {
            if (ApiReference.IsPageNavigation(request))
            {
                // As the dashboard does: a browser that is not logged in gets the login page, then the reference.
                context.Response.Redirect("/?next=" + Uri.EscapeDataString(request.Path + request.QueryString));
                return Task.CompletedTask;
            }
            throw new LoopUnauthorizedException(identity.Source switch
            {
                // A stale cookie must not keep anyone from logging in again, so only here.
                not CredentialSource.None => "the token or session is not valid for this daemon (expired, revoked or mistyped): log in again or create a new API token",
                _ when onSocket => "calls on the daemon's unix socket need a channel token: send Authorization: Bearer $LOOP_CHANNEL_TOKEN",
                _ when IsMetrics(request) => "the metrics answer callers on the daemon's machine without a token; from elsewhere, or through a proxy, " +
                    "send an API token as Authorization: Bearer <token>",
                _ => "this endpoint needs a login: log in with POST /api/auth/login (session cookie, or its token as Authorization: Bearer) or send an API token",
            });
        }
        // The one place roles are enforced: whatever the endpoint, a viewer's change stops here.
        if (identity.Principal is { } principal && UserAccess.Refusal(principal.Role, request.Method, request.Path, principal.UserId) is { } refusal)
        {
            throw new LoopForbiddenException(refusal);
        }
        return next(context);
    }

    /// <summary>Whether the call comes straight from a program on the daemon's machine: over TCP from a
    /// loopback address, and not relayed by a proxy there (which would make every caller look local).</summary>
    public static bool IsFromThisMachine(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } address
        && System.Net.IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address)
        && !context.Request.Headers.ContainsKey("Forwarded")
        && !context.Request.Headers.ContainsKey("X-Forwarded-For")
        && !context.Request.Headers.ContainsKey("X-Real-IP");

    /// <summary>On the container endpoint, a login is counted against the account and refused.</summary>
    public static void RefuseLoginOnContainerEndpoint(HttpContext context, AuthService auth, string? username)
    {
        if (OnContainerEndpoint(context))
        {
            auth.CountRefusedLogin(username);
            throw new LoopForbiddenException(ContainerEndpointOnly);
        }
    }

    private static Identity IdentityOf(HttpContext context) => context.Items[Key] as Identity ?? Identity.Anonymous;

    private static bool IsAnonymousAllowed(HttpContext context, bool onSocket)
    {
        var request = context.Request;
        var path = request.Path;
        // Outside /api there is only the dashboard's public files (and 404s), and the pages for users.
        return !path.StartsWithSegments("/api") && UserPageName(request) is null
            || (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && path.Equals("/api/health")
            || IsLogin(request)
            || !onSocket && (HttpMethods.IsGet(request.Method) && path.Equals("/api/auth/status")
                || HttpMethods.IsPost(request.Method) && path.Equals("/api/auth/setup"))
            // A Prometheus on the daemon's machine scrapes without a token: counts say nothing of what channels say.
            || IsMetrics(request) && IsFromThisMachine(context);
    }

    /// <summary>What the pages outside /api that need a user are called, or null for another path.</summary>
    private static string? UserPageName(HttpRequest request) =>
        request.Path.StartsWithSegments(OrleansDashboardPath) ? "the Orleans dashboard"
        : IsMetrics(request) ? "the metrics"
        : ApiReference.IsReference(request) ? "the API reference"
        : null;

    private static bool IsMetrics(HttpRequest request) => request.Path.StartsWithSegments(MetricsPath);

    /// <summary>Where <c>loop serve</c> serves the Orleans dashboard.</summary>
    public const string OrleansDashboardPath = "/orleans";

    /// <summary>Where <c>loop serve</c> serves its metrics, in Prometheus' text format.</summary>
    public const string MetricsPath = "/metrics";

    private static bool IsAccountPath(HttpRequest request) => request.Path.StartsWithSegments("/api/auth");

    private static bool IsLogin(HttpRequest request) => HttpMethods.IsPost(request.Method) && request.Path.Equals("/api/auth/login");

    private enum CredentialSource
    {
        None,
        Bearer,
        Cookie,
    }

    /// <summary>Who calls: <see cref="Caller"/> is null when no valid credential came.</summary>
    private sealed record Identity(Caller? Caller, AuthPrincipal? Principal, CredentialSource Source)
    {
        public static readonly Identity Anonymous = new(null, null, CredentialSource.None);
    }
}
