namespace Loop.Claude;

using System.Text.Json;
using Loop.Domain.Runs;

/// <summary>What a <c>claude --output-format stream-json</c> run reported.</summary>
/// <param name="SessionId">From the result event, else from the init event; null if neither came.</param>
/// <param name="Model">The model named by the init event.</param>
/// <param name="ResultText">The result event's <c>result</c>; without one, its <c>errors</c>; without
/// those, the assistant's text blocks joined by newlines. Null when there was no text at all.</param>
/// <param name="IsError">The result event's <c>is_error</c>; true when no result event arrived (a run
/// that never reported a result did not succeed).</param>
/// <param name="Subtype">The result event's <c>subtype</c> ("success", "error_max_turns", ...).</param>
/// <param name="HasResult">Whether the final result event was seen.</param>
public sealed record ClaudeRunSummary(
    string? SessionId,
    string? Model,
    string? ResultText,
    bool IsError,
    string? Subtype,
    RunUsage Usage,
    bool HasResult);

/// <summary>A tool call the agent made, as announced in an assistant message.</summary>
public sealed record ClaudeToolUse(string Id, string Name, string InputJson);

/// <summary>Reads the CLI's stream-json output one stdout line at a time. Blank lines, lines that
/// are not JSON and event types it does not know are skipped, so a stray log line or a newer CLI
/// never breaks a run. Not thread-safe: feed it from the one loop that reads stdout.</summary>
public sealed class StreamJsonReader
{
    private readonly List<string> _assistantText = [];
    private string? _initSessionId;
    private string? _eventSessionId;
    private string? _resultSessionId;
    private string? _resultText;
    private string? _resultErrors;
    private string? _subtype;
    private bool _isError;
    private RunUsage _usage = RunUsage.None;

    /// <summary>Raised with each assistant text block as it arrives (for streaming replies).</summary>
    public event Action<string>? AssistantText;

    /// <summary>Raised with each tool call as it is announced (for the activity feed).</summary>
    public event Action<ClaudeToolUse>? ToolUse;

    /// <summary>The session id as soon as the init event named it.</summary>
    public string? SessionId => _resultSessionId ?? _initSessionId ?? _eventSessionId;

    public string? Model { get; private set; }

    public bool HasResult { get; private set; }

    public ClaudeRunSummary Summary => new(
        SessionId,
        Model,
        _resultText ?? _resultErrors ?? (_assistantText.Count > 0 ? string.Join("\n", _assistantText) : null),
        HasResult ? _isError : true,
        _subtype,
        _usage,
        HasResult);

    /// <summary>Takes one line of stdout. Returns true if it was a stream-json event.</summary>
    public bool Feed(string? line)
    {
        if (string.IsNullOrWhiteSpace(line) || line.TrimStart()[0] != '{')
        {
            return false;
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException)
        {
            return false;
        }
        using (doc)
        {
            var e = doc.RootElement;
            var type = String(e, "type");
            if (type is null)
            {
                return false;
            }
            _eventSessionId ??= String(e, "session_id");
            switch (type)
            {
                case "system" when String(e, "subtype") == "init":
                    _initSessionId = String(e, "session_id") ?? _initSessionId;
                    Model = String(e, "model") ?? Model;
                    break;
                case "assistant":
                    ReadAssistant(e);
                    break;
                case "result":
                    ReadResult(e);
                    break;
            }
            return true;
        }
    }

    private void ReadAssistant(JsonElement e)
    {
        if (!e.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.Object
            || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return;
        }
        foreach (var block in content.EnumerateArray())
        {
            switch (String(block, "type"))
            {
                case "text" when String(block, "text") is { } text:
                    _assistantText.Add(text);
                    AssistantText?.Invoke(text);
                    break;
                case "tool_use":
                    var input = block.TryGetProperty("input", out var i) ? i.GetRawText() : "{}";
                    ToolUse?.Invoke(new ClaudeToolUse(String(block, "id") ?? "", String(block, "name") ?? "", input));
                    break;
            }
        }
    }

    private void ReadResult(JsonElement e)
    {
        HasResult = true;
        _subtype = String(e, "subtype");
        _isError = e.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True;
        _resultText = String(e, "result");
        _resultSessionId = String(e, "session_id") ?? _resultSessionId;
        if (e.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
        {
            var messages = errors.EnumerateArray()
                .Select(x => x.ValueKind == JsonValueKind.String ? x.GetString() : x.GetRawText())
                .Where(x => !string.IsNullOrEmpty(x));
            var joined = string.Join("\n", messages);
            _resultErrors = joined.Length > 0 ? joined : null;
        }

        var usage = e.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object ? u : default;
        _usage = new RunUsage(
            InputTokens: Long(usage, "input_tokens"),
            OutputTokens: Long(usage, "output_tokens"),
            CacheCreationInputTokens: Long(usage, "cache_creation_input_tokens"),
            CacheReadInputTokens: Long(usage, "cache_read_input_tokens"),
            CostUsd: Decimal(e, "total_cost_usd"),
            NumTurns: (int)Long(e, "num_turns"),
            DurationMs: Long(e, "duration_ms"));
    }

    private static string? String(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : null;

    private static long Long(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Number)
        {
            return 0;
        }
        return v.TryGetInt64(out var l) ? l : (long)v.GetDouble();
    }

    private static decimal Decimal(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Number)
        {
            return 0m;
        }
        // JavaScript prints tiny costs in exponent form (1.5e-7); decimal parsing may refuse that.
        return v.TryGetDecimal(out var d) ? d : (decimal)v.GetDouble();
    }
}
