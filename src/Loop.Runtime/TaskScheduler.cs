namespace Loop.Runtime;

using System.Threading.Channels;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Microsoft.Extensions.Logging;

/// <summary>
/// Keeps one <see cref="TaskActor"/> per time-based task, each with a timer set for its due
/// instant (no poll loop). A timer that fires hands its slot to one claimer loop, which claims
/// every slot due at that moment in one store transaction (claim-and-advance: a restart or a
/// second node never fires a slot twice), then wakes the channels whose runs it queued.
/// Loop tasks have no timer: each iteration's end queues the next.
/// </summary>
public sealed class TaskScheduler : IAsyncDisposable
{
    // ITimer cannot wait longer than about 49 days; a far slot is reached in hops.
    private static readonly TimeSpan MaxTimerDelay = TimeSpan.FromDays(1);
    private static readonly TimeSpan RetryAfterStoreError = TimeSpan.FromSeconds(1);
    private const int MaxClaimBatch = 2_000;
    private const int MaxCachedSchedules = 4_096;

    private readonly ILoopStore _store;
    private readonly TimeSpan _minimum;
    private readonly Func<string, Task> _wakeChannel;
    private readonly LoopEventHub _events;
    private readonly TimeProvider _time;
    private readonly ILogger<TaskScheduler> _logger;
    private readonly object _gate = new();
    private readonly Dictionary<string, TaskActor> _actors = new(StringComparer.Ordinal);
    private readonly Channel<DueSlot> _due = Channel.CreateUnbounded<DueSlot>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private Task _claimer = Task.CompletedTask;
    // Only the claimer loop touches it.
    private readonly Dictionary<(TaskType, string, string?), TaskSchedule> _schedules = [];

    /// <param name="minimum">No slot follows the one before it sooner: a task stored before the minimum
    /// was set (or raised) is held to it too, without being edited.</param>
    public TaskScheduler(ILoopStore store, Func<string, Task> wakeChannel, LoopEventHub events, TaskIntervalMinimum minimum, TimeProvider time, ILogger<TaskScheduler> logger)
    {
        _minimum = minimum.Value;
        _store = store;
        _wakeChannel = wakeChannel;
        _events = events;
        _time = time;
        _logger = logger;
    }

    /// <summary>Called with (due, claimed) for each slot fired: benchmarks measure lateness with it.</summary>
    public Action<DateTimeOffset, DateTimeOffset>? OnFired { get; set; }

    public int ArmedCount
    {
        get { lock (_gate) { return _actors.Values.Count(a => a.IsArmed); } }
    }

    /// <summary>Arms every enabled task, applying each one's misfire policy to slots missed while the
    /// daemon was down, and resumes loop tasks whose iteration a stop interrupted.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var tasks = await _store.ListTasksAsync(null, cancellationToken);
        var missed = 0;
        foreach (var task in tasks)
        {
            if (task.Type == TaskType.Loop)
            {
                if (task.LoopState == LoopState.Running && task.Enabled)
                {
                    await QueueIterationAsync(task, LoopTaskPolicy.PromptFor(task), cancellationToken);
                    _logger.LogWarning("Loop task {TaskId} resumes at iteration {Iteration} after a daemon stop", task.Id, task.Iteration);
                }
                continue;
            }
            if (task.Enabled && task.NextRunAt is { } due && due <= now)
            {
                missed++;
            }
            Arm(task);
        }
        _claimer = Task.Run(() => ClaimLoopAsync(_stopping.Token), CancellationToken.None);
        _logger.LogInformation("Scheduler armed {Armed} task(s); {Missed} had missed slots while the daemon was down", ArmedCount, missed);
    }

    /// <summary>Takes a task's new state (created, edited, toggled): its timer moves at once.</summary>
    public void Refresh(ScheduledTask task) => Arm(task);

    public void Forget(string taskId)
    {
        lock (_gate)
        {
            if (_actors.Remove(taskId, out var actor))
            {
                actor.Disarm();
            }
        }
    }

    private void Arm(ScheduledTask task)
    {
        lock (_gate)
        {
            if (!_actors.TryGetValue(task.Id, out var actor))
            {
                actor = new TaskActor(this, task.Id);
                _actors.Add(task.Id, actor);
            }
            actor.Set(task.Enabled ? task.NextRunAt : null);
        }
    }

    private void Enqueue(DueSlot slot) => _due.Writer.TryWrite(slot);

    private async Task ClaimLoopAsync(CancellationToken stopping)
    {
        var batch = new List<DueSlot>();
        try
        {
            while (await _due.Reader.WaitToReadAsync(stopping))
            {
                batch.Clear();
                while (batch.Count < MaxClaimBatch && _due.Reader.TryRead(out var slot))
                {
                    batch.Add(slot);
                }
                await ClaimAsync(batch, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task ClaimAsync(List<DueSlot> batch, CancellationToken stopping)
    {
        var now = _time.GetUtcNow();
        var due = new Dictionary<string, DueSlot>(batch.Count, StringComparer.Ordinal);
        lock (_gate)
        {
            foreach (var slot in batch)
            {
                // A slot whose task was edited, disabled or deleted since its timer was set is stale.
                if (_actors.TryGetValue(slot.TaskId, out var actor) && actor.DueAt == slot.DueAt)
                {
                    due[slot.TaskId] = slot;
                }
            }
        }
        if (due.Count == 0)
        {
            return;
        }

        // Actors keep only what their timers need; the rest of each task is read when it fires.
        List<(ScheduledTask Task, TaskFiring Firing)> firings;
        IReadOnlyList<Run> queued;
        try
        {
            var tasks = await _store.GetTasksAsync(due.Keys, stopping);
            firings = new List<(ScheduledTask, TaskFiring)>(tasks.Count);
            foreach (var task in tasks)
            {
                var slot = due[task.Id];
                if (!task.Enabled || task.NextRunAt != slot.DueAt)
                {
                    Arm(task);
                    continue;
                }
                DateTimeOffset? next;
                try
                {
                    next = NextSlot(ScheduleOf(task), slot.DueAt, now);
                }
                catch (ScheduleFormatException invalid)
                {
                    _logger.LogError("Task {TaskId} has a schedule that no longer parses ({Error}); it will not fire until edited", task.Id, invalid.Message);
                    _events.Publish(new LoopEvent("task.error", now, task.ChannelId, null, $"task {task.Id}: {invalid.Message}"));
                    Arm(task with { Enabled = false });
                    continue;
                }
                var late = now - slot.DueAt > TimeSpan.FromMinutes(1);
                Run? run = late && task.Misfire == MisfirePolicy.Skip
                    ? null
                    : new Run(Ids.New("run", _time), task.ChannelId, task.Id, RunStatus.Queued, task.Prompt, now,
                        null, null, null, null, null, null, null, null, RunUsage.None);
                firings.Add((task, new TaskFiring(task.Id, slot.DueAt, next, run)));
            }
            queued = await _store.ClaimTaskFiringsAsync(firings.Select(f => f.Firing).ToList(), now, stopping);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Could not claim {Count} due task slot(s); retrying in {Delay}", due.Count, RetryAfterStoreError);
            _events.Publish(new LoopEvent("task.error", _time.GetUtcNow(), null, null, $"could not claim due task slots: {error.Message}"));
            await Task.Delay(RetryAfterStoreError, _time, stopping);
            foreach (var slot in due.Values)
            {
                Enqueue(slot);
            }
            return;
        }

        var claimedAt = _time.GetUtcNow();
        var queuedRuns = queued.ToDictionary(r => r.TaskId!, StringComparer.Ordinal);
        foreach (var (task, firing) in firings)
        {
            if (queuedRuns.TryGetValue(task.Id, out var run))
            {
                await _wakeChannel(task.ChannelId);
                OnFired?.Invoke(firing.DueAt, claimedAt);
                _events.Publish(new LoopEvent("task.fired", claimedAt, task.ChannelId, run.Id,
                    $"task {task.Name} fired (due {firing.DueAt:O}, {(claimedAt - firing.DueAt).TotalMilliseconds:F0} ms late)"));
            }
            else if (firing.Run is null)
            {
                _logger.LogInformation("Task {TaskId} skipped its missed slot {DueAt} (misfire: skip)", task.Id, firing.DueAt);
            }
            else
            {
                // Another claimer (a second node, a concurrent edit) moved the slot: take the stored truth.
                var stored = await _store.GetTaskAsync(task.Id, stopping);
                if (stored is null)
                {
                    Forget(task.Id);
                }
                else
                {
                    Arm(stored);
                }
                continue;
            }
            lock (_gate)
            {
                if (_actors.TryGetValue(task.Id, out var actor) && actor.DueAt == firing.DueAt)
                {
                    actor.Set(firing.NextRunAt);
                }
            }
        }
    }

    /// <summary>Parsed schedules, shared by tasks with the same one. Bounded: cleared when full,
    /// since parsing again is cheap and a cache must not grow with the number of tasks.</summary>
    private TaskSchedule ScheduleOf(ScheduledTask task)
    {
        var key = (task.Type, task.Schedule, task.TimeZone);
        if (_schedules.TryGetValue(key, out var cached))
        {
            return cached;
        }
        if (_schedules.Count >= MaxCachedSchedules)
        {
            _schedules.Clear();
        }
        return _schedules[key] = TaskSchedule.FromStored(task.Type, task.Schedule, task.TimeZone);
    }

    /// <summary>The slot after <paramref name="due"/>, at least the minimum interval after it; when the
    /// daemon is behind (it was down), the first slot after now, so missed slots fire at most once.</summary>
    private DateTimeOffset? NextSlot(TaskSchedule schedule, DateTimeOffset due, DateTimeOffset now)
    {
        var after = due > now ? due : now;
        var earliest = due + _minimum - TimeSpan.FromTicks(1);
        return schedule.NextAfter(after > earliest ? after : earliest, anchor: due);
    }

    /// <summary>Called when any run ends: a loop task's iteration decides the next one.</summary>
    public void RunFinished(Run run)
    {
        if (run.TaskId is null)
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                await AdvanceLoopAsync(run, _stopping.Token);
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                _logger.LogError(error, "Loop task {TaskId} could not continue after run {RunId}", run.TaskId, run.Id);
                _events.Publish(new LoopEvent("task.error", _time.GetUtcNow(), run.ChannelId, run.Id, $"loop task {run.TaskId} could not continue: {error.Message}"));
            }
        });
    }

    private async Task AdvanceLoopAsync(Run run, CancellationToken cancellationToken)
    {
        var task = await _store.GetTaskAsync(run.TaskId!, cancellationToken);
        if (task is not { Type: TaskType.Loop, LoopState: LoopState.Running })
        {
            return; // not a loop task, or stopped meanwhile
        }
        var decision = LoopTaskPolicy.After(task, run);
        var now = _time.GetUtcNow();
        if (decision.NextPrompt is { } prompt)
        {
            var next = task with { Iteration = task.Iteration + 1, LastOutput = run.Reply, UpdatedAt = now };
            await QueueIterationAsync(next, prompt, cancellationToken);
            return;
        }
        await _store.UpdateTaskAsync(task with { LoopState = decision.State, StopReason = decision.StopReason, LastOutput = run.Reply, UpdatedAt = now }, cancellationToken);
        if (decision.State == LoopState.Failed)
        {
            // A failed iteration's reason quotes the run's error, which can quote the conversation.
            _logger.LogInformation("Loop task {TaskId} ended {State} after {Iteration} iteration(s): run {RunId} {Status}",
                task.Id, TaskWire.ToWire(decision.State), task.Iteration, run.Id, run.Status.ToWire());
            _logger.LogDebug("Loop task {TaskId} ended {State}: {Reason}", task.Id, TaskWire.ToWire(decision.State), decision.StopReason);
        }
        else
        {
            _logger.LogInformation("Loop task {TaskId} ended {State} after {Iteration} iteration(s): {Reason}",
                task.Id, TaskWire.ToWire(decision.State), task.Iteration, decision.StopReason);
        }
        _events.Publish(new LoopEvent(decision.State == LoopState.Failed ? "task.error" : "task.loop_ended", now, task.ChannelId, run.Id,
            $"loop task {task.Name}: {decision.StopReason}"));
    }

    /// <summary>Writes the task's state and queues its next iteration, then wakes its channel.</summary>
    public async Task QueueIterationAsync(ScheduledTask task, string prompt, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var run = new Run(Ids.New("run", _time), task.ChannelId, task.Id, RunStatus.Queued, prompt, now,
            null, null, null, null, null, null, null, null, RunUsage.None);
        await _store.QueueTaskRunAsync(run, task with { UpdatedAt = now }, cancellationToken);
        await _wakeChannel(task.ChannelId);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        await _stopping.CancelAsync();
        lock (_gate)
        {
            foreach (var actor in _actors.Values)
            {
                actor.Disarm();
            }
            _actors.Clear();
        }
        await _claimer;
    }

    private sealed record DueSlot(string TaskId, DateTimeOffset DueAt);

    /// <summary>One task's timer: it wakes at the task's due instant and hands the slot to the
    /// claimer. It holds only the id and the instant, so 100,000 armed tasks stay small.</summary>
    private sealed class TaskActor(TaskScheduler scheduler, string taskId)
    {
        private ITimer? _timer;

        public DateTimeOffset? DueAt { get; private set; }
        public bool IsArmed => _timer is not null;

        /// <summary>Caller holds the scheduler's lock. Null: nothing is due (disabled, done).</summary>
        public void Set(DateTimeOffset? dueAt)
        {
            DueAt = dueAt;
            Disarm();
            if (dueAt is not { } due)
            {
                return;
            }
            var delay = due - scheduler._time.GetUtcNow();
            if (delay <= TimeSpan.Zero)
            {
                scheduler.Enqueue(new DueSlot(taskId, due));
                return;
            }
            var hop = delay > MaxTimerDelay ? MaxTimerDelay : delay;
            _timer = scheduler._time.CreateTimer(_ => Wake(due), null, hop, Timeout.InfiniteTimeSpan);
        }

        private void Wake(DateTimeOffset due)
        {
            lock (scheduler._gate)
            {
                if (DueAt == due)
                {
                    // Either the slot is due, or this was a hop towards a far slot: Set decides.
                    Set(due);
                }
            }
        }

        public void Disarm()
        {
            _timer?.Dispose();
            _timer = null;
        }
    }
}
