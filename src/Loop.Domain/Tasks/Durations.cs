using System.Globalization;
using System.Text.RegularExpressions;

namespace Loop.Domain.Tasks;

/// <summary>Durations in whole seconds: "90s", "5m", "1h30m", "1d", "1h30m15s", or ISO-8601 "PT5M", "P1DT2H".</summary>
internal static partial class Durations
{
    public static readonly TimeSpan Minimum = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Maximum = TimeSpan.FromDays(3650);

    public const string Examples = "\"90s\", \"5m\", \"1h30m\" or \"1d\" (units d, h, m, s; ISO-8601 \"PT5M\" works too)";

    /// <summary>Parses <paramref name="text"/>, or says what is wrong with it (a phrase to follow the quoted text).</summary>
    public static bool TryParse(string text, out TimeSpan value, out string problem)
    {
        value = TimeSpan.Zero;
        var trimmed = text.Trim();
        var match = Short().Match(trimmed);
        if (!match.Success)
        {
            match = Iso().Match(trimmed);
        }
        if (trimmed.Length == 0)
        {
            problem = "is empty";
            return false;
        }
        if (trimmed.StartsWith('-'))
        {
            problem = "is negative";
            return false;
        }
        if (trimmed.All(char.IsAsciiDigit))
        {
            problem = "has no unit";
            return false;
        }
        if (!match.Success)
        {
            problem = "is not a duration";
            return false;
        }

        long seconds = 0;
        string[] units = ["d", "h", "m", "s"];
        long[] factors = [86_400, 3_600, 60, 1];
        for (var i = 0; i < units.Length; i++)
        {
            var group = match.Groups[units[i]];
            if (group.Success)
            {
                seconds += long.Parse(group.ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture) * factors[i];
            }
        }
        if (seconds == 0)
        {
            problem = "is zero; the minimum is 1s";
            return false;
        }
        if (seconds > (long)Maximum.TotalSeconds)
        {
            problem = $"is too long; the maximum is {Format(Maximum)}";
            return false;
        }
        value = TimeSpan.FromSeconds(seconds);
        problem = "";
        return true;
    }

    /// <summary>The canonical spelling: "1d2h30m15s", largest unit first, zero parts left out.</summary>
    public static string Format(TimeSpan value)
    {
        var text = "";
        if (value.Days > 0) text += value.Days.ToString(CultureInfo.InvariantCulture) + "d";
        if (value.Hours > 0) text += value.Hours.ToString(CultureInfo.InvariantCulture) + "h";
        if (value.Minutes > 0) text += value.Minutes.ToString(CultureInfo.InvariantCulture) + "m";
        if (value.Seconds > 0 || text.Length == 0) text += value.Seconds.ToString(CultureInfo.InvariantCulture) + "s";
        return text;
    }

    // Every part optional but at least one present (the lookahead); digits are capped so sums cannot overflow.
    [GeneratedRegex(@"^(?=\d)(?:(?<d>\d{1,9})\s*d\s*)?(?:(?<h>\d{1,9})\s*h\s*)?(?:(?<m>\d{1,9})\s*m\s*)?(?:(?<s>\d{1,9})\s*s)?$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Short();

    [GeneratedRegex(@"^P(?=\d|T\d)(?:(?<d>\d{1,9})D)?(?:T(?=\d)(?:(?<h>\d{1,9})H)?(?:(?<m>\d{1,9})M)?(?:(?<s>\d{1,9})S)?)?$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Iso();
}
