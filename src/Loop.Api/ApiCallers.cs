namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Works out who is calling: a channel token (scoped to its channel), or a user's session
/// (the <c>loop_session</c> cookie or its token as Bearer) or API token (which may be scoped to a
/// channel). Without credentials only health, the auth status, setup and login answer; everything
/// else under /api is 401. The unix socket is the container endpoint: only channel credentials
/// (a run's token, a channel's API token) work there.
/// </summary>
/// <remarks>Two steps around the rate limiter: <see cref="IdentifyAsync"/> finds the caller, so
/// the limiter counts a user's calls per credential and anonymous ones per address, and
/// <see cref="AdmitAsync"/> then refuses what the caller may not do here. A refused call has
/// been counted.</remarks>
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

        // The Orleans dashboard shows every grain of the node: for people signed in, never for agents.
        if (IsOrleansDashboard(request) && identity.Caller is { IsChannel: true })
        {
            throw new LoopForbiddenException("the Orleans dashboard is for users of the daemon, not for channel tokens");
        }
        if (identity.Caller is null && !IsAnonymousAllowed(request, onSocket))
        {
            throw new LoopUnauthorizedException(identity.Source switch
            {
                // A stale cookie must not keep anyone from logging in again, so only here.
                not CredentialSource.None => "the token or session is not valid for this daemon (expired, revoked or mistyped): log in again or create a new API token",
                _ when onSocket => "calls on the daemon's unix socket need a channel token: send Authorization: Bearer $LOOP_CHANNEL_TOKEN",
                _ => "this endpoint needs a login: log in with POST /api/auth/login (session cookie, or its token as Authorization: Bearer) or send an API token",
            });
        }
        return next(context);
    }

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

    private static bool IsAnonymousAllowed(HttpRequest request, bool onSocket)
    {
        var path = request.Path;
        // Outside /api there is only the dashboard's public files (and 404s), and Orleans' dashboard.
        return !path.StartsWithSegments("/api") && !IsOrleansDashboard(request)
            || (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && path.Equals("/api/health")
            || IsLogin(request)
            || !onSocket && (HttpMethods.IsGet(request.Method) && path.Equals("/api/auth/status")
                || HttpMethods.IsPost(request.Method) && path.Equals("/api/auth/setup"));
    }

    private static bool IsOrleansDashboard(HttpRequest request) => request.Path.StartsWithSegments(OrleansDashboardPath);

    /// <summary>Where <c>loop serve</c> serves the Orleans dashboard.</summary>
    public const string OrleansDashboardPath = "/orleans";

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
