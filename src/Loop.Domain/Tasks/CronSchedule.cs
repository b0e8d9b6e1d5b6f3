using System.Globalization;
using Cronos;

namespace Loop.Domain.Tasks;

/// <summary>A cron expression evaluated on a time zone's wall clock, by Cronos.</summary>
/// <remarks>
/// DST rule (Cronos's, after Vixie cron): a wall time skipped by a spring-forward gap fires once, at the
/// instant the clock jumps (02:30 Europe/Berlin fires at 03:00 CEST = 01:00 UTC). A wall time repeated
/// by a fall-back overlap fires on both passes when the seconds, minutes or hours field holds <c>*</c>,
/// a range or a step ("every 15 minutes", "hourly" follow the real clock), and once, on its first pass,
/// when those fields name fixed times ("at 02:30").
/// </remarks>
internal sealed class CronSchedule
{
    private const string Usage =
        "use 5 fields (minute hour day month weekday) like \"*/5 * * * *\", or 6 with seconds first like \"0 */5 * * * *\"";

    private static readonly (string Name, string Range)[] SixFields =
    [
        ("second", "0-59"),
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day of month", "1-31"),
        ("month", "1-12 or JAN-DEC"),
        ("weekday", "0-6 or SUN-SAT (0 is Sunday)"),
    ];

    private readonly CronExpression _expression;
    private readonly TimeZoneInfo _zone;

    private CronSchedule(CronExpression expression, TimeZoneInfo zone)
    {
        _expression = expression;
        _zone = zone;
    }

    /// <summary>Validates <paramref name="text"/>; <paramref name="canonical"/> is it with single spaces
    /// (macros lower-cased).</summary>
    public static CronSchedule Parse(string text, TimeZoneInfo zone, out string canonical)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            throw Invalid(text, "it is empty");
        }

        if (trimmed.StartsWith('@'))
        {
            if (!CronExpression.TryParse(trimmed, out var macro))
            {
                throw Invalid(text, $"'{trimmed}' is not a known macro (use @every_minute, @hourly, @daily, @weekly, @monthly or @yearly; "
                    + "for a repeating duration use type interval, for a task that starts at once type loop)");
            }
            canonical = trimmed.ToLowerInvariant();
            return new CronSchedule(macro, zone);
        }

        var fields = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length is not (5 or 6))
        {
            throw Invalid(text, $"it has {fields.Length} field{(fields.Length == 1 ? "" : "s")}");
        }
        canonical = string.Join(' ', fields);
        var format = fields.Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard;
        return CronExpression.TryParse(canonical, format, out var expression)
            ? new CronSchedule(expression, zone)
            : throw Invalid(text, FieldProblem(fields, format));
    }

    /// <summary>The first occurrence strictly after <paramref name="after"/>, in UTC; null when no date
    /// matches the expression (like 30 February).</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after) =>
        _expression.GetNextOccurrence(after, _zone)?.ToUniversalTime();

    /// <summary>The instant (UTC) a wall time on <paramref name="zone"/>'s clock stands for, by the rule a
    /// schedule naming that time follows: a time the clock skips is the instant it jumps, a time it
    /// repeats is its first pass.</summary>
    public static DateTimeOffset WallTimeToInstant(DateTime wall, TimeZoneInfo zone)
    {
        if (!zone.IsInvalidTime(wall) && !zone.IsAmbiguousTime(wall))
        {
            return new DateTimeOffset(wall, zone.GetUtcOffset(wall)).ToUniversalTime();
        }
        // A DST change skips or repeats it: ask Cronos when a schedule at that second fires, looking from
        // two days before (read as UTC, that is before it in any zone, and its next match is this one).
        var second = wall.AddTicks(-(wall.Ticks % TimeSpan.TicksPerSecond));
        var atThatSecond = CronExpression.Parse(second.ToString("s m H d M *", CultureInfo.InvariantCulture), CronFormat.IncludeSeconds);
        var instant = atThatSecond.GetNextOccurrence(new DateTimeOffset(second.AddDays(-2), TimeSpan.Zero), zone)!.Value;
        return (zone.IsInvalidTime(wall) ? instant : instant + (wall - second)).ToUniversalTime();
    }

    /// <summary>Which field Cronos refused, in the user's words: each field is tried alone, with every
    /// other field <c>*</c>, so the message can quote it.</summary>
    private static string FieldProblem(string[] fields, CronFormat format)
    {
        var kinds = fields.Length == 6 ? SixFields : SixFields[1..];
        for (var i = 0; i < fields.Length; i++)
        {
            var alone = string.Join(' ', fields.Select((field, j) => j == i ? field : "*"));
            if (CronExpression.TryParse(alone, format, out _))
            {
                continue;
            }
            var (name, range) = kinds[i];
            // Numbers have at most two digits, so these are the only steps of zero.
            var zeroStep = fields[i].Split(',').Any(item => item.EndsWith("/0", StringComparison.Ordinal) || item.EndsWith("/00", StringComparison.Ordinal));
            return zeroStep
                ? $"{name} step must be at least 1 (got '{fields[i]}')"
                : $"{name} must be {range} (got '{fields[i]}')";
        }
        return "it cannot be read";
    }

    private static ScheduleFormatException Invalid(string text, string problem) =>
        new("schedule", $"schedule '{text}' is not a valid cron expression: {problem}; {Usage}");
}
