namespace Loop.Runtime;

using System.Threading.Channels;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Microsoft.Extensions.Logging;

/// <summary>What became of a due slot a task handed in: <see cref="Fired"/> when its run was
/// queued; in every case the task's next due instant as the store now has it (null: nothing is
/// due, the task is disabled, done or gone).</summary>
public sealed record SlotClaim(bool Fired, DateTimeOffset? NextDue, bool Gone = false);

/// <summary>
/// Claims the due slots of a node's tasks. Each task's grain hands in its slot when its timer
/// fires; slots that come due together are claimed in one store transaction (claim-and-advance:
/// only a task whose next_run_at is still that slot fires, so no slot fires twice whatever the
/// number of claimers or restarts), and the channels whose runs were queued are woken.
/// </summary>
public sealed class TaskClaimer : IAsyncDisposable
{
    private static readonly TimeSpan RetryAfterStoreError = TimeSpan.FromSeconds(1);
    private const int MaxClaimBatch = 2_000;
    private const int MaxCachedSchedules = 4_096;

    private readonly ILoopStore _store;
    private readonly TimeSpan _minimum;
    private readonly MisfireGrace _grace;
    private readonly Func<string, Task> _wakeChannel;
    private readonly ILoopEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger<TaskClaimer> _logger;
    private readonly Channel<DueSlot> _due = Channel.CreateUnbounded<DueSlot>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _claimer;
    private int _armed;
    // Only the claimer loop touches it.
    private readonly Dictionary<(TaskType, string, string?), TaskSchedule> _schedules = [];

    /// <param name="minimum">No slot follows the one before it sooner: a task stored before the minimum
    /// was set (or raised) is held to it too, without being edited.</param>
    /// <param name="grace">How late a slot may be claimed before a task that skips misfires lets it go.</param>
    public TaskClaimer(ILoopStore store, Func<string, Task> wakeChannel, ILoopEvents events, TaskIntervalMinimum minimum, MisfireGrace grace,
        TimeProvider time, ILogger<TaskClaimer> logger)
    {
        _minimum = minimum.Value;
        _grace = grace;
        _store = store;
        _wakeChannel = wakeChannel;
        _events = events;
        _time = time;
        _logger = logger;
        _claimer = Task.Run(() => ClaimLoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Called with (due, claimed) for each slot fired: benchmarks measure lateness with it.</summary>
    public Action<DateTimeOffset, DateTimeOffset>? OnFired { get; set; }

    /// <summary>How many tasks of this node wait for a due instant (their grains say so).</summary>
    public int ArmedCount => Volatile.Read(ref _armed);

    public void Armed(bool armed) => Interlocked.Add(ref _armed, armed ? 1 : -1);

    /// <summary>Claims the task's slot due at <paramref name="dueAt"/>, with the others due now.</summary>
    public Task<SlotClaim> ClaimAsync(string taskId, DateTimeOffset dueAt)
    {
        var slot = new DueSlot(taskId, dueAt);
        if (!_due.Writer.TryWrite(slot))
        {
            slot.Claimed.TrySetCanceled();
        }
        return slot.Claimed.Task;
    }

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
                await ClaimBatchAsync(batch, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        while (_due.Reader.TryRead(out var left))
        {
            left.Claimed.TrySetCanceled(stopping);
        }
    }

    private async Task ClaimBatchAsync(List<DueSlot> batch, CancellationToken stopping)
    {
        var now = _time.GetUtcNow();
        // A task hands in one slot at a time; the newest wins if a stale one is still queued.
        var due = new Dictionary<string, DueSlot>(batch.Count, StringComparer.Ordinal);
        foreach (var slot in batch)
        {
            if (due.TryGetValue(slot.TaskId, out var older))
            {
                older.Claimed.TrySetResult(new SlotClaim(false, slot.DueAt));
            }
            due[slot.TaskId] = slot;
        }

        // Grains keep only what their timers need; the rest of each task is read when it fires.
        List<(ScheduledTask Task, TaskFiring Firing)> firings;
        IReadOnlyList<Run> queued;
        try
        {
            var tasks = await _store.GetTasksAsync(due.Keys, stopping);
            foreach (var gone in due.Keys.Except(tasks.Select(t => t.Id)).ToList())
            {
                due[gone].Claimed.TrySetResult(new SlotClaim(false, null, Gone: true));
                due.Remove(gone);
            }
            firings = new List<(ScheduledTask, TaskFiring)>(tasks.Count);
            foreach (var task in tasks)
            {
                var slot = due[task.Id];
                if (!task.Enabled || task.NextRunAt != slot.DueAt)
                {
                    // Edited or disabled since its timer was set: the stored truth decides.
                    slot.Claimed.TrySetResult(new SlotClaim(false, task.Enabled ? task.NextRunAt : null));
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
                    slot.Claimed.TrySetResult(new SlotClaim(false, null));
                    continue;
                }
                Run? run = !_grace.Fires(task.Misfire, slot.DueAt, now)
                    ? null
                    : new Run(Ids.New("run", _time), task.ChannelId, task.Id, RunStatus.Queued, task.Prompt, now,
                        null, null, null, null, null, null, null, null, RunUsage.None);
                firings.Add((task, new TaskFiring(task.Id, slot.DueAt, next, run)));
            }
            queued = firings.Count == 0 ? [] : await _store.ClaimTaskFiringsAsync(firings.Select(f => f.Firing).ToList(), now, stopping);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Could not claim {Count} due task slot(s); retrying in {Delay}", due.Count, RetryAfterStoreError);
            _events.Publish(new LoopEvent("task.error", _time.GetUtcNow(), null, null, $"could not claim due task slots: {error.Message}"));
            await Task.Delay(RetryAfterStoreError, _time, stopping);
            foreach (var slot in due.Values.Where(s => !s.Claimed.Task.IsCompleted))
            {
                _due.Writer.TryWrite(slot);
            }
            return;
        }

        var claimedAt = _time.GetUtcNow();
        var queuedRuns = queued.ToDictionary(r => r.TaskId!, StringComparer.Ordinal);
        // One wake-up per channel, however many of its tasks fired: a burst is thousands of slots on a few channels.
        var toWake = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (task, firing) in firings)
        {
            var slot = due[task.Id];
            if (queuedRuns.TryGetValue(task.Id, out var run))
            {
                toWake.Add(task.ChannelId);
                OnFired?.Invoke(firing.DueAt, claimedAt);
                _events.Publish(new LoopEvent("task.fired", claimedAt, task.ChannelId, run.Id,
                    $"task {task.Name} fired (due {firing.DueAt:O}, {(claimedAt - firing.DueAt).TotalMilliseconds:F0} ms late)"));
                slot.Claimed.TrySetResult(new SlotClaim(true, firing.NextRunAt));
            }
            else if (firing.Run is null)
            {
                _logger.LogInformation("Task {TaskId} skipped its missed slot {DueAt} (misfire: skip)", task.Id, firing.DueAt);
                slot.Claimed.TrySetResult(new SlotClaim(false, firing.NextRunAt));
            }
            else
            {
                // Another claimer (a second node, a concurrent edit) moved the slot: take the stored truth.
                var stored = await _store.GetTaskAsync(task.Id, stopping);
                slot.Claimed.TrySetResult(new SlotClaim(false, stored is { Enabled: true } ? stored.NextRunAt : null, Gone: stored is null));
            }
        }
        await Task.WhenAll(toWake.Select(WakeAsync));
    }

    private async Task WakeAsync(string channelId)
    {
        try
        {
            await _wakeChannel(channelId);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // The run is queued in the store: the channel takes it at its next wake-up or start.
            _logger.LogError(error, "Could not wake channel {ChannelId} for a task run", channelId);
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

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        await _stopping.CancelAsync();
        _due.Writer.TryComplete();
        await _claimer;
    }

    private sealed record DueSlot(string TaskId, DateTimeOffset DueAt)
    {
        public TaskCompletionSource<SlotClaim> Claimed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
