namespace Loop.Telegram;

using System.Net;
using System.Text;

/// <summary>
/// The agent's Markdown as Telegram's HTML formatting (core.telegram.org/bots/api#html-style), and
/// long texts cut into messages Telegram takes. Only what Telegram can show is converted: code
/// blocks (with their language), inline code, bold, italic, strikethrough, links, headings (bold),
/// quotes and list bullets; everything else is text, escaped. Delimiters without a partner stay as
/// they are written. Inline formatting is found within one line, so a cut at a line break never
/// splits an entity; a cut inside a long line avoids them too.
/// </summary>
public static class TelegramFormatter
{
    /// <summary>Telegram's limit on a message's text (after entity parsing).</summary>
    public const int TelegramLimit = 4096;

    private const string Fence = "```";

    // ---- splitting ----

    /// <summary>Cuts Markdown into parts of at most <paramref name="limit"/> characters each, preferring a
    /// paragraph break, then a line break, then a space outside any inline entity. A code block cut in
    /// two is closed at the end of one part and reopened (with its language) at the start of the next.
    /// Each part converts on its own, and its text as Telegram counts it is no longer than the Markdown.</summary>
    public static IReadOnlyList<string> Split(string text, int limit = TelegramLimit)
    {
        var parts = new List<string>();
        var remaining = text.Trim('\n', '\r');
        var prefix = "";
        while (prefix.Length + remaining.Length > limit)
        {
            var budget = limit - prefix.Length - (Fence.Length + 1);
            var (cut, skip) = CutPoint(remaining, budget, inCode: prefix.Length > 0);
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

    private static (int Cut, int Skip) CutPoint(string text, int budget, bool inCode)
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
        // One long line: a space that no inline entity spans (inside a code block there are none).
        var lineStart = line + 1;
        var lineEnd = text.IndexOf('\n', lineStart) is var end and >= 0 ? end : text.Length;
        var spans = inCode || InCodeBlock(text[..lineStart]) ? [] : InlineSpans(text[lineStart..lineEnd]);
        for (var space = window.LastIndexOf(' '); space > 0; space = window.LastIndexOf(' ', space - 1))
        {
            if (!spans.Any(s => s.Start + lineStart < space && space < s.End + lineStart))
            {
                return (space, 1);
            }
        }
        var hard = budget;
        if (char.IsLowSurrogate(text[hard]))
        {
            hard--;
        }
        return (hard, 0);
    }

    private static bool InCodeBlock(string before) => OpenFenceAfter(before, null) is not null;

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

    // ---- Markdown → HTML ----

    /// <summary>The Markdown as Telegram HTML (parse_mode HTML).</summary>
    public static string ToHtml(string markdown)
    {
        var html = new StringBuilder();
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var trimmed = line.TrimStart();
            if (trimmed.StartsWith(Fence, StringComparison.Ordinal))
            {
                var language = trimmed[Fence.Length..].Trim();
                var code = new List<string>();
                var closed = false;
                for (i++; i < lines.Length; i++)
                {
                    if (lines[i].Trim().StartsWith(Fence, StringComparison.Ordinal))
                    {
                        closed = true;
                        break;
                    }
                    code.Add(lines[i]);
                }
                html.Append(language.Length > 0 && language.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '+' or '#')
                    ? $"<pre><code class=\"language-{language}\">"
                    : "<pre>");
                html.Append(Escape(string.Join('\n', code)));
                html.Append(language.Length > 0 && language.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '+' or '#') ? "</code></pre>" : "</pre>");
                if (!closed)
                {
                    break;
                }
                if (i < lines.Length - 1)
                {
                    html.Append('\n');
                }
                continue;
            }
            if (trimmed.StartsWith('>'))
            {
                var quoted = new List<string>();
                for (; i < lines.Length && lines[i].TrimStart().StartsWith('>'); i++)
                {
                    var body = lines[i].TrimStart()[1..];
                    quoted.Add(Inline(body.StartsWith(' ') ? body[1..] : body));
                }
                i--;
                html.Append("<blockquote>").Append(string.Join('\n', quoted)).Append("</blockquote>");
            }
            else if (Heading(trimmed) is { } heading)
            {
                html.Append("<b>").Append(Inline(heading)).Append("</b>");
            }
            else if (trimmed.Length > 2 && trimmed[0] is '-' or '*' or '+' && trimmed[1] == ' ')
            {
                html.Append(Escape(line[..(line.Length - trimmed.Length)])).Append("• ").Append(Inline(trimmed[2..]));
            }
            else
            {
                html.Append(Inline(line));
            }
            if (i < lines.Length - 1)
            {
                html.Append('\n');
            }
        }
        return html.ToString();
    }

    private static string? Heading(string line)
    {
        var level = 0;
        while (level < line.Length && line[level] == '#')
        {
            level++;
        }
        return level is >= 1 and <= 6 && level < line.Length && line[level] == ' ' ? line[(level + 1)..].Trim().TrimEnd('#').TrimEnd() : null;
    }

    /// <summary>Text to show as it is inside Markdown given to <see cref="ToHtml"/> (a user's prompt, an error message).</summary>
    public static string EscapeMarkdown(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '\\' or '*' or '_' or '~' or '`' or '[' or ']' or '>' or '#' or '-' or '+')
            {
                escaped.Append('\\');
            }
            escaped.Append(c);
        }
        return escaped.ToString();
    }

    public static string Escape(string text) => text
        .Replace("&", "&amp;", StringComparison.Ordinal)
        .Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal);

    private static string Inline(string text)
    {
        var html = new StringBuilder();
        Inline(text, html, null);
        return html.ToString();
    }

    /// <summary>Where the inline entities of one line start and end (top level), to cut between them.</summary>
    public static IReadOnlyList<(int Start, int End)> InlineSpans(string line)
    {
        var spans = new List<(int, int)>();
        Inline(line, new StringBuilder(), spans);
        return spans;
    }

    private static void Inline(string text, StringBuilder html, List<(int Start, int End)>? spans)
    {
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '\\' && i + 1 < text.Length && char.IsAsciiLetterOrDigit(text[i + 1]) is false && text[i + 1] is > ' ' and < '\x7f')
            {
                html.Append(Escape(text[i + 1].ToString()));
                i += 2;
                continue;
            }
            if (c == '`')
            {
                var run = 1;
                while (i + run < text.Length && text[i + run] == '`')
                {
                    run++;
                }
                var fence = new string('`', run);
                var close = text.IndexOf(fence, i + run, StringComparison.Ordinal);
                if (close > i + run)
                {
                    html.Append("<code>").Append(Escape(text[(i + run)..close])).Append("</code>");
                    spans?.Add((i, close + run));
                    i = close + run;
                    continue;
                }
                html.Append(Escape(fence));
                i += run;
                continue;
            }
            if (TryDelimited(text, i, "**", "b", html, spans, ref i) || TryDelimited(text, i, "__", "b", html, spans, ref i)
                || TryDelimited(text, i, "~~", "s", html, spans, ref i) || TryDelimited(text, i, "*", "i", html, spans, ref i)
                || TryDelimited(text, i, "_", "i", html, spans, ref i) || TryLink(text, i, html, spans, ref i))
            {
                continue;
            }
            html.Append(Escape(c.ToString()));
            i++;
        }
    }

    private static bool TryDelimited(string text, int at, string delimiter, string tag, StringBuilder html, List<(int Start, int End)>? spans, ref int next)
    {
        if (string.CompareOrdinal(text, at, delimiter, 0, delimiter.Length) != 0)
        {
            return false;
        }
        var single = delimiter.Length == 1;
        // A single * or _ beside another is part of ** or __ (not matched there); underscores inside words are text.
        if (single && at + 1 < text.Length && text[at + 1] == delimiter[0])
        {
            return false;
        }
        var word = delimiter[0] == '_';
        if (word && at > 0 && char.IsLetterOrDigit(text[at - 1]))
        {
            return false;
        }
        var start = at + delimiter.Length;
        if (start >= text.Length || char.IsWhiteSpace(text[start]))
        {
            return false;
        }
        for (var close = text.IndexOf(delimiter, start, StringComparison.Ordinal); close > start; close = text.IndexOf(delimiter, close + 1, StringComparison.Ordinal))
        {
            var after = close + delimiter.Length;
            if (char.IsWhiteSpace(text[close - 1])
                || (single && after < text.Length && text[after] == delimiter[0])
                || (single && text[close - 1] == delimiter[0])
                || (word && after < text.Length && char.IsLetterOrDigit(text[after])))
            {
                continue;
            }
            html.Append('<').Append(tag).Append('>');
            Inline(text[start..close], html, null);
            html.Append("</").Append(tag).Append('>');
            spans?.Add((at, after));
            next = after;
            return true;
        }
        return false;
    }

    private static bool TryLink(string text, int at, StringBuilder html, List<(int Start, int End)>? spans, ref int next)
    {
        if (text[at] != '[')
        {
            return false;
        }
        var close = text.IndexOf("](", at + 1, StringComparison.Ordinal);
        if (close < 0 || text.IndexOf(']', at + 1) != close)
        {
            return false;
        }
        var end = text.IndexOf(')', close + 2);
        if (end < 0)
        {
            return false;
        }
        var url = text[(close + 2)..end].Trim();
        if (close == at + 1 || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "mailto" or "tg"))
        {
            return false;
        }
        html.Append("<a href=\"").Append(WebUtility.HtmlEncode(url)).Append("\">");
        Inline(text[(at + 1)..close], html, null);
        html.Append("</a>");
        spans?.Add((at, end + 1));
        next = end + 1;
        return true;
    }
}
