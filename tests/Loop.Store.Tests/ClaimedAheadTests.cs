namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Xunit;

/// <summary>Task runs claimed ahead of their slot wait in the store for their instant: no channel
/// takes one sooner, a restart keeps it, and an edit of its task can give it back.</summary>
public abstract class ClaimedAheadTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private SqlLoopStore _store = null!;
    private Channel _channel = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
        _channel = (await _store.EnsureChannelAsync(null, null, None)).Channel;
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task A_run_claimed_ahead_is_no_channel_work_until_its_instant()
    {
        var (task, run) = await ClaimAheadAsync(TimeSpan.FromSeconds(2));

        Assert.Null((await _store.GetChannelWorkAsync(_channel.Id, _time.GetUtcNow(), None))!.QueuedTaskRun);
        Assert.Equal([new QueuedTaskRuns(_channel.Id, run.CreatedAt)], await _store.ListQueuedTaskRunsAsync(None));
        Assert.Equal([run.Id], (await _store.ListRunsClaimedAheadAsync(task.Id, _time.GetUtcNow(), None)).Select(r => r.Id));

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(run.Id, (await _store.GetChannelWorkAsync(_channel.Id, _time.GetUtcNow(), None))!.QueuedTaskRun?.Id);
        Assert.Empty(await _store.ListRunsClaimedAheadAsync(task.Id, _time.GetUtcNow(), None));
    }

    [Fact]
    public async Task Recovery_fails_what_had_begun_and_keeps_what_is_still_to_come()
    {
        var (_, due) = await ClaimAheadAsync(TimeSpan.Zero);
        var (_, ahead) = await ClaimAheadAsync(TimeSpan.FromSeconds(2));

        var failed = await _store.FailInterruptedRunsAsync("interrupted", _time.GetUtcNow(), null, None);

        Assert.Equal([due.Id], failed.Select(r => r.Id));
        Assert.Equal(RunStatus.Queued, (await _store.GetRunAsync(ahead.Id, None))!.Status);
    }

    [Fact]
    public async Task An_edit_gives_back_the_runs_claimed_ahead_with_the_write()
    {
        var (task, run) = await ClaimAheadAsync(TimeSpan.FromSeconds(2));

        Assert.Equal(TaskWrite.Written, await _store.UpdateTaskAsync(task with { Enabled = false, NextRunAt = null }, [run.Id], None));

        Assert.Null(await _store.GetRunAsync(run.Id, None));
        Assert.False((await _store.GetTaskAsync(task.Id, None))!.Enabled);
    }

    [Fact]
    public async Task An_edit_whose_run_has_begun_meanwhile_is_stale_and_writes_nothing()
    {
        var (task, run) = await ClaimAheadAsync(TimeSpan.FromSeconds(2));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await _store.TryStartRunAsync(run.Id, _time.GetUtcNow(), None));

        Assert.Equal(TaskWrite.Stale, await _store.UpdateTaskAsync(task with { Enabled = false, NextRunAt = null }, [run.Id], None));

        Assert.Equal(RunStatus.Running, (await _store.GetRunAsync(run.Id, None))!.Status);
        Assert.True((await _store.GetTaskAsync(task.Id, None))!.Enabled);
    }

    /// <summary>A task whose slot, <paramref name="ahead"/> from now, is claimed now; the task as the claim left it.</summary>
    private async Task<(ScheduledTask Task, Run Run)> ClaimAheadAsync(TimeSpan ahead)
    {
        var now = _time.GetUtcNow();
        var due = now + ahead;
        var task = new ScheduledTask(
            Ids.New("task", _time), _channel.Id, "nightly", TaskType.Interval, "1h", null, "check the build",
            true, TaskContext.Isolated, MisfirePolicy.RunOnce, due, null, null, null,
            ScheduledTask.DefaultMaxIterations, ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now);
        task = (await _store.CreateTaskAsync(task, None)).Task;
        _time.Advance(TimeSpan.FromMilliseconds(1)); // run ids sort in creation order
        var run = new Run(Ids.New("run", _time), _channel.Id, task.Id, RunStatus.Queued, task.Prompt, due,
            null, null, null, null, null, null, null, null, RunUsage.None);
        var claimed = await _store.ClaimTaskFiringsAsync([new TaskFiring(task.Id, task.Revision, due, due.AddHours(1), run)], now, None);
        Assert.Single(claimed);
        return ((await _store.GetTaskAsync(task.Id, None))!, run);
    }
}

public sealed class ClaimedAheadTestsOnSqlite() : ClaimedAheadTests(new SqliteBackend());

public sealed class ClaimedAheadTestsOnPostgres() : ClaimedAheadTests(new PostgresBackend());
