using System.Globalization;
using NCrontab;

namespace Loop.Domain.Tasks;

/// <summary>A cron expression evaluated on a time zone's wall clock.</summary>
/// <remarks>
/// DST rule (after Vixie cron): a schedule whose hour field is <c>*</c> (every hour) follows the
/// clock: wall times skipped by a spring-forward gap never happen, and wall times repeated by a
/// fall-back overlap fire on both passes, so "every 15 minutes" fires every real 15 minutes and
/// "hourly" every real hour. Any other schedule names particular hours: a time it names that the
/// clock skips fires once, at the instant the clock jumps (the first valid instant after the gap,
/// e.g. 02:30 Europe/Berlin fires at 03:00 CEST = 01:00 UTC), and a time the clock repeats fires once,
/// on its first pass.
/// </remarks>
internal sealed class CronSchedule
{
    private const int HorizonYears = 50;
    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    private const string Usage =
        "use 5 fields (minute hour day month weekday) like \"*/5 * * * *\", or 6 with seconds first like \"0 */5 * * * *\"";

    private static readonly Dictionary<string, string> Macros = new(StringComparer.OrdinalIgnoreCase)
    {
        ["@yearly"] = "0 0 1 1 *",
        ["@annually"] = "0 0 1 1 *",
        ["@monthly"] = "0 0 1 * *",
        ["@weekly"] = "0 0 * * 0",
        ["@daily"] = "0 0 * * *",
        ["@midnight"] = "0 0 * * *",
        ["@hourly"] = "0 * * * *",
    };

    private readonly CrontabSchedule _crontab;
    private readonly TimeZoneInfo _zone;
    private readonly bool _isUtc;
    private readonly bool _followsClock;

    private CronSchedule(CrontabSchedule crontab, TimeZoneInfo zone, bool followsClock)
    {
        _crontab = crontab;
        _zone = zone;
        _isUtc = zone.BaseUtcOffset == TimeSpan.Zero && zone.GetAdjustmentRules().Length == 0;
        _followsClock = followsClock;
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

        string expression;
        if (trimmed.StartsWith('@'))
        {
            if (!Macros.TryGetValue(trimmed, out var expanded))
            {
                throw Invalid(text, $"'{trimmed}' is not a known macro (use @hourly, @daily, @weekly, @monthly or @yearly; "
                    + "for a repeating duration use type interval, for a task that starts at once type loop)");
            }
            expression = expanded;
            canonical = trimmed.ToLowerInvariant();
        }
        else
        {
            expression = string.Join(' ', trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
            canonical = expression;
        }

        var fields = expression.Split(' ');
        if (fields.Length is not (5 or 6))
        {
            throw Invalid(text, $"it has {fields.Length} field{(fields.Length == 1 ? "" : "s")}");
        }
        var withSeconds = fields.Length == 6;
        var kinds = withSeconds ? SixFields : FiveFields;
        for (var i = 0; i < fields.Length; i++)
        {
            if (FieldProblem(kinds[i], fields[i]) is { } problem)
            {
                throw Invalid(text, problem);
            }
        }

        var crontab = CrontabSchedule.TryParse(expression, new CrontabSchedule.ParseOptions { IncludingSeconds = withSeconds })
            ?? throw Invalid(text, "it cannot be read");
        var hours = CrontabField.Parse(CrontabFieldKind.Hour, fields[withSeconds ? 2 : 1]);
        var everyHour = Enumerable.Range(0, 24).All(hours.Contains);
        return new CronSchedule(crontab, zone, everyHour);
    }

    /// <summary>The first occurrence strictly after <paramref name="after"/>, in UTC; null when the
    /// expression matches no date within 50 years (like 30 February).</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after)
    {
        var afterUtc = after.UtcDateTime;
        var next = _isUtc ? NextInUtc(afterUtc) : NextInZone(afterUtc);
        return next is { } utc ? new DateTimeOffset(utc, TimeSpan.Zero) : null;
    }

    private DateTime? NextInUtc(DateTime afterUtc)
    {
        var wall = DateTime.SpecifyKind(afterUtc, DateTimeKind.Unspecified);
        var horizon = wall.AddYears(HorizonYears);
        var next = _crontab.GetNextOccurrence(wall, horizon);
        return next < horizon ? DateTime.SpecifyKind(next, DateTimeKind.Utc) : null;
    }

    private DateTime? NextInZone(DateTime afterUtc)
    {
        var wall = ZoneClock.ToWall(_zone, afterUtc);
        var horizon = wall.AddYears(HorizonYears);
        var secondPass = _followsClock ? SecondPassAhead(afterUtc, wall) : null;
        var cursor = wall;
        while (true)
        {
            var next = _crontab.GetNextOccurrence(cursor, horizon);
            if (next >= horizon)
            {
                return secondPass;
            }
            cursor = next;

            DateTime candidate;
            if (_zone.IsInvalidTime(next))
            {
                var jump = ZoneClock.TransitionNear(_zone, next);
                if (_followsClock)
                {
                    // The clock never shows these wall times: carry on from the end of the gap.
                    var gapEnd = ZoneClock.ToWall(_zone, jump) - OneSecond;
                    cursor = gapEnd > next ? gapEnd : next;
                    continue;
                }
                candidate = jump;
            }
            else if (_zone.IsAmbiguousTime(next))
            {
                var (first, second) = ZoneClock.Instances(_zone, next);
                candidate = first > afterUtc || !_followsClock ? first : second;
            }
            else
            {
                candidate = DateTime.SpecifyKind(next - _zone.GetUtcOffset(next), DateTimeKind.Utc);
            }

            if (candidate > afterUtc)
            {
                return secondPass is { } repeat && repeat < candidate ? repeat : candidate;
            }
        }
    }

    /// <summary>When <paramref name="afterUtc"/> is on the first pass of a fall-back overlap, the wall
    /// clock will run through the repeated times again after the change; the walk forward from
    /// <paramref name="wall"/> cannot see those (they are behind it), so look for the first match there.</summary>
    private DateTime? SecondPassAhead(DateTime afterUtc, DateTime wall)
    {
        if (!_zone.IsAmbiguousTime(wall))
        {
            return null;
        }
        var (first, second) = ZoneClock.Instances(_zone, wall);
        if (afterUtc >= second)
        {
            return null;
        }
        var change = ZoneClock.TransitionNear(_zone, wall);
        var repeatStart = ZoneClock.ToWall(_zone, change);
        var repeatEnd = repeatStart + (second - first);
        var next = _crontab.GetNextOccurrence(repeatStart - OneSecond, repeatEnd);
        return next < repeatEnd
            ? DateTime.SpecifyKind(next - _zone.GetUtcOffset(change), DateTimeKind.Utc)
            : null;
    }

    private static readonly CrontabFieldKind[] FiveFields =
        [CrontabFieldKind.Minute, CrontabFieldKind.Hour, CrontabFieldKind.Day, CrontabFieldKind.Month, CrontabFieldKind.DayOfWeek];

    private static readonly CrontabFieldKind[] SixFields = [CrontabFieldKind.Second, .. FiveFields];

    private static (string Name, string Range, int Max) Describe(CrontabFieldKind kind) => kind switch
    {
        CrontabFieldKind.Second => ("second", "0-59", 59),
        CrontabFieldKind.Minute => ("minute", "0-59", 59),
        CrontabFieldKind.Hour => ("hour", "0-23", 23),
        CrontabFieldKind.Day => ("day of month", "1-31", 31),
        CrontabFieldKind.Month => ("month", "1-12 or JAN-DEC", 12),
        _ => ("weekday", "0-6 or SUN-SAT (0 is Sunday)", 6),
    };

    /// <summary>What is wrong with one field, or null. NCrontab accepts some nonsense silently
    /// (steps of 0 or beyond the range, backward ranges), so those are checked here first.</summary>
    private static string? FieldProblem(CrontabFieldKind kind, string field)
    {
        var (name, range, max) = Describe(kind);
        foreach (var item in field.Split(','))
        {
            var slash = item.IndexOf('/');
            if (slash >= 0)
            {
                if (!int.TryParse(item.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var step))
                {
                    return $"{name} step in '{field}' is not a number";
                }
                if (step == 0)
                {
                    return $"{name} step must be at least 1 (got '{field}')";
                }
                if (step > max)
                {
                    return $"{name} must be {range} (got '{field}')";
                }
            }
            var span = slash >= 0 ? item[..slash] : item;
            var dash = span.IndexOf('-');
            if (dash > 0
                && int.TryParse(span.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var low)
                && int.TryParse(span.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var high)
                && low > high)
            {
                return $"{name} range '{span}' runs backwards; write it low-high like {high}-{low}";
            }
        }
        return CrontabField.TryParse<string?>(kind, field, _ => null, _ => $"{name} must be {range} (got '{field}')");
    }

    private static ScheduleFormatException Invalid(string text, string problem) =>
        new("schedule", $"schedule '{text}' is not a valid cron expression: {problem}; {Usage}");

    public const string Example = "\"*/5 * * * *\"";
}
