namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Works out who is calling: a channel token (scoped to its channel), or a user's session
/// (the <c>loop_session</c> cookie or its token as Bearer) or API token. Without credentials only
/// health, the auth status, setup and login answer; everything else under /api is 401. On the
/// unix socket (mounted into agent containers) a token is always required.
/// </summary>
public static class ApiCallers
{
    public const string SessionCookie = "loop_session";
    private const string Key = "loop.caller";
    private const string PrincipalKey = "loop.principal";

    public static Caller Of(HttpContext context) => (Caller)context.Items[Key]!;

    /// <summary>The signed-in user or token behind the call; null for channel tokens and anonymous calls.</summary>
    public static bool IsAuthenticated(HttpContext context) => context.Items.ContainsKey(Key);

    public static AuthPrincipal? PrincipalOf(HttpContext context) => context.Items[PrincipalKey] as AuthPrincipal;

    public static async Task ResolveAsync(HttpContext context, RequestDelegate next, ChannelTokens tokens, AuthService auth)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        // Kestrel gives unix-socket connections no IP addresses.
        var onSocket = context.Connection.RemoteIpAddress is null && context.Connection.LocalIpAddress is null;
        var anonymousAllowed = IsAnonymousAllowed(context.Request);
        if (string.IsNullOrEmpty(token) && !onSocket)
        {
            token = context.Request.Cookies[SessionCookie];
        }

        Caller? caller = null;
        if (!string.IsNullOrEmpty(token))
        {
            if (tokens.ChannelOf(token) is { } channelId)
            {
                caller = new Caller(channelId);
            }
            else if (await auth.AuthenticateAsync(token, context.RequestAborted) is { } principal)
            {
                caller = principal.ChannelId is { } scoped ? new Caller(scoped) : Caller.User;
                context.Items[PrincipalKey] = principal;
            }
            else if (!anonymousAllowed)
            {
                // A stale cookie must not keep anyone from logging in again, so only here.
                throw new LoopUnauthorizedException("the token or session is not valid for this daemon (expired, revoked or mistyped): log in again or create a new API token");
            }
        }
        else if (onSocket && !anonymousAllowed)
        {
            throw new LoopUnauthorizedException("calls on the daemon's unix socket need a channel token: send Authorization: Bearer $LOOP_CHANNEL_TOKEN");
        }

        if (caller is null && !anonymousAllowed && context.Request.Path.StartsWithSegments("/api"))
        {
            throw new LoopUnauthorizedException("this endpoint needs a login: log in with POST /api/auth/login (session cookie, or its token as Authorization: Bearer) or send an API token");
        }
        if (caller is not null)
        {
            context.Items[Key] = caller;
        }
        await next(context);
    }

    private static bool IsAnonymousAllowed(HttpRequest request)
    {
        var path = request.Path;
        // Outside /api there is only the dashboard's public files (and 404s).
        return !path.StartsWithSegments("/api")
            || HttpMethods.IsGet(request.Method) && (path.Equals("/api/health") || path.Equals("/api/auth/status"))
            || HttpMethods.IsPost(request.Method) && (path.Equals("/api/auth/setup") || path.Equals("/api/auth/login"));
    }
}
