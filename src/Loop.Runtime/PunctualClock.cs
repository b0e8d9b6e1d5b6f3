namespace Loop.Runtime;

using System.Diagnostics;

/// <summary>
/// The system clock, with timers that ring on a thread of their own. The system's timers ring
/// through the thread pool's queue, so on a node whose pool is busy with runs (a burst of task
/// slots, two cores shared with PostgreSQL) a timer rings as late as that queue is long; the
/// claimer's timers (slots coming due, runs' instants) must ring on time. Callbacks ring one
/// after another on the one thread: each must only hand its work on.
/// </summary>
public sealed class PunctualClock : TimeProvider
{
    /// <summary>One thread for the process, as the runtime has one for its own timers.</summary>
    public static PunctualClock Instance { get; } = new();

    private readonly object _gate = new();
    // By due timestamp; a timer changed or disposed since leaves its old entry, skipped when it comes out.
    private readonly PriorityQueue<(PunctualTimer Timer, long Version), long> _queue = new();
    private int _liveTimers;

    private PunctualClock()
    {
        new Thread(RingLoop) { IsBackground = true, Name = "Loop punctual timers" }.Start();
    }

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow();

    public override TimeZoneInfo LocalTimeZone => System.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new PunctualTimer(this, callback, state);
        Interlocked.Increment(ref _liveTimers);
        timer.Change(dueTime, period);
        return timer;
    }

    private void Schedule(PunctualTimer timer, long version, long due)
    {
        lock (_gate)
        {
            var soonest = !_queue.TryPeek(out _, out var head) || due < head;
            _queue.Enqueue((timer, version), due);
            if (_queue.Count > 1_024 && _queue.Count > 2 * Volatile.Read(ref _liveTimers))
            {
                // Mostly entries of timers changed or disposed since: the queue follows the live ones.
                var live = _queue.UnorderedItems.Where(e => e.Element.Timer.IsCurrent(e.Element.Version)).ToList();
                _queue.Clear();
                _queue.EnqueueRange(live);
            }
            if (soonest)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    private void Disposed() => Interlocked.Decrement(ref _liveTimers);

    private void RingLoop()
    {
        var due = new List<(PunctualTimer Timer, long Version)>();
        while (true)
        {
            lock (_gate)
            {
                while (true)
                {
                    var now = Stopwatch.GetTimestamp();
                    while (_queue.TryPeek(out var entry, out var at) && at <= now)
                    {
                        _queue.Dequeue();
                        due.Add(entry);
                    }
                    if (due.Count > 0)
                    {
                        break;
                    }
                    Monitor.Wait(_gate, _queue.TryPeek(out _, out var next) ? WaitFor(next - now) : Timeout.Infinite);
                }
            }
            foreach (var (timer, version) in due)
            {
                timer.Ring(version);
            }
            due.Clear();
        }
    }

    /// <summary>Whole milliseconds, rounded up: waking before the instant only means waiting again.</summary>
    private static int WaitFor(long ticks) =>
        (int)Math.Min(int.MaxValue, Math.Max(1, (ticks * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency));

    private sealed class PunctualTimer(PunctualClock clock, TimerCallback callback, object? state) : ITimer
    {
        private readonly Lock _gate = new();
        private long _version;
        private TimeSpan _period = Timeout.InfiniteTimeSpan;
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            long version;
            lock (_gate)
            {
                if (_disposed)
                {
                    return false;
                }
                version = ++_version;
                _period = period;
            }
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                clock.Schedule(this, version, Stopwatch.GetTimestamp() + (long)(Math.Max(0, dueTime.TotalSeconds) * Stopwatch.Frequency));
            }
            return true;
        }

        public bool IsCurrent(long version)
        {
            lock (_gate)
            {
                return !_disposed && version == _version;
            }
        }

        public void Ring(long version)
        {
            TimeSpan period;
            lock (_gate)
            {
                if (_disposed || version != _version)
                {
                    return;
                }
                period = _period;
            }
            callback(state);
            if (period != Timeout.InfiniteTimeSpan && period > TimeSpan.Zero)
            {
                lock (_gate)
                {
                    if (_disposed || version != _version)
                    {
                        return; // changed from the callback
                    }
                }
                clock.Schedule(this, version, Stopwatch.GetTimestamp() + (long)(period.TotalSeconds * Stopwatch.Frequency));
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }
                _disposed = true;
                _version++;
            }
            clock.Disposed();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
