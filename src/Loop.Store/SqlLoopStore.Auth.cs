namespace Loop.Store;

using System.Data.Common;
using Dapper;
using Loop.Domain.Accounts;

public abstract partial class SqlLoopStore
{
    private const string UserSelect = "SELECT id AS Id, username AS Username, password_hash AS PasswordHash, created_at AS CreatedAt, role AS Role FROM users";
    // Every change to who is an admin takes it, so two at once cannot each leave the other the last one.
    private const string UsersLock = "loop.users";
    private const string SessionSelect = "SELECT token_hash AS TokenHash, user_id AS UserId, created_at AS CreatedAt, expires_at AS ExpiresAt FROM sessions";
    private const string TokenSelect = """
        SELECT id AS Id, name AS Name, token_hash AS TokenHash, user_id AS UserId, is_local AS IsLocal,
               created_at AS CreatedAt, last_used_at AS LastUsedAt, channel_id AS ChannelId FROM api_tokens
        """;

    public Task<int> CountUsersAsync(CancellationToken cancellationToken) =>
        ReadAsync(connection => connection.ExecuteScalarAsync<int>(Command("SELECT COUNT(*) FROM users", null, null, cancellationToken)), cancellationToken);

    public Task<bool> CreateFirstUserAsync(UserAccount user, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            // Two nodes set up at once: the second waits, then finds the first account.
            await LockAsync(connection, tx, "loop.first-user", cancellationToken);
            return await connection.ExecuteAsync(Command("""
                INSERT INTO users (id, username, password_hash, created_at, role)
                SELECT @id, @username, @password_hash, @created_at, @role WHERE NOT EXISTS (SELECT 1 FROM users)
                """, UserParameters(user), tx, cancellationToken)) == 1;
        }, cancellationToken);

    public Task<IReadOnlyList<UserAccount>> ListUsersAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<UserAccount>)(await connection.QueryAsync<UserRow>(Command(
            UserSelect + " ORDER BY created_at, id", null, null, cancellationToken))).Select(r => r.ToUser()).ToList(), cancellationToken);

    public Task<bool> CreateUserAsync(UserAccount user, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await LockAsync(connection, tx, UsersLock, cancellationToken);
            return await connection.ExecuteAsync(Command("""
                INSERT INTO users (id, username, password_hash, created_at, role)
                SELECT @id, @username, @password_hash, @created_at, @role WHERE NOT EXISTS (SELECT 1 FROM users WHERE username = @username)
                """, UserParameters(user), tx, cancellationToken)) == 1;
        }, cancellationToken);

    public Task<UserChange> SetUserRoleAsync(string userId, UserRole role, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await LockAsync(connection, tx, UsersLock, cancellationToken);
            if (role != UserRole.Admin && await IsLastAdminAsync(connection, tx, userId, cancellationToken))
            {
                return UserChange.LastAdmin;
            }
            return await connection.ExecuteAsync(Command(
                "UPDATE users SET role = @role WHERE id = @id", new { id = userId, role = UserRoles.Name(role) }, tx, cancellationToken)) == 1
                ? UserChange.Done
                : UserChange.NotFound;
        }, cancellationToken);

    public Task<bool> SetUserPasswordAsync(string userId, string passwordHash, string? keepSessionHash, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            if (await connection.ExecuteAsync(Command(
                "UPDATE users SET password_hash = @password_hash WHERE id = @id", new { id = userId, password_hash = passwordHash }, tx, cancellationToken)) == 0)
            {
                return false;
            }
            await connection.ExecuteAsync(keepSessionHash is null
                ? Command("DELETE FROM sessions WHERE user_id = @id", new { id = userId }, tx, cancellationToken)
                : Command("DELETE FROM sessions WHERE user_id = @id AND token_hash <> @keep", new { id = userId, keep = keepSessionHash }, tx, cancellationToken));
            return true;
        }, cancellationToken);

    public Task<UserChange> DeleteUserAsync(string userId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await LockAsync(connection, tx, UsersLock, cancellationToken);
            if (await IsLastAdminAsync(connection, tx, userId, cancellationToken))
            {
                return UserChange.LastAdmin;
            }
            var id = new { id = userId };
            await connection.ExecuteAsync(Command("DELETE FROM sessions WHERE user_id = @id", id, tx, cancellationToken));
            await connection.ExecuteAsync(Command("DELETE FROM api_tokens WHERE user_id = @id", id, tx, cancellationToken));
            return await connection.ExecuteAsync(Command("DELETE FROM users WHERE id = @id", id, tx, cancellationToken)) == 1
                ? UserChange.Done
                : UserChange.NotFound;
        }, cancellationToken);

    /// <summary>Whether <paramref name="userId"/> is an admin and no other account is.</summary>
    private static async Task<bool> IsLastAdminAsync(DbConnection connection, DbTransaction tx, string userId, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<long>(Command(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND id = @id", new { id = userId }, tx, cancellationToken)) == 1
        && await connection.ExecuteScalarAsync<long>(Command(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND id <> @id", new { id = userId }, tx, cancellationToken)) == 0;

    private static object UserParameters(UserAccount user) => new
    {
        id = user.Id,
        username = user.Username,
        password_hash = user.PasswordHash,
        created_at = Columns.ToMs(user.CreatedAt),
        role = UserRoles.Name(user.Role),
    };

    public Task<UserAccount?> FindUserByNameAsync(string username, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<UserRow>(Command(
            UserSelect + " WHERE username = @username", new { username }, null, cancellationToken)))?.ToUser(), cancellationToken);

    public Task<UserAccount?> GetUserAsync(string userId, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<UserRow>(Command(
            UserSelect + " WHERE id = @id", new { id = userId }, null, cancellationToken)))?.ToUser(), cancellationToken);

    public Task CreateSessionAsync(UserSession session, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (@token_hash, @user_id, @created_at, @expires_at)",
            new { token_hash = session.TokenHash, user_id = session.UserId, created_at = Columns.ToMs(session.CreatedAt), expires_at = Columns.ToMs(session.ExpiresAt) },
            tx, cancellationToken)), cancellationToken);

    public Task<UserSession?> GetSessionAsync(string tokenHash, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<SessionRow>(Command(
            SessionSelect + " WHERE token_hash = @token_hash", new { token_hash = tokenHash }, null, cancellationToken)))?.ToSession(), cancellationToken);

    public Task ExtendSessionAsync(string tokenHash, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "UPDATE sessions SET expires_at = @expires_at WHERE token_hash = @token_hash",
            new { token_hash = tokenHash, expires_at = Columns.ToMs(expiresAt) }, tx, cancellationToken)), cancellationToken);

    public Task DeleteSessionAsync(string tokenHash, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "DELETE FROM sessions WHERE token_hash = @token_hash", new { token_hash = tokenHash }, tx, cancellationToken)), cancellationToken);

    public Task CreateApiTokenAsync(ApiToken token, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => InsertTokenAsync(connection, tx, token, cancellationToken), cancellationToken);

    public Task<ApiToken?> FindApiTokenAsync(string tokenHash, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<TokenRow>(Command(
            TokenSelect + " WHERE token_hash = @token_hash", new { token_hash = tokenHash }, null, cancellationToken)))?.ToToken(), cancellationToken);

    public Task<IReadOnlyList<ApiToken>> ListApiTokensAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<ApiToken>)(await connection.QueryAsync<TokenRow>(Command(
            TokenSelect + " WHERE is_local = 0 ORDER BY created_at, id", null, null, cancellationToken))).Select(r => r.ToToken()).ToList(), cancellationToken);

    public Task<bool> DeleteApiTokenAsync(string tokenId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command(
            "DELETE FROM api_tokens WHERE id = @id AND is_local = 0", new { id = tokenId }, tx, cancellationToken)) == 1, cancellationToken);

    public Task<int> DeleteChannelApiTokensAsync(string channelId, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "DELETE FROM api_tokens WHERE channel_id = @channel_id", new { channel_id = channelId }, tx, cancellationToken)), cancellationToken);

    public Task ReplaceLocalTokenAsync(ApiToken token, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await connection.ExecuteAsync(Command("DELETE FROM api_tokens WHERE is_local = 1 AND name = @name", new { name = token.Name }, tx, cancellationToken));
            return await InsertTokenAsync(connection, tx, token with { IsLocal = true }, cancellationToken);
        }, cancellationToken);

    public Task TouchApiTokenAsync(string tokenId, DateTimeOffset usedAt, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "UPDATE api_tokens SET last_used_at = @at WHERE id = @id", new { id = tokenId, at = Columns.ToMs(usedAt) }, tx, cancellationToken)), cancellationToken);

    private static Task<int> InsertTokenAsync(DbConnection connection, DbTransaction tx, ApiToken token, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(Command("""
            INSERT INTO api_tokens (id, name, token_hash, user_id, is_local, created_at, last_used_at, channel_id)
            VALUES (@id, @name, @token_hash, @user_id, @is_local, @created_at, @last_used_at, @channel_id)
            """, new
        {
            id = token.Id,
            name = token.Name,
            token_hash = token.TokenHash,
            user_id = token.UserId,
            is_local = token.IsLocal ? 1 : 0,
            created_at = Columns.ToMs(token.CreatedAt),
            last_used_at = Columns.ToMs(token.LastUsedAt),
            channel_id = token.ChannelId,
        }, tx, cancellationToken));

    private sealed class UserRow
    {
        public string Id { get; set; } = "";
        public string Username { get; set; } = "";
        public string PasswordHash { get; set; } = "";
        public long CreatedAt { get; set; }
        public string Role { get; set; } = "";

        // The column's CHECK allows only the names Parse knows.
        public UserAccount ToUser() => new(Id, Username, PasswordHash, Columns.FromMs(CreatedAt), UserRoles.Parse(Role) ?? UserRole.Viewer);
    }

    private sealed class SessionRow
    {
        public string TokenHash { get; set; } = "";
        public string UserId { get; set; } = "";
        public long CreatedAt { get; set; }
        public long ExpiresAt { get; set; }

        public UserSession ToSession() => new(TokenHash, UserId, Columns.FromMs(CreatedAt), Columns.FromMs(ExpiresAt));
    }

    private sealed class TokenRow
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string TokenHash { get; set; } = "";
        public string? UserId { get; set; }
        public long IsLocal { get; set; }
        public long CreatedAt { get; set; }
        public long? LastUsedAt { get; set; }
        public string? ChannelId { get; set; }

        public ApiToken ToToken() => new(Id, Name, TokenHash, UserId, IsLocal != 0, Columns.FromMs(CreatedAt), Columns.FromMs(LastUsedAt)) { ChannelId = ChannelId };
    }
}
