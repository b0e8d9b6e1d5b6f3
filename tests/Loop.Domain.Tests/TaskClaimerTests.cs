namespace Loop.Domain.Tests;

using System.Collections.Concurrent;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>The claim of due slots, without grains: a task is armed with its stored slot, the
/// node's timetable hands it in when the test's clock reaches it, and the claim arms what comes next.</summary>
public sealed class TaskClaimerTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-claimer-").FullName;
    private readonly ManualTimeProvider _time = new();
    private readonly ConcurrentQueue<string> _woken = new();
    private SqliteLoopStore _store = null!;
    private string _channel = "";

    public async Task InitializeAsync()
    {
        _store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        await _store.MigrateAsync(CancellationToken.None);
        _channel = (await _store.EnsureChannelAsync(null, null, CancellationToken.None)).Channel.Id;
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private TaskClaimer Claimer(TaskIntervalMinimum minimum, int graceSeconds = 60) => new(_store, id =>
    {
        _woken.Enqueue(id);
        return Task.CompletedTask;
    }, new LoopEventHub(), minimum, MisfireGrace.FromSeconds(graceSeconds), _time, NullLogger<TaskClaimer>.Instance);

    private async Task<ScheduledTask> StoreTaskAsync(TaskType type, string schedule, MisfirePolicy misfire = MisfirePolicy.RunOnce)
    {
        var now = _time.GetUtcNow();
        var parsed = TaskSchedule.Parse(type, schedule, null, now);
        var task = new ScheduledTask(Ids.New("task", _time), _channel, "t", type, parsed.Text, null, "do it", true, TaskContext.Isolated, misfire,
            parsed.FirstDue(now), null, null, null, ScheduledTask.DefaultMaxIterations, ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now);
        return (await _store.CreateTaskAsync(task, CancellationToken.None)).Task;
    }

    private static void Arm(TaskClaimer claimer, ScheduledTask task) => claimer.Arm(task.Id, task.NextRunAt, task.Revision);

    private Task<IReadOnlyList<Run>> RunsAsync(ScheduledTask task) => _store.ListRunsAsync(new RunQuery(10, TaskId: task.Id), CancellationToken.None);

    /// <summary>Waits until the claim of the task's slot has armed <paramref name="next"/>.</summary>
    private static Task ArmedAsync(TaskClaimer claimer, ScheduledTask task, DateTimeOffset? next) =>
        Eventually.Until(() => claimer.ArmedAt(task.Id) == next, $"task {task.Id} to be armed at {next:O}");

    [Fact]
    public async Task A_claimed_slot_queues_one_run_wakes_the_channel_and_arms_the_next_slot()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var task = await StoreTaskAsync(TaskType.Interval, "10m");
        Arm(claimer, task);
        _time.Advance(TimeSpan.FromMinutes(9));
        Assert.Empty(await RunsAsync(task));

        _time.Advance(TimeSpan.FromMinutes(1));
        await ArmedAsync(claimer, task, task.CreatedAt.AddMinutes(20));
        await Eventually.Until(() => _woken.Contains(_channel), "the channel to be woken");
        Assert.Single(await RunsAsync(task));
        Assert.Equal(task.CreatedAt.AddMinutes(20), (await _store.GetTaskAsync(task.Id, CancellationToken.None))!.NextRunAt);
    }

    [Fact]
    public async Task A_slot_is_claimed_ahead_and_its_run_waits_for_its_instant()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var fired = new ConcurrentQueue<(DateTimeOffset Due, DateTimeOffset At)>();
        claimer.OnFired = (due, at) => fired.Enqueue((due, at));
        var task = await StoreTaskAsync(TaskType.Interval, "10m");
        var due = task.NextRunAt!.Value;
        Arm(claimer, task);

        _time.Advance(TimeSpan.FromMinutes(10) - TaskClaimer.ClaimAhead);
        await ArmedAsync(claimer, task, due.AddMinutes(10));
        var run = Assert.Single(await RunsAsync(task));
        Assert.Equal((RunStatus.Queued, due), (run.Status, run.CreatedAt));
        var work = await _store.GetChannelWorkAsync(_channel, _time.GetUtcNow(), CancellationToken.None);
        Assert.Null(work!.QueuedTaskRun); // no channel may take it before its instant
        Assert.Empty(fired);

        _time.Advance(TaskClaimer.ClaimAhead - TimeSpan.FromMilliseconds(1));
        Assert.Empty(fired);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await Eventually.Until(() => _woken.Contains(_channel), "the channel to be woken at the slot's instant");
        Assert.Equal([(due, due)], fired);
        work = await _store.GetChannelWorkAsync(_channel, _time.GetUtcNow(), CancellationToken.None);
        Assert.Equal(run.Id, work!.QueuedTaskRun?.Id);
    }

    [Fact]
    public async Task A_stale_slot_fires_nothing_and_the_stored_slot_is_armed_instead()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var task = await StoreTaskAsync(TaskType.Interval, "10m");
        Arm(claimer, task);
        _time.Advance(TimeSpan.FromMinutes(10));
        await ArmedAsync(claimer, task, task.CreatedAt.AddMinutes(20));

        // A second node (or a restart) that still has the old slot: the claim refuses it.
        await using var late = Claimer(TaskIntervalMinimum.None);
        Arm(late, task);
        await ArmedAsync(late, task, task.CreatedAt.AddMinutes(20));
        Assert.Single(await RunsAsync(task));
    }

    [Fact]
    public async Task An_older_revision_never_replaces_a_newer_one()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var task = await StoreTaskAsync(TaskType.Interval, "10m");
        var edited = task with { NextRunAt = task.CreatedAt.AddMinutes(3), Revision = task.Revision + 1 };
        Assert.Equal(TaskWrite.Written, await _store.UpdateTaskAsync(task with { NextRunAt = edited.NextRunAt }, CancellationToken.None));

        // The edit arms its slot first; a claim that read the task before the edit arms later.
        Arm(claimer, edited);
        Arm(claimer, task);
        Assert.Equal(edited.NextRunAt, claimer.ArmedAt(task.Id));
        _time.Advance(TimeSpan.FromMinutes(3));
        await ArmedAsync(claimer, task, edited.NextRunAt!.Value.AddMinutes(10));
        Assert.Single(await RunsAsync(task));
    }

    [Fact]
    public async Task A_write_based_on_an_old_read_is_refused()
    {
        var task = await StoreTaskAsync(TaskType.Interval, "10m");
        Assert.Equal(TaskWrite.Written, await _store.UpdateTaskAsync(task with { Name = "first" }, CancellationToken.None));
        Assert.Equal(TaskWrite.Stale, await _store.UpdateTaskAsync(task with { Name = "second" }, CancellationToken.None));
        var stored = (await _store.GetTaskAsync(task.Id, CancellationToken.None))!;
        Assert.Equal(("first", task.Revision + 1), (stored.Name, stored.Revision));

        await _store.DeleteTaskAsync(task.Id, CancellationToken.None);
        Assert.Equal(TaskWrite.Missing, await _store.UpdateTaskAsync(stored, CancellationToken.None));
    }

    [Fact]
    public async Task A_task_stored_before_the_minimum_was_raised_fires_no_more_often_than_the_minimum()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.FromSeconds(600));
        var task = await StoreTaskAsync(TaskType.Interval, "1m");
        Arm(claimer, task);
        _time.Advance(TimeSpan.FromMinutes(1));

        await ArmedAsync(claimer, task, task.CreatedAt.AddMinutes(11));
        Assert.Single(await RunsAsync(task));
    }

    [Theory]
    [InlineData(MisfirePolicy.RunOnce, 1)]
    [InlineData(MisfirePolicy.Skip, 0)]
    public async Task Slots_missed_while_the_daemon_was_down_follow_the_misfire_policy(MisfirePolicy misfire, int expectedRuns)
    {
        var task = await StoreTaskAsync(TaskType.Interval, "10m", misfire);
        _time.Advance(TimeSpan.FromMinutes(35)); // three slots pass while nobody is there
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        Arm(claimer, task);

        await ArmedAsync(claimer, task, task.CreatedAt.AddMinutes(40)); // the cadence keeps its anchor
        Assert.Equal(expectedRuns, (await RunsAsync(task)).Count);
    }

    [Theory]
    [InlineData(30, 1)]
    [InlineData(31, 0)]
    public async Task A_skipping_task_still_fires_a_slot_claimed_within_the_misfire_grace(int lateSeconds, int expectedRuns)
    {
        var task = await StoreTaskAsync(TaskType.Interval, "10m", MisfirePolicy.Skip);
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(lateSeconds));
        await using var claimer = Claimer(TaskIntervalMinimum.None, graceSeconds: 30);
        Arm(claimer, task);

        await ArmedAsync(claimer, task, task.CreatedAt.AddMinutes(20));
        Assert.Equal(expectedRuns, (await RunsAsync(task)).Count);
    }

    [Fact]
    public async Task Slots_due_together_are_claimed_together_and_a_deleted_task_is_disarmed()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var tasks = new List<ScheduledTask>();
        for (var i = 0; i < 200; i++)
        {
            tasks.Add(await StoreTaskAsync(TaskType.Once, "5m"));
            Arm(claimer, tasks[^1]);
        }
        await _store.DeleteTaskAsync(tasks[0].Id, CancellationToken.None);
        Assert.Equal(200, claimer.ArmedCount);
        _time.Advance(TimeSpan.FromMinutes(5));

        await Eventually.Until(() => claimer.ArmedCount == 0, "every once task to be done");
        foreach (var task in tasks.Skip(1))
        {
            Assert.Single(await RunsAsync(task));
        }
        Assert.Equal([_channel], _woken.Distinct());
    }

    [Fact]
    public async Task Two_store_clients_racing_for_the_same_slots_fire_each_slot_once()
    {
        await using var second = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        var due = _time.GetUtcNow().AddMinutes(1);
        var tasks = new List<ScheduledTask>();
        for (var i = 0; i < 50; i++)
        {
            tasks.Add(await StoreTaskAsync(TaskType.Interval, "1m"));
        }

        TaskFiring Firing(ScheduledTask t) => new(t.Id, t.Revision, t.NextRunAt!.Value, t.NextRunAt.Value.AddMinutes(1),
            new Run(Ids.New("run", _time), t.ChannelId, t.Id, RunStatus.Queued, t.Prompt, due, null, null, null, null, null, null, null, null, RunUsage.None));
        var a = Task.Run(() => _store.ClaimTaskFiringsAsync(tasks.Select(Firing).ToList(), due, CancellationToken.None));
        var b = Task.Run(() => second.ClaimTaskFiringsAsync(tasks.Select(Firing).ToList(), due, CancellationToken.None));
        var claimed = (await a).Concat(await b).ToList();

        Assert.Equal(50, claimed.Count);
        Assert.Equal(50, claimed.Select(f => f.TaskId).Distinct().Count());
        foreach (var t in tasks)
        {
            Assert.Single(await RunsAsync(t));
        }
    }
}
