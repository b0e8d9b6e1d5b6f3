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
        await _auth.SetupAsync("admin", "correct horse battery", CancellationToken.None);
    }

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
        await Assert.ThrowsAsync<LoopConflictException>(() => _auth.SetupAsync("other", "another password", CancellationToken.None));
        var invalid = await Assert.ThrowsAsync<LoopValidationException>(() => new AuthService(_store, _time).SetupAsync("x", "short", CancellationToken.None));
        Assert.Equal("password", invalid.Field);
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

        var owner = new AuthPrincipal(user.Id, user.Username, "session");
        var (info, token) = await _auth.CreateTokenAsync("script", owner, CancellationToken.None);
        Assert.NotNull(await _auth.AuthenticateAsync(token, CancellationToken.None));
        await _auth.RevokeTokenAsync(info.Id, CancellationToken.None);
        Assert.Null(await _auth.AuthenticateAsync(token, CancellationToken.None));
    }

    [Fact]
    public async Task A_token_revoked_by_another_node_stops_working_within_ten_seconds()
    {
        var (_, user, _) = await _auth.LoginAsync("admin", "correct horse battery", CancellationToken.None);
        var (info, token) = await _auth.CreateTokenAsync("script", new AuthPrincipal(user.Id, user.Username, "session"), CancellationToken.None);
        Assert.NotNull(await _auth.AuthenticateAsync(token, CancellationToken.None));

        // Another node sharing the store revokes it: this node trusts what it checked for a few seconds.
        await new AuthService(_store, _time).RevokeTokenAsync(info.Id, CancellationToken.None);
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
