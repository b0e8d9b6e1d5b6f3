namespace Loop.Domain.Tests;

using System.Collections.Concurrent;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>The claim of due slots, without grains: a task's grain hands in its slot and takes the
/// next due instant the claimer answers.</summary>
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

    [Fact]
    public async Task A_claimed_slot_queues_one_run_wakes_the_channel_and_answers_the_next_slot()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var task = await StoreTaskAsync(TaskType.Interval, "10m");
        _time.Advance(TimeSpan.FromMinutes(10));

        var claim = await claimer.ClaimAsync(task.Id, task.NextRunAt!.Value);
        Assert.True(claim.Fired);
        Assert.Equal(task.CreatedAt.AddMinutes(20), claim.NextDue);
        Assert.Equal([_channel], _woken);
        Assert.Single(await _store.ListTaskRunsAsync(task.Id, 10, null, CancellationToken.None));

        // The same slot again (a stale timer): nothing fires, the stored next slot comes back.
        var again = await claimer.ClaimAsync(task.Id, task.NextRunAt!.Value);
        Assert.False(again.Fired);
        Assert.Equal(task.CreatedAt.AddMinutes(20), again.NextDue);
        Assert.Single(await _store.ListTaskRunsAsync(task.Id, 10, null, CancellationToken.None));
    }

    [Fact]
    public async Task A_task_stored_before_the_minimum_was_raised_fires_no_more_often_than_the_minimum()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.FromSeconds(600));
        var task = await StoreTaskAsync(TaskType.Interval, "1m");
        _time.Advance(TimeSpan.FromMinutes(1));

        var claim = await claimer.ClaimAsync(task.Id, task.NextRunAt!.Value);
        Assert.True(claim.Fired);
        Assert.Equal(task.CreatedAt.AddMinutes(11), claim.NextDue);
    }

    [Theory]
    [InlineData(MisfirePolicy.RunOnce, 1)]
    [InlineData(MisfirePolicy.Skip, 0)]
    public async Task Slots_missed_while_the_daemon_was_down_follow_the_misfire_policy(MisfirePolicy misfire, int expectedRuns)
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var task = await StoreTaskAsync(TaskType.Interval, "10m", misfire);
        _time.Advance(TimeSpan.FromMinutes(35)); // three slots pass while nobody is there

        var claim = await claimer.ClaimAsync(task.Id, task.NextRunAt!.Value);
        Assert.Equal(expectedRuns == 1, claim.Fired);
        Assert.Equal(task.CreatedAt.AddMinutes(40), claim.NextDue); // the cadence keeps its anchor
        Assert.Equal(expectedRuns, (await _store.ListTaskRunsAsync(task.Id, 10, null, CancellationToken.None)).Count);
    }

    [Theory]
    [InlineData(30, true)]
    [InlineData(31, false)]
    public async Task A_skipping_task_still_fires_a_slot_claimed_within_the_misfire_grace(int lateSeconds, bool fires)
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None, graceSeconds: 30);
        var task = await StoreTaskAsync(TaskType.Interval, "10m", MisfirePolicy.Skip);
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(lateSeconds));

        var claim = await claimer.ClaimAsync(task.Id, task.NextRunAt!.Value);
        Assert.Equal(fires, claim.Fired);
        Assert.Equal(task.CreatedAt.AddMinutes(20), claim.NextDue);
    }

    [Fact]
    public async Task Slots_due_together_are_claimed_together_and_a_deleted_task_is_gone()
    {
        await using var claimer = Claimer(TaskIntervalMinimum.None);
        var tasks = new List<ScheduledTask>();
        for (var i = 0; i < 200; i++)
        {
            tasks.Add(await StoreTaskAsync(TaskType.Once, "5m"));
        }
        await _store.DeleteTaskAsync(tasks[0].Id, CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(5));

        var claims = await Task.WhenAll(tasks.Select(t => claimer.ClaimAsync(t.Id, t.NextRunAt!.Value)));
        Assert.True(claims[0].Gone);
        Assert.All(claims.Skip(1), c => Assert.True(c.Fired && c.NextDue is null));
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

        TaskFiring Firing(ScheduledTask t) => new(t.Id, t.NextRunAt!.Value, t.NextRunAt.Value.AddMinutes(1),
            new Run(Ids.New("run", _time), t.ChannelId, t.Id, RunStatus.Queued, t.Prompt, due, null, null, null, null, null, null, null, null, RunUsage.None));
        var a = Task.Run(() => _store.ClaimTaskFiringsAsync(tasks.Select(Firing).ToList(), due, CancellationToken.None));
        var b = Task.Run(() => second.ClaimTaskFiringsAsync(tasks.Select(Firing).ToList(), due, CancellationToken.None));
        var claimed = (await a).Concat(await b).ToList();

        Assert.Equal(50, claimed.Count);
        Assert.Equal(50, claimed.Select(r => r.TaskId).Distinct().Count());
        foreach (var t in tasks)
        {
            Assert.Single(await _store.ListTaskRunsAsync(t.Id, 10, null, CancellationToken.None));
        }
    }
}
