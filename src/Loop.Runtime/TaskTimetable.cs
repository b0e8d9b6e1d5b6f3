namespace Loop.Runtime;

/// <summary>A task's slot that has come due, with the revision of the task it was read from.</summary>
public readonly record struct DueSlot(string TaskId, DateTimeOffset DueAt, long Revision);

/// <summary>
/// When each armed task of a node is next due, on one timer for the whole node: a hundred thousand
/// armed tasks cost a hundred thousand small entries, not as many timers and grain activations,
/// and slots due together come out together. Each entry carries the revision of the stored task it
/// was read from, and an older revision never replaces a newer one, so an edit and a claim that
/// finish in either order leave the newer slot. A stale entry is harmless beyond one read: the
/// claim checks every slot against the store.
/// </summary>
public sealed class TaskTimetable : IDisposable
{
    // ITimer cannot wait longer than about 49 days; a far slot is reached in hops.
    private static readonly TimeSpan MaxTimerDelay = TimeSpan.FromDays(1);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    // Ordered by due instant; an item whose task has moved since is skipped when it comes out.
    private readonly PriorityQueue<string, DateTimeOffset> _queue = new();
    private readonly TimeProvider _time;
    private readonly TimeSpan _lead;
    private readonly Action<IReadOnlyList<DueSlot>> _due;
    private readonly ITimer _timer;
    private DateTimeOffset? _timerAt;
    private bool _disposed;

    /// <param name="lead">How long before its due instant a slot is handed in.</param>
    /// <param name="due">Called with the slots that have come due (less the lead), on a timer's thread.</param>
    public TaskTimetable(TimeProvider time, TimeSpan lead, Action<IReadOnlyList<DueSlot>> due)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lead, TimeSpan.Zero);
        _time = time;
        _lead = lead;
        _due = due;
        _timer = time.CreateTimer(_ => TakeDue(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>How many tasks wait for a slot (including slots being claimed).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The task (as stored at <paramref name="revision"/>) is next due at <paramref name="due"/>,
    /// or not at all (null). Ignored when the timetable already has a newer revision of it.</summary>
    public void Set(string taskId, DateTimeOffset? due, long revision)
    {
        lock (_gate)
        {
            Entry? known = _entries.TryGetValue(taskId, out var entry) ? entry : null;
            if (known?.Revision > revision)
            {
                return;
            }
            if (due is not { } at)
            {
                _entries.Remove(taskId);
                return;
            }
            if (known is not null && known.Value.DueAt == at && (known.Value.Queued || known.Value.Revision == revision))
            {
                // Already waiting for that slot, or claiming it as read: the claim says what comes next.
                _entries[taskId] = known.Value with { Revision = revision };
                return;
            }
            _entries[taskId] = new Entry(at, revision, Queued: true);
            _queue.Enqueue(taskId, at);
            CompactIfMostlyStale();
            if (_timerAt is null || at < _timerAt)
            {
                ScheduleTimer(at);
            }
        }
    }

    /// <summary>The due instant the timetable holds for a task, if any.</summary>
    public DateTimeOffset? DueAt(string taskId)
    {
        lock (_gate)
        {
            return _entries.TryGetValue(taskId, out var entry) ? entry.DueAt : null;
        }
    }

    private void TakeDue()
    {
        List<DueSlot> slots = [];
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _timerAt = null;
            var until = _time.GetUtcNow() + _lead;
            while (_queue.TryPeek(out var taskId, out var at) && at <= until)
            {
                _queue.Dequeue();
                if (_entries.TryGetValue(taskId, out var entry) && entry.Queued && entry.DueAt == at)
                {
                    // The entry stays (and counts as armed) until its claim sets what comes next.
                    _entries[taskId] = entry with { Queued = false };
                    slots.Add(new DueSlot(taskId, at, entry.Revision));
                }
            }
            if (_queue.TryPeek(out _, out var next))
            {
                ScheduleTimer(next);
            }
        }
        if (slots.Count > 0)
        {
            _due(slots);
        }
    }

    private void ScheduleTimer(DateTimeOffset at)
    {
        _timerAt = at;
        var delay = at - _lead - _time.GetUtcNow();
        if (delay <= TimeSpan.Zero)
        {
            // Due already: taken at once on the thread pool, whatever clock the timer runs on, and
            // never inside this lock (a test's clock may fire a zero-delay timer on the spot).
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            ThreadPool.UnsafeQueueUserWorkItem(static timetable => timetable.TakeDue(), this, preferLocal: false);
            return;
        }
        _timer.Change(delay > MaxTimerDelay ? MaxTimerDelay : delay, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Edits leave items behind in the queue until their instant; when they outnumber the
    /// live ones, the queue is rebuilt, so its size follows the number of tasks.</summary>
    private void CompactIfMostlyStale()
    {
        if (_queue.Count <= 1_024 || _queue.Count <= 2 * _entries.Count)
        {
            return;
        }
        _queue.Clear();
        foreach (var (taskId, entry) in _entries)
        {
            if (entry.Queued)
            {
                _queue.Enqueue(taskId, entry.DueAt);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
        _timer.Dispose();
    }

    private readonly record struct Entry(DateTimeOffset DueAt, long Revision, bool Queued);
}
