using System.Globalization;
using Loop.Domain.Tasks;

namespace Loop.Domain.Tests;

/// <summary>Parsing and evaluation of each task type; DST behaviour is in TaskScheduleDstTests.</summary>
public sealed class TaskScheduleTests
{
    private static readonly DateTimeOffset Now = At("2026-03-01T12:00:00Z");

    internal static DateTimeOffset At(string instant) =>
        DateTimeOffset.Parse(instant, CultureInfo.InvariantCulture, DateTimeStyles.None);

    private static ScheduleFormatException Refused(TaskType type, string? schedule, string? zone = null) =>
        Assert.Throws<ScheduleFormatException>(() => TaskSchedule.Parse(type, schedule, zone, Now));

    // ---- cron ----

    [Theory]
    [InlineData("*/5 * * * *", "2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z")]
    [InlineData("0 9 * * 1-5", "2026-03-01T12:00:00Z", "2026-03-02T09:00:00Z")] // 1 March 2026 is a Sunday
    [InlineData("0 17 * * *", "2026-03-01T17:00:00Z", "2026-03-02T17:00:00Z")] // strictly after
    [InlineData("30 2 1 JAN *", "2026-03-01T12:00:00Z", "2027-01-01T02:30:00Z")]
    [InlineData("*/10 * * * * *", "2026-03-01T12:00:05Z", "2026-03-01T12:00:10Z")] // 6 fields, seconds first
    [InlineData("0 */5 * * * *", "2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z")]
    [InlineData("30 0 0 * * *", "2026-03-01T12:00:00Z", "2026-03-02T00:00:30Z")]
    public void Cron_in_utc_fires_at_the_next_matching_instant(string cron, string after, string expected)
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, cron, null, Now);

        Assert.Equal(At(expected), schedule.NextAfter(At(after)));
        Assert.Equal(TimeSpan.Zero, schedule.NextAfter(At(after))!.Value.Offset);
        Assert.Equal("UTC", schedule.TimeZone);
        Assert.True(schedule.IsRecurring);
    }

    [Fact]
    public void Cron_sub_second_after_still_moves_strictly_forward()
    {
        var everySecond = TaskSchedule.Parse(TaskType.Cron, "* * * * * *", null, Now);

        Assert.Equal(At("2026-03-01T12:00:01Z"), everySecond.NextAfter(At("2026-03-01T12:00:00.5Z")));
    }

    [Fact]
    public void Cron_text_is_stored_with_single_spaces()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "  */5   *  * * *  ", null, Now);

        Assert.Equal("*/5 * * * *", schedule.Text);
        Assert.Equal(TaskType.Cron, schedule.Type);
    }

    [Fact]
    public void Cron_first_due_is_the_next_occurrence_after_now()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "0 * * * *", null, Now);

        Assert.Equal(At("2026-03-01T13:00:00Z"), schedule.FirstDue(Now));
    }

    [Theory]
    [InlineData("@hourly", "2026-03-01T13:00:00Z")]
    [InlineData("@daily", "2026-03-02T00:00:00Z")]
    [InlineData("@midnight", "2026-03-02T00:00:00Z")]
    [InlineData("@weekly", "2026-03-08T00:00:00Z")]
    [InlineData("@monthly", "2026-04-01T00:00:00Z")]
    [InlineData("@yearly", "2027-01-01T00:00:00Z")]
    [InlineData("@ANNUALLY", "2027-01-01T00:00:00Z")]
    [InlineData("@every_minute", "2026-03-01T12:01:00Z")]
    [InlineData("@Every_Second", "2026-03-01T12:00:01Z")]
    public void Cron_macros_are_understood(string macro, string expected)
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, macro, null, Now);

        Assert.Equal(At(expected), schedule.NextAfter(Now));
        Assert.Equal(macro.ToLowerInvariant(), schedule.Text);
    }

    [Theory]
    [InlineData("0 9 L * *", "2026-03-01T12:00:00Z", "2026-03-31T09:00:00Z")] // the last day of the month
    [InlineData("0 9 L-2 * *", "2026-03-01T12:00:00Z", "2026-03-29T09:00:00Z")] // two days before it
    [InlineData("0 9 LW * *", "2026-05-01T00:00:00Z", "2026-05-29T09:00:00Z")] // the last weekday: 31 May is a Sunday
    [InlineData("0 9 15W * *", "2026-03-01T12:00:00Z", "2026-03-16T09:00:00Z")] // the weekday nearest the 15th, a Sunday
    [InlineData("0 18 * * FRI#2", "2026-03-01T12:00:00Z", "2026-03-13T18:00:00Z")] // the second Friday
    [InlineData("0 17 * * 5L", "2026-03-01T12:00:00Z", "2026-03-27T17:00:00Z")] // the last Friday
    [InlineData("0 9 ? * MON", "2026-03-01T12:00:00Z", "2026-03-02T09:00:00Z")] // ? means any
    [InlineData("0 9 * * 7", "2026-03-01T12:00:00Z", "2026-03-08T09:00:00Z")] // 7 is Sunday, like 0
    public void Cron_last_day_nearest_weekday_and_nth_weekday_are_understood(string cron, string after, string expected)
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, cron, null, Now);

        Assert.Equal(At(expected), schedule.NextAfter(At(after)));
        Assert.Equal(cron, schedule.Text);
    }

    [Fact]
    public void Cron_range_that_runs_backwards_wraps_around()
    {
        AssertNext("0 22-2 * * *", // every hour from 22:00 to 02:00
            ["2026-03-01T22:00:00Z", "2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z", "2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z", "2026-03-02T22:00:00Z"]);
        AssertNext("0 9 * * FRI-MON", // 1 March 2026 is a Sunday
            ["2026-03-02T09:00:00Z", "2026-03-06T09:00:00Z", "2026-03-07T09:00:00Z", "2026-03-08T09:00:00Z", "2026-03-09T09:00:00Z"]);

        static void AssertNext(string cron, string[] expected)
        {
            var schedule = TaskSchedule.Parse(TaskType.Cron, cron, null, Now);
            var firings = new List<DateTimeOffset>();
            for (var next = schedule.NextAfter(Now); next is { } due && firings.Count < expected.Length; next = schedule.NextAfter(due))
            {
                firings.Add(due);
            }
            Assert.Equal(expected.Select(At), firings);
        }
    }

    [Fact]
    public void Cron_macro_runs_on_the_task_time_zone()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "@daily", "Europe/Berlin", Now);

        Assert.Equal(At("2026-03-01T23:00:00Z"), schedule.NextAfter(Now)); // midnight CET
    }

    [Theory]
    [InlineData("*/61 * * * *", "minute must be 0-59 (got '*/61')")]
    [InlineData("61 * * * *", "minute must be 0-59 (got '61')")]
    [InlineData("0 24 * * *", "hour must be 0-23 (got '24')")]
    [InlineData("0 0 0 * *", "day of month must be 1-31 (got '0')")]
    [InlineData("0 0 1 13 *", "month must be 1-12 or JAN-DEC (got '13')")]
    [InlineData("0 0 * * 8", "weekday must be 0-6 or SUN-SAT (0 is Sunday) (got '8')")]
    [InlineData("60 * * * * *", "second must be 0-59 (got '60')")]
    [InlineData("x * * * *", "minute must be 0-59 (got 'x')")]
    [InlineData("*/0 * * * *", "minute step must be at least 1 (got '*/0')")]
    [InlineData("0 9 * * MONDAY", "weekday must be 0-6 or SUN-SAT (0 is Sunday) (got 'MONDAY')")] // names are three letters
    [InlineData("0 9 * SEPTEMBER *", "month must be 1-12 or JAN-DEC (got 'SEPTEMBER')")]
    [InlineData("H * * * *", "minute must be 0-59 (got 'H')")]
    [InlineData("* * *", "it has 3 fields")]
    [InlineData("* * * * * * *", "it has 7 fields")]
    [InlineData("", "it is empty")]
    [InlineData("   ", "it is empty")]
    [InlineData("@reboot", "'@reboot' is not a known macro")]
    [InlineData("@every 5m", "'@every 5m' is not a known macro")]
    public void Cron_errors_name_the_problem_and_give_an_example(string cron, string problem)
    {
        var error = Refused(TaskType.Cron, cron);

        Assert.Equal("schedule", error.Field);
        Assert.Contains($"schedule '{cron}' is not a valid cron expression: {problem}", error.Message);
        Assert.Contains("use 5 fields (minute hour day month weekday) like \"*/5 * * * *\", or 6 with seconds first like \"0 */5 * * * *\"", error.Message);
    }

    [Fact]
    public void Cron_error_reads_as_in_the_api()
    {
        var error = Refused(TaskType.Cron, "*/61 * * * *");

        Assert.Equal(
            "schedule '*/61 * * * *' is not a valid cron expression: minute must be 0-59 (got '*/61'); "
            + "use 5 fields (minute hour day month weekday) like \"*/5 * * * *\", or 6 with seconds first like \"0 */5 * * * *\"",
            error.Message);
    }

    [Fact]
    public void Cron_null_schedule_is_refused()
    {
        var error = Refused(TaskType.Cron, null);

        Assert.Contains("it is empty", error.Message);
    }

    [Fact]
    public void Cron_that_never_fires_is_refused()
    {
        var error = Refused(TaskType.Cron, "0 0 30 2 *");

        Assert.Equal("schedule", error.Field);
        Assert.Contains("never fires", error.Message);
        Assert.Contains("\"0 9 1 * *\"", error.Message);
    }

    [Fact]
    public void Cron_on_29_february_waits_for_the_leap_year()
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "0 12 29 2 *", null, Now);

        Assert.Equal(At("2028-02-29T12:00:00Z"), schedule.NextAfter(Now));
    }

    // ---- time zones ----

    [Theory]
    [InlineData("America/New_York", "0 9 * * *", "2026-03-01T12:00:00Z", "2026-03-01T14:00:00Z")] // EST, -5
    [InlineData("America/New_York", "0 9 * * *", "2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z")] // EDT, -4
    [InlineData("Europe/Berlin", "0 9 * * *", "2026-03-01T12:00:00Z", "2026-03-02T08:00:00Z")] // CET, +1
    [InlineData("Europe/Berlin", "0 9 * * *", "2026-07-01T06:00:00Z", "2026-07-01T07:00:00Z")] // CEST, +2
    [InlineData("Asia/Kolkata", "0 9 * * *", "2026-03-01T12:00:00Z", "2026-03-02T03:30:00Z")] // +5:30
    [InlineData("Asia/Kolkata", "0 * * * *", "2026-03-01T12:00:00Z", "2026-03-01T12:30:00Z")] // local hours are UTC half-hours
    [InlineData("Australia/Lord_Howe", "0 9 * * *", "2026-07-01T00:00:00Z", "2026-07-01T22:30:00Z")] // +10:30 in winter
    [InlineData("Australia/Lord_Howe", "0 9 * * *", "2026-12-01T00:00:00Z", "2026-12-01T22:00:00Z")] // +11 in summer
    public void Cron_runs_on_the_task_time_zone(string zone, string cron, string after, string expected)
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, cron, zone, Now);

        Assert.Equal(At(expected), schedule.NextAfter(At(after)));
        Assert.Equal(zone, schedule.TimeZone);
    }

    [Theory]
    [InlineData("Mars/Olympus_Mons")]
    [InlineData("Europe")] // a directory in the zone database, not a zone
    [InlineData("W. Europe Standard Time")] // a Windows id
    [InlineData("../../etc/passwd")]
    public void Unknown_time_zones_are_refused_with_an_example(string zone)
    {
        var error = Refused(TaskType.Cron, "0 9 * * *", zone);

        Assert.Equal("timezone", error.Field);
        Assert.Equal($"timezone '{zone}' is not a known IANA time zone; use an id like \"Europe/Berlin\", \"America/New_York\" or \"UTC\"", error.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Missing_time_zone_means_utc(string? zone)
    {
        var schedule = TaskSchedule.Parse(TaskType.Cron, "0 9 * * *", zone, Now);

        Assert.Equal("UTC", schedule.TimeZone);
        Assert.Equal(At("2026-03-02T09:00:00Z"), schedule.NextAfter(Now));
    }

    [Fact]
    public void Time_zone_id_is_trimmed()
    {
        Assert.Equal("Europe/Berlin", TaskSchedule.Parse(TaskType.Cron, "0 9 * * *", " Europe/Berlin ", Now).TimeZone);
    }

    // ---- interval ----

    [Theory]
    [InlineData("90s", 90, "1m30s")]
    [InlineData("5m", 300, "5m")]
    [InlineData("1h30m", 5400, "1h30m")]
    [InlineData("2h", 7200, "2h")]
    [InlineData("1d", 86400, "1d")]
    [InlineData("1h30m15s", 5415, "1h30m15s")]
    [InlineData("1s", 1, "1s")]
    [InlineData("1H 30M", 5400, "1h30m")]
    [InlineData(" 36h ", 129600, "1d12h")]
    [InlineData("PT5M", 300, "5m")]
    [InlineData("pt1h30m", 5400, "1h30m")]
    [InlineData("P1DT2H", 93600, "1d2h")]
    [InlineData("P2D", 172800, "2d")]
    public void Interval_durations_are_read_and_stored_canonically(string text, int seconds, string canonical)
    {
        var schedule = TaskSchedule.Parse(TaskType.Interval, text, null, Now);

        Assert.Equal(TimeSpan.FromSeconds(seconds), schedule.Interval);
        Assert.Equal(canonical, schedule.Text);
        Assert.True(schedule.IsRecurring);
        Assert.Equal(TimeSpan.FromSeconds(seconds), TaskSchedule.Parse(TaskType.Interval, canonical, null, Now).Interval);
    }

    [Theory]
    [InlineData("0s", "is zero; the minimum is 1s")]
    [InlineData("0h0m", "is zero; the minimum is 1s")]
    [InlineData("-5m", "is negative")]
    [InlineData("", "is empty")]
    [InlineData("every five minutes", "is not a duration")]
    [InlineData("5", "has no unit")]
    [InlineData("1.5h", "is not a duration")]
    [InlineData("500ms", "is not a duration")]
    [InlineData("30m1h", "is not a duration")]
    [InlineData("PT", "is not a duration")]
    [InlineData("P1Y", "is not a duration")]
    [InlineData("3651d", "is too long; the maximum is 3650d")]
    [InlineData("999999999d", "is too long; the maximum is 3650d")]
    public void Interval_errors_name_the_problem_and_give_an_example(string text, string problem)
    {
        var error = Refused(TaskType.Interval, text);

        Assert.Equal("schedule", error.Field);
        Assert.StartsWith($"schedule '{text}' {problem}; an interval is a duration of at least 1s like \"90s\", \"5m\", \"1h30m\"", error.Message);
    }

    [Fact]
    public void Interval_first_due_is_one_interval_after_now()
    {
        var schedule = TaskSchedule.Parse(TaskType.Interval, "5m", null, Now);

        Assert.Equal(At("2026-03-01T12:05:00Z"), schedule.FirstDue(Now));
        Assert.Equal(At("2026-03-01T12:05:00Z"), schedule.FirstDue(At("2026-03-01T13:00:00+01:00")));
        Assert.Equal(TimeSpan.Zero, schedule.FirstDue(At("2026-03-01T13:00:00+01:00"))!.Value.Offset);
    }

    [Theory]
    [InlineData("2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z")] // at the anchor
    [InlineData("2026-03-01T11:00:00Z", "2026-03-01T12:05:00Z")] // before the anchor: the first slot
    [InlineData("2026-03-01T12:07:30Z", "2026-03-01T12:10:00Z")] // between slots
    [InlineData("2026-03-01T12:10:00Z", "2026-03-01T12:15:00Z")] // on a slot: strictly after
    [InlineData("2026-03-01T12:10:00.001Z", "2026-03-01T12:15:00Z")]
    [InlineData("2026-03-04T07:33:12Z", "2026-03-04T07:35:00Z")] // days later, after a restart: still on the grid
    public void Interval_with_anchor_keeps_a_fixed_cadence(string after, string expected)
    {
        var schedule = TaskSchedule.Parse(TaskType.Interval, "5m", null, Now);
        var anchor = At("2026-03-01T12:00:00Z");

        Assert.Equal(At(expected), schedule.NextAfter(At(after), anchor));
    }

    [Fact]
    public void Interval_with_an_odd_anchor_steps_from_the_anchor()
    {
        var schedule = TaskSchedule.Parse(TaskType.Interval, "90s", null, Now);
        var anchor = At("2026-03-01T12:00:17Z");

        Assert.Equal(At("2026-03-01T12:01:47Z"), schedule.NextAfter(At("2026-03-01T12:01:00Z"), anchor));
        Assert.Equal(At("2026-03-01T12:03:17Z"), schedule.NextAfter(At("2026-03-01T12:01:47Z"), anchor));
        Assert.Equal(At("2026-03-01T12:03:17Z"), schedule.NextAfter(At("2026-03-01T13:01:47+01:00"), anchor));
    }

    [Fact]
    public void Interval_without_anchor_steps_from_after()
    {
        var schedule = TaskSchedule.Parse(TaskType.Interval, "1h30m", null, Now);

        Assert.Equal(At("2026-03-01T13:37:00Z"), schedule.NextAfter(At("2026-03-01T12:07:00Z")));
    }

    // ---- once ----

    [Fact]
    public void Once_duration_is_due_that_long_after_now_and_stored_as_the_instant()
    {
        var schedule = TaskSchedule.Parse(TaskType.Once, "10m", null, Now);

        Assert.Equal(At("2026-03-01T12:10:00Z"), schedule.Instant);
        Assert.Equal(At("2026-03-01T12:10:00Z"), schedule.FirstDue(Now));
        Assert.Equal("2026-03-01T12:10:00Z", schedule.Text);
        Assert.False(schedule.IsRecurring);
    }

    [Theory]
    [InlineData("2026-12-01T09:00:00Z", null, "2026-12-01T09:00:00Z")]
    [InlineData("2026-12-01T10:00:00+01:00", null, "2026-12-01T09:00:00Z")]
    [InlineData("2026-12-01T10:00:00+01:00", "America/New_York", "2026-12-01T09:00:00Z")] // an offset wins over the zone
    [InlineData("2026-12-01T04:00-0500", null, "2026-12-01T09:00:00Z")]
    [InlineData("2026-12-01t09:00:00.25z", null, "2026-12-01T09:00:00.25Z")]
    [InlineData("2026-12-01T09:00", null, "2026-12-01T09:00:00Z")] // no offset: the task's zone, UTC here
    [InlineData("2026-12-01 09:00:00", "America/New_York", "2026-12-01T14:00:00Z")] // EST
    [InlineData("2026-07-01T09:00", "America/New_York", "2026-07-01T13:00:00Z")] // EDT
    [InlineData("2026-07-01T09:00", "Asia/Kolkata", "2026-07-01T03:30:00Z")]
    [InlineData("2026-03-29T02:30", "Europe/Berlin", "2026-03-29T01:00:00Z")] // skipped by DST: when the clock jumps
    [InlineData("2026-10-25T02:30", "Europe/Berlin", "2026-10-25T00:30:00Z")] // repeated by DST: the first pass
    [InlineData("2026-10-25T02:30:00.5", "Europe/Berlin", "2026-10-25T00:30:00.5Z")]
    [InlineData("2026-03-08T02:30", "America/New_York", "2026-03-08T07:00:00Z")] // skipped: 03:00 EDT
    public void Once_instant_is_read_with_its_offset_or_in_the_task_zone(string text, string? zone, string expected)
    {
        var schedule = TaskSchedule.Parse(TaskType.Once, text, zone, Now);

        Assert.Equal(At(expected), schedule.Instant);
        Assert.Equal(At(expected), schedule.FirstDue(Now));
        Assert.Equal(expected, schedule.Text);
        Assert.Equal(TimeSpan.Zero, schedule.Instant!.Value.Offset);
    }

    [Theory]
    [InlineData("1s")]
    [InlineData("2026-12-01T09:00:00.1234567Z")]
    public void Once_instant_is_kept_to_the_millisecond_so_its_stored_slot_does_not_come_due_again(string text)
    {
        var now = Now.AddTicks(1_234_567); // a clock finer than the store
        var schedule = TaskSchedule.Parse(TaskType.Once, text, null, now);

        Assert.Equal(0, schedule.Instant!.Value.UtcTicks % TimeSpan.TicksPerMillisecond);
        var storedSlot = DateTimeOffset.FromUnixTimeMilliseconds(schedule.FirstDue(now)!.Value.ToUnixTimeMilliseconds());
        Assert.Null(schedule.NextAfter(storedSlot));
        Assert.Equal(schedule.Instant, TaskSchedule.FromStored(TaskType.Once, schedule.Text, null).Instant);
    }

    [Fact]
    public void Once_fires_at_its_instant_and_then_never()
    {
        var schedule = TaskSchedule.Parse(TaskType.Once, "2026-12-01T09:00:00Z", null, Now);

        Assert.Equal(At("2026-12-01T09:00:00Z"), schedule.NextAfter(Now));
        Assert.Equal(At("2026-12-01T09:00:00Z"), schedule.NextAfter(At("2026-12-01T08:59:59Z")));
        Assert.Null(schedule.NextAfter(At("2026-12-01T09:00:00Z")));
        Assert.Null(schedule.NextAfter(At("2027-01-01T00:00:00Z")));
        Assert.Null(schedule.NextAfter(At("2027-01-01T00:00:00Z"), anchor: Now));
    }

    [Fact]
    public void Once_in_the_past_is_refused_with_now_and_examples()
    {
        var error = Refused(TaskType.Once, "2026-02-28T09:00:00Z");

        Assert.Equal("schedule", error.Field);
        Assert.Equal(
            "schedule '2026-02-28T09:00:00Z' is in the past (now is 2026-03-01T12:00:00Z); "
            + "give a future instant like \"2026-03-02T13:00:00Z\" or a duration like \"10m\"",
            error.Message);
    }

    [Fact]
    public void Once_local_time_already_past_in_the_zone_is_refused()
    {
        // 12:30 in New York is 17:30 UTC: fine; 06:30 is 11:30 UTC: already gone.
        Assert.Equal(At("2026-03-01T17:30:00Z"), TaskSchedule.Parse(TaskType.Once, "2026-03-01T12:30", "America/New_York", Now).Instant);
        var error = Refused(TaskType.Once, "2026-03-01T06:30", "America/New_York");
        Assert.Contains("is in the past (now is 2026-03-01T12:00:00Z)", error.Message);
    }

    [Fact]
    public void Once_at_exactly_now_is_accepted()
    {
        Assert.Equal(Now, TaskSchedule.Parse(TaskType.Once, "2026-03-01T12:00:00Z", null, Now).FirstDue(Now));
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("tomorrow", "is neither a duration nor an ISO-8601 instant")]
    [InlineData("0s", "is zero; the minimum is 1s")]
    [InlineData("-10m", "is negative")]
    [InlineData("10", "has no unit")]
    [InlineData("2026-12-01", "is not a full ISO-8601 date and time (it needs a time, like 2026-12-01T09:00)")]
    [InlineData("2026-13-01T09:00:00Z", "is not a real date and time")]
    [InlineData("2026-12-01T25:00", "is not a real date and time")]
    [InlineData("2026-12-01T09:00:00+25:00", "has an offset that cannot be read")]
    public void Once_errors_name_the_problem_and_give_examples(string text, string problem)
    {
        var error = Refused(TaskType.Once, text);

        Assert.Equal("schedule", error.Field);
        Assert.StartsWith($"schedule '{text}' {problem}; ", error.Message);
        Assert.Contains("a duration from now like \"10m\"", error.Message);
        Assert.Contains("an ISO-8601 instant like \"2026-03-02T13:00:00Z\"", error.Message);
    }

    [Fact]
    public void Once_restored_from_the_store_may_be_in_the_past()
    {
        var schedule = TaskSchedule.FromStored(TaskType.Once, "2026-02-28T09:00:00Z", null);

        Assert.Equal(At("2026-02-28T09:00:00Z"), schedule.Instant);
        Assert.Null(schedule.NextAfter(Now));
    }

    [Fact]
    public void Once_restored_from_the_store_must_be_an_instant()
    {
        var error = Assert.Throws<ScheduleFormatException>(() => TaskSchedule.FromStored(TaskType.Once, "10m", null));

        Assert.Contains("is a duration, not an instant", error.Message);
    }

    [Fact]
    public void Stored_text_parses_back_to_the_same_schedule()
    {
        foreach (var (type, text, zone) in new[]
                 {
                     (TaskType.Cron, "0  9 * * 1-5", (string?)"Europe/Berlin"),
                     (TaskType.Interval, "PT90M", null),
                     (TaskType.Once, "2026-12-01T10:00:00+01:00", "Asia/Kolkata"),
                     (TaskType.Loop, null, null),
                 })
        {
            var parsed = TaskSchedule.Parse(type, text, zone, Now);
            var restored = TaskSchedule.FromStored(parsed.Type, parsed.Text, parsed.TimeZone);

            Assert.Equal(parsed.Text, restored.Text);
            Assert.Equal(parsed.TimeZone, restored.TimeZone);
            Assert.Equal(parsed.FirstDue(Now), restored.FirstDue(Now));
        }
    }

    // ---- loop ----

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Loop_has_no_schedule(string? text)
    {
        var schedule = TaskSchedule.Parse(TaskType.Loop, text, null, Now);

        Assert.Equal("", schedule.Text);
        Assert.False(schedule.IsRecurring);
        Assert.Null(schedule.FirstDue(Now));
        Assert.Null(schedule.NextAfter(Now));
        Assert.Null(schedule.NextAfter(Now, Now));
    }

    [Fact]
    public void Loop_with_a_schedule_is_refused()
    {
        var error = Refused(TaskType.Loop, "5m");

        Assert.Equal("schedule", error.Field);
        Assert.Contains("loop tasks start at once when created or started and are not scheduled; leave schedule empty", error.Message);
    }

    // ---- type ----

    [Theory]
    [InlineData("cron", TaskType.Cron)]
    [InlineData("Interval", TaskType.Interval)]
    [InlineData(" ONCE ", TaskType.Once)]
    [InlineData("loop", TaskType.Loop)]
    public void Type_names_are_read_in_any_case(string name, TaskType expected)
    {
        Assert.True(TaskWire.TryType(name, out var type));
        Assert.Equal(expected, type);
        Assert.Equal(name.Trim().ToLowerInvariant(), TaskWire.ToWire(expected));
    }

    [Theory]
    [InlineData("daily")]
    [InlineData("")]
    [InlineData(null)]
    public void Unknown_type_names_are_not_read(string? name) => Assert.False(TaskWire.TryType(name, out _));

    [Theory]
    [InlineData("channel", TaskContext.Channel)]
    [InlineData(" Channel ", TaskContext.Channel)]
    [InlineData("ISOLATED", TaskContext.Isolated)]
    public void Context_names_are_read_in_any_case_as_type_names_are(string name, TaskContext expected)
    {
        Assert.True(TaskWire.TryContext(name, out var context));
        Assert.Equal(expected, context);
        Assert.Equal(name.Trim().ToLowerInvariant(), TaskWire.ToWire(expected));
        Assert.False(TaskWire.TryContext("shared", out _));
        Assert.True(TaskWire.TryMisfire("Skip", out var misfire));
        Assert.Equal(MisfirePolicy.Skip, misfire);
    }

    [Fact]
    public void Undefined_type_value_is_refused()
    {
        var error = Refused((TaskType)42, "5m");

        Assert.Equal("type", error.Field);
        Assert.Contains("type '42' is unknown", error.Message);
    }
}
