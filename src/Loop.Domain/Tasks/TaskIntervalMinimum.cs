using System.Globalization;

namespace Loop.Domain.Tasks;

/// <summary>
/// The config's <c>min_task_interval_sec</c>: no cron or interval task may come due more often, so
/// nobody (an agent with its channel's token included) can make a task that runs nearly back to back.
/// Zero turns it off. Loop tasks are not held to it: each iteration starts when the one before it
/// has ended, one run at a time, and <c>max_iterations</c> bounds them.
/// </summary>
public sealed record TaskIntervalMinimum(TimeSpan Value)
{
    public const string Key = "min_task_interval_sec";

    public static TaskIntervalMinimum None { get; } = new(TimeSpan.Zero);

    public static TaskIntervalMinimum FromSeconds(int seconds) => new(TimeSpan.FromSeconds(seconds));

    /// <summary>Why <paramref name="schedule"/> fires too often, saying the minimum; null when it does not.</summary>
    public string? Problem(TaskSchedule schedule, DateTimeOffset now)
    {
        if (Value <= TimeSpan.Zero || !schedule.FiresMoreOftenThan(Value, now, out var gap))
        {
            return null;
        }
        var minimum = $"{Value.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s ({Key})";
        return schedule.Type == TaskType.Interval
            ? $"schedule must be at least {minimum}; got {Durations.Format(gap)}"
            : $"schedule '{schedule.Text}' fires as often as every {Durations.Format(gap)}; a task may run at most once every {minimum}";
    }
}
