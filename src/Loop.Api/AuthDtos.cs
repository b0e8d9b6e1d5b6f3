namespace Loop.Api;

using System.Text.Json;
using System.Text.Json.Serialization;
using Loop.Domain.Accounts;

public sealed record CredentialsRequest(string? Username, string? Password);

/// <summary>The first-run setup: the admin's credentials and the code <c>loop serve</c> printed.</summary>
public sealed record SetupRequest(string? Username, string? Password, string? SetupCode);

/// <summary>Who calls: <see cref="Role"/> is <c>admin</c> or <c>viewer</c> for a user, null otherwise;
/// <see cref="UserId"/> is null for the machine's local token.</summary>
public sealed record AuthStatusDto(bool SetupRequired, bool Authenticated, string? Username, string? UserId, string? Role);

public sealed record UserDto(string Id, string Username, string Role, DateTimeOffset CreatedAt)
{
    public static UserDto From(UserAccount u) => new(u.Id, u.Username, UserRoles.Name(u.Role), u.CreatedAt);
}

public sealed record LoginDto(string Token, string Username, string Role, DateTimeOffset ExpiresAt);

/// <summary>A new account: <see cref="Role"/> is <c>admin</c> or <c>viewer</c> (the default).</summary>
public sealed record CreateUserRequest(string? Username, string? Password, string? Role);

/// <summary>What to change of an account; fields left out stay as they are.</summary>
public sealed record ChangeUserRequest(string? Role, string? Password);

public sealed record CreateTokenRequest(string? Name);

/// <summary>A token as listed: never the token itself. <see cref="UserId"/> is whose it is (null:
/// made with the machine's local token); it acts with that user's role.</summary>
public sealed record ApiTokenDto(string Id, string Name, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, string? ChannelId, string? UserId)
{
    public static ApiTokenDto From(ApiToken t) => new(t.Id, t.Name, t.CreatedAt, t.LastUsedAt, t.ChannelId, t.UserId);
}

/// <summary>The answer to creating a token: the only time the token is shown.</summary>
public sealed record NewApiTokenDto(string Id, string Name, DateTimeOffset CreatedAt, string Token);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(CredentialsRequest))]
[JsonSerializable(typeof(SetupRequest))]
[JsonSerializable(typeof(AuthStatusDto))]
[JsonSerializable(typeof(UserDto))]
[JsonSerializable(typeof(List<UserDto>))]
[JsonSerializable(typeof(CreateUserRequest))]
[JsonSerializable(typeof(ChangeUserRequest))]
[JsonSerializable(typeof(LoginDto))]
[JsonSerializable(typeof(CreateTokenRequest))]
[JsonSerializable(typeof(List<ApiTokenDto>))]
[JsonSerializable(typeof(NewApiTokenDto))]
public sealed partial class AuthJsonContext : JsonSerializerContext;
