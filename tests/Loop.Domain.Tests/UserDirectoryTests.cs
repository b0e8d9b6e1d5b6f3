namespace Loop.Domain.Tests;

using Loop.Domain.Accounts;
using Loop.Runtime;
using Loop.Store;

/// <summary>Accounts and roles after setup, on a real SQLite store: roles reach the principals, and a
/// change to an account applies to the next call.</summary>
public sealed class UserDirectoryTests : IAsyncLifetime
{
    private const string Password = "correct horse battery";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-users-").FullName;
    private readonly ManualTimeProvider _time = new();
    private SqliteLoopStore _store = null!;
    private AuthService _auth = null!;
    private UserDirectory _users = null!;
    private AuthPrincipal _admin = null!;

    public async Task InitializeAsync()
    {
        _store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        await _store.MigrateAsync(None);
        _auth = new AuthService(_store, _time);
        _users = new UserDirectory(_store, _auth, _time);
        var code = await _auth.IssueSetupCodeAsync(Path.Combine(_dir, "setup-code"), None);
        var admin = await _auth.SetupAsync("admin", Password, code, None);
        Assert.Equal(UserRole.Admin, admin.Role);
        _admin = (await _auth.AuthenticateAsync((await _auth.LoginAsync("admin", Password, None)).Token, None))!;
    }

    [Fact]
    public async Task A_viewers_session_and_api_tokens_carry_the_viewer_role_and_follow_a_change_of_role_at_once()
    {
        var viewer = await _users.CreateAsync("vera", Password, "viewer", _admin, None);
        var session = await LogInAsync("vera");
        Assert.Equal((UserRole.Viewer, viewer.Id), (session.Role, session.UserId));
        var (_, token) = await _auth.CreateTokenAsync("read-only script", session, None);
        Assert.Equal(UserRole.Viewer, (await _auth.AuthenticateAsync(token, None))!.Role);

        await _users.ChangeAsync(viewer.Id, "admin", null, _admin, None);
        Assert.Equal(UserRole.Admin, (await _auth.AuthenticateAsync(token, None))!.Role);
        Assert.Equal(UserRole.Admin, (await _users.ListAsync(None)).Single(u => u.Id == viewer.Id).Role);
    }

    [Fact]
    public async Task A_viewer_may_change_their_own_password_but_not_their_role_nor_anyone_else()
    {
        var viewer = await _users.CreateAsync("vera", Password, null, _admin, None);
        Assert.Equal(UserRole.Viewer, viewer.Role);
        var (otherSession, _, _) = await _auth.LoginAsync("vera", Password, None);
        var (sessionToken, _, _) = await _auth.LoginAsync("vera", Password, None);
        var session = (await _auth.AuthenticateAsync(sessionToken, None))!;

        await _users.ChangeAsync(viewer.Id, null, "a new password", session, None);
        // The session that changed it goes on; the others end, as the old password may be known.
        Assert.NotNull(await _auth.AuthenticateAsync(sessionToken, None));
        Assert.Null(await _auth.AuthenticateAsync(otherSession, None));
        await Assert.ThrowsAsync<LoopUnauthorizedException>(() => _auth.LoginAsync("vera", Password, None));
        await _auth.LoginAsync("vera", "a new password", None);

        var refused = await Assert.ThrowsAsync<LoopForbiddenException>(() => _users.ChangeAsync(viewer.Id, "admin", null, session, None));
        Assert.Equal(UserAccess.ViewerRefusal, refused.Message);
        await Assert.ThrowsAsync<LoopForbiddenException>(() => _users.ChangeAsync(_admin.UserId!, null, "taken over!", session, None));
        await Assert.ThrowsAsync<LoopForbiddenException>(() => _users.CreateAsync("eve", Password, "admin", session, None));
        await Assert.ThrowsAsync<LoopForbiddenException>(() => _users.DeleteAsync(_admin.UserId!, session, None));
    }

    [Fact]
    public async Task Deleting_a_user_ends_their_sessions_and_tokens_at_once()
    {
        var viewer = await _users.CreateAsync("vera", Password, "viewer", _admin, None);
        var (sessionToken, _, _) = await _auth.LoginAsync("vera", Password, None);
        var session = (await _auth.AuthenticateAsync(sessionToken, None))!;
        var (_, apiToken) = await _auth.CreateTokenAsync("script", session, None);
        Assert.NotNull(await _auth.AuthenticateAsync(apiToken, None));

        await _users.DeleteAsync(viewer.Id, _admin, None);
        Assert.Null(await _auth.AuthenticateAsync(sessionToken, None));
        Assert.Null(await _auth.AuthenticateAsync(apiToken, None));
        Assert.Empty(await _auth.ListTokensAsync(None));
        await Assert.ThrowsAsync<LoopNotFoundException>(() => _users.DeleteAsync(viewer.Id, _admin, None));
    }

    [Fact]
    public async Task The_last_admin_is_neither_deleted_nor_demoted()
    {
        var demote = await Assert.ThrowsAsync<LoopConflictException>(() => _users.ChangeAsync(_admin.UserId!, "viewer", null, _admin, None));
        Assert.Contains("admin is the last admin", demote.Message);
        await Assert.ThrowsAsync<LoopConflictException>(() => _users.DeleteAsync(_admin.UserId!, _admin, None));

        var second = await _users.CreateAsync("ada", Password, "admin", _admin, None);
        await _users.ChangeAsync(_admin.UserId!, "viewer", null, _admin, None);
        await Assert.ThrowsAsync<LoopConflictException>(() => _users.DeleteAsync(second.Id, _admin with { Role = UserRole.Admin }, None));
    }

    [Fact]
    public async Task Bad_input_names_the_field()
    {
        Assert.Equal("role", (await Assert.ThrowsAsync<LoopValidationException>(() => _users.CreateAsync("vera", Password, "owner", _admin, None))).Field);
        Assert.Equal("password", (await Assert.ThrowsAsync<LoopValidationException>(() => _users.CreateAsync("vera", "short", "viewer", _admin, None))).Field);
        Assert.Equal("username", (await Assert.ThrowsAsync<LoopValidationException>(() => _users.CreateAsync(" ", Password, "viewer", _admin, None))).Field);
        var taken = await Assert.ThrowsAsync<LoopConflictException>(() => _users.CreateAsync("admin", Password, "viewer", _admin, None));
        Assert.Contains("username \"admin\" is taken", taken.Message);
        Assert.Equal("role", (await Assert.ThrowsAsync<LoopValidationException>(() => _users.ChangeAsync(_admin.UserId!, null, null, _admin, None))).Field);
        await Assert.ThrowsAsync<LoopNotFoundException>(() => _users.ChangeAsync("usr_missing", "viewer", null, _admin, None));
    }

    [Fact]
    public async Task A_viewer_revokes_only_their_own_api_tokens()
    {
        await _users.CreateAsync("vera", Password, "viewer", _admin, None);
        var viewer = await LogInAsync("vera");
        var (own, _) = await _auth.CreateTokenAsync("mine", viewer, None);
        var (admins, _) = await _auth.CreateTokenAsync("the admin's", _admin, None);

        await Assert.ThrowsAsync<LoopForbiddenException>(() => _auth.RevokeTokenAsync(admins.Id, viewer, None));
        await _auth.RevokeTokenAsync(own.Id, viewer, None);
        Assert.Equal(["the admin's"], (await _auth.ListTokensAsync(None)).Select(t => t.Name));
    }

    private async Task<AuthPrincipal> LogInAsync(string username) =>
        (await _auth.AuthenticateAsync((await _auth.LoginAsync(username, Password, None)).Token, None))!;

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
