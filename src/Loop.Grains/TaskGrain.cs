namespace Loop.Grains;

using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>What task grains need from their node.</summary>
public sealed record TaskGrainParts(ILoopStore Store, TaskEdits Edits, TaskClaimer Claimer, ILoopEvents Events, TimeProvider Time);

/// <summary>
/// Owns one task. A cron, interval or once task waits for its due instant on a timer; a reminder
/// (every <see cref="ReminderPeriod"/>) keeps the grain active and armed, and brings it back after
/// a restart. The slot is claimed through the node's <see cref="TaskClaimer"/>, which batches the
/// slots that come due together. Loop tasks have no timer: each run's end decides the next
/// iteration. Every change to the task is made here, one at a time.
/// </summary>
[CollectionAgeLimit(Minutes = 30)]
public sealed class TaskGrain(TaskGrainParts parts, ILogger<TaskGrain> logger) : Grain, ITaskGrain, IRemindable
{
    public static readonly TimeSpan ReminderPeriod = TimeSpan.FromMinutes(10);
    private const string ReminderName = "armed";
    // ITimer cannot wait longer than about 49 days; a far slot is reached in hops.
    private static readonly TimeSpan MaxTimerDelay = TimeSpan.FromDays(1);

    private ITimer? _timer;
    private DateTimeOffset? _dueAt;
    private bool _reminded;

    private string Id => this.GetPrimaryKeyString();
    private ILoopStore Store => parts.Store;
    private DateTimeOffset Now => parts.Time.GetUtcNow();

    public async Task Arm()
    {
        var task = await Store.GetTaskAsync(Id, CancellationToken.None);
        await WaitForAsync(task is { Enabled: true } && task.Type != TaskType.Loop ? task.NextRunAt : null);
    }

    public Task ArmAt(DateTimeOffset dueAt) => WaitForAsync(dueAt);

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (_dueAt is null)
        {
            await Arm(); // activated by the reminder (after a restart, or after being collected)
        }
    }

    public async Task Fire(DateTimeOffset dueAt)
    {
        if (_dueAt != dueAt)
        {
            return; // the task changed since this timer was set
        }
        if (dueAt > Now)
        {
            SetTimer(dueAt); // a hop towards a far slot
            return;
        }
        var claim = await parts.Claimer.ClaimAsync(Id, dueAt);
        await WaitForAsync(claim.Gone ? null : claim.NextDue);
    }

    public async Task<TaskEdit> Update(TaskChangeRequest change)
    {
        if (await Store.GetTaskAsync(Id, CancellationToken.None) is not { } task)
        {
            return Missing();
        }
        ScheduledTask updated;
        try
        {
            updated = parts.Edits.Apply(task, change, Now);
        }
        catch (LoopValidationException invalid)
        {
            return new TaskEdit(TaskProblem.Invalid, invalid.Field, invalid.Message);
        }
        if (!await Store.UpdateTaskAsync(updated, CancellationToken.None))
        {
            return Missing();
        }
        await WaitForAsync(updated is { Enabled: true } && updated.Type != TaskType.Loop ? updated.NextRunAt : null);
        return TaskEdit.Done;
    }

    public async Task<TaskEdit> StartLoop()
    {
        if (await Store.GetTaskAsync(Id, CancellationToken.None) is not { } task)
        {
            return Missing();
        }
        if (task.Type != TaskType.Loop)
        {
            return new TaskEdit(TaskProblem.Conflict, null,
                $"task {Id} is a {TaskWire.ToWire(task.Type)} task; only loop tasks are started and stopped (toggle it with PATCH {{\"enabled\": true}})");
        }
        if (task.LoopState == LoopState.Running)
        {
            return new TaskEdit(TaskProblem.Conflict, null, $"loop task {Id} is already running (iteration {task.Iteration}); stop it first");
        }
        var started = task with { Enabled = true, Iteration = 1, LoopState = LoopState.Running, StopReason = null, LastOutput = null };
        await QueueIterationAsync(started, LoopTaskPolicy.PromptFor(started));
        return TaskEdit.Done;
    }

    public async Task<TaskEdit> StopLoop()
    {
        if (await Store.GetTaskAsync(Id, CancellationToken.None) is not { } task)
        {
            return Missing();
        }
        if (task.Type != TaskType.Loop)
        {
            return new TaskEdit(TaskProblem.Conflict, null,
                $"task {Id} is a {TaskWire.ToWire(task.Type)} task; only loop tasks are started and stopped (disable it with PATCH {{\"enabled\": false}})");
        }
        if (task.LoopState != LoopState.Running)
        {
            return new TaskEdit(TaskProblem.Conflict, null, $"loop task {Id} is not running ({TaskWire.ToWire(task.LoopState)})");
        }
        await Store.UpdateTaskAsync(task with { LoopState = LoopState.Stopped, StopReason = $"stopped by request at iteration {task.Iteration}", UpdatedAt = Now },
            CancellationToken.None);
        await CancelActiveRunsAsync();
        return TaskEdit.Done;
    }

    public async Task<TaskEdit> Delete()
    {
        if (!await Store.DeleteTaskAsync(Id, CancellationToken.None))
        {
            return Missing();
        }
        await WaitForAsync(null);
        await CancelActiveRunsAsync();
        return TaskEdit.Done;
    }

    public async Task ResumeLoop()
    {
        if (await Store.GetTaskAsync(Id, CancellationToken.None) is { Type: TaskType.Loop, LoopState: LoopState.Running, Enabled: true } task)
        {
            await QueueIterationAsync(task, LoopTaskPolicy.PromptFor(task));
            logger.LogWarning("Loop task {TaskId} resumes at iteration {Iteration} after a daemon stop", task.Id, task.Iteration);
        }
    }

    public async Task RunFinished(string runId)
    {
        var task = await Store.GetTaskAsync(Id, CancellationToken.None);
        if (task is not { Type: TaskType.Loop, LoopState: LoopState.Running } || await Store.GetRunAsync(runId, CancellationToken.None) is not { } run)
        {
            return; // not a loop task, or stopped meanwhile
        }
        var decision = LoopTaskPolicy.After(task, run);
        if (decision.NextPrompt is { } prompt)
        {
            await QueueIterationAsync(task with { Iteration = task.Iteration + 1, LastOutput = run.Reply }, prompt);
            return;
        }
        var now = Now;
        await Store.UpdateTaskAsync(task with { LoopState = decision.State, StopReason = decision.StopReason, LastOutput = run.Reply, UpdatedAt = now },
            CancellationToken.None);
        if (decision.State == LoopState.Failed)
        {
            // A failed iteration's reason quotes the run's error, which can quote the conversation.
            logger.LogInformation("Loop task {TaskId} ended {State} after {Iteration} iteration(s): run {RunId} {Status}",
                task.Id, TaskWire.ToWire(decision.State), task.Iteration, run.Id, run.Status.ToWire());
            logger.LogDebug("Loop task {TaskId} ended {State}: {Reason}", task.Id, TaskWire.ToWire(decision.State), decision.StopReason);
        }
        else
        {
            logger.LogInformation("Loop task {TaskId} ended {State} after {Iteration} iteration(s): {Reason}",
                task.Id, TaskWire.ToWire(decision.State), task.Iteration, decision.StopReason);
        }
        parts.Events.Publish(new LoopEvent(decision.State == LoopState.Failed ? "task.error" : "task.loop_ended", now, task.ChannelId, run.Id,
            $"loop task {task.Name}: {decision.StopReason}"));
    }

    /// <summary>Writes the task's state and queues its next iteration in one transaction, then wakes its channel.</summary>
    private async Task QueueIterationAsync(ScheduledTask task, string prompt)
    {
        var now = Now;
        var run = new Run(Ids.New("run", parts.Time), task.ChannelId, task.Id, RunStatus.Queued, prompt, now,
            null, null, null, null, null, null, null, null, RunUsage.None);
        await Store.QueueTaskRunAsync(run, task with { UpdatedAt = now }, CancellationToken.None);
        await GrainFactory.GetGrain<IChannelGrain>(task.ChannelId).Wake();
    }

    private async Task CancelActiveRunsAsync()
    {
        foreach (var run in (await Store.ListTaskRunsAsync(Id, 5, null, CancellationToken.None)).Where(r => !r.Status.IsFinal()))
        {
            await GrainFactory.GetGrain<IChannelGrain>(run.ChannelId).CancelRun(run.Id);
        }
    }

    private TaskEdit Missing() => new(TaskProblem.NotFound, null, $"task {Id} does not exist");

    /// <summary>Waits for the slot due at <paramref name="due"/>, with a reminder that keeps the
    /// grain armed; with none, lets the reminder go and the grain be collected.</summary>
    private async Task WaitForAsync(DateTimeOffset? due)
    {
        SetTimer(due);
        if (due is not null)
        {
            if (!_reminded)
            {
                // Read first: after a restart the reminder is usually there already.
                if (await this.GetReminder(ReminderName) is null)
                {
                    await this.RegisterOrUpdateReminder(ReminderName, ReminderPeriod, ReminderPeriod);
                }
                _reminded = true;
            }
            return;
        }
        if (await this.GetReminder(ReminderName) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }
        _reminded = false;
        DeactivateOnIdle();
    }

    private void SetTimer(DateTimeOffset? due)
    {
        var wasArmed = _dueAt is not null;
        _timer?.Dispose();
        _timer = null;
        _dueAt = due;
        if (wasArmed != due is not null)
        {
            parts.Claimer.Armed(due is not null);
        }
        if (due is not { } instant)
        {
            return;
        }
        var self = this.AsReference<ITaskGrain>();
        var delay = instant - Now;
        if (delay <= TimeSpan.Zero)
        {
            _ = self.Fire(instant); // queued behind this call
            return;
        }
        // The task's own clock (a test's controls it), calling back into the grain as a message.
        _timer = parts.Time.CreateTimer(_ => _ = self.Fire(instant), null, delay > MaxTimerDelay ? MaxTimerDelay : delay, Timeout.InfiniteTimeSpan);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        SetTimer(null);
        return Task.CompletedTask;
    }
}
