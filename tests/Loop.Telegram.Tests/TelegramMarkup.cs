namespace Loop.Telegram.Tests;

using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

/// <summary>Markup the double refuses, with the text Telegram puts after "Bad Request: can't parse entities: ".</summary>
public sealed class MarkupException(string reason) : Exception(reason);

/// <summary>The text and entities a message ends up with once Telegram parsed its markup.</summary>
public sealed record ParsedText(string Text, JsonArray Entities);

/// <summary>
/// Telegram's formatting options (core.telegram.org/bots/api#formatting-options), parsed far enough
/// to turn well-formed markup into text plus entities and to refuse malformed markup the way the
/// Bot API does: a connector that escapes wrongly must fail here as it would against Telegram.
/// Offsets and lengths are in UTF-16 code units, as the API counts them; error positions are UTF-8
/// byte offsets into the markup, as the API reports them.
/// </summary>
public static class TelegramMarkup
{
    // Outside code entities every one of these must be escaped in MarkdownV2.
    private const string MarkdownV2Reserved = "_*[]()~`>#+-=|{}.!";

    /// <summary>parse_mode is matched ignoring case, as the Bot API does (Telegram.Bot sends "Html").</summary>
    public static ParsedText Parse(string text, string? parseMode) => parseMode?.ToLowerInvariant() switch
    {
        null or "" => new ParsedText(text, []),
        "markdownv2" => MarkdownV2(text),
        "html" => Html(text),
        "markdown" => LegacyMarkdown(text),
        _ => throw new ArgumentException("unsupported parse_mode", nameof(parseMode)),
    };

    private static int ByteOffset(string text, int index) => Encoding.UTF8.GetByteCount(text.AsSpan(0, index));

    private static JsonObject Entity(string type, int offset, int length, string? url = null, string? language = null)
    {
        var entity = new JsonObject { ["type"] = type, ["offset"] = offset, ["length"] = length };
        if (url is not null)
        {
            entity["url"] = url;
        }
        if (language is not null)
        {
            entity["language"] = language;
        }
        return entity;
    }

    private static JsonArray Sorted(List<JsonObject> entities) =>
        new([.. entities.Where(e => (int)e["length"]! > 0).OrderBy(e => (int)e["offset"]!).ThenByDescending(e => (int)e["length"]!)]);

    private sealed record Open(string Type, int Offset, int Index);

    /// <summary>MarkdownV2: *bold* _italic_ __underline__ ~strike~ ||spoiler|| `code` ```pre``` [text](url) &gt;quote, backslash escapes.</summary>
    private static ParsedText MarkdownV2(string markup)
    {
        var output = new StringBuilder();
        var entities = new List<JsonObject>();
        var open = new List<Open>();
        var lineStart = true;
        var quoteStart = -1;
        for (var i = 0; i < markup.Length;)
        {
            var c = markup[i];
            var top = open.Count > 0 ? open[^1] : null;
            if (top is { Type: "code" or "pre" })
            {
                // Inside code only ` and \ mean anything.
                if (c == '\\' && i + 1 < markup.Length && markup[i + 1] is '`' or '\\')
                {
                    output.Append(markup[i + 1]);
                    i += 2;
                    continue;
                }
                var fence = top.Type == "pre" ? "```" : "`";
                if (string.CompareOrdinal(markup, i, fence, 0, fence.Length) == 0)
                {
                    open.RemoveAt(open.Count - 1);
                    var language = (string?)null;
                    var start = top.Offset;
                    if (top.Type == "pre")
                    {
                        // ```lang\n…``` : the first line names the language.
                        var body = output.ToString(start, output.Length - start);
                        var newline = body.IndexOf('\n', StringComparison.Ordinal);
                        if (newline > 0 && !body[..newline].Contains(' ', StringComparison.Ordinal))
                        {
                            language = body[..newline];
                            output.Remove(start, newline + 1);
                        }
                    }
                    entities.Add(Entity(top.Type, start, output.Length - start, language: language));
                    i += fence.Length;
                    continue;
                }
                output.Append(c);
                lineStart = c == '\n';
                i++;
                continue;
            }
            if (c == '\\')
            {
                if (i + 1 < markup.Length && markup[i + 1] is >= (char)1 and <= (char)126)
                {
                    output.Append(markup[i + 1]);
                    i += 2;
                    lineStart = false;
                    continue;
                }
                throw Reserved(c);
            }
            if (c == '\n')
            {
                if (quoteStart >= 0)
                {
                    entities.Add(Entity("blockquote", quoteStart, output.Length - quoteStart));
                    quoteStart = -1;
                }
                output.Append(c);
                lineStart = true;
                i++;
                continue;
            }
            if (c == '>' && lineStart)
            {
                // A quote runs to the end of its line (consecutive quoted lines would merge; one line is enough here).
                quoteStart = output.Length;
                lineStart = false;
                i++;
                continue;
            }
            lineStart = false;
            string? type = c switch
            {
                '*' => "bold",
                '_' when i + 1 < markup.Length && markup[i + 1] == '_' => "underline",
                '_' => "italic",
                '~' => "strikethrough",
                '|' when i + 1 < markup.Length && markup[i + 1] == '|' => "spoiler",
                _ => null,
            };
            if (type is not null)
            {
                var width = type is "underline" or "spoiler" ? 2 : 1;
                var index = open.FindLastIndex(o => o.Type == type);
                if (index < 0)
                {
                    open.Add(new Open(type, output.Length, i));
                }
                else if (index == open.Count - 1)
                {
                    open.RemoveAt(index);
                    entities.Add(Entity(type, top!.Offset, output.Length - top.Offset));
                }
                else
                {
                    // Entities must nest: closing an outer one while an inner one is open leaves the inner unterminated.
                    throw EndNotFound(markup, open[^1].Index);
                }
                i += width;
                continue;
            }
            if (c == '`')
            {
                var isPre = string.CompareOrdinal(markup, i, "```", 0, 3) == 0;
                open.Add(new Open(isPre ? "pre" : "code", output.Length, i));
                i += isPre ? 3 : 1;
                continue;
            }
            if (c == '[' || (c == '!' && i + 1 < markup.Length && markup[i + 1] == '['))
            {
                var width = c == '!' ? 2 : 1;
                open.Add(new Open(c == '!' ? "custom_emoji" : "text_link", output.Length, i));
                i += width;
                continue;
            }
            if (c == ']' && top is { Type: "text_link" or "custom_emoji" })
            {
                if (i + 1 >= markup.Length || markup[i + 1] != '(')
                {
                    throw EndNotFound(markup, top.Index);
                }
                var url = new StringBuilder();
                var j = i + 2;
                for (; j < markup.Length && markup[j] != ')'; j++)
                {
                    // Inside (...) only ) and \ are escaped.
                    if (markup[j] == '\\' && j + 1 < markup.Length)
                    {
                        j++;
                    }
                    url.Append(markup[j]);
                }
                if (j >= markup.Length)
                {
                    throw EndNotFound(markup, top.Index);
                }
                open.RemoveAt(open.Count - 1);
                var link = Entity(top.Type, top.Offset, output.Length - top.Offset, url: top.Type == "text_link" ? url.ToString() : null);
                if (top.Type == "custom_emoji")
                {
                    link["custom_emoji_id"] = url.ToString().Replace("tg://emoji?id=", "", StringComparison.Ordinal);
                }
                entities.Add(link);
                i = j + 1;
                continue;
            }
            if (MarkdownV2Reserved.Contains(c, StringComparison.Ordinal))
            {
                throw Reserved(c);
            }
            output.Append(c);
            i++;
        }
        if (open.Count > 0)
        {
            throw EndNotFound(markup, open[0].Index);
        }
        if (quoteStart >= 0)
        {
            entities.Add(Entity("blockquote", quoteStart, output.Length - quoteStart));
        }
        return new ParsedText(output.ToString(), Sorted(entities));
    }

    /// <summary>The legacy Markdown mode: *bold* _italic_ `code` ```pre``` [text](url), nothing nests and nothing else is reserved.</summary>
    private static ParsedText LegacyMarkdown(string markup)
    {
        var output = new StringBuilder();
        var entities = new List<JsonObject>();
        for (var i = 0; i < markup.Length;)
        {
            var c = markup[i];
            if (c == '\\' && i + 1 < markup.Length && markup[i + 1] is '_' or '*' or '`' or '[')
            {
                output.Append(markup[i + 1]);
                i += 2;
                continue;
            }
            var (type, fence) = c switch
            {
                '*' => ("bold", "*"),
                '_' => ("italic", "_"),
                '`' when string.CompareOrdinal(markup, i, "```", 0, 3) == 0 => ("pre", "```"),
                '`' => ("code", "`"),
                _ => (null, null),
            };
            if (type is not null)
            {
                var end = markup.IndexOf(fence!, i + fence!.Length, StringComparison.Ordinal);
                if (end < 0)
                {
                    throw EndNotFound(markup, i);
                }
                var start = output.Length;
                output.Append(markup, i + fence.Length, end - i - fence.Length);
                entities.Add(Entity(type, start, output.Length - start));
                i = end + fence.Length;
                continue;
            }
            if (c == '[')
            {
                var close = markup.IndexOf("](", i, StringComparison.Ordinal);
                var paren = close < 0 ? -1 : markup.IndexOf(')', close);
                if (paren < 0)
                {
                    throw EndNotFound(markup, i);
                }
                var start = output.Length;
                output.Append(markup, i + 1, close - i - 1);
                entities.Add(Entity("text_link", start, output.Length - start, url: markup[(close + 2)..paren]));
                i = paren + 1;
                continue;
            }
            output.Append(c);
            i++;
        }
        return new ParsedText(output.ToString(), Sorted(entities));
    }

    private static readonly Dictionary<string, string> HtmlTags = new(StringComparer.Ordinal)
    {
        ["b"] = "bold",
        ["strong"] = "bold",
        ["i"] = "italic",
        ["em"] = "italic",
        ["u"] = "underline",
        ["ins"] = "underline",
        ["s"] = "strikethrough",
        ["strike"] = "strikethrough",
        ["del"] = "strikethrough",
        ["span"] = "spoiler",
        ["tg-spoiler"] = "spoiler",
        ["a"] = "text_link",
        ["code"] = "code",
        ["pre"] = "pre",
        ["blockquote"] = "blockquote",
        ["tg-emoji"] = "custom_emoji",
    };

    private sealed record OpenTag(string Name, int Offset, Dictionary<string, string> Attributes);

    /// <summary>HTML: the tags Telegram lists, the four named entities and numeric ones; everything else is refused.</summary>
    private static ParsedText Html(string markup)
    {
        var output = new StringBuilder();
        var entities = new List<JsonObject>();
        var open = new List<OpenTag>();
        for (var i = 0; i < markup.Length;)
        {
            var c = markup[i];
            if (c == '&')
            {
                var semicolon = markup.IndexOf(';', i);
                var name = semicolon > i ? markup[(i + 1)..semicolon] : "";
                string? decoded = name switch
                {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    _ when name.StartsWith("#x", StringComparison.OrdinalIgnoreCase) && int.TryParse(name[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hex) => char.ConvertFromUtf32(hex),
                    _ when name.StartsWith('#') && int.TryParse(name[1..], NumberStyles.None, CultureInfo.InvariantCulture, out var dec) => char.ConvertFromUtf32(dec),
                    _ => null,
                };
                // An unknown entity stays as written, as Telegram leaves it.
                output.Append(decoded ?? "&");
                i = decoded is null ? i + 1 : semicolon + 1;
                continue;
            }
            if (c != '<')
            {
                output.Append(c);
                i++;
                continue;
            }
            var tagStart = i;
            var closing = i + 1 < markup.Length && markup[i + 1] == '/';
            var nameStart = closing ? i + 2 : i + 1;
            var nameEnd = nameStart;
            while (nameEnd < markup.Length && (char.IsAsciiLetterOrDigit(markup[nameEnd]) || markup[nameEnd] == '-'))
            {
                nameEnd++;
            }
            var tag = markup[nameStart..nameEnd].ToLowerInvariant();
            var gt = markup.IndexOf('>', nameEnd);
            if (closing)
            {
                if (gt < 0)
                {
                    throw new MarkupException($"Unclosed end tag at byte offset {ByteOffset(markup, tagStart)}");
                }
                if (open.Count == 0)
                {
                    throw new MarkupException($"Unexpected end tag at byte offset {ByteOffset(markup, tagStart)}");
                }
                var top = open[^1];
                if (top.Name != tag)
                {
                    throw new MarkupException($"Unmatched end tag at byte offset {ByteOffset(markup, tagStart)}, expected \"</{top.Name}>\", found \"</{tag}>\"");
                }
                open.RemoveAt(open.Count - 1);
                entities.Add(HtmlEntity(top, output.Length - top.Offset, entities));
                i = gt + 1;
                continue;
            }
            if (!HtmlTags.ContainsKey(tag))
            {
                throw new MarkupException($"Unsupported start tag \"{tag}\" at byte offset {ByteOffset(markup, tagStart)}");
            }
            if (gt < 0)
            {
                throw new MarkupException($"Unclosed start tag at byte offset {ByteOffset(markup, tagStart)}");
            }
            var attributes = Attributes(markup[nameEnd..gt]);
            if (tag == "span" && attributes.GetValueOrDefault("class") != "tg-spoiler")
            {
                throw new MarkupException("Tag \"span\" must have class \"tg-spoiler\"");
            }
            open.Add(new OpenTag(tag, output.Length, attributes));
            i = gt + 1;
        }
        if (open.Count > 0)
        {
            throw new MarkupException($"Can't find end tag corresponding to start tag \"{open[^1].Name}\"");
        }
        return new ParsedText(output.ToString(), Sorted(entities));
    }

    private static JsonObject HtmlEntity(OpenTag tag, int length, List<JsonObject> entities)
    {
        var type = HtmlTags[tag.Name];
        if (type == "text_link")
        {
            var href = tag.Attributes.GetValueOrDefault("href") ?? "";
            if (href.StartsWith("tg://user?id=", StringComparison.Ordinal))
            {
                var mention = Entity("text_mention", tag.Offset, length);
                mention["user"] = new JsonObject { ["id"] = long.Parse(href["tg://user?id=".Length..], CultureInfo.InvariantCulture), ["is_bot"] = false, ["first_name"] = "" };
                return mention;
            }
            return Entity(type, tag.Offset, length, url: href);
        }
        if (type == "pre")
        {
            // <pre><code class="language-x">…</code></pre> is one pre entity with a language.
            var inner = entities.FindIndex(e => (string?)e["type"] == "code" && (int)e["offset"]! == tag.Offset && (int)e["length"]! == length);
            string? language = null;
            if (inner >= 0)
            {
                language = (string?)entities[inner]["language"];
                entities.RemoveAt(inner);
            }
            return Entity(type, tag.Offset, length, language: language);
        }
        if (type == "code" && tag.Attributes.GetValueOrDefault("class") is { } cls && cls.StartsWith("language-", StringComparison.Ordinal))
        {
            return Entity(type, tag.Offset, length, language: cls["language-".Length..]);
        }
        if (type == "blockquote" && tag.Attributes.ContainsKey("expandable"))
        {
            return Entity("expandable_blockquote", tag.Offset, length);
        }
        if (type == "custom_emoji")
        {
            var emoji = Entity(type, tag.Offset, length);
            emoji["custom_emoji_id"] = tag.Attributes.GetValueOrDefault("emoji-id") ?? "";
            return emoji;
        }
        return Entity(type, tag.Offset, length);
    }

    private static Dictionary<string, string> Attributes(string text)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            var start = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] != '=')
            {
                i++;
            }
            if (i == start)
            {
                i++;
                continue;
            }
            var name = text[start..i].ToLowerInvariant();
            var value = "";
            if (i < text.Length && text[i] == '=')
            {
                i++;
                var quote = i < text.Length && text[i] is '"' or '\'' ? text[i] : '\0';
                var valueStart = quote == '\0' ? i : i + 1;
                var end = quote == '\0' ? text.IndexOfAny([' ', '\t', '\n'], valueStart) : text.IndexOf(quote, valueStart);
                end = end < 0 ? text.Length : end;
                value = System.Net.WebUtility.HtmlDecode(text[valueStart..end]);
                i = quote == '\0' ? end : end + 1;
            }
            attributes[name] = value;
        }
        return attributes;
    }

    private static MarkupException Reserved(char c) =>
        new($"Character '{c}' is reserved and must be escaped with the preceding '\\'");

    private static MarkupException EndNotFound(string markup, int index) =>
        new($"Can't find end of the entity starting at byte offset {ByteOffset(markup, index)}");
}
