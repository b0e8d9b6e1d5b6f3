namespace Loop.Runtime;

/// <summary>
/// Cuts a long text into chat messages (Discord: at most 2,000 characters each), preferring a paragraph
/// break, then a line break, then a space. A code block cut in two is closed at the end of one part
/// and reopened (with its language) at the start of the next, so both render as code.
/// </summary>
public static class MessageSplitter
{
    public const int DiscordLimit = 2000;
    private const string Fence = "```";

    public static IReadOnlyList<string> Split(string text, int limit = DiscordLimit)
    {
        var parts = new List<string>();
        var remaining = text.Trim('\n', '\r');
        var prefix = "";
        while (prefix.Length + remaining.Length > limit)
        {
            // Room for the reopened fence at the start and a closing fence at the end.
            var budget = limit - prefix.Length - (Fence.Length + 1);
            var (cut, skip) = CutPoint(remaining, budget);
            var chunk = remaining[..cut].TrimEnd();
            remaining = remaining[(cut + skip)..].TrimStart('\n', '\r');
            var open = OpenFenceAfter(chunk, prefix.Length > 0 ? prefix.TrimEnd('\n') : null);
            var part = prefix + chunk;
            if (open is not null)
            {
                part += "\n" + Fence;
            }
            if (!string.IsNullOrWhiteSpace(chunk))
            {
                parts.Add(part);
            }
            prefix = open is null ? "" : open + "\n";
        }
        if (!string.IsNullOrWhiteSpace(remaining) || parts.Count == 0)
        {
            parts.Add(prefix + remaining);
        }
        return parts;
    }

    /// <summary>Where to cut within the first <paramref name="budget"/> characters, and how many separator characters to drop.</summary>
    private static (int Cut, int Skip) CutPoint(string text, int budget)
    {
        var window = text[..budget];
        var paragraph = window.LastIndexOf("\n\n", StringComparison.Ordinal);
        if (paragraph > budget / 2)
        {
            return (paragraph, 2);
        }
        var line = window.LastIndexOf('\n');
        if (line > budget / 4)
        {
            return (line, 1);
        }
        var space = window.LastIndexOf(' ');
        if (space > 0)
        {
            return (space, 1);
        }
        return (budget, 0);
    }

    /// <summary>The opening line of the code block still open at the end of <paramref name="chunk"/>, if any.</summary>
    private static string? OpenFenceAfter(string chunk, string? openAtStart)
    {
        var open = openAtStart;
        foreach (var line in chunk.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith(Fence, StringComparison.Ordinal))
            {
                open = open is null ? trimmed : null;
            }
        }
        return open;
    }
}
