namespace Loop.Domain.Accounts;

/// <summary>A person who may use the dashboard and the API. The password is kept only as a
/// PBKDF2 hash string (see AuthService).</summary>
public sealed record UserAccount(string Id, string Username, string PasswordHash, DateTimeOffset CreatedAt, UserRole Role);

/// <summary>What a user may do: an admin everything, a viewer only look (<see cref="UserAccess"/>).</summary>
public enum UserRole
{
    Admin,
    Viewer,
}

/// <summary>The role names of the API and the store.</summary>
public static class UserRoles
{
    public const string Admin = "admin";
    public const string Viewer = "viewer";

    public static string Name(UserRole role) => role switch
    {
        UserRole.Admin => Admin,
        UserRole.Viewer => Viewer,
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, null),
    };

    /// <summary>The role a name means, or null for anything else.</summary>
    public static UserRole? Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        Admin => UserRole.Admin,
        Viewer => UserRole.Viewer,
        _ => null,
    };
}

/// <summary>Why a change to the accounts was not made.</summary>
public enum UserChange
{
    Done,
    NotFound,
    /// <summary>It would leave no admin, and then no one could manage the accounts.</summary>
    LastAdmin,
}

/// <summary>A login session. Only the SHA-256 of the session token is stored.</summary>
public sealed record UserSession(string TokenHash, string UserId, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

/// <summary>A bearer token for scripts (<see cref="IsLocal"/> false) or the daemon's own machine token
/// (true). Only the SHA-256 of the token is stored; the token itself is shown once.</summary>
public sealed record ApiToken(string Id, string Name, string TokenHash, string? UserId, bool IsLocal, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt)
{
    /// <summary>Set for a channel token: it acts on that channel only.</summary>
    public string? ChannelId { get; init; }
}
