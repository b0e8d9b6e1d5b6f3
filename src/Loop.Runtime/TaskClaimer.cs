namespace Loop.Runtime;

using System.Threading.Channels;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Microsoft.Extensions.Logging;

/// <summary>
/// Fires a node's tasks. Each task's grain arms it here (<see cref="Arm"/>) with its next due
/// instant; the node's <see cref="TaskTimetable"/> hands in the slots that come due together, and
/// they are claimed in one store transaction (claim-and-advance: only a task still as it was read,
/// with next_run_at at that slot, fires, so no slot fires twice whatever the number of claimers or
/// restarts). Each task is then armed for its next slot, and the channels whose runs were queued
/// are woken, once each.
/// </summary>
public sealed class TaskClaimer : IAsyncDisposable
{
    private static readonly TimeSpan RetryAfterStoreError = TimeSpan.FromSeconds(1);
    private const int MaxCachedSchedules = 4_096;

    private readonly ILoopStore _store;
    private readonly TimeSpan _minimum;
    private readonly MisfireGrace _grace;
    private readonly Func<string, Task> _wakeChannel;
    private readonly ILoopEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger<TaskClaimer> _logger;
    private readonly TaskTimetable _timetable;
    private readonly Channel<IReadOnlyList<DueSlot>> _due = Channel.CreateUnbounded<IReadOnlyList<DueSlot>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _claimer;
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
        _timetable = new TaskTimetable(time, slots => _due.Writer.TryWrite(slots));
        _claimer = Task.Run(() => ClaimLoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Called with (due, claimed) for each slot fired: benchmarks measure lateness with it.</summary>
    public Action<DateTimeOffset, DateTimeOffset>? OnFired { get; set; }

    /// <summary>How many tasks of this node wait for a due instant.</summary>
    public int ArmedCount => _timetable.Count;

    /// <summary>The task, as stored at <paramref name="revision"/>, is next due at <paramref name="due"/>
    /// (null: not at all). A newer revision already armed wins.</summary>
    public void Arm(string taskId, DateTimeOffset? due, long revision) => _timetable.Set(taskId, due, revision);

    /// <summary>When the task is armed to fire next on this node, if it is.</summary>
    public DateTimeOffset? ArmedAt(string taskId) => _timetable.DueAt(taskId);

    private async Task ClaimLoopAsync(CancellationToken stopping)
    {
        var batch = new List<DueSlot>();
        try
        {
            while (await _due.Reader.WaitToReadAsync(stopping))
            {
                batch.Clear();
                while (_due.Reader.TryRead(out var slots))
                {
                    batch.AddRange(slots);
                }
                await ClaimBatchAsync(batch, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task ClaimBatchAsync(List<DueSlot> batch, CancellationToken stopping)
    {
        var now = _time.GetUtcNow();
        var due = new Dictionary<string, DueSlot>(batch.Count, StringComparer.Ordinal);
        foreach (var slot in batch)
        {
            due[slot.TaskId] = slot; // a task has one slot due at a time; the last handed in is the newest
        }

        List<(ScheduledTask Task, TaskFiring Firing)> firings;
        IReadOnlyList<TaskFiring> claimed;
        try
        {
            // The timetable keeps only instants; the rest of each task is read when it fires.
            var tasks = await _store.GetTasksAsync(due.Keys, stopping);
            ArmGone(due.Keys, tasks);
            firings = new List<(ScheduledTask, TaskFiring)>(tasks.Count);
            foreach (var task in tasks)
            {
                var slot = due[task.Id];
                if (task.NextDue != slot.DueAt)
                {
                    ArmAsStored(task); // edited or disabled since it was armed: the stored truth decides
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
                    Arm(task.Id, null, task.Revision);
                    continue;
                }
                Run? run = !_grace.Fires(task.Misfire, slot.DueAt, now)
                    ? null
                    : new Run(Ids.New("run", _time), task.ChannelId, task.Id, RunStatus.Queued, task.Prompt, now,
                        null, null, null, null, null, null, null, null, RunUsage.None);
                firings.Add((task, new TaskFiring(task.Id, task.Revision, slot.DueAt, next, run)));
            }
            claimed = firings.Count == 0 ? [] : await _store.ClaimTaskFiringsAsync(firings.Select(f => f.Firing).ToList(), now, stopping);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            _logger.LogError(error, "Could not claim {Count} due task slot(s); retrying in {Delay}", due.Count, RetryAfterStoreError);
            _events.Publish(new LoopEvent("task.error", _time.GetUtcNow(), null, null, $"could not claim due task slots: {error.Message}"));
            await Task.Delay(RetryAfterStoreError, _time, stopping);
            _due.Writer.TryWrite(due.Values.ToList());
            return;
        }

        var claimedAt = _time.GetUtcNow();
        var claimedIds = claimed.Select(f => f.TaskId).ToHashSet(StringComparer.Ordinal);
        // One wake-up per channel, however many of its tasks fired: a burst is thousands of slots on a few channels.
        var toWake = new HashSet<string>(StringComparer.Ordinal);
        var moved = new List<string>();
        foreach (var (task, firing) in firings)
        {
            if (!claimedIds.Contains(task.Id))
            {
                moved.Add(task.Id); // written meanwhile (an edit, another claimer): read again below
                continue;
            }
            Arm(task.Id, firing.NextRunAt, firing.Revision + 1);
            if (firing.Run is { } run)
            {
                toWake.Add(task.ChannelId);
                OnFired?.Invoke(firing.DueAt, claimedAt);
                _events.Publish(new LoopEvent("task.fired", claimedAt, task.ChannelId, run.Id,
                    $"task {task.Name} fired (due {firing.DueAt:O}, {(claimedAt - firing.DueAt).TotalMilliseconds:F0} ms late)"));
            }
            else
            {
                _logger.LogInformation("Task {TaskId} skipped its missed slot {DueAt} (misfire: skip)", task.Id, firing.DueAt);
            }
        }
        await Task.WhenAll(toWake.Select(WakeAsync));
        if (moved.Count > 0)
        {
            await ArmFromStoreAsync(moved, stopping);
        }
    }

    /// <summary>Arms tasks as the store has them now.</summary>
    private async Task ArmFromStoreAsync(IReadOnlyCollection<string> taskIds, CancellationToken stopping)
    {
        try
        {
            var tasks = await _store.GetTasksAsync(taskIds, stopping);
            ArmGone(taskIds, tasks);
            foreach (var task in tasks)
            {
                ArmAsStored(task);
            }
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // Their entries stay; whoever wrote them armed what they wrote.
            _logger.LogError(error, "Could not read {Count} task(s) back after their claim lost to a write", taskIds.Count);
        }
    }

    private void ArmAsStored(ScheduledTask task) =>
        Arm(task.Id, task.NextDue, task.Revision);

    private void ArmGone(IEnumerable<string> taskIds, IReadOnlyList<ScheduledTask> found)
    {
        foreach (var gone in taskIds.Except(found.Select(t => t.Id), StringComparer.Ordinal))
        {
            Arm(gone, null, long.MaxValue);
        }
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
        _timetable.Dispose();
        await _stopping.CancelAsync();
        _due.Writer.TryComplete();
        await _claimer;
    }
}
