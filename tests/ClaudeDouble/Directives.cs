namespace Loop.Tests.ClaudeDouble;

using System.Globalization;
using System.Text.RegularExpressions;

/// <summary>One <c>[[name argument]]</c> found in the prompt.</summary>
public sealed record Directive(string Name, string Argument);

public static partial class Directives
{
    public static readonly IReadOnlySet<string> Known = new HashSet<string>(StringComparer.Ordinal)
    {
        "reply", "sleep", "fail", "exit", "usage", "alloc", "write", "read", "env", "pwd", "system", "budget", "session", "after", "mcp", "sh", "tool",
    };

    [GeneratedRegex(@"\[\[(?<name>[a-z]+)(?:[ \t]+(?<arg>.*?))?\]\]", RegexOptions.Singleline)]
    private static partial Regex Pattern();

    /// <summary>The known directives in prompt order. Anything else in double brackets is prompt text.</summary>
    public static IReadOnlyList<Directive> Parse(string prompt) =>
        Pattern().Matches(prompt)
            .Where(m => Known.Contains(m.Groups["name"].Value))
            .Select(m => new Directive(m.Groups["name"].Value, m.Groups["arg"].Value.Trim()))
            .ToList();

    /// <summary>The prompt with its directives removed: what the default reply echoes.</summary>
    public static string StripFrom(string prompt) =>
        Pattern().Replace(prompt, m => Known.Contains(m.Groups["name"].Value) ? "" : m.Value).Trim();

    /// <summary>Splits "FIRST rest of the text" into the first word and the rest.</summary>
    public static (string Head, string Tail) SplitFirst(string argument)
    {
        var trimmed = argument.Trim();
        var space = trimmed.IndexOfAny([' ', '\t', '\n']);
        return space < 0 ? (trimmed, "") : (trimmed[..space], trimmed[(space + 1)..].Trim());
    }

    public static Usage ParseUsage(string argument, Usage current)
    {
        var u = current;
        foreach (var pair in argument.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            if (parts.Length != 2)
            {
                continue;
            }
            var (k, v) = (parts[0], parts[1]);
            u = k switch
            {
                "in" => u with { InputTokens = long.Parse(v, CultureInfo.InvariantCulture) },
                "out" => u with { OutputTokens = long.Parse(v, CultureInfo.InvariantCulture) },
                "cache_read" => u with { CacheReadTokens = long.Parse(v, CultureInfo.InvariantCulture) },
                "cache_write" => u with { CacheWriteTokens = long.Parse(v, CultureInfo.InvariantCulture) },
                "cost" => u with { CostUsd = decimal.Parse(v, CultureInfo.InvariantCulture) },
                _ => u,
            };
        }
        return u;
    }
}

/// <summary>Token counts and cost the double reports for a run.</summary>
public sealed record Usage(long InputTokens, long OutputTokens, long CacheReadTokens, long CacheWriteTokens, decimal CostUsd)
{
    public static readonly Usage Default = new(InputTokens: 3, OutputTokens: 17, CacheReadTokens: 2048, CacheWriteTokens: 1024, CostUsd: 0.0042m);
}
