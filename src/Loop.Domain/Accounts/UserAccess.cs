namespace Loop.Domain.Accounts;

/// <summary>
/// What a viewer may do: read everything a user may read, change nothing. Decided for every call to
/// /api from the role and the method alone, in one place, so a new endpoint that changes something
/// is closed to viewers without being told. The exceptions are what a viewer needs to be a user at
/// all: logging in and out, its own password, and its own API tokens (which are viewers too).
/// </summary>
public static class UserAccess
{
    public const string ViewerRefusal = "a viewer may look but not change anything; ask an admin";

    /// <summary>Why <paramref name="role"/> may not make this call, or null when it may.
    /// <paramref name="userId"/> is the caller's own account, if it has one.</summary>
    public static string? Refusal(UserRole role, string method, string path, string? userId)
    {
        // Routes match whatever the case, and ignore empty segments.
        var segments = path.ToLowerInvariant().Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (role == UserRole.Admin || segments is not ["api", ..])
        {
            return null;
        }
        if (IsRead(method))
        {
            // A GET that hands out a channel token: that token could post and cancel in its channel.
            return segments is ["api", "channels", _, "token"] ? ViewerRefusal : null;
        }
        return segments switch
        {
            ["api", "auth", "login" or "logout" or "setup"] => null,
            // The token acts as a viewer; revoking is limited to the viewer's own tokens by the endpoint.
            ["api", "auth", "tokens"] or ["api", "auth", "tokens", _] when !IsPut(method) => null,
            // Only a password: the endpoint refuses a viewer's role change.
            ["api", "users", var id] when userId is not null && id == userId.ToLowerInvariant() && method.Equals("PATCH", StringComparison.OrdinalIgnoreCase) => null,
            _ => ViewerRefusal,
        };
    }

    private static bool IsRead(string method) =>
        method.Equals("GET", StringComparison.OrdinalIgnoreCase)
        || method.Equals("HEAD", StringComparison.OrdinalIgnoreCase)
        || method.Equals("OPTIONS", StringComparison.OrdinalIgnoreCase);

    private static bool IsPut(string method) => method.Equals("PUT", StringComparison.OrdinalIgnoreCase);
}
