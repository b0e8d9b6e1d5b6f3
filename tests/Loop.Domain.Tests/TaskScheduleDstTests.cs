using Loop.Domain.Tasks;
using static Loop.Domain.Tests.TaskScheduleTests;

namespace Loop.Domain.Tests;

/// <summary>Cron across daylight-saving changes, by Cronos's rule: a skipped wall time fires once, when
/// the clock jumps; a repeated wall time fires on both passes when the seconds, minutes or hours field
/// holds <c>*</c>, a range or a step (so "every 15 minutes" fires every real 15 minutes), and once, on
/// its first pass, when those fields name fixed times (so "daily at 02:30" fires once a day).</summary>
/// <remarks>
/// 2026 changes used here:
/// Europe/Berlin: 29 Mar 01:00Z, 02:00 CET → 03:00 CEST; 25 Oct 01:00Z, 03:00 CEST → 02:00 CET.
/// America/New_York: 8 Mar 07:00Z, 02:00 EST → 03:00 EDT; 1 Nov 06:00Z, 02:00 EDT → 01:00 EST.
/// Australia/Lord_Howe (30-minute DST): 4 Apr 15:00Z, 02:00 (+11) → 01:30 (+10:30);
/// 3 Oct 15:30Z, 02:00 (+10:30) → 02:30 (+11).
/// </remarks>
public sealed class TaskScheduleDstTests
{
    private static readonly DateTimeOffset Created = At("2026-01-01T00:00:00Z");

    /// <summary>Chains NextAfter from <paramref name="after"/>, as the scheduler does, while before <paramref name="until"/>.</summary>
    private static List<DateTimeOffset> Firings(string cron, string zone, string after, string until)
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, cron, zone, Created);
        var end = At(until);
        var firings = new List<DateTimeOffset>();
        for (var next = schedule.NextAfter(At(after)); next is { } due && due < end; next = schedule.NextAfter(due))
        {
            firings.Add(due);
        }
        return firings;
    }

    private static List<DateTimeOffset> Every(TimeSpan step, string from, string until)
    {
        var all = new List<DateTimeOffset>();
        for (var t = At(from); t < At(until); t += step)
        {
            all.Add(t);
        }
        return all;
    }

    private static void AssertInstants(IEnumerable<string> expected, IEnumerable<DateTimeOffset> actual) =>
        Assert.Equal(expected.Select(At), actual);

    // ---- daily jobs at a time the change skips or repeats ----

    [Fact]
    public void Berlin_daily_0230_fires_once_when_the_clock_jumps_on_the_spring_forward_day()
    {
        AssertInstants(
            ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"], // 02:30 CET, 03:00 CEST (the jump), 02:30 CEST
            Firings("30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z"));
    }

    [Fact]
    public void Berlin_daily_0230_fires_once_on_the_first_pass_on_the_fall_back_day()
    {
        AssertInstants(
            ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"], // CEST, first 02:30 (CEST), CET
            Firings("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z"));
    }

    [Fact]
    public void Berlin_daily_0230_asked_during_the_repeated_hour_does_not_fire_again()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "30 2 * * *", "Europe/Berlin", Created);

        // 01:10Z is 02:10 CET on the second pass: today's 02:30 already happened at 00:30Z.
        Assert.Equal(At("2026-10-26T01:30:00Z"), schedule.NextAfter(At("2026-10-25T01:10:00Z")));
    }

    [Fact]
    public void New_York_daily_0230_and_0130_across_both_changes()
    {
        AssertInstants(
            ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"], // EST, the jump to 03:00 EDT, EDT
            Firings("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"));
        AssertInstants(
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"], // EDT, first 01:30 (EDT), EST
            Firings("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z"));
    }

    [Fact]
    public void Daily_job_at_the_change_itself()
    {
        // 02:00 Berlin does not exist on 29 March (fires at the jump) and happens twice on 25 October (first only).
        AssertInstants(["2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"],
            Firings("0 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z"));
        AssertInstants(["2026-10-24T00:00:00Z", "2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"],
            Firings("0 2 * * *", "Europe/Berlin", "2026-10-23T23:00:00Z", "2026-10-27T00:00:00Z"));
        // 03:00 exists on both days, once.
        AssertInstants(["2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"],
            Firings("0 3 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z"));
        AssertInstants(["2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z"],
            Firings("0 3 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z"));
    }

    [Fact]
    public void Jobs_at_several_times_inside_the_skipped_hour_fire_once_at_the_jump()
    {
        AssertInstants(["2026-03-28T01:00:00Z", "2026-03-28T01:15:00Z", "2026-03-28T01:30:00Z", "2026-03-28T01:45:00Z",
                        "2026-03-29T01:00:00Z",
                        "2026-03-30T00:00:00Z"],
            Firings("*/15 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-30T00:15:00Z"));
    }

    [Fact]
    public void Jobs_at_fixed_times_inside_the_repeated_hour_fire_on_the_first_pass_only()
    {
        AssertInstants(["2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z",
                        "2026-10-26T01:00:00Z"],
            Firings("0,15,30,45 2 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", "2026-10-26T01:15:00Z"));
    }

    [Fact]
    public void Jobs_every_15_minutes_within_the_repeated_hour_fire_on_both_passes()
    {
        // A step in the minutes field makes it an interval: it keeps its cadence through the repeat.
        AssertInstants(["2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z", // CEST
                        "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z", "2026-10-25T01:30:00Z", "2026-10-25T01:45:00Z", // CET
                        "2026-10-26T01:00:00Z"],
            Firings("*/15 2 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", "2026-10-26T01:15:00Z"));
    }

    // ---- hourly and minutely jobs follow the real clock ----

    [Theory]
    [InlineData("Europe/Berlin", "2026-03-28T20:00:00Z", "2026-03-29T06:00:00Z")]
    [InlineData("Europe/Berlin", "2026-10-24T20:00:00Z", "2026-10-25T06:00:00Z")]
    [InlineData("America/New_York", "2026-03-08T03:00:00Z", "2026-03-08T12:00:00Z")]
    [InlineData("America/New_York", "2026-11-01T02:00:00Z", "2026-11-01T11:00:00Z")]
    public void Hourly_fires_every_real_hour_across_the_change(string zone, string from, string until)
    {
        var expected = Every(TimeSpan.FromHours(1), from, until);

        Assert.Equal(expected, Firings("0 * * * *", zone, At(from).AddTicks(-1).ToString("O"), until));
        Assert.Equal(expected, Firings("@hourly", zone, At(from).AddTicks(-1).ToString("O"), until));
    }

    [Theory]
    [InlineData("Europe/Berlin", "2026-03-28T22:00:00Z", "2026-03-29T03:00:00Z")]
    [InlineData("Europe/Berlin", "2026-10-24T22:00:00Z", "2026-10-25T03:00:00Z")]
    [InlineData("America/New_York", "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z")]
    [InlineData("America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z")]
    public void Every_15_minutes_fires_every_real_15_minutes_across_the_change(string zone, string from, string until)
    {
        var expected = Every(TimeSpan.FromMinutes(15), from, until);

        Assert.Equal(expected, Firings("*/15 * * * *", zone, At(from).AddTicks(-1).ToString("O"), until));
    }

    [Theory]
    [InlineData("Europe/Berlin", "2026-03-29T00:50:00Z", "2026-03-29T01:10:00Z")]
    [InlineData("Europe/Berlin", "2026-10-25T00:50:00Z", "2026-10-25T01:10:00Z")]
    public void Every_minute_and_every_second_fire_without_duplicates_or_gaps(string zone, string from, string until)
    {
        Assert.Equal(Every(TimeSpan.FromMinutes(1), from, until),
            Firings("* * * * *", zone, At(from).AddTicks(-1).ToString("O"), until));
        Assert.Equal(Every(TimeSpan.FromSeconds(1), from, until),
            Firings("* * * * * *", zone, At(from).AddTicks(-1).ToString("O"), until));
    }

    [Fact]
    public void Half_past_every_hour_fires_every_real_hour_and_once_at_the_jump()
    {
        // 02:30 CET never shows on 29 March: it fires when the clock jumps to 03:00 CEST, then 03:30 CEST as usual.
        AssertInstants(["2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"],
            Firings("30 * * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", "2026-03-29T03:00:00Z"));
        AssertInstants(["2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"],
            Firings("30 * * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z"));
    }

    [Fact]
    public void Hourly_asked_from_anywhere_in_the_repeated_hour_gives_the_next_real_hour()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "0 * * * *", "Europe/Berlin", Created);

        Assert.Equal(At("2026-10-25T01:00:00Z"), schedule.NextAfter(At("2026-10-25T00:20:00Z"))); // 02:20 CEST → 02:00 CET
        Assert.Equal(At("2026-10-25T02:00:00Z"), schedule.NextAfter(At("2026-10-25T01:20:00Z"))); // 02:20 CET → 03:00 CET
    }

    [Fact]
    public void Every_two_hours_fires_at_the_jump_and_on_both_passes_of_the_repeat()
    {
        AssertInstants(["2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T04:00:00Z"],
            Firings("0 */2 * * *", "Europe/Berlin", "2026-03-28T22:30:00Z", "2026-03-29T05:00:00Z"));
        AssertInstants(["2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T03:00:00Z"], // 02:00 CEST and CET
            Firings("0 */2 * * *", "Europe/Berlin", "2026-10-24T21:30:00Z", "2026-10-25T04:00:00Z"));
    }

    // ---- a 30-minute change ----

    [Fact]
    public void Lord_Howe_half_hour_changes()
    {
        // Spring forward: 02:00-02:30 never shows. Every half hour follows the clock; 02:00 fires at the jump.
        AssertInstants(["2026-10-03T14:30:00Z", "2026-10-03T15:00:00Z", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z"],
            Firings("*/30 * * * *", "Australia/Lord_Howe", "2026-10-03T14:00:00Z", "2026-10-03T16:30:00Z"));
        AssertInstants(["2026-10-02T15:30:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:00:00Z"],
            Firings("0 2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00:00Z", "2026-10-05T00:00:00Z"));

        // Fall back: 01:30-02:00 shows twice. Every half hour fires on both passes; 01:45 daily once.
        AssertInstants(["2026-04-04T14:00:00Z", "2026-04-04T14:30:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:30:00Z", "2026-04-04T16:00:00Z"],
            Firings("*/30 * * * *", "Australia/Lord_Howe", "2026-04-04T13:45:00Z", "2026-04-04T16:15:00Z"));
        AssertInstants(["2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"],
            Firings("45 1 * * *", "Australia/Lord_Howe", "2026-04-03T00:00:00Z", "2026-04-06T00:00:00Z"));
    }

    [Fact]
    public void Kolkata_has_no_changes()
    {
        Assert.Equal(Every(TimeSpan.FromDays(1), "2026-03-01T03:30:00Z", "2026-12-01T00:00:00Z"),
            Firings("0 9 * * *", "Asia/Kolkata", "2026-03-01T00:00:00Z", "2026-12-01T00:00:00Z"));
    }

    // ---- cost ----

    [Fact]
    public void Next_after_in_a_zone_allocates_nothing_on_the_usual_path()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "*/5 * * * *", "Europe/Berlin", Created);
        var after = At("2026-06-01T00:00:00Z");
        schedule.NextAfter(after);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            after = schedule.NextAfter(after)!.Value;
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(At("2026-06-01T00:00:00Z").AddMinutes(5 * 10_000), after);
        Assert.True(allocated < 10_000, $"allocated {allocated} bytes for 10,000 evaluations");
    }
}
