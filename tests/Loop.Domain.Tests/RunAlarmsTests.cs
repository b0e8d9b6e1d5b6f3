namespace Loop.Domain.Tests;

using System.Collections.Concurrent;
using Loop.Runtime;

/// <summary>Alarms for runs claimed ahead, on the test's clock: they ring at their instant, never
/// before it, once for all the runs that share it.</summary>
public sealed class RunAlarmsTests : IDisposable
{
    private readonly ManualTimeProvider _time = new();
    private readonly ConcurrentQueue<string> _rung = new();
    private readonly RunAlarms _alarms;

    public RunAlarmsTests() => _alarms = new RunAlarms(_time);

    public void Dispose() => _alarms.Dispose();

    [Fact]
    public void Alarms_ring_at_their_instant_and_share_one_timer_per_instant()
    {
        var at = _time.GetUtcNow().AddSeconds(2);
        _alarms.At(at, () => _rung.Enqueue("first"));
        _alarms.At(at, () => _rung.Enqueue("second"));
        _alarms.At(at.AddSeconds(1), () => _rung.Enqueue("later"));
        Assert.Equal(2, _alarms.Count);

        _time.Advance(TimeSpan.FromSeconds(2) - TimeSpan.FromTicks(1));
        Assert.Empty(_rung);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(["first", "second"], _rung);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["first", "second", "later"], _rung);
        Assert.Equal(0, _alarms.Count);
    }

    [Fact]
    public async Task An_instant_already_past_rings_at_once()
    {
        _alarms.At(_time.GetUtcNow().AddSeconds(-1), () => _rung.Enqueue("late"));

        await Eventually.Until(() => _rung.Contains("late"), "the alarm for a past instant to ring");
    }

    [Fact]
    public void Disposed_alarms_never_ring()
    {
        _alarms.At(_time.GetUtcNow().AddSeconds(1), () => _rung.Enqueue("x"));
        _alarms.Dispose();
        _alarms.At(_time.GetUtcNow().AddSeconds(1), () => _rung.Enqueue("y"));

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Empty(_rung);
    }
}
