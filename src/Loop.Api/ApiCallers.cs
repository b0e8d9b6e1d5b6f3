namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Works out who is calling. On the unix socket (mounted into agent containers) a channel token
/// is required and scopes the call to its channel. On TCP (loopback unless configured) a channel
/// token scopes the call the same way; without one the caller is the user.
/// </summary>
public static class ApiCallers
{
    private const string Key = "loop.caller";

    public static Caller Of(HttpContext context) => (Caller)context.Items[Key]!;

    public static Task ResolveAsync(HttpContext context, RequestDelegate next, ChannelTokens tokens)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        // Kestrel gives unix-socket connections no IP addresses.
        var onSocket = context.Connection.RemoteIpAddress is null && context.Connection.LocalIpAddress is null;
        var isHealth = context.Request.Path.StartsWithSegments("/api/health");

        Caller caller;
        if (!string.IsNullOrEmpty(token))
        {
            var channelId = tokens.ChannelOf(token)
                ?? throw new LoopUnauthorizedException("the bearer token is not valid for this daemon");
            caller = new Caller(channelId);
        }
        else if (onSocket && !isHealth)
        {
            throw new LoopUnauthorizedException("calls on the daemon's unix socket need a channel token: send Authorization: Bearer $LOOP_CHANNEL_TOKEN");
        }
        else
        {
            caller = Caller.User;
        }
        context.Items[Key] = caller;
        return next(context);
    }
}
