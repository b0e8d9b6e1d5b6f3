namespace Loop.Email;

using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MimeKit;
using MimeKit.Text;

/// <summary>
/// What of a mail reaches the agent: its text (an HTML-only mail converted to text), without the
/// quoted history ("On … wrote:" and the lines after it, lines starting with "&gt;") or the signature
/// (after a "-- " line), and a list of its attachments by name and size, which are not passed on.
/// </summary>
public static partial class MailText
{
    /// <summary>Room left for the attachment list and the subject under the store's limit.</summary>
    private const int MaxText = 90_000;

    public static string Of(MimeMessage message, string? subject = null)
    {
        var raw = message.TextBody is { } plain && !string.IsNullOrWhiteSpace(plain) ? plain
            : message.HtmlBody is { } html ? HtmlToText(html)
            : "";
        var text = Trim(raw);
        if (text.Length == 0)
        {
            // Nothing but quotes: better the whole mail than nothing.
            text = raw.Replace("\0", "", StringComparison.Ordinal).Trim();
        }
        if (text.Length > MaxText)
        {
            text = text[..MaxText] + "\n[… the rest of the mail was cut]";
        }
        var result = new StringBuilder();
        if (subject is not null)
        {
            result.Append("Subject: ").Append(subject).Append("\n\n");
        }
        result.Append(text.Length == 0 ? "(no text)" : text);
        var attachments = Attachments(message);
        if (attachments.Count > 0)
        {
            result.Append("\n\nAttachments (not passed on):");
            foreach (var (name, size) in attachments)
            {
                result.Append("\n- ").Append(name).Append(" (").Append(Size(size)).Append(')');
            }
        }
        return result.ToString();
    }

    /// <summary>Cuts the quoted history and the signature.</summary>
    public static string Trim(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Replace("\0", "", StringComparison.Ordinal).Split('\n');
        var kept = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var trimmed = line.Trim();
            if (trimmed == "--" || line == "-- " || trimmed.StartsWith("-----Original Message-----", StringComparison.OrdinalIgnoreCase)
                || (trimmed.StartsWith("________________", StringComparison.Ordinal) && i + 1 < lines.Length && lines[i + 1].TrimStart().StartsWith("From:", StringComparison.Ordinal)))
            {
                break;
            }
            // "On Mon, 1 Jan 2025 at 10:00, Alice <alice@example.com> wrote:", which clients wrap over two lines.
            if (Wrote().IsMatch(trimmed) || (trimmed.StartsWith("On ", StringComparison.Ordinal) && i + 1 < lines.Length && Wrote().IsMatch(trimmed + " " + lines[i + 1].Trim())))
            {
                break;
            }
            if (trimmed.StartsWith('>'))
            {
                continue;
            }
            kept.Add(line.TrimEnd());
        }
        return string.Join('\n', kept).Trim();
    }

    /// <summary>HTML as the text a reader sees: blocks on lines of their own, list items dashed,
    /// links followed by their address, scripts, styles and quoted history (blockquote) left out.</summary>
    public static string HtmlToText(string html)
    {
        var text = new StringBuilder();
        using var reader = new StringReader(html);
        var tokenizer = new HtmlTokenizer(reader);
        var skipping = 0;
        string? href = null;
        while (tokenizer.ReadNextToken(out var token))
        {
            switch (token)
            {
                case HtmlTagToken tag:
                    var name = tag.Name.ToLowerInvariant();
                    if (name is "script" or "style" or "head" or "blockquote" or "title")
                    {
                        if (!tag.IsEmptyElement)
                        {
                            skipping = Math.Max(0, skipping + (tag.IsEndTag ? -1 : 1));
                        }
                        break;
                    }
                    if (skipping > 0)
                    {
                        break;
                    }
                    switch (name)
                    {
                        case "br":
                            text.Append('\n');
                            break;
                        case "p" or "div" or "tr" or "table" or "ul" or "ol" or "pre" or "h1" or "h2" or "h3" or "h4" or "h5" or "h6" or "hr":
                            NewLine(text);
                            break;
                        case "li" when !tag.IsEndTag:
                            NewLine(text);
                            text.Append("- ");
                            break;
                        case "td" or "th" when tag.IsEndTag:
                            text.Append('\t');
                            break;
                        case "a" when !tag.IsEndTag:
                            href = tag.Attributes.FirstOrDefault(a => a.Id == HtmlAttributeId.Href)?.Value;
                            break;
                        case "a":
                            if (href is { Length: > 0 } link && !link.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase))
                            {
                                text.Append(" (").Append(link).Append(')');
                            }
                            href = null;
                            break;
                    }
                    break;
                case HtmlDataToken data when skipping == 0:
                    text.Append(Whitespace().Replace(data.Data, " "));
                    break;
            }
        }
        var lines = text.ToString().Replace('\u00a0', ' ').Split('\n').Select(l => l.Trim());
        return Blank().Replace(string.Join('\n', lines), "\n\n").Trim();
    }

    private static void NewLine(StringBuilder text)
    {
        if (text.Length > 0 && text[^1] != '\n')
        {
            text.Append('\n');
        }
    }

    /// <summary>The parts that are not the text read above: attachments, and inline parts other than text.</summary>
    public static IReadOnlyList<(string Name, long Size)> Attachments(MimeMessage message)
    {
        var found = new List<(string, long)>();
        foreach (var entity in message.Attachments)
        {
            switch (entity)
            {
                case MimePart part:
                    var counter = new CountingStream();
                    part.Content?.DecodeTo(counter);
                    found.Add((part.FileName ?? part.ContentType.Name ?? $"unnamed {part.ContentType.MimeType}", counter.Length));
                    break;
                case MessagePart attached:
                    var bytes = new CountingStream();
                    attached.Message?.WriteTo(bytes);
                    found.Add((attached.ContentDisposition?.FileName ?? $"{attached.Message?.Subject ?? "message"}.eml", bytes.Length));
                    break;
            }
        }
        return found;
    }

    public static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes.ToString(CultureInfo.InvariantCulture)} bytes",
        < 1024 * 1024 => $"{(bytes / 1024.0).ToString("0.#", CultureInfo.InvariantCulture)} KB",
        _ => $"{(bytes / (1024.0 * 1024)).ToString("0.#", CultureInfo.InvariantCulture)} MB",
    };

    /// <summary>The subject with its "Re:", "Fwd:" and the like taken off: the name of the thread.</summary>
    public static string BaseSubject(string? subject)
    {
        var text = Whitespace().Replace(subject ?? "", " ").Trim();
        while (Prefix().Match(text) is { Success: true } prefix)
        {
            text = text[prefix.Length..].TrimStart();
        }
        if (text.Length > 100)
        {
            text = text[..100].TrimEnd();
        }
        return text.Length == 0 ? "(no subject)" : text;
    }

    [GeneratedRegex(@"^On\b.{0,300}\bwrote:$", RegexOptions.Singleline)]
    private static partial Regex Wrote();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\n{3,}")]
    private static partial Regex Blank();

    [GeneratedRegex(@"^(re|fw|fwd|aw|wg|sv|vs)(\[\d+\])?\s*:", RegexOptions.IgnoreCase)]
    private static partial Regex Prefix();

    /// <summary>Counts what is written to it and keeps nothing.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
    }
}
