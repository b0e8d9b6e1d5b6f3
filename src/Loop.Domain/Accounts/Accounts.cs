namespace Loop.Domain.Accounts;

/// <summary>A person who may use the dashboard and the API. The password is kept only as a
/// PBKDF2 hash string (see AuthService).</summary>
public sealed record UserAccount(string Id, string Username, string PasswordHash, DateTimeOffset CreatedAt);

/// <summary>A login session. Only the SHA-256 of the session token is stored.</summary>
public sealed record UserSession(string TokenHash, string UserId, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

/// <summary>A bearer token for scripts (<see cref="IsLocal"/> false) or the daemon's own machine token
/// (true). Only the SHA-256 of the token is stored; the token itself is shown once.</summary>
public sealed record ApiToken(string Id, string Name, string TokenHash, string? UserId, bool IsLocal, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt)
{
    /// <summary>Set for a channel token: it acts on that channel only.</summary>
    public string? ChannelId { get; init; }
}
