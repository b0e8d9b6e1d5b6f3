namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Xunit;

/// <summary>Ending a run writes its reply, its outcome and the session it leaves behind at once,
/// so a crash never leaves a reply beside a run that recovery would run again.</summary>
public abstract class FinishRunTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, 123, TimeSpan.Zero));
    private SqlLoopStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Finishing_a_run_stores_its_reply_its_outcome_and_the_channel_session()
    {
        var channel = await NewChannelAsync();
        await _store.SetChannelSessionAsync(channel.Id, "sess-old", None);
        var (question, running) = await StartRunAsync(channel, "what is 2+2?");
        var finished = Finished(running, "4", "sess-new");

        var reply = await _store.FinishRunAsync(finished, RunReplies.For(finished),
            new SessionChange(SessionHolder.Channel, channel.Id, "sess-new"), None);

        Assert.Equal(finished, await _store.GetRunAsync(running.Id, None));
        Assert.Equal(new NewMessage(channel.Id, MessageRole.Agent, "agent", "4", running.Id),
            new NewMessage(reply.ChannelId, reply.Role, reply.Author, reply.Content, reply.RunId));
        Assert.Equal([question with { RunId = running.Id }, reply], await _store.ListRunMessagesAsync(running.Id, None));
        Assert.Equal("sess-new", (await _store.GetChannelAsync(channel.Id, None))!.SessionId);
    }

    [Fact]
    public async Task An_isolated_task_keeps_its_session_and_the_channel_keeps_its_own()
    {
        var channel = await NewChannelAsync();
        await _store.SetChannelSessionAsync(channel.Id, "chat-session", None);
        var task = await NewTaskAsync(channel);
        var first = await StartTaskRunAsync(task);

        await _store.FinishRunAsync(Finished(first, "checked", "task-session"), RunReplies.For(Finished(first, "checked", "task-session")),
            new SessionChange(SessionHolder.Task, task.Id, "task-session"), None);
        var second = await StartTaskRunAsync(task);
        var unchanged = Finished(second, "checked again", "task-session");
        await _store.FinishRunAsync(unchanged, RunReplies.For(unchanged), session: null, None);

        Assert.Equal("task-session", (await _store.GetTaskAsync(task.Id, None))!.SessionId);
        Assert.Equal("chat-session", (await _store.GetChannelAsync(channel.Id, None))!.SessionId);
        Assert.Equal(unchanged, await _store.GetRunAsync(second.Id, None));
        Assert.Equal(["checked", "checked again"],
            (await _store.ListMessagesAsync(channel.Id, 0, 10, None)).Select(m => m.Content));
    }

    [Fact]
    public async Task A_run_another_node_has_reported_as_interrupted_cannot_be_finished_late()
    {
        var channel = await NewChannelAsync();
        var (question, running) = await StartRunAsync(channel, "hello");
        // Its node was taken for dead: another node reports the run and queues its question again.
        var failed = Assert.Single(await _store.FailInterruptedRunsAsync("interrupted: node gone", _time.GetUtcNow(), null, None));
        var late = Finished(running, "a late answer", "sess-late");

        await Assert.ThrowsAsync<RunEndedElsewhereException>(() => _store.FinishRunAsync(late, RunReplies.For(late),
            new SessionChange(SessionHolder.Channel, channel.Id, "sess-late"), None));

        Assert.Equal(RunStatus.Failed, (await _store.GetRunAsync(running.Id, None))!.Status);
        Assert.Equal("interrupted: node gone", (await _store.GetRunAsync(running.Id, None))!.Error);
        Assert.Equal([question], await _store.ListMessagesAsync(channel.Id, 0, 10, None));
        Assert.Null((await _store.GetChannelAsync(channel.Id, None))!.SessionId);
        Assert.Equal(failed.Id, running.Id);
    }

    [Fact]
    public async Task A_finish_that_fails_after_the_run_and_reply_were_written_stores_nothing()
    {
        var channel = await NewChannelAsync();
        await _store.SetChannelSessionAsync(channel.Id, "sess-old", None);
        var (question, running) = await StartRunAsync(channel, "hello");
        var finished = Finished(running, "hi", "sess-new");

        // The session's holder is written last; its failure must take the run's end and the reply back.
        await Assert.ThrowsAsync<KeyNotFoundException>(() => _store.FinishRunAsync(finished, RunReplies.For(finished),
            new SessionChange(SessionHolder.Channel, "ch_missing", "sess-new"), None));

        Assert.Equal(running, await _store.GetRunAsync(running.Id, None));
        Assert.Equal([question with { RunId = running.Id }], await _store.ListMessagesAsync(channel.Id, 0, 10, None));
        Assert.Equal("sess-old", (await _store.GetChannelAsync(channel.Id, None))!.SessionId);
        // So recovery still finds the run interrupted and asks the question again, once.
        var recovered = await _store.FailInterruptedRunsAsync("interrupted", _time.GetUtcNow(), null, None);
        Assert.Equal([running.Id], recovered.Select(r => r.Id));
        Assert.Equal([question], await _store.ListPendingMessagesAsync(channel.Id, None));
    }

    [Fact]
    public async Task Finishing_a_run_that_does_not_exist_stores_no_reply_and_no_session()
    {
        var channel = await NewChannelAsync();
        await _store.SetChannelSessionAsync(channel.Id, "sess-old", None);
        var ghost = Finished(NewRun(channel), "nobody asked", "sess-new");

        await Assert.ThrowsAsync<KeyNotFoundException>(() => _store.FinishRunAsync(ghost, RunReplies.For(ghost),
            new SessionChange(SessionHolder.Channel, channel.Id, "sess-new"), None));

        Assert.Null(await _store.GetRunAsync(ghost.Id, None));
        Assert.Empty(await _store.ListMessagesAsync(channel.Id, 0, 10, None));
        Assert.Equal("sess-old", (await _store.GetChannelAsync(channel.Id, None))!.SessionId);
    }

    [Fact]
    public async Task After_a_finish_recovery_leaves_the_run_alone_and_asks_nothing_again()
    {
        var channel = await NewChannelAsync();
        var (question, running) = await StartRunAsync(channel, "summarise the logs");
        var finished = Finished(running, "all quiet", "sess-1");
        var reply = await _store.FinishRunAsync(finished, RunReplies.For(finished),
            new SessionChange(SessionHolder.Channel, channel.Id, "sess-1"), None);

        // What start-up does after a crash, here right after the finish was committed.
        _store = await backend.OpenAsync(_time);
        var recovered = await _store.FailInterruptedRunsAsync("interrupted", _time.GetUtcNow(), null, None);

        Assert.Empty(recovered);
        Assert.Equal(finished, await _store.GetRunAsync(running.Id, None));
        Assert.Empty(await _store.ListPendingMessagesAsync(channel.Id, None));
        Assert.Empty(await _store.ListChannelsWithPendingMessagesAsync(None));
        Assert.Equal([question with { RunId = running.Id }, reply], await _store.ListMessagesAsync(channel.Id, 0, 10, None));
    }

    [Fact]
    public async Task A_reply_must_belong_to_the_run_it_finishes()
    {
        var channel = await NewChannelAsync();
        var (_, running) = await StartRunAsync(channel, "hello");
        var (_, other) = await StartRunAsync(channel, "again");
        var finished = Finished(running, "hi", null);

        await Assert.ThrowsAsync<ArgumentException>(() =>
            _store.FinishRunAsync(finished, RunReplies.For(Finished(other, "hi", null)), null, None));

        Assert.Equal(running, await _store.GetRunAsync(running.Id, None));
    }

    private async Task<Channel> NewChannelAsync() => (await _store.EnsureChannelAsync(null, null, None)).Channel;

    /// <summary>A user message handed to a run that has started, as the channel actor leaves them.</summary>
    private async Task<(ChatMessage Question, Run Running)> StartRunAsync(Channel channel, string question)
    {
        var message = await _store.AppendMessageAsync(new NewMessage(channel.Id, MessageRole.User, "alice", question), None);
        var queued = await _store.CreateRunAsync(NewRun(channel) with { Prompt = question }, [message.Id], None);
        return (message, await StartAsync(queued));
    }

    private async Task<Run> StartTaskRunAsync(ScheduledTask task)
    {
        var channel = (await _store.GetChannelAsync(task.ChannelId, None))!;
        var queued = await _store.CreateRunAsync(NewRun(channel) with { TaskId = task.Id, Prompt = task.Prompt }, [], None);
        return await StartAsync(queued);
    }

    private async Task<Run> StartAsync(Run queued)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        var startedAt = _time.GetUtcNow();
        Assert.True(await _store.TryStartRunAsync(queued.Id, startedAt, None));
        return queued with { Status = RunStatus.Running, StartedAt = startedAt };
    }

    private Run Finished(Run run, string reply, string? sessionId)
    {
        _time.Advance(TimeSpan.FromSeconds(3));
        return run with
        {
            Status = RunStatus.Succeeded,
            FinishedAt = _time.GetUtcNow(),
            ExitCode = 0,
            Reply = reply,
            SessionId = sessionId,
            Model = "claude-sonnet-4-5",
            ContainerId = new string('c', 64),
            Usage = new RunUsage(1200, 80, 0, 400, 0.0123m, 2, 2950),
        };
    }

    /// <summary>A queued run; the clock moves a millisecond first so run ids sort in creation order.</summary>
    private Run NewRun(Channel channel)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        return new(Ids.New("run", _time), channel.Id, null, RunStatus.Queued, "do the thing", _time.GetUtcNow(),
            null, null, null, null, null, null, null, null, RunUsage.None);
    }

    private async Task<ScheduledTask> NewTaskAsync(Channel channel)
    {
        var now = _time.GetUtcNow();
        var task = new ScheduledTask(
            Ids.New("task", _time), channel.Id, "nightly", TaskType.Interval, "1h", null, "check the build",
            true, TaskContext.Isolated, MisfirePolicy.RunOnce, now.AddHours(1), null, null, null,
            ScheduledTask.DefaultMaxIterations, ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now);
        return (await _store.CreateTaskAsync(task, None)).Task;
    }
}

public sealed class FinishRunTestsOnSqlite() : FinishRunTests(new SqliteBackend());

public sealed class FinishRunTestsOnPostgres() : FinishRunTests(new PostgresBackend());
