using System.Globalization;
using System.Text.RegularExpressions;

namespace Loop.Domain.Tasks;

/// <summary>A validated task schedule: the one place that parses schedules and says when a task is due.
/// Immutable and safe to share; evaluating it allocates nothing on the usual path.</summary>
/// <remarks>
/// Cron runs on the task's time zone (IANA id, default UTC); see <see cref="CronSchedule"/> for the
/// DST rule. Interval and once durations are whole seconds, at least 1s. A once instant without an
/// offset is a wall time in the task's zone: a skipped wall time means the instant the clock jumps,
/// a repeated one its first pass. All instants returned are UTC (offset zero).
/// </remarks>
public sealed partial class TaskSchedule
{
    public const string DefaultTimeZone = "UTC";

    private readonly CronSchedule? _cron;

    private TaskSchedule(TaskType type, string text, string timeZone, CronSchedule? cron, TimeSpan? interval, DateTimeOffset? instant)
    {
        Type = type;
        Text = text;
        TimeZone = timeZone;
        _cron = cron;
        Interval = interval;
        Instant = instant;
    }

    public TaskType Type { get; }

    /// <summary>The canonical schedule to store: cron with single spaces, an interval like "1h30m",
    /// a once task as its UTC instant ("2026-12-01T09:00:00Z"), "" for loop tasks.</summary>
    public string Text { get; }

    /// <summary>The IANA time zone id the schedule runs on; <see cref="DefaultTimeZone"/> when none was given.</summary>
    public string TimeZone { get; }

    /// <summary>Interval tasks: the cadence.</summary>
    public TimeSpan? Interval { get; }

    /// <summary>Once tasks: the due instant (UTC).</summary>
    public DateTimeOffset? Instant { get; }

    /// <summary>Cron and interval tasks come due again and again; once and loop tasks do not.</summary>
    public bool IsRecurring => Type is TaskType.Cron or TaskType.Interval;

    /// <summary>Validates a schedule from a user. A once duration counts from <paramref name="now"/>,
    /// and a once instant before <paramref name="now"/> is refused.</summary>
    /// <exception cref="ScheduleFormatException">Field "schedule", "timezone" or "type"; the message
    /// says what is wrong and gives a valid example.</exception>
    public static TaskSchedule Parse(TaskType type, string? schedule, string? timeZone, DateTimeOffset now) =>
        Create(type, schedule, timeZone, now);

    /// <summary>Rebuilds a schedule from its stored <see cref="Text"/>: like <see cref="Parse"/>, but a
    /// once task's instant may be in the past (it may have fired already) and must be an instant.</summary>
    public static TaskSchedule FromStored(TaskType type, string? schedule, string? timeZone) =>
        Create(type, schedule, timeZone, now: null);

    /// <summary>The first due instant strictly after <paramref name="after"/>, or null when there is
    /// none. Interval tasks step from <paramref name="after"/> itself; use
    /// <see cref="NextAfter(DateTimeOffset, DateTimeOffset)"/> for a cadence that does not drift.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after) => Type switch
    {
        TaskType.Cron => _cron!.NextAfter(after),
        TaskType.Interval => (after + Interval!.Value).ToUniversalTime(),
        TaskType.Once => after < Instant ? Instant : null,
        _ => null,
    };

    /// <summary>Like <see cref="NextAfter(DateTimeOffset)"/>, but interval tasks fire at
    /// <paramref name="anchor"/> + k × interval (k ≥ 1), with the anchor the time the task was created
    /// or its schedule last edited, so restarts and late firings never shift the cadence.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after, DateTimeOffset anchor)
    {
        if (Type != TaskType.Interval)
        {
            return NextAfter(after);
        }
        var step = Interval!.Value.Ticks;
        var elapsed = after.UtcTicks - anchor.UtcTicks;
        var k = elapsed < 0 ? 1 : elapsed / step + 1;
        return new DateTimeOffset(anchor.UtcTicks + k * step, TimeSpan.Zero);
    }

    /// <summary>The first due instant of a task just created, edited or re-enabled at <paramref name="now"/>:
    /// cron, the next occurrence after now; interval, now + interval; once, its instant (which may be
    /// past when a task is re-enabled late: the caller's misfire policy decides); loop, null.</summary>
    public DateTimeOffset? FirstDue(DateTimeOffset now) => Type switch
    {
        TaskType.Cron => _cron!.NextAfter(now),
        TaskType.Interval => (now + Interval!.Value).ToUniversalTime(),
        TaskType.Once => Instant,
        _ => null,
    };

    /// <summary>Whether the task can come due again less than <paramref name="minimum"/> after it came
    /// due, and if so (<paramref name="gap"/>) how soon. An interval task: its interval. A cron task: the
    /// smallest gap between occurrences in a row, looked at from <paramref name="from"/> over its next
    /// day of occurrences, and at least its next 1,000 (20,000 at most), which shows every gap a cron
    /// expression makes within a day and the ones between days in most. Once and loop tasks never do:
    /// they do not come due again.</summary>
    public bool FiresMoreOftenThan(TimeSpan minimum, DateTimeOffset from, out TimeSpan gap)
    {
        gap = TimeSpan.MaxValue;
        if (Type == TaskType.Interval)
        {
            gap = Interval!.Value;
        }
        else if (Type == TaskType.Cron && _cron!.NextAfter(from) is { } first)
        {
            var previous = first;
            for (var seen = 1; seen < 20_000 && gap >= minimum && (seen < 1_000 || previous - first < TimeSpan.FromDays(1)); seen++)
            {
                if (_cron.NextAfter(previous) is not { } next)
                {
                    break;
                }
                gap = next - previous < gap ? next - previous : gap;
                previous = next;
            }
        }
        return gap < minimum;
    }

    public override string ToString() => Text.Length == 0
        ? TaskWire.ToWire(Type)
        : $"{TaskWire.ToWire(Type)} {Text}{(Type == TaskType.Cron ? $" ({TimeZone})" : "")}";

    private static TaskSchedule Create(TaskType type, string? schedule, string? timeZone, DateTimeOffset? now)
    {
        if (!Enum.IsDefined(type))
        {
            throw UnknownType(((int)type).ToString(CultureInfo.InvariantCulture));
        }
        var (zoneId, zone) = FindZone(timeZone);
        var text = schedule ?? "";
        switch (type)
        {
            case TaskType.Cron:
                var cron = CronSchedule.Parse(text, zone, out var canonical);
                if (now is { } from && cron.NextAfter(from) is null)
                {
                    throw new ScheduleFormatException("schedule",
                        $"schedule '{text}' never fires: no date matches it (like 30 February); "
                        + $"give a date that exists, like \"0 9 1 * *\" for 09:00 on the 1st of each month");
                }
                return new TaskSchedule(type, canonical, zoneId, cron, null, null);

            case TaskType.Interval:
                if (!Durations.TryParse(text, out var interval, out var problem))
                {
                    throw new ScheduleFormatException("schedule",
                        $"schedule '{text}' {problem}; an interval is a duration of at least 1s like {Durations.Examples}");
                }
                return new TaskSchedule(type, Durations.Format(interval), zoneId, null, interval, null);

            case TaskType.Once:
                // To the millisecond, as the store keeps due instants: a finer instant would lie
                // after the slot stored for it, and so come due again once that slot fired.
                var instant = ParseOnce(text, zone, now);
                instant = new DateTimeOffset(instant.UtcTicks - instant.UtcTicks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);
                return new TaskSchedule(type, FormatInstant(instant), zoneId, null, null, instant);

            default:
                if (text.Trim().Length > 0)
                {
                    throw new ScheduleFormatException("schedule",
                        $"schedule '{text}' is not allowed for a loop task: loop tasks start at once when created or "
                        + "started and are not scheduled; leave schedule empty, or use type cron, interval or once to run on a schedule");
                }
                return new TaskSchedule(type, "", zoneId, null, null, null);
        }
    }

    private static DateTimeOffset ParseOnce(string text, TimeZoneInfo zone, DateTimeOffset? now)
    {
        // Upper case so that "t" and "z" read like "T" and "Z".
        var trimmed = text.Trim().ToUpperInvariant();
        var example = now is { } n ? FormatInstant(NextWholeHour(n.AddDays(1))) : "2026-12-01T09:00:00Z";
        var usage = $"give a duration from now like \"10m\" or \"1h30m\", or an ISO-8601 instant like \"{example}\" "
            + "(with Z or an offset like +01:00; without one it is read in the task's time zone)";

        DateTimeOffset instant;
        var local = LocalDateTime().Match(trimmed);
        if (local.Success)
        {
            if (!DateTime.TryParse(local.Groups["wall"].Value, CultureInfo.InvariantCulture, DateTimeStyles.None, out var wall))
            {
                throw new ScheduleFormatException("schedule", $"schedule '{text}' is not a real date and time; {usage}");
            }
            var zonePart = local.Groups["zone"].Value;
            if (zonePart.Length == 0)
            {
                instant = CronSchedule.WallTimeToInstant(DateTime.SpecifyKind(wall, DateTimeKind.Unspecified), zone);
            }
            else if (!DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.None, out instant))
            {
                throw new ScheduleFormatException("schedule", $"schedule '{text}' has an offset that cannot be read; {usage}");
            }
        }
        else if (DateTime.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.None, out _) && trimmed.Contains('-'))
        {
            throw new ScheduleFormatException("schedule",
                $"schedule '{text}' is not a full ISO-8601 date and time (it needs a time, like 2026-12-01T09:00); {usage}");
        }
        else if (Durations.TryParse(trimmed, out var duration, out var problem))
        {
            if (now is not { } start)
            {
                throw new ScheduleFormatException("schedule",
                    $"stored once schedule '{text}' is a duration, not an instant; store the instant, like \"{example}\"");
            }
            return (start + duration).ToUniversalTime();
        }
        else
        {
            var what = trimmed.Length == 0 ? "is empty" : problem == "is not a duration" ? "is neither a duration nor an ISO-8601 instant" : problem;
            throw new ScheduleFormatException("schedule", $"schedule '{text}' {what}; {usage}");
        }

        instant = instant.ToUniversalTime();
        if (now is { } current && instant < current)
        {
            throw new ScheduleFormatException("schedule",
                $"schedule '{text}' is in the past (now is {FormatInstant(current)}); give a future instant like \"{example}\" or a duration like \"10m\"");
        }
        return instant;
    }

    private static (string Id, TimeZoneInfo Zone) FindZone(string? timeZone)
    {
        var id = timeZone?.Trim() ?? "";
        if (id.Length == 0)
        {
            return (DefaultTimeZone, TimeZoneInfo.Utc);
        }
        try
        {
            var zone = TimeZoneInfo.FindSystemTimeZoneById(id);
            return (zone.Id, zone);
        }
        // Not found, unreadable (a directory such as "Europe") or corrupt: all mean "not a zone".
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException
                                       or System.Security.SecurityException or ArgumentException or IOException)
        {
            throw new ScheduleFormatException("timezone",
                $"timezone '{timeZone}' is not a known IANA time zone; use an id like \"Europe/Berlin\", \"America/New_York\" or \"UTC\"");
        }
    }

    private static ScheduleFormatException UnknownType(string type) =>
        new("type", $"type '{type}' is unknown; use cron, interval, once or loop, like \"cron\"");

    private static DateTimeOffset NextWholeHour(DateTimeOffset value)
    {
        var utc = value.UtcTicks;
        return new DateTimeOffset(utc - utc % TimeSpan.TicksPerHour + TimeSpan.TicksPerHour, TimeSpan.Zero);
    }

    private static string FormatInstant(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    // yyyy-MM-ddTHH:mm[:ss[.fff]] with an optional Z or ±hh:mm; a space instead of T is accepted.
    [GeneratedRegex(@"^(?<wall>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?)(?<zone>Z|[+-]\d{2}:?\d{2})?$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex LocalDateTime();
}
