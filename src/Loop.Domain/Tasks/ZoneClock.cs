namespace Loop.Domain.Tasks;

/// <summary>Conversions between a zone's wall clock (<see cref="DateTimeKind.Unspecified"/>) and UTC
/// (<see cref="DateTimeKind.Utc"/>), with one rule for the wall times a DST change skips or repeats.</summary>
internal static class ZoneClock
{
    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    public static DateTime ToWall(TimeZoneInfo zone, DateTime utc) =>
        DateTime.SpecifyKind(utc + zone.GetUtcOffset(utc), DateTimeKind.Unspecified);

    /// <summary>The instant a wall time stands for. A skipped wall time (spring-forward gap) resolves to
    /// the instant the clock jumps, the first valid instant after the gap; a repeated one (fall-back
    /// overlap) resolves to its first instance.</summary>
    public static DateTime ToUtc(TimeZoneInfo zone, DateTime wall)
    {
        if (zone.IsInvalidTime(wall))
        {
            return TransitionNear(zone, wall);
        }
        if (zone.IsAmbiguousTime(wall))
        {
            return Instances(zone, wall).First;
        }
        return DateTime.SpecifyKind(wall - zone.GetUtcOffset(wall), DateTimeKind.Utc);
    }

    /// <summary>Both instants of a wall time the clock shows twice.</summary>
    public static (DateTime First, DateTime Second) Instances(TimeZoneInfo zone, DateTime ambiguousWall)
    {
        var offsets = zone.GetAmbiguousTimeOffsets(ambiguousWall);
        var max = offsets.Max();
        var min = offsets.Min();
        // Clocks go back in an overlap, so the first pass runs on the larger offset.
        return (DateTime.SpecifyKind(ambiguousWall - max, DateTimeKind.Utc),
                DateTime.SpecifyKind(ambiguousWall - min, DateTimeKind.Utc));
    }

    /// <summary>The UTC instant of the offset change that skips or repeats <paramref name="wall"/>.
    /// Offsets are at most 14 h, so the change lies within a day either side; real zones never change
    /// twice within two days. Binary search to the second: a rare path (a DST change), ~18 probes.</summary>
    public static DateTime TransitionNear(TimeZoneInfo zone, DateTime wall)
    {
        var whole = new DateTime(wall.Ticks - wall.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
        var low = whole.AddDays(-1);
        var high = whole.AddDays(1);
        var before = zone.GetUtcOffset(low);
        while (high - low > OneSecond)
        {
            var mid = low.AddSeconds(Math.Floor((high - low).TotalSeconds / 2));
            if (zone.GetUtcOffset(mid) == before)
            {
                low = mid;
            }
            else
            {
                high = mid;
            }
        }
        return high;
    }
}
