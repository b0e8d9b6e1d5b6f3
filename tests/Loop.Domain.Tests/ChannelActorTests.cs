namespace Loop.Domain.Tests;

using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.Logging.Abstractions;

public sealed class ChannelActorTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-actor-").FullName;
    private readonly ManualTimeProvider _time = new();
    private readonly ScriptedRunner _runner = new();
    private SqliteLoopStore _store = null!;
    private ContainerWorkerPool _pool = null!;
    private ChannelActorHost _host = null!;
    private readonly LoopEventHub _events = new();

    public async Task InitializeAsync()
    {
        _store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        await _store.MigrateAsync(CancellationToken.None);
        _pool = new ContainerWorkerPool(2);
        var context = new ChannelActorContext(_store, _runner, _pool,
            new ChannelEventLog(_events, _time, NullLogger<ChannelEventLog>.Instance), _time, c => Path.Combine(_dir, c.Id));
        _host = new ChannelActorHost(context, TimeSpan.FromMinutes(5), NullLogger<ChannelActorHost>.Instance);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<string> NewChannelAsync() => (await _store.EnsureChannelAsync(null, null, CancellationToken.None)).Channel.Id;

    private async Task PostAsync(string channelId, string author, string content)
    {
        await _store.AppendMessageAsync(new NewMessage(channelId, MessageRole.User, author, content), CancellationToken.None);
        _host.Wake(channelId);
    }

    private async Task<IReadOnlyList<Run>> WaitForRunsAsync(string channelId, int count, Func<Run, bool>? until = null)
    {
        until ??= r => r.Status.IsFinal();
        for (var i = 0; i < 500; i++)
        {
            var runs = await _store.ListRunsAsync(channelId, 100, null, CancellationToken.None);
            if (runs.Count >= count && runs.All(until))
            {
                return runs.Reverse().ToList();
            }
            await Task.Delay(10);
        }
        throw new TimeoutException($"channel {channelId} never had {count} matching runs");
    }

    [Fact]
    public async Task Messages_arriving_during_a_run_form_the_next_run_together_in_arrival_order()
    {
        var channel = await NewChannelAsync();
        await PostAsync(channel, "alice", "first");
        var first = await _runner.NextCallAsync();
        await PostAsync(channel, "bob", "second");
        await PostAsync(channel, "carol", "third");
        first.Release.SetResult();
        (await _runner.NextCallAsync()).Release.SetResult();

        var runs = await WaitForRunsAsync(channel, 2);
        Assert.Equal(["alice: first", "bob: second\ncarol: third"], runs.Select(r => r.Prompt));
        Assert.All(runs, r => Assert.Equal(RunStatus.Succeeded, r.Status));
        Assert.Equal(1, _runner.MaxConcurrent);
        Assert.Empty(await _store.ListPendingMessagesAsync(channel, CancellationToken.None));
        var messages = await _store.ListMessagesAsync(channel, 0, 100, CancellationToken.None);
        Assert.Equal([MessageRole.User, MessageRole.User, MessageRole.User, MessageRole.Agent, MessageRole.Agent],
            messages.Select(m => m.Role).Order());
    }

    [Fact]
    public async Task The_session_is_kept_and_an_unknown_one_is_retried_once_fresh()
    {
        var channel = await NewChannelAsync();
        await _store.SetChannelSessionAsync(channel, "stale-session", CancellationToken.None);
        _runner.HoldCalls = false;
        _runner.Answer = request => request.SessionId == "stale-session"
            ? new AgentRunResult(AgentOutcome.Failed, 1, null, null, "no such session", RunUsage.None, SessionNotFound: true)
            : new AgentRunResult(AgentOutcome.Succeeded, 0, "fresh start", "session-new", null, RunUsage.None);

        await PostAsync(channel, "alice", "hello");
        var run = (await WaitForRunsAsync(channel, 1)).Single();

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("session-new", run.SessionId);
        Assert.Equal(["stale-session", null], _runner.Requests.Select(r => r.SessionId));
        Assert.Equal("session-new", (await _store.GetChannelAsync(channel, CancellationToken.None))!.SessionId);

        await PostAsync(channel, "alice", "again");
        await WaitForRunsAsync(channel, 2);
        Assert.Equal("session-new", _runner.Requests.Last().SessionId);
    }

    [Fact]
    public async Task A_failed_run_gets_a_system_reply_that_says_why()
    {
        var channel = await NewChannelAsync();
        _runner.HoldCalls = false;
        _runner.Answer = _ => new AgentRunResult(AgentOutcome.Failed, 3, null, null, "exit code 3: boom", RunUsage.None);

        await PostAsync(channel, "alice", "hello");
        var run = (await WaitForRunsAsync(channel, 1)).Single();

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal(3, run.ExitCode);
        var reply = (await _store.ListMessagesAsync(channel, 0, 10, CancellationToken.None)).Last();
        Assert.Equal(MessageRole.System, reply.Role);
        Assert.Contains("boom", reply.Content);
        Assert.Single(_events.RecentProblems);
    }

    [Fact]
    public async Task Cancelling_a_running_run_ends_it_as_cancelled()
    {
        var channel = await NewChannelAsync();
        await PostAsync(channel, "alice", "long job");
        var call = await _runner.NextCallAsync();

        Assert.True(_host.TryCancel(channel, call.Request.RunId));
        var run = (await WaitForRunsAsync(channel, 1)).Single();
        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.False(_host.TryCancel(channel, call.Request.RunId));
    }

    [Fact]
    public async Task A_run_cancelled_while_waiting_for_a_slot_never_runs()
    {
        var busy1 = await NewChannelAsync();
        var busy2 = await NewChannelAsync();
        var waiting = await NewChannelAsync();
        await PostAsync(busy1, "a", "one");
        await PostAsync(busy2, "b", "two");
        var call1 = await _runner.NextCallAsync();
        var call2 = await _runner.NextCallAsync();
        await PostAsync(waiting, "c", "three");
        var queued = (await WaitForRunsAsync(waiting, 1, r => r.Status == RunStatus.Queued)).Single();
        Assert.Equal(1, _pool.Waiting);

        Assert.True(_host.TryCancel(waiting, queued.Id));
        var run = (await WaitForRunsAsync(waiting, 1)).Single();
        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.Null(run.StartedAt);
        Assert.Equal(0, _pool.Waiting);
        call1.Release.SetResult();
        call2.Release.SetResult();
        await WaitForRunsAsync(busy1, 1);
        Assert.Equal(2, _runner.Requests.Count);
    }

    [Fact]
    public async Task An_idle_actor_is_deactivated_and_comes_back_on_the_next_message()
    {
        var channel = await NewChannelAsync();
        _runner.HoldCalls = false;
        await PostAsync(channel, "alice", "hello");
        await WaitForRunsAsync(channel, 1);
        Assert.Equal(1, _host.ActiveCount);

        // The actor arms its idle timer once it has settled after the run, which may be after the
        // run is stored: keep moving the clock past the idle time until it lets go.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (_host.ActiveCount > 0 && DateTime.UtcNow < deadline)
        {
            _time.Advance(TimeSpan.FromMinutes(6));
            await Task.Delay(20);
        }
        Assert.Equal(0, _host.ActiveCount);

        await PostAsync(channel, "alice", "back again");
        await WaitForRunsAsync(channel, 2);
    }

    [Fact]
    public async Task A_daemon_stop_mid_run_leaves_the_run_for_start_up_recovery()
    {
        var channel = await NewChannelAsync();
        await PostAsync(channel, "alice", "interrupted");
        await _runner.NextCallAsync();

        await _host.DisposeAsync();
        var run = (await _store.ListRunsAsync(channel, 10, null, CancellationToken.None)).Single();
        Assert.Equal(RunStatus.Running, run.Status);

        var recovered = await _store.FailInterruptedRunsAsync("interrupted", _time.GetUtcNow(), CancellationToken.None);
        Assert.Equal(run.Id, recovered.Single().Id);
        Assert.Single(await _store.ListPendingMessagesAsync(channel, CancellationToken.None));
    }
}
