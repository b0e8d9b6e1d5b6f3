namespace Loop.Store.Tests;

using Loop.Domain.Accounts;
using Xunit;

/// <summary>Accounts with roles as the store keeps them: usernames unique, the last admin kept, and a
/// deleted account's sessions and API tokens gone with it.</summary>
public abstract class UserStoreTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private SqlLoopStore _store = null!;

    public async Task InitializeAsync() => _store = await backend.OpenAsync(_time);

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Accounts_read_back_with_their_roles_oldest_first_and_a_username_is_taken_once()
    {
        Assert.True(await _store.CreateFirstUserAsync(User("usr_1", "admin", UserRole.Admin), None));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await _store.CreateUserAsync(User("usr_2", "vera", UserRole.Viewer), None));
        Assert.False(await _store.CreateUserAsync(User("usr_3", "vera", UserRole.Admin), None));

        var users = await _store.ListUsersAsync(None);
        Assert.Equal([("usr_1", "admin", UserRole.Admin), ("usr_2", "vera", UserRole.Viewer)], users.Select(u => (u.Id, u.Username, u.Role)));
        Assert.Equal(User("usr_2", "vera", UserRole.Viewer) with { CreatedAt = _time.GetUtcNow() }, await _store.FindUserByNameAsync("vera", None));
        Assert.Equal(["admin", "viewer"], await backend.ReadColumnAsync<string>("SELECT role FROM users ORDER BY id"));
    }

    [Fact]
    public async Task The_last_admin_is_neither_demoted_nor_deleted()
    {
        await _store.CreateFirstUserAsync(User("usr_1", "admin", UserRole.Admin), None);
        await _store.CreateUserAsync(User("usr_2", "vera", UserRole.Viewer), None);

        Assert.Equal(UserChange.LastAdmin, await _store.SetUserRoleAsync("usr_1", UserRole.Viewer, None));
        Assert.Equal(UserChange.LastAdmin, await _store.DeleteUserAsync("usr_1", None));
        Assert.Equal(UserChange.NotFound, await _store.SetUserRoleAsync("usr_missing", UserRole.Viewer, None));
        Assert.Equal(UserChange.NotFound, await _store.DeleteUserAsync("usr_missing", None));

        Assert.Equal(UserChange.Done, await _store.SetUserRoleAsync("usr_2", UserRole.Admin, None));
        Assert.Equal(UserChange.Done, await _store.SetUserRoleAsync("usr_1", UserRole.Viewer, None));
        Assert.Equal(UserChange.LastAdmin, await _store.DeleteUserAsync("usr_2", None));
        Assert.Equal(UserChange.Done, await _store.DeleteUserAsync("usr_1", None));
        Assert.Equal(UserRole.Admin, Assert.Single(await _store.ListUsersAsync(None)).Role);
    }

    [Fact]
    public async Task Deleting_an_account_deletes_its_sessions_and_api_tokens_and_no_one_elses()
    {
        await _store.CreateFirstUserAsync(User("usr_1", "admin", UserRole.Admin), None);
        await _store.CreateUserAsync(User("usr_2", "vera", UserRole.Viewer), None);
        var now = _time.GetUtcNow();
        await _store.CreateSessionAsync(new UserSession("s-admin", "usr_1", now, now.AddDays(1)), None);
        await _store.CreateSessionAsync(new UserSession("s-vera", "usr_2", now, now.AddDays(1)), None);
        await _store.CreateApiTokenAsync(new ApiToken("tok_1", "admin's", "h-admin", "usr_1", false, now, null), None);
        await _store.CreateApiTokenAsync(new ApiToken("tok_2", "vera's", "h-vera", "usr_2", false, now, null), None);
        await _store.CreateApiTokenAsync(new ApiToken("tok_3", "vera's channel", "h-vera-ch", "usr_2", false, now, null) { ChannelId = "ch_1" }, None);

        Assert.Equal(UserChange.Done, await _store.DeleteUserAsync("usr_2", None));
        Assert.Null(await _store.GetUserAsync("usr_2", None));
        Assert.Null(await _store.GetSessionAsync("s-vera", None));
        Assert.NotNull(await _store.GetSessionAsync("s-admin", None));
        Assert.Equal(["tok_1"], (await _store.ListApiTokensAsync(None)).Select(t => t.Id));
    }

    [Fact]
    public async Task A_new_password_ends_the_accounts_sessions_but_the_one_kept()
    {
        await _store.CreateFirstUserAsync(User("usr_1", "admin", UserRole.Admin), None);
        await _store.CreateUserAsync(User("usr_2", "vera", UserRole.Viewer), None);
        var now = _time.GetUtcNow();
        foreach (var (hash, user) in new[] { ("s-1", "usr_2"), ("s-2", "usr_2"), ("s-admin", "usr_1") })
        {
            await _store.CreateSessionAsync(new UserSession(hash, user, now, now.AddDays(1)), None);
        }

        Assert.True(await _store.SetUserPasswordAsync("usr_2", "new-hash", "s-1", None));
        Assert.Equal("new-hash", (await _store.GetUserAsync("usr_2", None))!.PasswordHash);
        Assert.NotNull(await _store.GetSessionAsync("s-1", None));
        Assert.Null(await _store.GetSessionAsync("s-2", None));
        Assert.NotNull(await _store.GetSessionAsync("s-admin", None));

        Assert.True(await _store.SetUserPasswordAsync("usr_2", "newer-hash", null, None));
        Assert.Null(await _store.GetSessionAsync("s-1", None));
        Assert.False(await _store.SetUserPasswordAsync("usr_missing", "x", null, None));
    }

    private UserAccount User(string id, string name, UserRole role) => new(id, name, "pbkdf2-sha256$1$c2FsdA==$aGFzaA==", _time.GetUtcNow(), role);
}

public sealed class UserStoreTestsOnSqlite() : UserStoreTests(new SqliteBackend());

public sealed class UserStoreTestsOnPostgres() : UserStoreTests(new PostgresBackend());
