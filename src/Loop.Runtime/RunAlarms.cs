namespace Loop.Runtime;

/// <summary>
/// Rings at the instants that task runs claimed ahead of their slot come due: one timer per
/// instant, however many runs share it. A timer that fires before its instant by the system
/// clock (timers and the wall clock drift apart) waits again for the rest, since a run taken
/// early would be a slot fired early.
/// </summary>
public sealed class RunAlarms : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<DateTimeOffset, Alarm> _alarms = [];
    private readonly TimeProvider _time;
    private bool _disposed;

    public RunAlarms(TimeProvider time) => _time = time;

    /// <summary>How many instants are waited for.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _alarms.Count;
            }
        }
    }

    /// <summary>Calls <paramref name="ring"/> on a timer's thread once <paramref name="at"/> has come
    /// (never, once disposed).</summary>
    public void At(DateTimeOffset at, Action ring)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return; // the node is stopping: its runs wait in the store for the next start
            }
            if (_alarms.TryGetValue(at, out var alarm))
            {
                alarm.Rings.Add(ring);
                return;
            }
            alarm = new Alarm(at);
            alarm.Rings.Add(ring);
            _alarms[at] = alarm;
            alarm.Timer = _time.CreateTimer(static state => ((RunAlarms)((object[])state!)[0]).Ring((Alarm)((object[])state)[1]),
                new object[] { this, alarm }, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            Schedule(alarm);
        }
    }

    private void Ring(Alarm alarm)
    {
        lock (_gate)
        {
            if (_disposed || !_alarms.TryGetValue(alarm.At, out var current) || current != alarm)
            {
                return;
            }
            if (alarm.At > _time.GetUtcNow())
            {
                Schedule(alarm);
                return;
            }
            _alarms.Remove(alarm.At);
            alarm.Timer!.Dispose();
        }
        foreach (var ring in alarm.Rings)
        {
            ring();
        }
    }

    private void Schedule(Alarm alarm)
    {
        var delay = alarm.At - _time.GetUtcNow();
        if (delay > TimeSpan.Zero)
        {
            alarm.Timer!.Change(delay, Timeout.InfiniteTimeSpan);
            return;
        }
        // Come already: rung on the thread pool, never inside the lock (a test's clock may fire a
        // zero-delay timer on the spot).
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Alarms.Ring(state.Alarm), (Alarms: this, Alarm: alarm), preferLocal: false);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var alarm in _alarms.Values)
            {
                alarm.Timer?.Dispose();
            }
            _alarms.Clear();
        }
    }

    private sealed class Alarm(DateTimeOffset at)
    {
        public DateTimeOffset At { get; } = at;
        public List<Action> Rings { get; } = [];
        public ITimer? Timer { get; set; }
    }
}
