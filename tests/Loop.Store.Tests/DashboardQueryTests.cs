namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Microsoft.Data.Sqlite;
using Xunit;

/// <summary>The reads behind the dashboard: channel overviews and the timings of recent runs.</summary>
public abstract class DashboardQueryTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private SqlLoopStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Overviews_count_the_queue_and_show_the_running_and_newest_runs()
    {
        var idle = await ChannelAsync("proj-Alpha");
        var busy = await ChannelAsync("proj-beta");
        var fresh = await ChannelAsync("other");

        var done = await FinishAsync(await StartAsync(await QueueAsync(idle, await UserMessageAsync(idle))), RunStatus.Succeeded);
        var running = await StartAsync(await QueueAsync(busy, await UserMessageAsync(busy)));
        await QueueAsync(busy); // a queued task run
        await UserMessageAsync(busy);
        await UserMessageAsync(busy);
        await _store.AppendMessageAsync(new NewMessage(busy.Id, MessageRole.System, "loop", "not queued"), None);

        var page = await _store.ListChannelOverviewsAsync(new ChannelListQuery(), None);

        Assert.Equal(3, page.Total);
        Assert.Equal([idle.Id, busy.Id, fresh.Id], page.Channels.Select(o => o.Channel.Id));
        Assert.Equal(new ChannelOverview(idle, 0, null, new RunSummary(done.Id, RunStatus.Succeeded, done.CreatedAt, done.FinishedAt)), page.Channels[0]);
        var newest = (await _store.ListRunsAsync(new RunQuery(1, ChannelId: busy.Id), None)).Single();
        Assert.Equal(new ChannelOverview(busy, 3, running.Id, new RunSummary(newest.Id, RunStatus.Queued, newest.CreatedAt, null)), page.Channels[1]);
        Assert.Equal(new ChannelOverview(fresh, 0, null, null), page.Channels[2]);
    }

    [Fact]
    public async Task Overviews_page_by_creation_and_search_names_and_directories_ignoring_case()
    {
        // Created out of id order: the clock goes back, so creation time and id disagree.
        var late = await ChannelAsync("zeta");
        _time.Advance(TimeSpan.FromMinutes(-10));
        var early = await ChannelAsync("proj-Alpha");
        _time.Advance(TimeSpan.FromMinutes(20));
        var last = await ChannelAsync("proj-beta", name: "Build Bot");

        async Task Expect(ChannelListQuery query, int total, params Channel[] channels)
        {
            var page = await _store.ListChannelOverviewsAsync(query, None);
            Assert.Equal(channels.Select(c => c.Id), page.Channels.Select(o => o.Channel.Id));
            Assert.Equal(total, page.Total);
        }

        await Expect(new(), 3, early, late, last);
        await Expect(new(Limit: 2), 3, early, late);
        await Expect(new(Limit: 2, Offset: 2), 3, last);
        await Expect(new(Offset: 3), 3);
        await Expect(new(Search: "PROJ"), 2, early, last);
        await Expect(new(Search: "proj", Offset: 1), 2, last);
        await Expect(new(Search: "build bot"), 1, last);
        await Expect(new(Search: Path.GetFileName(backend.Root)), 3, early, late, last);
        await Expect(new(Search: "100%_"), 0);
        await Expect(new(ChannelIds: [last.Id, late.Id, "ch_missing"]), 2, late, last);
        await Expect(new(Search: "proj", ChannelIds: [last.Id, late.Id]), 1, last);
        await Expect(new(ChannelIds: []), 0);
    }

    [Fact]
    public async Task Active_runs_are_the_channels_queued_and_running_ones()
    {
        var channel = await ChannelAsync("a");
        var other = await ChannelAsync("b");
        await FinishAsync(await StartAsync(await QueueAsync(channel)), RunStatus.Failed);
        var running = await StartAsync(await QueueAsync(channel));
        var queued = await QueueAsync(channel);
        await QueueAsync(other);

        Assert.Equal([running.Id, queued.Id], (await _store.ListActiveRunsAsync(channel.Id, None)).Select(r => r.Id));
        Assert.Empty(await _store.ListActiveRunsAsync("ch_missing", None));
    }

    [Fact]
    public async Task Finished_run_timings_come_from_the_window_oldest_finish_first()
    {
        var channel = await ChannelAsync("a");
        var old = await StartAsync(await QueueAsync(channel));
        await FinishAsync(old, RunStatus.Succeeded);
        _time.Advance(TimeSpan.FromHours(1));
        var since = _time.GetUtcNow();

        var slow = await StartAsync(await QueueAsync(channel));
        var quick = await StartAsync(await QueueAsync(channel));
        _time.Advance(TimeSpan.FromSeconds(3));
        quick = await FinishAsync(quick, RunStatus.TimedOut);
        var neverStarted = await QueueAsync(channel);
        var cancelledAt = _time.GetUtcNow();
        Assert.True(await _store.CancelQueuedRunAsync(neverStarted.Id, cancelledAt, None));
        _time.Advance(TimeSpan.FromSeconds(5));
        slow = await FinishAsync(slow, RunStatus.Succeeded);
        await StartAsync(await QueueAsync(channel)); // still running: not finished

        var timings = await _store.ListFinishedRunTimingsAsync(since, None);

        Assert.Equal(
            [
                new RunTiming(quick.Id, RunStatus.TimedOut, quick.StartedAt, quick.FinishedAt!.Value),
                new RunTiming(neverStarted.Id, RunStatus.Cancelled, null, cancelledAt),
                new RunTiming(slow.Id, RunStatus.Succeeded, slow.StartedAt, slow.FinishedAt!.Value),
            ],
            timings);
    }

    private async Task<Channel> ChannelAsync(string dir, string? name = null)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        return (await _store.EnsureChannelAsync(Path.Combine(backend.Root, dir), name, None)).Channel;
    }

    private async Task<long> UserMessageAsync(Channel channel) =>
        (await _store.AppendMessageAsync(new NewMessage(channel.Id, MessageRole.User, "alice", "hi"), None)).Id;

    /// <summary>A queued run taking the given messages (none: a task run).</summary>
    private async Task<Run> QueueAsync(Channel channel, params long[] messageIds)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var run = new Run(Ids.New("run", _time), channel.Id, messageIds.Length == 0 ? "task_x" : null, RunStatus.Queued, "do it",
            _time.GetUtcNow(), null, null, null, null, null, null, null, null, RunUsage.None);
        return await _store.CreateRunAsync(run, messageIds, None);
    }

    private async Task<Run> StartAsync(Run run)
    {
        var startedAt = _time.GetUtcNow();
        Assert.True(await _store.TryStartRunAsync(run.Id, startedAt, None));
        return run with { Status = RunStatus.Running, StartedAt = startedAt };
    }

    private async Task<Run> FinishAsync(Run run, RunStatus status)
    {
        run = run with { Status = status, FinishedAt = _time.GetUtcNow() };
        await _store.UpdateRunAsync(run, None);
        return run;
    }
}

public sealed class DashboardQueryTestsOnSqlite : DashboardQueryTests
{
    private readonly SqliteBackend _sqlite;

    public DashboardQueryTestsOnSqlite()
        : this(new SqliteBackend())
    {
    }

    private DashboardQueryTestsOnSqlite(SqliteBackend sqlite)
        : base(sqlite) => _sqlite = sqlite;

    [Fact]
    public void Finished_runs_are_read_by_their_finish_time_index()
    {
        Assert.Contains(QueryPlan("""
            SELECT id FROM runs
            WHERE finished_at >= 0 AND status IN ('succeeded', 'failed', 'timed_out', 'cancelled') AND finished_at IS NOT NULL
            """), p => p.Contains("ix_runs_finished"));
    }

    private List<string> QueryPlan(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_sqlite.DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + sql;
        using var reader = command.ExecuteReader();
        var details = new List<string>();
        while (reader.Read())
        {
            details.Add(reader.GetString(3));
        }
        return details;
    }
}

public sealed class DashboardQueryTestsOnPostgres() : DashboardQueryTests(new PostgresBackend());
