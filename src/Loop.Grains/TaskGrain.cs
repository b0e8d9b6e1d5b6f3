namespace Loop.Grains;

using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>What task grains need from their node.</summary>
public sealed record TaskGrainParts(ILoopStore Store, TaskEdits Edits, TaskClaimer Claimer, ILoopEvents Events, TimeProvider Time);

/// <summary>
/// Owns one task: every change to it is made here, one at a time. A cron, interval or once task is
/// armed on its node's <see cref="TaskClaimer"/>, which fires it at its due instant; a reminder
/// (every <see cref="ReminderPeriod"/>) records that the task is armed and arms it again wherever
/// the grain comes back (after a restart, on another node). Loop tasks are not armed: each run's
/// end decides the next iteration. Between calls the grain holds nothing, so it does not stay
/// active: a hundred thousand armed tasks are a hundred thousand timetable entries, not grains.
/// </summary>
public sealed class TaskGrain(TaskGrainParts parts, ILogger<TaskGrain> logger) : Grain, ITaskGrain, IRemindable
{
    public static readonly TimeSpan ReminderPeriod = TimeSpan.FromHours(1);
    private const string ReminderName = "armed";
    // An edit is read, applied and written again when a claim wrote the task in between.
    private const int MaxEditAttempts = 8;

    private string Id => this.GetPrimaryKeyString();
    private ILoopStore Store => parts.Store;
    private DateTimeOffset Now => parts.Time.GetUtcNow();

    public async Task Arm() => await ArmAsync(await Store.GetTaskAsync(Id, CancellationToken.None));

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (parts.Claimer.ArmedAt(Id) is not null)
        {
            DeactivateOnIdle(); // armed here already: every change since has armed it too
            return Task.CompletedTask;
        }
        return Arm(); // after a restart elsewhere, or its last slot fired: the store decides
    }

    public async Task<TaskEdit> Update(TaskChangeRequest change)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (await Store.GetTaskAsync(Id, CancellationToken.None) is not { } task)
            {
                return Missing();
            }
            var now = Now;
            // A slot claimed ahead but not yet due is given back: the change decides it.
            var claimedAhead = await Store.ListRunsClaimedAheadAsync(Id, now, CancellationToken.None);
            ScheduledTask updated;
            try
            {
                updated = parts.Edits.Apply(TaskEdits.Unclaimed(task, claimedAhead), change, now);
            }
            catch (LoopValidationException invalid)
            {
                return new TaskEdit(TaskProblem.Invalid, invalid.Field, invalid.Message);
            }
            catch (LoopConflictException conflict)
            {
                return new TaskEdit(TaskProblem.Conflict, null, conflict.Message);
            }
            switch (await Store.UpdateTaskAsync(updated, claimedAhead.Select(r => r.Id).ToList(), CancellationToken.None))
            {
                case TaskWrite.Missing:
                    return Missing();
                case TaskWrite.Stale when attempt < MaxEditAttempts:
                    continue; // its slot was claimed (or its claimed run began) meanwhile: apply the change to what that left
                case TaskWrite.Stale:
                    return new TaskEdit(TaskProblem.Conflict, null, $"task {Id} kept changing while it was edited; try again");
                default:
                    parts.Claimer.Withdrawn(claimedAhead);
                    await ArmAsync(updated with { Revision = updated.Revision + 1 });
                    return TaskEdit.Done;
            }
        }
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
        await WriteAsync(task with { LoopState = LoopState.Stopped, StopReason = $"stopped by request at iteration {task.Iteration}", UpdatedAt = Now });
        await CancelActiveRunsAsync();
        return TaskEdit.Done;
    }

    public async Task<TaskEdit> Delete()
    {
        if (!await Store.DeleteTaskAsync(Id, CancellationToken.None))
        {
            return Missing();
        }
        await ArmAsync(null);
        await CancelActiveRunsAsync();
        return TaskEdit.Done;
    }

    public async Task ResumeLoop()
    {
        // Every node that takes over a dead one's work asks: an iteration queued or running already is not queued again.
        if (await Store.GetTaskAsync(Id, CancellationToken.None) is { Type: TaskType.Loop, LoopState: LoopState.Running, Enabled: true } task
            && !(await Store.ListRunsAsync(new RunQuery(1, TaskId: Id), CancellationToken.None)).Any(r => !r.Status.IsFinal()))
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
        await WriteAsync(task with { LoopState = decision.State, StopReason = decision.StopReason, LastOutput = run.Reply, UpdatedAt = now });
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
        Written(await Store.QueueTaskRunAsync(run, task with { UpdatedAt = now }, CancellationToken.None));
        await GrainFactory.GetGrain<IChannelGrain>(task.ChannelId).Wake();
    }

    private async Task CancelActiveRunsAsync()
    {
        foreach (var run in (await Store.ListRunsAsync(new RunQuery(5, TaskId: Id), CancellationToken.None)).Where(r => !r.Status.IsFinal()))
        {
            await GrainFactory.GetGrain<IChannelGrain>(run.ChannelId).CancelRun(run.Id);
        }
    }

    private TaskEdit Missing() => new(TaskProblem.NotFound, null, $"task {Id} does not exist");

    /// <summary>A loop task's state, which only this grain writes (no claim touches a loop task).</summary>
    private async Task WriteAsync(ScheduledTask task) => Written(await Store.UpdateTaskAsync(task, CancellationToken.None));

    private void Written(TaskWrite write)
    {
        if (write != TaskWrite.Written)
        {
            throw new InvalidOperationException($"task {Id} could not be written ({write}): it was changed or deleted outside its grain");
        }
    }

    /// <summary>Arms the task as stored (null: it is gone) on this node, with a reminder while it is
    /// armed; then lets the grain go, since the timetable now holds all it needs.</summary>
    private async Task ArmAsync(ScheduledTask? task)
    {
        var due = task?.NextDue;
        parts.Claimer.Arm(Id, due, task?.Revision ?? long.MaxValue);
        var reminder = await this.GetReminder(ReminderName);
        if (due is not null && reminder is null)
        {
            // The first tick at a random point of the period: tasks created together tick apart.
            await this.RegisterOrUpdateReminder(ReminderName, ReminderPeriod * (0.1 + 0.9 * Random.Shared.NextDouble()), ReminderPeriod);
        }
        else if (due is null && reminder is not null)
        {
            await this.UnregisterReminder(reminder);
        }
        DeactivateOnIdle();
    }
}
