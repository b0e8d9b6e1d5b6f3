namespace Loop.Store.Tests;

using Xunit;

/// <summary>The rows behind Orleans' membership table: every change checks and moves the cluster's
/// version, so of two nodes writing from the same read, one wins and the other reads again.</summary>
public abstract class MembershipStoreTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private SqlLoopStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(TimeProvider.System);
        await _store.InitializeMembershipAsync("loop", None);
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task A_member_joins_at_the_version_it_read_and_a_second_join_from_that_read_fails()
    {
        var empty = await _store.ReadMembershipAsync("loop", null, None);
        Assert.Empty(empty.Members);

        Assert.True(await _store.InsertMemberAsync("loop", Member("127.0.0.1:11111@1", "node-1"), Next(empty.Version), None));
        Assert.False(await _store.InsertMemberAsync("loop", Member("127.0.0.1:11112@1", "node-2"), Next(empty.Version), None));

        var one = await _store.ReadMembershipAsync("loop", null, None);
        var member = Assert.Single(one.Members);
        Assert.Equal(Member("127.0.0.1:11111@1", "node-1") with { ETag = member.ETag }, member);
        Assert.Equal(1, one.Version.Version);
        Assert.NotEqual(empty.Version.ETag, one.Version.ETag);

        Assert.True(await _store.InsertMemberAsync("loop", Member("127.0.0.1:11112@1", "node-2"), Next(one.Version), None));
        Assert.Equal(2, (await _store.ReadMembershipAsync("loop", null, None)).Members.Count);
        Assert.False(await _store.InsertMemberAsync("loop", Member("127.0.0.1:11112@1", "node-2"),
            Next((await _store.ReadMembershipAsync("loop", null, None)).Version), None)); // that address is a member already
    }

    [Fact]
    public async Task An_update_needs_the_members_etag_and_the_versions_and_alive_times_need_neither()
    {
        var read = await _store.ReadMembershipAsync("loop", null, None);
        await _store.InsertMemberAsync("loop", Member("127.0.0.1:11111@1", "node-1"), Next(read.Version), None);
        read = await _store.ReadMembershipAsync("loop", "127.0.0.1:11111@1", None);
        var row = Assert.Single(read.Members);

        var dead = row with { Status = 6, SuspectTimes = "127.0.0.1:11112@1,638000000000000000" };
        Assert.False(await _store.UpdateMemberAsync("loop", dead, "not-an-etag", Next(read.Version), None));
        Assert.True(await _store.UpdateMemberAsync("loop", dead, row.ETag, Next(read.Version), None));
        Assert.False(await _store.UpdateMemberAsync("loop", dead, row.ETag, Next(read.Version), None)); // both etags moved on

        await _store.UpdateIAmAliveAsync("loop", row.Silo, Start.AddMinutes(1), None);
        var after = Assert.Single((await _store.ReadMembershipAsync("loop", null, None)).Members);
        Assert.Equal(6, after.Status);
        Assert.Equal("127.0.0.1:11112@1,638000000000000000", after.SuspectTimes);
        Assert.Equal(Start.AddMinutes(1), after.IAmAliveTime);

        Assert.Equal(1, await _store.DeleteDefunctMembersAsync("loop", activeStatus: 3, Start.AddMinutes(2), None));
        Assert.Empty((await _store.ReadMembershipAsync("loop", null, None)).Members);
    }

    private static MembershipTableVersion Next(MembershipTableVersion version) => version with { Version = version.Version + 1 };

    private static MemberRow Member(string silo, string name) => new(silo, name, "host", 3, 0, "", Start, Start);
}

public sealed class MembershipStoreTestsOnSqlite() : MembershipStoreTests(new SqliteBackend());

public sealed class MembershipStoreTestsOnPostgres() : MembershipStoreTests(new PostgresBackend());
