namespace Loop.Runtime;

using System.Collections.Concurrent;
using System.Threading.Channels;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Microsoft.Extensions.Logging;

/// <summary>
/// Fires a node's tasks. Each task's grain arms it here (<see cref="Arm"/>) with its next due
/// instant; the node's <see cref="TaskTimetable"/> hands in the slots that come due together,
/// <see cref="ClaimAhead"/> before their instant, and they are claimed in one store transaction
/// (claim-and-advance: only a task still as it was read, with next_run_at at that slot, fires, so
/// no slot fires twice whatever the number of claimers or restarts). Each task is then armed for
/// its next slot. A claimed run is queued for its slot's instant, which no channel takes it
/// before; at that instant the channels are woken, once each.
/// </summary>
public sealed class TaskClaimer : IAsyncDisposable
{
    /// <summary>How long before its instant a slot is claimed. Claiming ten thousand slots takes
    /// about half a second on SQLite; claimed ahead, they still start on time. A task edited in
    /// that window gives its claimed run back (see <c>TaskGrain.Update</c>).</summary>
    public static readonly TimeSpan ClaimAhead = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan RetryAfterStoreError = TimeSpan.FromSeconds(1);
    private const int MaxCachedSchedules = 4_096;

    private readonly ILoopStore _store;
    private readonly TimeSpan _minimum;
    private readonly MisfireGrace _grace;
    private readonly Func<string, Task> _wakeChannel;
    private readonly ILoopEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger<TaskClaimer> _logger;
    private readonly LoopMetrics? _metrics;
    private readonly TaskTimetable _timetable;
    private readonly RunAlarms _alarms;
    // Runs claimed ahead and given back before their instant (by due instant): their alarm tells no one.
    private readonly ConcurrentDictionary<string, DateTimeOffset> _withdrawn = new(StringComparer.Ordinal);
    private readonly Channel<IReadOnlyList<DueSlot>> _due = Channel.CreateUnbounded<IReadOnlyList<DueSlot>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _claimer;
    // Only the claimer loop touches it.
    private readonly Dictionary<(TaskType, string, string?), TaskSchedule> _schedules = [];

    /// <param name="minimum">No slot follows the one before it sooner: a task stored before the minimum
    /// was set (or raised) is held to it too, without being edited.</param>
    /// <param name="grace">How late a slot may be claimed before a task that skips misfires lets it go.</param>
    public TaskClaimer(ILoopStore store, Func<string, Task> wakeChannel, ILoopEvents events, TaskIntervalMinimum minimum, MisfireGrace grace,
        TimeProvider time, ILogger<TaskClaimer> logger, LoopMetrics? metrics = null)
    {
        _metrics = metrics;
        _minimum = minimum.Value;
        _grace = grace;
        _store = store;
        _wakeChannel = wakeChannel;
        _events = events;
        _time = time;
        _logger = logger;
        _timetable = new TaskTimetable(time, ClaimAhead, slots => _due.Writer.TryWrite(slots));
        _alarms = new RunAlarms(time);
        _claimer = Task.Run(() => ClaimLoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Called with (due, fired) for each slot fired, fired being when its run was claimed and
    /// its instant had come: benchmarks measure lateness with it.</summary>
    public Action<DateTimeOffset, DateTimeOffset>? OnFired { get; set; }

    /// <summary>How many tasks of this node wait for a due instant.</summary>
    public int ArmedCount => _timetable.Count;

    /// <summary>The task, as stored at <paramref name="revision"/>, is next due at <paramref name="due"/>
    /// (null: not at all). A newer revision already armed wins.</summary>
    public void Arm(string taskId, DateTimeOffset? due, long revision) => _timetable.Set(taskId, due, revision);

    /// <summary>When the task is armed to fire next on this node, if it is.</summary>
    public DateTimeOffset? ArmedAt(string taskId) => _timetable.DueAt(taskId);

    /// <summary>Wakes the channel at <paramref name="at"/>, when a task run it has queued for then
    /// comes due (a node that starts with runs claimed ahead).</summary>
    public void WakeAt(string channelId, DateTimeOffset at) => _alarms.At(at, () => _ = WakeAsync(channelId));

    /// <summary>These runs, claimed ahead, were given back before their instant (an edit of their
    /// task): nothing is announced for them when it comes.</summary>
    public void Withdrawn(IEnumerable<Run> runs)
    {
        foreach (var run in runs)
        {
            _withdrawn[run.Id] = run.CreatedAt;
        }
    }

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
                    : new Run(Ids.New("run", _time), task.ChannelId, task.Id, RunStatus.Queued, task.Prompt,
                        slot.DueAt > now ? slot.DueAt : now, // queued for its instant: no channel takes it sooner
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
        var firedNow = new List<FiredSlot>();
        var firedAhead = new Dictionary<DateTimeOffset, List<FiredSlot>>();
        var moved = new List<string>();
        foreach (var (task, firing) in firings)
        {
            if (!claimedIds.Contains(task.Id))
            {
                moved.Add(task.Id); // written meanwhile (an edit, another claimer): read again below
                continue;
            }
            Arm(task.Id, firing.NextRunAt, firing.Revision + 1);
            if (firing.Run is not { } run)
            {
                _logger.LogInformation("Task {TaskId} skipped its missed slot {DueAt} (misfire: skip)", task.Id, firing.DueAt);
                continue;
            }
            var fired = new FiredSlot(task.Name, task.ChannelId, run.Id, firing.DueAt);
            if (run.CreatedAt <= claimedAt)
            {
                firedNow.Add(fired);
            }
            else if (firedAhead.TryGetValue(run.CreatedAt, out var waiting))
            {
                waiting.Add(fired);
            }
            else
            {
                firedAhead[run.CreatedAt] = [fired];
            }
        }
        foreach (var (at, slots) in firedAhead)
        {
            _alarms.At(at, () => _ = FireAsync(slots, _time.GetUtcNow()));
        }
        await FireAsync(firedNow, claimedAt);
        if (moved.Count > 0)
        {
            await ArmFromStoreAsync(moved, stopping);
        }
    }

    /// <summary>Tells the channels that claimed runs of theirs are due now, once per channel however
    /// many of its tasks fired: a burst is thousands of slots on a few channels.</summary>
    private Task FireAsync(List<FiredSlot> slots, DateTimeOffset firedAt)
    {
        var toWake = new HashSet<string>(StringComparer.Ordinal);
        foreach (var slot in slots)
        {
            if (!_withdrawn.IsEmpty && _withdrawn.TryRemove(slot.RunId, out _))
            {
                continue;
            }
            toWake.Add(slot.ChannelId);
            OnFired?.Invoke(slot.DueAt, firedAt);
            _metrics?.TaskFired(slot.DueAt, firedAt);
            _events.Publish(new LoopEvent("task.fired", firedAt, slot.ChannelId, slot.RunId,
                $"task {slot.TaskName} fired (due {slot.DueAt:O}, {(firedAt - slot.DueAt).TotalMilliseconds:F0} ms late)"));
        }
        foreach (var (runId, due) in _withdrawn.IsEmpty ? [] : _withdrawn.ToArray())
        {
            if (due < firedAt - ClaimAhead)
            {
                _withdrawn.TryRemove(runId, out _); // given back as its alarm rang: nothing left to skip
            }
        }
        return Task.WhenAll(toWake.Select(WakeAsync));
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
        _alarms.Dispose();
        await _stopping.CancelAsync();
        _due.Writer.TryComplete();
        await _claimer;
    }

    private sealed record FiredSlot(string TaskName, string ChannelId, string RunId, DateTimeOffset DueAt);
}
