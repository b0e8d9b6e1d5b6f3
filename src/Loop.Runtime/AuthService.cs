namespace Loop.Runtime;

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Loop.Domain;
using Loop.Domain.Accounts;

/// <summary>Who a session or API token belongs to. <see cref="UserId"/> is null for the daemon's
/// local machine token, which acts for the user before any account exists.</summary>
public sealed record AuthPrincipal(string? UserId, string? Username, string Kind, string? SessionTokenHash = null)
{
    /// <summary>What the caller may do: its user's role. The local machine token (and a token it
    /// made) is the machine's owner, an admin. Unset, the least: a viewer.</summary>
    public UserRole Role { get; init; } = UserRole.Viewer;

    /// <summary>When a session ends unless it is used again; null for API tokens.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Set for a channel token: the caller may act on that channel only.</summary>
    public string? ChannelId { get; init; }

    /// <summary>Which session or token this is (not the secret itself): what its calls are counted by.</summary>
    public string CredentialId { get; init; } = "";
}

/// <summary>
/// Accounts, login sessions and API tokens. Passwords are PBKDF2-SHA256 with a random salt; session
/// and API tokens are 256-bit random strings of which only the SHA-256 is stored, so the store
/// never holds anything that logs a person in. A token found valid is trusted for
/// <see cref="RecheckAfter"/> without asking the store again (every API call authenticates);
/// logout and revocation on this node take effect at once, on other nodes within that time.
/// Until the first account exists, setting it up needs the one-time code of
/// <see cref="IssueSetupCodeAsync"/>, which only someone on the daemon's machine can read.
/// </summary>
public sealed class AuthService(ILoopStore store, TimeProvider time)
{
    public const int Pbkdf2Iterations = 210_000;
    public const int LoginFailuresPerAccount = 10;
    public const string SessionPrefix = "loopss_";
    public const string ApiTokenPrefix = "loopat_";
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromDays(14);

    // Extending a session costs a write, so it is done at most this often per session.
    private static readonly TimeSpan ExtendEvery = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan TouchEvery = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan RecheckAfter = TimeSpan.FromSeconds(10);
    private const int ValidatedLimit = 10_000;
    private readonly ConcurrentDictionary<string, Validated> _validated = new(StringComparer.Ordinal);
    // Verified against when the user does not exist, so a wrong username costs as long as a wrong password.
    private static readonly Lazy<string> DummyHash = new(() => HashPassword("not a real password", Pbkdf2Iterations));
    // No 0/O or 1/I, so a code read off a terminal is typed right.
    private const string SetupCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    private const string SetupCodeWhere = "loop serve printed it in its log (\"First-run setup code: …\") and wrote it to ~/.loop/secrets/setup-code ($LOOP_HOME/secrets/setup-code)";
    private readonly LoginThrottle _logins = new(LoginFailuresPerAccount, TimeSpan.FromMinutes(1), time);
    private volatile IssuedSetupCode? _setupCode;

    public async Task<bool> IsSetupRequiredAsync(CancellationToken cancellationToken) =>
        await store.CountUsersAsync(cancellationToken) == 0;

    /// <summary>While no account exists: a fresh one-time setup code, written (readable only by this
    /// user) to <paramref name="path"/> for the person at the daemon's machine; it replaces any
    /// earlier one. Null once an account exists, and a stale file is removed.</summary>
    public async Task<string?> IssueSetupCodeAsync(string path, CancellationToken cancellationToken)
    {
        if (!await IsSetupRequiredAsync(cancellationToken))
        {
            _setupCode = null;
            File.Delete(path);
            return null;
        }
        var letters = RandomNumberGenerator.GetItems<char>(SetupCodeAlphabet, 8);
        var code = $"{new string(letters, 0, 4)}-{new string(letters, 4, 4)}";
        PrivateFiles.Write(path, code + "\n");
        _setupCode = new IssuedSetupCode(code, path);
        return code;
    }

    /// <summary>Creates the admin account; only once, and only with the setup code.</summary>
    public async Task<UserAccount> SetupAsync(string? username, string? password, string? setupCode, CancellationToken cancellationToken)
    {
        if (!await IsSetupRequiredAsync(cancellationToken))
        {
            throw new LoopConflictException("the account is set up already; log in with POST /api/auth/login");
        }
        var issued = CheckSetupCode(setupCode);
        var name = ValidUsername(username);
        var user = new UserAccount(Ids.New("usr", time), name, HashPassword(ValidPassword(password), Pbkdf2Iterations), time.GetUtcNow(), UserRole.Admin);
        if (!await store.CreateFirstUserAsync(user, cancellationToken))
        {
            throw new LoopConflictException("the account is set up already; log in with POST /api/auth/login");
        }
        // Used up: it must not create anything again.
        _setupCode = null;
        File.Delete(issued.File);
        return user;
    }

    private IssuedSetupCode CheckSetupCode(string? given)
    {
        if (string.IsNullOrWhiteSpace(given))
        {
            throw new LoopValidationException("setup_code", $"the setup code is missing: {SetupCodeWhere}");
        }
        var issued = _setupCode;
        if (issued is null || !CryptographicOperations.FixedTimeEquals(
            Encoding.ASCII.GetBytes(NormalizeSetupCode(issued.Code)), Encoding.ASCII.GetBytes(NormalizeSetupCode(given))))
        {
            throw new LoopForbiddenException($"wrong setup code: {SetupCodeWhere}; a restart of loop serve makes a new one");
        }
        return issued;
    }

    // Typed by hand: case, spaces and the dash do not matter.
    private static string NormalizeSetupCode(string code) =>
        new(code.Where(char.IsAsciiLetterOrDigit).Select(char.ToUpperInvariant).ToArray());

    /// <summary>Checks the password and opens a session; returns its token (shown once). Failed
    /// attempts are limited per account (<see cref="LoginFailuresPerAccount"/> a minute).</summary>
    public async Task<(string Token, UserAccount User, DateTimeOffset ExpiresAt)> LoginAsync(string? username, string? password, CancellationToken cancellationToken)
    {
        var name = username?.Trim() ?? "";
        _logins.Begin(name);
        var user = name.Length == 0 ? null : await store.FindUserByNameAsync(name, cancellationToken);
        var ok = VerifyPassword(password ?? "", user?.PasswordHash ?? DummyHash.Value);
        if (user is null || !ok)
        {
            throw new LoopUnauthorizedException("wrong username or password");
        }
        _logins.Succeeded(name);
        var token = NewToken(SessionPrefix);
        var now = time.GetUtcNow();
        var expiresAt = now + SessionLifetime;
        await store.CreateSessionAsync(new UserSession(Hash(token), user.Id, now, expiresAt), cancellationToken);
        return (token, user, expiresAt);
    }

    /// <summary>A login that is refused before any password check (it came where logins are not
    /// accepted) still counts against the account, as a guess would.</summary>
    public void CountRefusedLogin(string? username) => _logins.Begin(username?.Trim() ?? "");

    public async Task LogoutAsync(AuthPrincipal principal, CancellationToken cancellationToken)
    {
        if (principal.SessionTokenHash is { } hash)
        {
            _validated.TryRemove(hash, out _);
            await store.DeleteSessionAsync(hash, cancellationToken);
        }
    }

    /// <summary>The owner of a session or API token, or null when it is unknown, revoked or expired.</summary>
    public async Task<AuthPrincipal?> AuthenticateAsync(string token, CancellationToken cancellationToken)
    {
        var hash = Hash(token);
        var now = time.GetUtcNow();
        if (_validated.TryGetValue(hash, out var known) && now < known.Until)
        {
            return known.Principal;
        }
        var principal = await LookUpAsync(token, hash, now, cancellationToken);
        if (principal is null)
        {
            _validated.TryRemove(hash, out _);
            return null;
        }
        if (_validated.Count >= ValidatedLimit)
        {
            _validated.Clear();
        }
        _validated[hash] = new Validated(principal, principal.ExpiresAt is { } expires && expires < now + RecheckAfter ? expires : now + RecheckAfter);
        return principal;
    }

    private async Task<AuthPrincipal?> LookUpAsync(string token, string hash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (token.StartsWith(SessionPrefix, StringComparison.Ordinal))
        {
            var session = await store.GetSessionAsync(hash, cancellationToken);
            if (session is null)
            {
                return null;
            }
            if (session.ExpiresAt <= now)
            {
                await store.DeleteSessionAsync(hash, cancellationToken);
                return null;
            }
            var user = await store.GetUserAsync(session.UserId, cancellationToken);
            if (user is null)
            {
                return null;
            }
            // Sliding expiry: a session in use stays open.
            if (now + SessionLifetime - session.ExpiresAt >= ExtendEvery)
            {
                await store.ExtendSessionAsync(hash, now + SessionLifetime, cancellationToken);
            }
            return new AuthPrincipal(user.Id, user.Username, "session", hash)
            {
                Role = user.Role,
                ExpiresAt = session.ExpiresAt,
                CredentialId = "session:" + hash[..16],
            };
        }
        if (token.StartsWith(ApiTokenPrefix, StringComparison.Ordinal))
        {
            var apiToken = await store.FindApiTokenAsync(hash, cancellationToken);
            if (apiToken is null)
            {
                return null;
            }
            if (apiToken.LastUsedAt is not { } used || now - used >= TouchEvery)
            {
                await store.TouchApiTokenAsync(apiToken.Id, now, cancellationToken);
            }
            UserAccount? user = null;
            if (apiToken.UserId is { } userId && (user = await store.GetUserAsync(userId, cancellationToken)) is null)
            {
                // Its user was deleted (which revokes the user's tokens; this one slipped past on another node).
                return null;
            }
            return new AuthPrincipal(user?.Id, user?.Username, apiToken.IsLocal ? "local" : "token")
            {
                // The role of its user now: demoting a user demotes the user's tokens too.
                Role = user?.Role ?? UserRole.Admin,
                ChannelId = apiToken.ChannelId,
                CredentialId = "token:" + apiToken.Id,
            };
        }
        return null;
    }

    /// <summary>A new API token for scripts; the token is returned here and never again.</summary>
    public async Task<(ApiToken Info, string Token)> CreateTokenAsync(string? name, AuthPrincipal owner, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new LoopValidationException("name", "give the token a name, like \"backup script\"");
        }
        name = name.Trim();
        if (name.Length > 100)
        {
            throw new LoopValidationException("name", "the name must have at most 100 characters");
        }
        var token = NewToken(ApiTokenPrefix);
        var info = new ApiToken(Ids.New("tok", time), name, Hash(token), owner.UserId, false, Columns(time.GetUtcNow()), null);
        await store.CreateApiTokenAsync(info, cancellationToken);
        return (info, token);
    }

    /// <summary>A token that acts on one channel only (for a script or an MCP server outside Loop);
    /// listed and revocable with the other API tokens.</summary>
    public async Task<string> CreateChannelTokenAsync(string channelId, AuthPrincipal owner, CancellationToken cancellationToken)
    {
        var token = NewToken(ApiTokenPrefix);
        var info = new ApiToken(Ids.New("tok", time), "channel " + channelId, Hash(token), owner.UserId, false, Columns(time.GetUtcNow()), null)
        {
            ChannelId = channelId,
        };
        await store.CreateApiTokenAsync(info, cancellationToken);
        return token;
    }

    /// <summary>Revokes every stored token of a channel; returns how many.</summary>
    public async Task<int> RevokeChannelTokensAsync(string channelId, CancellationToken cancellationToken)
    {
        var revoked = await store.DeleteChannelApiTokensAsync(channelId, cancellationToken);
        _validated.Clear();
        return revoked;
    }

    public Task<IReadOnlyList<ApiToken>> ListTokensAsync(CancellationToken cancellationToken) => store.ListApiTokensAsync(cancellationToken);

    /// <summary>Revokes a token: any for an admin, only their own for a viewer.</summary>
    public async Task RevokeTokenAsync(string tokenId, AuthPrincipal caller, CancellationToken cancellationToken)
    {
        if (caller.Role != UserRole.Admin
            && !(await store.ListApiTokensAsync(cancellationToken)).Any(t => t.Id == tokenId && t.UserId is not null && t.UserId == caller.UserId))
        {
            throw new LoopForbiddenException("a viewer may revoke only their own API tokens; ask an admin");
        }
        if (!await store.DeleteApiTokenAsync(tokenId, cancellationToken))
        {
            throw new LoopNotFoundException($"no API token {tokenId}");
        }
        // Only the hash is known here, not which cache entry it was: start over.
        _validated.Clear();
    }

    /// <summary>Makes a fresh machine token for this node and writes it, readable only by this
    /// user, to <paramref name="path"/>: the CLI and <c>loop mcp</c> on this machine use it.</summary>
    public async Task IssueLocalTokenAsync(string path, string nodeName, CancellationToken cancellationToken)
    {
        var token = NewToken(ApiTokenPrefix);
        await store.ReplaceLocalTokenAsync(
            new ApiToken(Ids.New("tok", time), "local:" + nodeName, Hash(token), null, true, Columns(time.GetUtcNow()), null), cancellationToken);
        _validated.Clear();
        PrivateFiles.Write(path, token + "\n");
    }

    /// <summary>Forgets every credential found valid, so a change to accounts (a role, a deletion, a
    /// password) applies to the next call on this node.</summary>
    public void ForgetValidated() => _validated.Clear();

    /// <summary>The password, if it is one Loop accepts; else names the field and what to fix.</summary>
    public static string ValidPassword(string? password, string field = "password")
    {
        if (string.IsNullOrEmpty(password) || password.Length < 8)
        {
            throw new LoopValidationException(field, "the password must have at least 8 characters");
        }
        if (password.Length > 1024)
        {
            throw new LoopValidationException(field, "the password must have at most 1024 characters");
        }
        return password;
    }

    public static string HashPassword(string password, int iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2-sha256${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    public static bool VerifyPassword(string password, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2-sha256" || !int.TryParse(parts[1], out var iterations))
        {
            return false;
        }
        var salt = Convert.FromBase64String(parts[2]);
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    public static string ValidUsername(string? username)
    {
        var name = username?.Trim() ?? "";
        if (name.Length is 0 or > 64 || name.Any(char.IsControl))
        {
            throw new LoopValidationException("username", "the username must have 1 to 64 characters and no control characters");
        }
        return name;
    }

    private static string NewToken(string prefix) =>
        prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    // The store keeps milliseconds; so does what is handed back.
    private static DateTimeOffset Columns(DateTimeOffset at) => DateTimeOffset.FromUnixTimeMilliseconds(at.ToUnixTimeMilliseconds());

    private sealed record Validated(AuthPrincipal Principal, DateTimeOffset Until);

    private sealed record IssuedSetupCode(string Code, string File);
}
