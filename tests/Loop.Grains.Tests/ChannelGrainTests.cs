namespace Loop.Grains.Tests;

using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tests;
using Loop.Store;
using Orleans.Runtime;

[Collection(ClusterCollection.Name)]
public sealed class ChannelGrainTests(ClusterFixture cluster) : IAsyncLifetime
{
    private readonly ScriptedRunner _runner = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _runner.ReleaseAll();
        // The next test starts with every slot free.
        await Eventually.Until(() => cluster.Slots.InUse == 0 && cluster.Slots.Waiting == 0, "the slots to be free");
    }

    private async Task<string> NewChannelAsync()
    {
        var id = (await cluster.Store.EnsureChannelAsync(null, null, CancellationToken.None)).Channel.Id;
        cluster.UseRunner(_runner, id);
        return id;
    }

    private IChannelGrain Grain(string channelId) => cluster.Grains.GetGrain<IChannelGrain>(channelId);

    private async Task PostAsync(string channelId, string author, string content)
    {
        await cluster.Store.AppendMessageAsync(new NewMessage(channelId, MessageRole.User, author, content), CancellationToken.None);
        await Grain(channelId).Wake();
    }

    private async Task<IReadOnlyList<Run>> WaitForRunsAsync(string channelId, int count, Func<Run, bool>? until = null)
    {
        until ??= r => r.Status.IsFinal();
        IReadOnlyList<Run> runs = [];
        await Eventually.Until(async () =>
        {
            runs = await cluster.Store.ListRunsAsync(new RunQuery(100, ChannelId: channelId), CancellationToken.None);
            return runs.Count >= count && runs.All(until);
        }, $"channel {channelId} to have {count} matching runs");
        return runs.Reverse().ToList();
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
        Assert.Empty(await cluster.Store.ListPendingMessagesAsync(channel, CancellationToken.None));
        var messages = await cluster.Store.ListMessagesAsync(channel, 0, 100, CancellationToken.None);
        Assert.Equal([MessageRole.User, MessageRole.User, MessageRole.User, MessageRole.Agent, MessageRole.Agent],
            messages.Select(m => m.Role).Order());
    }

    [Fact]
    public async Task A_direct_channel_runs_on_the_direct_runner_with_its_model_while_every_container_slot_is_taken()
    {
        var busy = new[] { await NewChannelAsync(), await NewChannelAsync() };
        foreach (var channel in busy)
        {
            await PostAsync(channel, "alice", "long job");
            await _runner.NextCallAsync();
        }
        Assert.Equal(0, cluster.Slots.Capacity - cluster.Slots.InUse);
        var direct = new ScriptedRunner { HoldCalls = false };
        var id = (await cluster.Store.EnsureChannelAsync(null, null, new ChannelAgent(ChannelMode.Direct, "claude-haiku-4-5"), CancellationToken.None)).Channel.Id;
        cluster.UseDirectRunner(direct, id);

        await PostAsync(id, "bob", "quick question");

        var run = (await WaitForRunsAsync(id, 1)).Single();
        Assert.Equal(RunStatus.Succeeded, run.Status);
        var request = Assert.Single(direct.Requests);
        Assert.Equal(("bob: quick question", "claude-haiku-4-5", false), (request.Prompt, request.Model, request.Standalone));
        Assert.Equal(2, cluster.Slots.InUse);
    }

    [Fact]
    public async Task A_channel_back_in_a_container_after_direct_mode_starts_a_new_claude_session()
    {
        var channel = await NewChannelAsync();
        await cluster.Store.SetChannelSessionAsync(channel, DirectSession.Since(42), CancellationToken.None);
        _runner.HoldCalls = false;

        await PostAsync(channel, "alice", "hello");
        await WaitForRunsAsync(channel, 1);

        Assert.Null(Assert.Single(_runner.Requests).SessionId);
        Assert.Equal("session-1", (await cluster.Store.GetChannelAsync(channel, CancellationToken.None))!.SessionId);
    }

    [Fact]
    public async Task Status_and_cancel_answer_while_a_run_is_under_way()
    {
        var channel = await NewChannelAsync();
        await PostAsync(channel, "alice", "long job");
        var call = await _runner.NextCallAsync();

        // The grain is not stuck in the run: it answers, and says which run it is busy with.
        Assert.Equal(call.Request.RunId, (await Grain(channel).GetStatus()).ActiveRunId);
        Assert.True(await Grain(channel).CancelRun(call.Request.RunId));
        var run = (await WaitForRunsAsync(channel, 1)).Single();
        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.False(await Grain(channel).CancelRun(call.Request.RunId));
        Assert.Null((await Grain(channel).GetStatus()).ActiveRunId);
    }

    [Fact]
    public async Task The_session_is_kept_and_an_unknown_one_is_retried_once_fresh()
    {
        var channel = await NewChannelAsync();
        await cluster.Store.SetChannelSessionAsync(channel, "stale-session", CancellationToken.None);
        _runner.HoldCalls = false;
        _runner.Answer = request => request.SessionId == "stale-session"
            ? new AgentRunResult(AgentOutcome.Failed, 1, null, null, "no such session", RunUsage.None, SessionNotFound: true)
            : new AgentRunResult(AgentOutcome.Succeeded, 0, "fresh start", "session-new", null, RunUsage.None);

        await PostAsync(channel, "alice", "hello");
        var run = (await WaitForRunsAsync(channel, 1)).Single();

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("session-new", run.SessionId);
        Assert.Equal(["stale-session", null], _runner.Requests.Select(r => r.SessionId));
        Assert.Equal("session-new", (await cluster.Store.GetChannelAsync(channel, CancellationToken.None))!.SessionId);

        await PostAsync(channel, "alice", "again");
        await WaitForRunsAsync(channel, 2);
        Assert.Equal("session-new", _runner.Requests.Last().SessionId);
    }

    [Fact]
    public async Task A_session_reset_is_refused_while_a_run_holds_the_session_and_done_after()
    {
        var channel = await NewChannelAsync();
        await cluster.Store.SetChannelSessionAsync(channel, "session-old", CancellationToken.None);
        _runner.Answer = request => new AgentRunResult(AgentOutcome.Succeeded, 0, "done", request.SessionId, null, RunUsage.None);
        await PostAsync(channel, "alice", "work");
        var call = await _runner.NextCallAsync();

        var refused = await Grain(channel).ResetSession();
        Assert.False(refused.Done);
        Assert.Equal(call.Request.RunId, refused.BusyRunId);
        Assert.Equal("running", refused.BusyStatus);

        call.Release.SetResult();
        await WaitForRunsAsync(channel, 1);
        Assert.True((await Grain(channel).ResetSession()).Done);
        Assert.Null((await cluster.Store.GetChannelAsync(channel, CancellationToken.None))!.SessionId);
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
        var reply = (await cluster.Store.ListMessagesAsync(channel, 0, 10, CancellationToken.None)).Last();
        Assert.Equal(MessageRole.System, reply.Role);
        Assert.Contains("boom", reply.Content);
        Assert.Contains(cluster.Events.RecentProblems, e => e.ChannelId == channel && e.RunId == run.Id);
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
        await Eventually.Until(() => cluster.Slots.Waiting == 1, "the third run to wait for a slot");

        Assert.True(await Grain(waiting).CancelRun(queued.Id));
        var run = (await WaitForRunsAsync(waiting, 1)).Single();
        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.Null(run.StartedAt);
        Assert.Equal(0, cluster.Slots.Waiting);
        call1.Release.SetResult();
        call2.Release.SetResult();
        await WaitForRunsAsync(busy1, 1);
        Assert.Equal(2, _runner.Requests.Count);
    }

    [Fact]
    public async Task A_queued_run_that_no_grain_holds_is_cancelled_in_the_store()
    {
        var channel = await NewChannelAsync();
        var run = await cluster.Store.CreateRunAsync(new Run("run_queued_" + channel, channel, null, RunStatus.Queued, "later",
            cluster.Time.GetUtcNow(), null, null, null, null, null, null, null, null, RunUsage.None), [], CancellationToken.None);

        Assert.True(await Grain(channel).CancelRun(run.Id));
        Assert.Equal(RunStatus.Cancelled, (await cluster.Store.GetRunAsync(run.Id, CancellationToken.None))!.Status);
    }

    [Fact]
    public async Task An_idle_channel_is_deactivated_a_busy_one_is_not_and_it_comes_back_on_the_next_message()
    {
        var channel = await NewChannelAsync();
        await PostAsync(channel, "alice", "hello");
        var call = await _runner.NextCallAsync();
        var management = cluster.Grains.GetGrain<IManagementGrain>(0);

        // A run outlasts any idle limit.
        await management.ForceActivationCollection(TimeSpan.Zero);
        Assert.Contains(cluster.Live.Snapshot(), c => c.ChannelId == channel && c.ActiveRunId == call.Request.RunId);

        call.Release.SetResult();
        await WaitForRunsAsync(channel, 1);
        await Eventually.Until(async () =>
        {
            await management.ForceActivationCollection(TimeSpan.Zero);
            return cluster.Live.Snapshot().All(c => c.ChannelId != channel);
        }, "the idle channel to be deactivated");

        _runner.HoldCalls = false;
        await PostAsync(channel, "alice", "back again");
        await WaitForRunsAsync(channel, 2);
    }
}
