using Loop.Domain.Tasks;

namespace Loop.Domain.Tests;

/// <summary>min_task_interval_sec: how often a task may come due, for every kind of schedule.</summary>
public sealed class TaskIntervalMinimumTests
{
    private static readonly DateTimeOffset Now = TaskScheduleTests.At("2026-03-01T12:00:00Z");
    private static readonly TaskIntervalMinimum Minute = TaskIntervalMinimum.FromSeconds(60);

    private static TaskSchedule Schedule(TaskType type, string text, string? zone = null) => TaskSchedule.Parse(type, text, zone, Now);

    [Theory]
    [InlineData("* * * * * *", 1)]
    [InlineData("*/10 * * * * *", 10)]
    [InlineData("0,30 * * * * *", 30)]
    [InlineData("0,50 * * * * *", 10)]                  // 50 → the next minute's 0
    [InlineData("0 0,59 * * * *", 60)]                  // 0:59 → 1:00
    [InlineData("* * * 1 1 *", 1)]                      // every second, one day a year: the coming one counts
    [InlineData("0,59 0,23 * * *", 60)]                 // 23:59 → 00:00 the next day
    [InlineData("* * * * *", 60)]
    [InlineData("*/5 * * * *", 300)]
    [InlineData("0 9 * * 1-5", 86_400)]
    public void A_cron_expression_fires_as_often_as_its_smallest_gap_between_occurrences(string cron, int gapSeconds)
    {
        var schedule = Schedule(TaskType.Cron, cron);
        var expected = TimeSpan.FromSeconds(gapSeconds);

        Assert.False(schedule.FiresMoreOftenThan(expected, Now, out _));
        Assert.True(schedule.FiresMoreOftenThan(expected + TimeSpan.FromSeconds(1), Now, out var gap));
        Assert.Equal(expected, gap);
    }

    [Fact]
    public void A_cron_expression_in_a_time_zone_with_a_dst_change_keeps_real_gaps()
    {
        // Every 15 minutes in Berlin across the autumn change: the repeated hour fires on both passes, 15 real minutes apart.
        var schedule = TaskSchedule.Parse(TaskType.Cron, "*/15 * * * *", "Europe/Berlin", TaskScheduleTests.At("2026-10-24T12:00:00Z"));

        Assert.False(schedule.FiresMoreOftenThan(TimeSpan.FromMinutes(15), TaskScheduleTests.At("2026-10-24T12:00:00Z"), out _));
        Assert.True(schedule.FiresMoreOftenThan(TimeSpan.FromMinutes(16), TaskScheduleTests.At("2026-10-24T12:00:00Z"), out var gap));
        Assert.Equal(TimeSpan.FromMinutes(15), gap);
    }

    [Fact]
    public void Intervals_below_the_minimum_are_refused_saying_the_minimum()
    {
        Assert.Equal("schedule must be at least 60s (min_task_interval_sec); got 1s", Minute.Problem(Schedule(TaskType.Interval, "1s"), Now));
        Assert.Equal("schedule must be at least 60s (min_task_interval_sec); got 59s", Minute.Problem(Schedule(TaskType.Interval, "59s"), Now));
        Assert.Null(Minute.Problem(Schedule(TaskType.Interval, "60s"), Now));
        Assert.Null(Minute.Problem(Schedule(TaskType.Interval, "1h"), Now));
    }

    [Fact]
    public void Cron_expressions_that_fire_more_often_are_refused_saying_the_minimum()
    {
        Assert.Equal("schedule '* * * * * *' fires as often as every 1s; a task may run at most once every 60s (min_task_interval_sec)",
            Minute.Problem(Schedule(TaskType.Cron, "* * * * * *"), Now));
        Assert.Equal("schedule '*/10 * * * * *' fires as often as every 10s; a task may run at most once every 60s (min_task_interval_sec)",
            Minute.Problem(Schedule(TaskType.Cron, "*/10 * * * * *"), Now));
        Assert.Null(Minute.Problem(Schedule(TaskType.Cron, "* * * * *"), Now));
        Assert.Null(Minute.Problem(Schedule(TaskType.Cron, "0 * * * * *"), Now));
        Assert.Null(Minute.Problem(Schedule(TaskType.Cron, "@hourly"), Now));
        Assert.Contains("every 5m", TaskIntervalMinimum.FromSeconds(3600).Problem(Schedule(TaskType.Cron, "*/5 9 * * *"), Now));
    }

    [Fact]
    public void Once_and_loop_tasks_and_a_minimum_of_0_are_never_refused()
    {
        Assert.Null(Minute.Problem(Schedule(TaskType.Once, "1s"), Now));
        Assert.Null(Minute.Problem(Schedule(TaskType.Loop, ""), Now));
        Assert.Null(TaskIntervalMinimum.None.Problem(Schedule(TaskType.Cron, "* * * * * *"), Now));
        Assert.Null(TaskIntervalMinimum.FromSeconds(0).Problem(Schedule(TaskType.Interval, "1s"), Now));
    }
}
