namespace Loop.Domain.Tests;

using System.Collections.Concurrent;
using System.Diagnostics;
using Loop.Runtime;

/// <summary>The claimer's timers, rung on a thread of their own: never before their time, in the
/// order of their times, and not after being changed away or disposed.</summary>
public sealed class PunctualClockTests
{
    private static readonly PunctualClock Clock = PunctualClock.Instance;

    [Fact]
    public async Task Timers_ring_in_the_order_of_their_times_and_never_before_them()
    {
        var rung = new ConcurrentQueue<(string Name, TimeSpan After)>();
        var started = Stopwatch.GetTimestamp();
        var timers = new[] { ("third", 120), ("first", 20), ("second", 60) }
            .Select(t => Clock.CreateTimer(_ => rung.Enqueue((t.Item1, Stopwatch.GetElapsedTime(started))), null,
                TimeSpan.FromMilliseconds(t.Item2), Timeout.InfiniteTimeSpan))
            .ToList();

        await Eventually.Until(() => rung.Count == 3, "three timers rung");

        Assert.Equal(["first", "second", "third"], rung.Select(r => r.Name));
        Assert.All(rung.Zip([20, 60, 120]), r => Assert.True(r.First.After >= TimeSpan.FromMilliseconds(r.Second), $"{r.First.Name} rang after {r.First.After}"));
        timers.ForEach(t => t.Dispose());
    }

    [Fact]
    public async Task A_timer_changed_rings_at_its_new_time_only_and_a_disposed_one_not_at_all()
    {
        var rung = new ConcurrentQueue<string>();
        using var moved = Clock.CreateTimer(_ => rung.Enqueue("moved"), null, TimeSpan.FromMilliseconds(30), Timeout.InfiniteTimeSpan);
        var gone = Clock.CreateTimer(_ => rung.Enqueue("gone"), null, TimeSpan.FromMilliseconds(30), Timeout.InfiniteTimeSpan);
        using var stopped = Clock.CreateTimer(_ => rung.Enqueue("stopped"), null, TimeSpan.FromMilliseconds(30), Timeout.InfiniteTimeSpan);
        moved.Change(TimeSpan.FromMilliseconds(150), Timeout.InfiniteTimeSpan);
        gone.Dispose();
        stopped.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        using var last = Clock.CreateTimer(_ => rung.Enqueue("last"), null, TimeSpan.FromMilliseconds(300), Timeout.InfiniteTimeSpan);

        await Eventually.Until(() => rung.Contains("last"), "the last timer rung");

        Assert.Equal(["moved", "last"], rung);
        Assert.False(gone.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan));
    }

    [Fact]
    public async Task A_periodic_timer_rings_again_until_disposed()
    {
        var count = 0;
        var timer = Clock.CreateTimer(_ => Interlocked.Increment(ref count), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(10));
        await Eventually.Until(() => Volatile.Read(ref count) >= 3, "three rings");
        timer.Dispose();
        var after = Volatile.Read(ref count);
        using var marker = new ManualResetEventSlim();
        using var next = Clock.CreateTimer(_ => marker.Set(), null, TimeSpan.FromMilliseconds(50), Timeout.InfiniteTimeSpan);
        Assert.True(marker.Wait(TimeSpan.FromSeconds(30)));
        Assert.True(Volatile.Read(ref count) <= after + 1, "at most a ring already under way when it was disposed");
    }

    [Fact]
    public async Task Many_timers_changed_again_and_again_ring_once_each_at_their_last_time()
    {
        var rung = new ConcurrentDictionary<int, int>();
        var timers = Enumerable.Range(0, 200)
            .Select(i => Clock.CreateTimer(_ => rung.AddOrUpdate(i, 1, (_, n) => n + 1), null, TimeSpan.FromHours(1), Timeout.InfiniteTimeSpan))
            .ToList();
        // Thousands of stale entries: the queue is rebuilt from the live ones as they pile up.
        for (var round = 0; round < 20; round++)
        {
            foreach (var timer in timers)
            {
                timer.Change(TimeSpan.FromHours(1 + round), Timeout.InfiniteTimeSpan);
            }
        }
        foreach (var timer in timers)
        {
            timer.Change(TimeSpan.FromMilliseconds(10), Timeout.InfiniteTimeSpan);
        }

        await Eventually.Until(() => rung.Count == 200, "every timer rung");

        Assert.All(rung.Values, n => Assert.Equal(1, n));
        timers.ForEach(t => t.Dispose());
    }
}
