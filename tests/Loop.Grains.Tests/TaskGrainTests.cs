namespace Loop.Grains.Tests;

using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Domain.Tests;
using Loop.Runtime;
using Loop.Store;

/// <summary>Tasks on their grains: timers on the test's clock, claims through the node's claimer,
/// runs on real channel grains with a scripted agent.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TaskGrainTests(ClusterFixture cluster) : IAsyncLifetime
{
    private readonly ScriptedRunner _runner = new() { HoldCalls = false };
    private string _channel = "";

    public async Task InitializeAsync()
    {
        _channel = (await cluster.Store.EnsureChannelAsync(null, null, CancellationToken.None)).Channel.Id;
        cluster.UseRunner(_runner, _channel);
    }

    public async Task DisposeAsync()
    {
        foreach (var task in await cluster.Store.ListTasksAsync(_channel, CancellationToken.None))
        {
            await cluster.Tasks.DeleteAsync(Caller.User, task.Id, CancellationToken.None);
        }
        _runner.ReleaseAll();
    }

    private Task<ScheduledTask> CreateAsync(string type, string? schedule, string prompt = "do it", string? timezone = null, int? maxIterations = null) =>
        cluster.Tasks.CreateAsync(Caller.User, new NewTaskRequest(_channel, type, schedule, prompt, Timezone: timezone, MaxIterations: maxIterations), CancellationToken.None);

    private Task<ScheduledTask?> StoredAsync(string taskId) => cluster.Store.GetTaskAsync(taskId, CancellationToken.None);

    private async Task<IReadOnlyList<Run>> RunsAsync(string taskId) => await cluster.Store.ListRunsAsync(new RunQuery(100, TaskId: taskId), CancellationToken.None);

    /// <summary>Waits until the task has <paramref name="count"/> finished runs and its timer has moved on from them.</summary>
    private async Task<IReadOnlyList<Run>> FiredAsync(string taskId, int count)
    {
        IReadOnlyList<Run> runs = [];
        await Eventually.Until(async () =>
        {
            runs = await RunsAsync(taskId);
            return runs.Count >= count && runs.All(r => r.Status.IsFinal());
        }, $"task {taskId} to fire {count} time(s)");
        Assert.True(count == runs.Count, $"task {taskId} ran {runs.Count} time(s), not {count}: {string.Join("; ", runs)}");
        return runs;
    }

    /// <summary>Moves the test's clock to the task's next slot and waits until that slot fired.</summary>
    private async Task FireNextAsync(string taskId, int runsAfter)
    {
        var next = (await StoredAsync(taskId))!.NextRunAt!.Value;
        cluster.Time.Advance(next - cluster.Time.GetUtcNow());
        await FiredAsync(taskId, runsAfter);
        await Eventually.Until(async () => (await StoredAsync(taskId))!.NextRunAt != next, $"task {taskId} to move past {next:O}");
    }

    [Fact]
    public async Task An_interval_task_fires_at_each_due_instant_and_not_before()
    {
        var task = await CreateAsync("interval", "10m");
        Assert.Equal(cluster.Time.GetUtcNow().AddMinutes(10), task.NextRunAt);

        cluster.Time.Advance(TimeSpan.FromMinutes(9));
        // Another task due now fires, so the claimer has had its chance at this one too.
        var witness = await CreateAsync("once", "1s");
        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        await FiredAsync(witness.Id, 1);
        Assert.Empty(await RunsAsync(task.Id));

        await FireNextAsync(task.Id, 1);
        Assert.Equal(task.CreatedAt.AddMinutes(20), (await StoredAsync(task.Id))!.NextRunAt);
        await FireNextAsync(task.Id, 2);
    }

    [Fact]
    public async Task A_once_task_fires_once_and_lets_its_reminder_go_at_the_next_tick()
    {
        var task = await CreateAsync("once", "5m");
        await FireNextAsync(task.Id, 1);
        Assert.Null((await StoredAsync(task.Id))!.NextRunAt);
        Assert.Null(cluster.Claimer.ArmedAt(task.Id));

        await cluster.Grains.GetGrain<ITaskGrain>(task.Id).Arm(); // what the reminder's tick does
        Assert.DoesNotContain(await cluster.Store.ReadRemindersAsync(0, uint.MaxValue, CancellationToken.None), r => r.GrainId.EndsWith(task.Id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_armed_task_has_a_reminder_in_the_store_and_a_deleted_one_has_none()
    {
        var task = await CreateAsync("interval", "1h");
        var reminders = await cluster.Store.ReadRemindersAsync(0, uint.MaxValue, CancellationToken.None);
        var reminder = Assert.Single(reminders, r => r.GrainId.EndsWith(task.Id, StringComparison.Ordinal));
        Assert.Equal(TaskGrain.ReminderPeriod.TotalMilliseconds, reminder.PeriodMs);

        await cluster.Tasks.DeleteAsync(Caller.User, task.Id, CancellationToken.None);
        Assert.DoesNotContain(await cluster.Store.ReadRemindersAsync(0, uint.MaxValue, CancellationToken.None), r => r.GrainId.EndsWith(task.Id, StringComparison.Ordinal));
        cluster.Time.Advance(TimeSpan.FromHours(2));
        var witness = await CreateAsync("once", "1s");
        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        await FiredAsync(witness.Id, 1);
        Assert.Empty(await RunsAsync(task.Id));
    }

    [Fact]
    public async Task A_cron_task_in_a_time_zone_fires_at_the_local_time_across_a_dst_change()
    {
        // 02:30 Berlin does not exist on 2027-03-28: it fires when the clock jumps, 03:00 CEST = 01:00 UTC.
        var start = new DateTimeOffset(2027, 3, 27, 12, 0, 0, TimeSpan.Zero);
        if (cluster.Time.GetUtcNow() < start)
        {
            cluster.Time.Advance(start - cluster.Time.GetUtcNow());
        }
        var task = await CreateAsync("cron", "30 2 * * *", timezone: "Europe/Berlin");
        Assert.Equal(new DateTimeOffset(2027, 3, 28, 1, 0, 0, TimeSpan.Zero), task.NextRunAt);

        await FireNextAsync(task.Id, 1);
        Assert.Equal(new DateTimeOffset(2027, 3, 29, 0, 30, 0, TimeSpan.Zero), (await StoredAsync(task.Id))!.NextRunAt);
    }

    [Fact]
    public async Task Editing_the_schedule_moves_the_timer_at_once_and_the_old_slot_adds_nothing()
    {
        var task = await CreateAsync("interval", "1h");
        var edited = await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Schedule: "5m"), CancellationToken.None);
        Assert.Equal(cluster.Time.GetUtcNow().AddMinutes(5), edited.NextRunAt);

        for (var i = 1; i <= 12; i++)
        {
            await FireNextAsync(task.Id, i);
        }
        // Twelve 5-minute slots make the hour: the old 1h slot fired none of its own.
        Assert.Equal(task.CreatedAt.AddMinutes(65), (await StoredAsync(task.Id))!.NextRunAt);
    }

    [Fact]
    public async Task A_disabled_task_does_not_fire_and_counts_from_now_when_enabled_again()
    {
        var task = await CreateAsync("interval", "10m");
        await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Enabled: false), CancellationToken.None);
        cluster.Time.Advance(TimeSpan.FromMinutes(30));
        var witness = await CreateAsync("once", "1s");
        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        await FiredAsync(witness.Id, 1);
        Assert.Empty(await RunsAsync(task.Id));

        var enabled = await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Enabled: true), CancellationToken.None);
        Assert.Equal(cluster.Time.GetUtcNow().AddMinutes(10), enabled.NextRunAt);
        await FireNextAsync(task.Id, 1);
    }

    /// <summary>Moves the test's clock into the lead before the task's next slot and waits until
    /// that slot is claimed ahead.</summary>
    private async Task<Run> ClaimedAheadAsync(string taskId)
    {
        var next = (await StoredAsync(taskId))!.NextRunAt!.Value;
        cluster.Time.Advance(next - TimeSpan.FromSeconds(1) - cluster.Time.GetUtcNow());
        var ahead = await ClaimedAheadAsync(taskId, except: null);
        Assert.Equal(next, ahead.CreatedAt);
        return ahead;
    }

    /// <summary>Waits, the clock standing still, until a run of the task other than <paramref name="except"/> is claimed ahead.</summary>
    private async Task<Run> ClaimedAheadAsync(string taskId, Run? except)
    {
        Run? ahead = null;
        await Eventually.Until(async () =>
        {
            var runs = await cluster.Store.ListRunsClaimedAheadAsync(taskId, cluster.Time.GetUtcNow(), CancellationToken.None);
            ahead = runs.SingleOrDefault(r => r.Id != except?.Id);
            return ahead is not null;
        }, $"a slot of task {taskId} to be claimed ahead");
        return ahead!;
    }

    [Fact]
    public async Task Disabling_a_task_in_the_second_before_its_slot_gives_the_claimed_run_back()
    {
        var task = await CreateAsync("interval", "10m");
        var claimed = await ClaimedAheadAsync(task.Id);

        await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Enabled: false), CancellationToken.None);
        Assert.Empty(await RunsAsync(task.Id));

        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        var witness = await CreateAsync("once", "1s");
        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        await FiredAsync(witness.Id, 1);
        Assert.Empty(await RunsAsync(task.Id));
        Assert.DoesNotContain(claimed.Id, FiredEvents().Select(e => e.RunId)); // nor said to have fired
    }

    private IEnumerable<LoopEvent> FiredEvents() =>
        cluster.Events.Recent(LoopEventHub.RecentLimit).Where(e => e.Kind == "task.fired" && e.ChannelId == _channel);

    [Fact]
    public async Task A_prompt_edited_in_the_second_before_its_slot_is_the_one_that_runs_at_it()
    {
        var task = await CreateAsync("interval", "10m", prompt: "old words");
        var claimed = await ClaimedAheadAsync(task.Id);

        await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Prompt: "new words"), CancellationToken.None);
        var again = await ClaimedAheadAsync(task.Id, except: claimed);
        Assert.Equal(claimed.CreatedAt, again.CreatedAt); // the same slot, claimed again

        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        var run = Assert.Single(await FiredAsync(task.Id, 1));
        Assert.Equal(("new words", claimed.CreatedAt), (run.Prompt, run.CreatedAt));
        Assert.Equal([run.Id], FiredEvents().Select(e => e.RunId));
        Assert.Equal(claimed.CreatedAt.AddMinutes(10), (await StoredAsync(task.Id))!.NextRunAt);
    }

    [Fact]
    public async Task A_slot_missed_while_the_grain_was_away_fires_once_when_it_is_armed_again()
    {
        var task = await CreateAsync("interval", "10m");
        // As after a restart: the store says the slot was due 25 minutes ago.
        var missed = cluster.Time.GetUtcNow().AddMinutes(-25);
        await cluster.Store.UpdateTaskAsync(task with { NextRunAt = missed }, CancellationToken.None);
        await cluster.Grains.GetGrain<ITaskGrain>(task.Id).Arm();

        await FiredAsync(task.Id, 1);
        await Eventually.Until(async () => (await StoredAsync(task.Id))!.NextRunAt > cluster.Time.GetUtcNow(), "the next slot to lie ahead");
        Assert.Equal(missed.AddMinutes(30), (await StoredAsync(task.Id))!.NextRunAt); // the cadence keeps its anchor
    }

    [Fact]
    public async Task An_edit_during_a_run_keeps_the_session_the_run_stores()
    {
        _runner.HoldCalls = true;
        _runner.Answer = _ => new AgentRunResult(AgentOutcome.Succeeded, 0, "done", "session-from-the-run", null, RunUsage.None);
        var task = await CreateAsync("interval", "10m");
        cluster.Time.Advance(TimeSpan.FromMinutes(10));
        var call = await _runner.NextCallAsync();

        await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Prompt: "do it better"), CancellationToken.None);
        call.Release.SetResult();
        await FiredAsync(task.Id, 1);
        await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Name: "renamed"), CancellationToken.None);

        var stored = (await StoredAsync(task.Id))!;
        Assert.Equal("session-from-the-run", stored.SessionId);
        Assert.Equal(("do it better", "renamed"), (stored.Prompt, stored.Name));
    }

    [Fact]
    public async Task A_loop_task_runs_until_the_promise_and_stops_at_max_iterations_otherwise()
    {
        var turn = 0;
        _runner.Answer = request => new AgentRunResult(AgentOutcome.Succeeded, 0,
            Interlocked.Increment(ref turn) >= 3 ? "all done <promise>DONE</promise>" : $"step {turn}", "s1", null, RunUsage.None);
        var done = await CreateAsync("loop", null, "build it");
        var finished = await LoopEndedAsync(done.Id);
        Assert.Equal(LoopState.Completed, finished.LoopState);
        Assert.Equal(3, finished.Iteration);

        turn = -100;
        var capped = await CreateAsync("loop", null, "never ends", maxIterations: 4);
        var stopped = await LoopEndedAsync(capped.Id);
        Assert.Equal(LoopState.Stopped, stopped.LoopState);
        Assert.Equal(4, stopped.Iteration);
        Assert.Contains("max_iterations", stopped.StopReason);
    }

    [Fact]
    public async Task Stopping_a_loop_task_cancels_its_iteration_and_an_edit_meanwhile_does_not_restart_it()
    {
        _runner.HoldCalls = true;
        var task = await CreateAsync("loop", null, "go on");
        var call = await _runner.NextCallAsync();

        var stopped = await cluster.Tasks.StopAsync(Caller.User, task.Id, CancellationToken.None);
        Assert.Equal(LoopState.Stopped, stopped.LoopState);
        await cluster.Tasks.UpdateAsync(Caller.User, task.Id, new TaskChangeRequest(Name: "edited after the stop"), CancellationToken.None);
        var run = (await FiredAsync(task.Id, 1)).Single();
        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.Equal(call.Request.RunId, run.Id);
        Assert.Equal(LoopState.Stopped, (await StoredAsync(task.Id))!.LoopState);
    }

    private async Task<ScheduledTask> LoopEndedAsync(string taskId)
    {
        ScheduledTask? task = null;
        await Eventually.Until(async () => (task = await StoredAsync(taskId))!.LoopState != LoopState.Running, $"loop task {taskId} to end");
        return task!;
    }
}
