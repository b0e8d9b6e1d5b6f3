namespace Loop.Domain.Tests;

using Loop.Runtime;
using Loop.Store;

/// <summary>Session expiry, revocation and password hashing, on a real SQLite store and a clock moved by hand.</summary>
public sealed class AuthServiceTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-auth-").FullName;
    private readonly ManualTimeProvider _time = new();
    private SqliteLoopStore _store = null!;
    private AuthService _auth = null!;

    public async Task InitializeAsync()
    {
        _store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        await _store.MigrateAsync(CancellationToken.None);
        _auth = new AuthService(_store, _time);
        var code = await _auth.IssueSetupCodeAsync(SetupCodeFile, CancellationToken.None);
        await _auth.SetupAsync("admin", "correct horse battery", code, CancellationToken.None);
    }

    private string SetupCodeFile => Path.Combine(_dir, "secrets", "setup-code");

    [Fact]
    public async Task A_session_slides_while_used_and_ends_fourteen_days_after_its_last_use()
    {
        var (token, _, expiresAt) = await _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromDays(14), expiresAt);

        _time.Advance(TimeSpan.FromDays(13));
        Assert.Equal("admin", (await _auth.AuthenticateAsync(token, CancellationToken.None))?.Username);
        _time.Advance(TimeSpan.FromDays(13)); // 26 days after login, 13 after last use
        Assert.NotNull(await _auth.AuthenticateAsync(token, CancellationToken.None));

        _time.Advance(TimeSpan.FromDays(14));
        Assert.Null(await _auth.AuthenticateAsync(token, CancellationToken.None));
        _time.Advance(TimeSpan.FromDays(-20)); // an expired session is deleted, not just refused
        Assert.Null(await _auth.AuthenticateAsync(token, CancellationToken.None));
    }

    [Fact]
    public async Task Wrong_passwords_and_second_setups_are_refused()
    {
        await Assert.ThrowsAsync<LoopUnauthorizedException>(() => _auth.LoginAsync("admin", "Correct horse battery", CancellationToken.None));
        await Assert.ThrowsAsync<LoopConflictException>(() => _auth.SetupAsync("other", "another password", "AAAA-AAAA", CancellationToken.None));
        // Once an account exists there is no code to issue, and none left on disk.
        Assert.Null(await _auth.IssueSetupCodeAsync(SetupCodeFile, CancellationToken.None));
        Assert.False(File.Exists(SetupCodeFile));
    }

    [Fact]
    public async Task Setup_needs_the_issued_code_which_is_private_typed_loosely_and_used_up()
    {
        await using var store = new SqliteLoopStore(Path.Combine(_dir, "fresh.db"), _time);
        await store.MigrateAsync(CancellationToken.None);
        var auth = new AuthService(store, _time);
        var file = Path.Combine(_dir, "fresh", "setup-code");

        // No code issued yet: nothing opens the setup.
        await Assert.ThrowsAsync<LoopForbiddenException>(() => auth.SetupAsync("admin", "correct horse battery", "AAAA-AAAA", CancellationToken.None));
        var first = await auth.IssueSetupCodeAsync(file, CancellationToken.None);
        Assert.Matches("^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$", first);
        var code = await auth.IssueSetupCodeAsync(file, CancellationToken.None); // a restart: a new code replaces it
        Assert.Equal(code + "\n", await File.ReadAllTextAsync(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        var missing = await Assert.ThrowsAsync<LoopValidationException>(() => auth.SetupAsync("admin", "correct horse battery", " ", CancellationToken.None));
        Assert.Equal("setup_code", missing.Field);
        Assert.Contains("secrets/setup-code", missing.Message);
        var wrong = await Assert.ThrowsAsync<LoopForbiddenException>(() => auth.SetupAsync("admin", "correct horse battery", first, CancellationToken.None));
        Assert.Contains("wrong setup code", wrong.Message);
        var invalid = await Assert.ThrowsAsync<LoopValidationException>(() => auth.SetupAsync("x", "short", code, CancellationToken.None));
        Assert.Equal("password", invalid.Field);
        Assert.True(await auth.IsSetupRequiredAsync(CancellationToken.None));

        // Case, spaces and the dash do not matter.
        var typed = " " + code!.Replace("-", "", StringComparison.Ordinal).ToLowerInvariant() + " ";
        Assert.Equal("admin", (await auth.SetupAsync("admin", "correct horse battery", typed, CancellationToken.None)).Username);
        Assert.False(File.Exists(file));
        await Assert.ThrowsAsync<LoopConflictException>(() => auth.SetupAsync("again", "correct horse battery", code, CancellationToken.None));
    }

    [Fact]
    public async Task Failed_logins_are_limited_per_account_for_a_minute_and_successes_do_not_count()
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None);
        }
        for (var attempt = 0; attempt < AuthService.LoginFailuresPerAccount; attempt++)
        {
            await Assert.ThrowsAsync<LoopUnauthorizedException>(() => _auth.LoginAsync("admin", $"guess {attempt}", CancellationToken.None));
        }
        // Now even the right password waits, and the answer says how long.
        var limited = await Assert.ThrowsAsync<LoopTooManyRequestsException>(() => _auth.LoginAsync(" admin ", "correct horse battery", CancellationToken.None));
        Assert.Equal(TimeSpan.FromMinutes(1), limited.RetryAfter);
        Assert.Contains("try again in 60 s", limited.Message);
        // A refused login elsewhere (the container endpoint) counts the same way.
        Assert.Throws<LoopTooManyRequestsException>(() => _auth.CountRefusedLogin("ADMIN"));
        // Other accounts are not affected.
        await Assert.ThrowsAsync<LoopUnauthorizedException>(() => _auth.LoginAsync("someone", "guess", CancellationToken.None));

        _time.Advance(TimeSpan.FromSeconds(59));
        await Assert.ThrowsAsync<LoopTooManyRequestsException>(() => _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("admin", (await _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None)).User.Username);
    }

    [Fact]
    public void Password_hashes_are_salted_pbkdf2_with_at_least_210000_iterations()
    {
        var a = AuthService.HashPassword("pw 12345678", AuthService.Pbkdf2Iterations);
        var b = AuthService.HashPassword("pw 12345678", AuthService.Pbkdf2Iterations);
        Assert.StartsWith("pbkdf2-sha256$210000$", a);
        Assert.NotEqual(a, b);
        Assert.True(AuthService.VerifyPassword("pw 12345678", a));
        Assert.False(AuthService.VerifyPassword("pw 12345679", a));
    }

    [Fact]
    public async Task Logout_and_revocation_end_access_at_once_even_right_after_a_successful_call()
    {
        var (session, user, _) = await _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None);
        var principal = await _auth.AuthenticateAsync(session, CancellationToken.None);
        Assert.NotNull(principal);
        await _auth.LogoutAsync(principal, CancellationToken.None);
        Assert.Null(await _auth.AuthenticateAsync(session, CancellationToken.None));

        var owner = new AuthPrincipal(user.Id, user.Username, "session") { Role = Loop.Domain.Accounts.UserRole.Admin };
        var (info, token) = await _auth.CreateTokenAsync("script", owner, CancellationToken.None);
        Assert.NotNull(await _auth.AuthenticateAsync(token, CancellationToken.None));
        await _auth.RevokeTokenAsync(info.Id, owner, CancellationToken.None);
        Assert.Null(await _auth.AuthenticateAsync(token, CancellationToken.None));
    }

    [Fact]
    public async Task A_token_revoked_by_another_node_stops_working_within_ten_seconds()
    {
        var (_, user, _) = await _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None);
        var (info, token) = await _auth.CreateTokenAsync("script", new AuthPrincipal(user.Id, user.Username, "session"), CancellationToken.None);
        Assert.NotNull(await _auth.AuthenticateAsync(token, CancellationToken.None));

        // Another node sharing the store revokes it: this node trusts what it checked for a few seconds.
        await new AuthService(_store, _time).RevokeTokenAsync(info.Id, new AuthPrincipal(user.Id, user.Username, "session") { Role = Loop.Domain.Accounts.UserRole.Admin }, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.NotNull(await _auth.AuthenticateAsync(token, CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(await _auth.AuthenticateAsync(token, CancellationToken.None));
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
