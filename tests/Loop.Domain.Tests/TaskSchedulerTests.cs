namespace Loop.Domain.Tests;

using Loop.Config;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>Task actors on a clock the test moves: timers, edits, toggles, misfires, races.</summary>
public sealed class TaskSchedulerTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-sched-").FullName;
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly ScriptedRunner _runner = new() { HoldCalls = false };
    private readonly LoopEventHub _events = new();
    private SqliteLoopStore _store = null!;
    private DirectChannels _actors = null!;
    private TaskScheduler _scheduler = null!;
    private TaskService _tasks = null!;
    private TaskIntervalMinimum _schedulerMinimum = TaskIntervalMinimum.None;
    private string _channel = "";

    public async Task InitializeAsync()
    {
        _store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        await _store.MigrateAsync(CancellationToken.None);
        _channel = (await _store.EnsureChannelAsync(null, null, CancellationToken.None)).Channel.Id;
        await StartSchedulerAsync();
    }

    private async Task StartSchedulerAsync()
    {
        var context = new Loop.Domain.Channels.ChannelRunsContext(_store, _runner, new ContainerWorkerPool(3),
            new ChannelEventLog(_events, _time, NullLogger<ChannelEventLog>.Instance, run => _scheduler.RunFinished(run)),
            _time, c => Path.Combine(_dir, c.Id));
        _actors = new DirectChannels(context);
        _scheduler = new TaskScheduler(_store, _actors.WakeAsync, _events, _schedulerMinimum, _time, NullLogger<TaskScheduler>.Instance);
        var paths = new LoopPaths(Path.Combine(_dir, "home"), _dir);
        // Tasks only read channels through it; channel grains are not needed here.
        var channels = new ChannelService(_store, null!, new ChannelTokens(), new AuthService(_store, _time),
            new ProjectDirs(LoopConfig.Defaults(paths), paths, null), _time);
        _tasks = new TaskService(_store, _scheduler, channels, [], TaskIntervalMinimum.None, _time);
        await _scheduler.StartAsync(CancellationToken.None);
    }

    private async Task StopSchedulerAsync()
    {
        await _scheduler.DisposeAsync();
        await _actors.DisposeAsync();
    }

    public async Task DisposeAsync()
    {
        await StopSchedulerAsync();
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<ScheduledTask> CreateAsync(string type, string schedule, string prompt = "do it", string? misfire = null, string? timezone = null) =>
        _tasks.CreateAsync(Caller.User, new NewTaskRequest(_channel, type, schedule, prompt, Misfire: misfire, Timezone: timezone), CancellationToken.None);

    private async Task<IReadOnlyList<Run>> RunsAsync(string taskId, int atLeast = 0)
    {
        for (var i = 0; i < 300; i++)
        {
            var runs = await _store.ListTaskRunsAsync(taskId, 100, null, CancellationToken.None);
            if (runs.Count >= atLeast && runs.All(r => r.Status.IsFinal()))
            {
                return runs;
            }
            await Task.Delay(10);
        }
        return await _store.ListTaskRunsAsync(taskId, 100, null, CancellationToken.None);
    }

    /// <summary>Moves the clock and gives the claimer and actors a moment to act on fired timers.</summary>
    private async Task AdvanceAsync(TimeSpan by)
    {
        _time.Advance(by);
        await Task.Delay(150);
    }

    [Fact]
    public async Task An_interval_task_fires_at_each_due_instant_and_not_before()
    {
        var task = await CreateAsync("interval", "10m");
        Assert.Equal(_time.GetUtcNow().AddMinutes(10), task.NextRunAt);

        await AdvanceAsync(TimeSpan.FromMinutes(9));
        Assert.Empty(await RunsAsync(task.Id));

        await AdvanceAsync(TimeSpan.FromMinutes(1));
        var runs = await RunsAsync(task.Id, atLeast: 1);
        Assert.Single(runs);
        Assert.Equal(RunStatus.Succeeded, runs[0].Status);
        Assert.Equal(task.CreatedAt.AddMinutes(20), (await _store.GetTaskAsync(task.Id, CancellationToken.None))!.NextRunAt);

        await AdvanceAsync(TimeSpan.FromMinutes(10));
        Assert.Equal(2, (await RunsAsync(task.Id, atLeast: 2)).Count);
    }

    [Fact]
    public async Task A_task_stored_before_the_minimum_was_raised_fires_no_more_often_than_the_minimum()
    {
        var task = await CreateAsync("interval", "1m");
        await StopSchedulerAsync();
        _schedulerMinimum = TaskIntervalMinimum.FromSeconds(600);
        await StartSchedulerAsync();

        await AdvanceAsync(TimeSpan.FromMinutes(1));
        Assert.Single(await RunsAsync(task.Id, atLeast: 1));
        Assert.Equal(task.CreatedAt.AddMinutes(11), (await _store.GetTaskAsync(task.Id, CancellationToken.None))!.NextRunAt);

        await AdvanceAsync(TimeSpan.FromMinutes(9));
        Assert.Single(await RunsAsync(task.Id));
        await AdvanceAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(2, (await RunsAsync(task.Id, atLeast: 2)).Count);
    }

    [Fact]
    public async Task A_once_task_fires_once()
    {
        var task = await CreateAsync("once", "5m");
        await AdvanceAsync(TimeSpan.FromMinutes(5));
        Assert.Single(await RunsAsync(task.Id, atLeast: 1));
        Assert.Null((await _store.GetTaskAsync(task.Id, CancellationToken.None))!.NextRunAt);
        await AdvanceAsync(TimeSpan.FromHours(1));
        Assert.Single(await RunsAsync(task.Id));
    }

    [Fact]
    public async Task A_cron_task_in_a_time_zone_fires_at_the_local_time_across_a_dst_change()
    {
        // 02:30 Berlin does not exist on 2026-03-29: it fires when the clock jumps, 03:00 CEST = 01:00 UTC.
        _time.Advance(new DateTimeOffset(2026, 3, 28, 12, 0, 0, TimeSpan.Zero) - _time.GetUtcNow());
        var task = await CreateAsync("cron", "30 2 * * *", timezone: "Europe/Berlin");
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero), task.NextRunAt);

        await AdvanceAsync(new DateTimeOffset(2026, 3, 29, 0, 59, 0, TimeSpan.Zero) - _time.GetUtcNow());
        Assert.Empty(await RunsAsync(task.Id));
        await AdvanceAsync(TimeSpan.FromMinutes(1));
        Assert.Single(await RunsAsync(task.Id, atLeast: 1));
        Assert.Equal(new DateTimeOffset(2026, 3, 30, 0, 30, 0, TimeSpan.Zero), (await _store.GetTaskAsync(task.Id, CancellationToken.None))!.NextRunAt);
    }

    [Fact]
    public async Task Editing_the_schedule_moves_the_timer_at_once()
    {
        var task = await CreateAsync("interval", "1h");
        var edited = await _tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Schedule: "5m"), CancellationToken.None);
        Assert.Equal(_time.GetUtcNow().AddMinutes(5), edited.NextRunAt);

        await AdvanceAsync(TimeSpan.FromMinutes(5));
        Assert.Single(await RunsAsync(task.Id, atLeast: 1));
        for (var i = 0; i < 11; i++)
        {
            await AdvanceAsync(TimeSpan.FromMinutes(5));
        }
        // One run per 5-minute slot; the old 1h slot adds none.
        Assert.Equal(12, (await RunsAsync(task.Id, atLeast: 12)).Count);
    }

    [Fact]
    public async Task A_disabled_task_does_not_fire_and_counts_from_now_when_enabled_again()
    {
        var task = await CreateAsync("interval", "10m");
        await _tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Enabled: false), CancellationToken.None);
        await AdvanceAsync(TimeSpan.FromMinutes(30));
        Assert.Empty(await RunsAsync(task.Id));

        var enabled = await _tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Enabled: true), CancellationToken.None);
        Assert.Equal(_time.GetUtcNow().AddMinutes(10), enabled.NextRunAt);
        await AdvanceAsync(TimeSpan.FromMinutes(10));
        Assert.Single(await RunsAsync(task.Id, atLeast: 1));
    }

    [Theory]
    [InlineData("run_once", 1)]
    [InlineData("skip", 0)]
    public async Task Slots_missed_while_the_daemon_was_down_follow_the_misfire_policy(string misfire, int expectedRuns)
    {
        var task = await CreateAsync("interval", "10m", misfire: misfire);
        await StopSchedulerAsync();

        _time.Advance(TimeSpan.FromMinutes(35)); // three slots pass while nobody is there
        await StartSchedulerAsync();
        var next = task.NextRunAt!.Value;
        for (var i = 0; i < 500 && next <= _time.GetUtcNow(); i++)
        {
            await Task.Delay(10); // until the claimer has dealt with the missed slot
            next = (await _store.GetTaskAsync(task.Id, CancellationToken.None))!.NextRunAt!.Value;
        }

        Assert.Equal(expectedRuns, (await RunsAsync(task.Id, atLeast: expectedRuns)).Count);
        Assert.True(next > _time.GetUtcNow(), $"next {next} is not after now {_time.GetUtcNow()}");
        Assert.Equal(task.CreatedAt.AddMinutes(40), next); // the cadence keeps its anchor
    }

    [Fact]
    public async Task Two_store_clients_racing_for_the_same_slots_fire_each_slot_once()
    {
        await using var second = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), _time);
        var due = _time.GetUtcNow().AddMinutes(1);
        var tasks = new List<ScheduledTask>();
        for (var i = 0; i < 50; i++)
        {
            var t = await CreateAsync("interval", "1m");
            tasks.Add(t);
        }
        await StopSchedulerAsync(); // the race is between the two store clients alone

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
        await StartSchedulerAsync();
    }

    [Fact]
    public async Task Deleting_a_task_stops_its_timer()
    {
        var task = await CreateAsync("interval", "10m");
        await _tasks.DeleteAsync(Caller.User, task.Id, CancellationToken.None);
        await AdvanceAsync(TimeSpan.FromMinutes(30));
        Assert.Empty(await _store.ListTaskRunsAsync(task.Id, 10, null, CancellationToken.None));
        Assert.Equal(0, _scheduler.ArmedCount);
    }

    [Fact]
    public async Task A_loop_task_runs_until_the_promise_and_stops_at_max_iterations_otherwise()
    {
        var turn = 0;
        _runner.Answer = request => new Loop.Domain.Agents.AgentRunResult(Loop.Domain.Agents.AgentOutcome.Succeeded, 0,
            Interlocked.Increment(ref turn) >= 3 ? "all done <promise>DONE</promise>" : $"step {turn}", "s1", null, RunUsage.None);
        var done = await _tasks.CreateAsync(Caller.User, new NewTaskRequest(_channel, "loop", null, "build it"), CancellationToken.None);
        var finished = await WaitForLoopAsync(done.Id);
        Assert.Equal(LoopState.Completed, finished.LoopState);
        Assert.Equal(3, finished.Iteration);

        turn = -100;
        var capped = await _tasks.CreateAsync(Caller.User, new NewTaskRequest(_channel, "loop", null, "never ends", MaxIterations: 4), CancellationToken.None);
        var stopped = await WaitForLoopAsync(capped.Id);
        Assert.Equal(LoopState.Stopped, stopped.LoopState);
        Assert.Equal(4, stopped.Iteration);
        Assert.Contains("max_iterations", stopped.StopReason);
    }

    private async Task<ScheduledTask> WaitForLoopAsync(string taskId)
    {
        for (var i = 0; i < 500; i++)
        {
            var task = (await _store.GetTaskAsync(taskId, CancellationToken.None))!;
            if (task.LoopState != LoopState.Running)
            {
                return task;
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("the loop task did not end");
    }
}
