namespace Loop.Domain.Tests;

using System.Collections.Concurrent;
using Loop.Runtime;

/// <summary>The node's timetable on the test's clock: what comes due when, and which of two
/// arms of one task wins.</summary>
public sealed class TaskTimetableTests : IDisposable
{
    private readonly ManualTimeProvider _time = new();
    private readonly ConcurrentQueue<IReadOnlyList<DueSlot>> _handedIn = new();
    private readonly TaskTimetable _timetable;

    public TaskTimetableTests() => _timetable = new TaskTimetable(_time, TimeSpan.Zero, _handedIn.Enqueue);

    public void Dispose() => _timetable.Dispose();

    private DateTimeOffset In(TimeSpan span) => _time.GetUtcNow() + span;

    private List<DueSlot> Slots() => _handedIn.SelectMany(s => s).ToList();

    [Fact]
    public void Slots_come_due_at_their_instant_and_those_due_together_come_out_together()
    {
        var at = In(TimeSpan.FromMinutes(5));
        for (var i = 0; i < 1_000; i++)
        {
            _timetable.Set($"task{i}", at, 0);
        }
        _timetable.Set("later", at.AddSeconds(1), 0);

        _time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        Assert.Empty(_handedIn);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(1_000, Assert.Single(_handedIn).Count);
        Assert.DoesNotContain(Slots(), s => s.TaskId == "later");

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(new DueSlot("later", at.AddSeconds(1), 0), Slots().Last());
        Assert.Equal(1_001, _timetable.Count); // armed until their claims say what comes next
    }

    [Fact]
    public void With_a_lead_slots_come_out_that_long_before_their_instant()
    {
        using var ahead = new TaskTimetable(_time, TimeSpan.FromSeconds(2), _handedIn.Enqueue);
        var at = In(TimeSpan.FromMinutes(1));
        ahead.Set("t", at, 0);

        _time.Advance(TimeSpan.FromSeconds(57));
        Assert.Empty(_handedIn);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([new DueSlot("t", at, 0)], Slots()); // the instant is still the slot's own
    }

    [Fact]
    public void An_older_revision_is_ignored_and_a_newer_one_moves_the_slot()
    {
        var first = In(TimeSpan.FromMinutes(1));
        var edited = In(TimeSpan.FromMinutes(2));
        _timetable.Set("t", first, 3);
        _timetable.Set("t", edited, 4);
        _timetable.Set("t", first, 3); // a claim that read the task before the edit reports late
        Assert.Equal(edited, _timetable.DueAt("t"));

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal([new DueSlot("t", edited, 4)], Slots());
    }

    [Fact]
    public void A_disarmed_task_never_comes_due()
    {
        _timetable.Set("t", In(TimeSpan.FromMinutes(1)), 1);
        _timetable.Set("t", null, 2);
        Assert.Equal(0, _timetable.Count);
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Empty(_handedIn);
    }

    [Fact]
    public void Arming_the_same_slot_again_hands_it_in_once()
    {
        var at = In(TimeSpan.FromMinutes(1));
        _timetable.Set("t", at, 1);
        _timetable.Set("t", at, 1);
        _timetable.Set("t", at, 2);
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal([new DueSlot("t", at, 2)], Slots());

        _timetable.Set("t", at, 2); // the grain re-arms while the slot is being claimed
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Single(Slots());
    }

    [Fact]
    public async Task A_slot_already_due_is_handed_in_without_waiting_for_the_clock()
    {
        _timetable.Set("t", In(TimeSpan.FromMinutes(-10)), 0);
        await Eventually.Until(() => !_handedIn.IsEmpty, "the missed slot to be handed in");
        Assert.Single(Slots());
    }

    [Fact]
    public void A_slot_months_away_is_reached_in_hops()
    {
        var at = In(TimeSpan.FromDays(90));
        _timetable.Set("t", at, 0);
        for (var day = 0; day < 89; day++)
        {
            _time.Advance(TimeSpan.FromDays(1));
        }
        Assert.Empty(_handedIn);
        _time.Advance(TimeSpan.FromDays(1));
        Assert.Equal([new DueSlot("t", at, 0)], Slots());
    }

    [Fact]
    public void Many_edits_of_one_task_leave_only_its_last_slot()
    {
        for (var revision = 0; revision < 10_000; revision++)
        {
            _timetable.Set("t", In(TimeSpan.FromMinutes(1 + (revision % 500))), revision);
        }
        var last = _timetable.DueAt("t")!.Value;
        _time.Advance(TimeSpan.FromMinutes(600));
        Assert.Equal([new DueSlot("t", last, 9_999)], Slots());
    }
}
