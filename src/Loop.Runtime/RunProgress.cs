namespace Loop.Runtime;

using System.Globalization;
using System.Text;
using System.Text.Json;
using Loop.Claude;
using Loop.Domain.Channels;
using Loop.Domain.Runs;

/// <summary>Tool calls as a person reads them: "Reading `src/app.ts`", "Running `npm test`".</summary>
public static class ToolCallWords
{
    private const int MaxDetail = 80;

    /// <summary>One line for a tool call of Claude Code; paths under <paramref name="workDir"/> are shown relative to it.</summary>
    public static string Describe(string name, string inputJson, string? workDir = null)
    {
        JsonElement input;
        try
        {
            using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(inputJson) ? "{}" : inputJson);
            input = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            input = default;
        }
        string? Text(string key) => input.ValueKind == JsonValueKind.Object && input.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : null;
        string Path(string key) => Code(Relative(Text(key), workDir));

        return name switch
        {
            "Read" => $"Reading {Path("file_path")}",
            "Write" => $"Writing {Path("file_path")}",
            "Edit" or "MultiEdit" => $"Editing {Path("file_path")}",
            "NotebookEdit" => $"Editing {Path("notebook_path")}",
            "Bash" => $"Running {Code(Text("command"))}",
            "Grep" => $"Searching for {Code(Text("pattern"))}" + (Text("path") is { Length: > 0 } where ? $" in {Code(Relative(where, workDir))}" : ""),
            "Glob" => $"Finding files {Code(Text("pattern"))}",
            "LS" => $"Listing {Path("path")}",
            "WebFetch" => $"Fetching {Code(Text("url"))}",
            "WebSearch" => $"Searching the web for {Code(Text("query"))}",
            "Task" or "Agent" => $"Handing work to a subagent: {Code(Text("description"))}",
            "TodoWrite" => "Updating its to-do list",
            _ when name.StartsWith("mcp__", StringComparison.Ordinal) && name.Split("__") is [_, var server, .. var tool] =>
                $"Using {Code(string.Join("__", tool))} of {Code(server)}",
            _ => $"Using {Code(name)}",
        };
    }

    /// <summary>Shown as inline code: paths and commands read as such, and what the agent wrote cannot
    /// format the message (a glob's <c>**</c>). Long details are cut; the status has room for many lines.</summary>
    private static string Code(string? text)
    {
        var line = (text ?? "").ReplaceLineEndings(" ").Replace('`', '\'').Trim();
        if (line.Length == 0)
        {
            return "`…`";
        }
        return "`" + (line.Length > MaxDetail ? line[..(MaxDetail - 1)] + "…" : line) + "`";
    }

    private static string? Relative(string? path, string? workDir)
    {
        if (path is null || workDir is null)
        {
            return path;
        }
        var root = workDir.TrimEnd('/') + "/";
        return path.StartsWith(root, StringComparison.Ordinal) && path.Length > root.Length ? path[root.Length..] : path;
    }
}

/// <summary>What a run has done so far, from its stream-json output, and the status text a chat shows
/// for it: the steps (tool calls, and with <see cref="ChannelProgress.Verbose"/> the agent's remarks
/// between them) and the time since it started. The agent's text is shown only once a tool call
/// follows it: the last text is the answer, which comes as a message of its own, never in the status.
/// Thread-safe: output lines and renders come from different tasks.</summary>
public sealed class RunProgress
{
    /// <summary>The steps a status shows (the latest); earlier ones are counted.</summary>
    public const int ShownSteps = 12;
    private const int MaxRemark = 120;

    private readonly object _gate = new();
    private readonly StreamJsonReader _reader = new();
    private readonly List<string> _steps = [];
    private readonly bool _verbose;
    private readonly string? _workDir;
    private string? _pendingRemark;
    private int _toolCalls;
    private long _version;

    public RunProgress(DateTimeOffset startedAt, ChannelProgress level, string? workDir = null)
    {
        StartedAt = startedAt;
        _verbose = level == ChannelProgress.Verbose;
        _workDir = workDir;
        _reader.ToolUse += call =>
        {
            if (_verbose && _pendingRemark is { } remark)
            {
                _steps.Add("💬 " + remark);
            }
            _pendingRemark = null;
            _steps.Add(ToolCallWords.Describe(call.Name, call.InputJson, _workDir));
            _toolCalls++;
            _version++;
        };
        _reader.AssistantText += text => _pendingRemark = Remark(text);
    }

    public DateTimeOffset StartedAt { get; }

    public int ToolCalls
    {
        get { lock (_gate) { return _toolCalls; } }
    }

    /// <summary>Grows with each change the status shows (other than the clock).</summary>
    public long Version
    {
        get { lock (_gate) { return _version; } }
    }

    /// <summary>Takes one line of the run's output; true when it changed what the status shows.</summary>
    public bool Feed(string line)
    {
        lock (_gate)
        {
            var before = _version;
            _reader.Feed(line);
            return _version != before;
        }
    }

    /// <summary>The status while the run works.</summary>
    public string Working(DateTimeOffset now) => Render($"⏳ Working… {Elapsed(now - StartedAt)}");

    /// <summary>The status once the run ended.</summary>
    public string Ended(RunStatus status, DateTimeOffset endedAt)
    {
        var took = Elapsed(endedAt - StartedAt);
        return Render(status switch
        {
            RunStatus.Succeeded => $"✅ Done in {took}",
            RunStatus.Cancelled => $"⏹️ Stopped after {took}",
            RunStatus.TimedOut => $"⌛ Ran out of time after {took}",
            _ => $"❌ Failed after {took}",
        });
    }

    private string Render(string head)
    {
        lock (_gate)
        {
            var text = new StringBuilder(head);
            text.Append(" · ").Append(_toolCalls == 1 ? "1 tool call" : $"{_toolCalls.ToString(CultureInfo.InvariantCulture)} tool calls");
            var hidden = _steps.Count - ShownSteps;
            if (hidden > 0)
            {
                text.Append('\n').Append(hidden == 1 ? "… 1 earlier step" : $"… {hidden.ToString(CultureInfo.InvariantCulture)} earlier steps");
            }
            foreach (var step in _steps.Skip(Math.Max(0, hidden)))
            {
                text.Append("\n• ").Append(step);
            }
            return text.ToString();
        }
    }

    /// <summary>"42 s", "3 min 5 s", "1 h 2 min".</summary>
    public static string Elapsed(TimeSpan elapsed)
    {
        var seconds = (long)Math.Max(0, elapsed.TotalSeconds);
        return seconds switch
        {
            < 60 => $"{seconds} s",
            < 3600 => seconds % 60 == 0 ? $"{seconds / 60} min" : $"{seconds / 60} min {seconds % 60} s",
            _ => (seconds % 3600) / 60 == 0 ? $"{seconds / 3600} h" : $"{seconds / 3600} h {(seconds % 3600) / 60} min",
        };
    }

    /// <summary>The first line of a remark, cut short; null for blank text.</summary>
    private static string? Remark(string text)
    {
        var line = text.Trim().Split('\n', 2)[0].Trim();
        if (line.Length == 0)
        {
            return null;
        }
        return line.Length > MaxRemark ? line[..(MaxRemark - 1)] + "…" : line;
    }
}
