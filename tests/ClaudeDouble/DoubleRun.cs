namespace Loop.Tests.ClaudeDouble;

using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

/// <summary>One <c>claude --print</c> run: validates like the real CLI, keeps the session, runs the
/// prompt's directives in order and writes the answer in the requested output format.</summary>
public sealed class DoubleRun
{
    public const string Version = "2.0.0-double";
    public const string DefaultModel = "claude-sonnet-4-5-20250929";
    private const string LoopServer = "loop";

    private static readonly string[] BuiltInTools =
        ["Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch"];

    // Memory touched by [[alloc]] stays referenced until the process exits.
    private static readonly List<nint> Allocations = [];

    private readonly CliOptions _options;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<string> _replyParts = [];
    private readonly string _model;
    private readonly string _cwd = Environment.CurrentDirectory;
    private string _sessionId = "";
    private Usage _usage = Usage.Default;
    private int _turns = 1;
    private TimeSpan _linger;
    private string? _lastUuid;

    private DoubleRun(CliOptions options)
    {
        _options = options;
        _model = options.Model ?? DefaultModel;
    }

    private bool Streaming => _options.OutputFormat == "stream-json";

    public static async Task<int> ExecuteAsync(CliOptions options, CancellationToken cancellationToken) =>
        await new DoubleRun(options).RunAsync(cancellationToken);

    private async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        if (!_options.Print)
        {
            return Fail("Error: the claude test double has no interactive mode; use --print");
        }
        if (_options.InputFormat != "text")
        {
            return Fail("Error: the claude test double supports --input-format text only");
        }
        if (_options.OutputFormat == "stream-json" && !_options.Verbose)
        {
            return Fail("Error: When using --print, --output-format=stream-json requires --verbose");
        }

        IReadOnlyDictionary<string, McpServerDeclaration> servers;
        try
        {
            servers = McpConfig.Load(_options.McpConfigs);
        }
        catch (McpConfigException e)
        {
            return Fail(e.Message);
        }

        // Like the real CLI: a prompt argument, or else all of stdin (as UTF-8 text, whatever the
        // locale says, and a leading U+FEFF is part of the prompt, not a byte order mark).
        var prompt = _options.Prompt;
        if (prompt is null && Console.IsInputRedirected)
        {
            using var stdin = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false);
            prompt = await stdin.ReadToEndAsync(cancellationToken);
        }
        if (string.IsNullOrWhiteSpace(prompt))
        {
            return Fail("Error: Input must be provided either through stdin or as a prompt argument when using --print");
        }

        var store = new SessionStore(_cwd);
        if (_options.ResumeWithoutId)
        {
            return Fail("Error: --resume requires a valid session ID when used with --print");
        }
        if (_options.Resume is { } resume)
        {
            if (!store.Exists(resume))
            {
                return Fail($"No conversation found with session ID: {resume}");
            }
            _sessionId = resume;
            if (_options.ForkSession)
            {
                // A new session that starts with the resumed one's history; the resumed one is left as it was.
                _sessionId = Guid.NewGuid().ToString();
                File.Copy(store.PathOf(resume), store.PathOf(_sessionId));
            }
        }
        else if (_options.SessionId is { } chosen)
        {
            if (!Guid.TryParse(chosen, out _))
            {
                return Fail("Error: Invalid session ID. Must be a valid UUID.");
            }
            if (store.Exists(chosen))
            {
                return Fail($"Error: Session ID {chosen} is already in use.");
            }
            _sessionId = chosen;
        }
        else
        {
            _sessionId = Guid.NewGuid().ToString();
        }
        var priorTurns = store.CountUserTurns(_sessionId);

        var directives = Directives.Parse(prompt);
        await using var loop = servers.TryGetValue(LoopServer, out var declared) ? new McpToolCaller(declared) : null;
        var mcpStatus = servers.Keys.ToDictionary(k => k, _ => "pending");
        var mcpTools = new List<string>();
        if (loop is not null && directives.Any(d => d.Name == "mcp"))
        {
            // The real CLI connects to every server before the init event; the double only connects
            // when the prompt will call a tool, so runs that don't need the server never start it.
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                mcpTools.AddRange((await loop.ConnectAsync(timeout.Token)).Select(t => $"mcp__{LoopServer}__{t}"));
                mcpStatus[LoopServer] = "connected";
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Console.Error.WriteLine($"[mcp {LoopServer}] connection failed: {e.Message}");
                mcpStatus[LoopServer] = "failed";
            }
        }

        EmitInit(mcpStatus, mcpTools);
        var userUuid = NewUuid();
        store.Append(_sessionId, Entry("user", userUuid, new JsonObject { ["role"] = "user", ["content"] = prompt }));
        _lastUuid = userUuid;

        foreach (var d in directives)
        {
            switch (d.Name)
            {
                case "reply":
                    Say(d.Argument);
                    break;
                case "sleep":
                    await Task.Delay(TimeSpan.FromSeconds(double.Parse(d.Argument, CultureInfo.InvariantCulture)), cancellationToken);
                    break;
                case "usage":
                    _usage = Directives.ParseUsage(d.Argument, _usage);
                    break;
                case "linger":
                    _linger = TimeSpan.FromSeconds(double.Parse(d.Argument, CultureInfo.InvariantCulture));
                    break;
                case "exit":
                    Console.Out.Flush();
                    return int.Parse(d.Argument, CultureInfo.InvariantCulture);
                case "fail":
                    return Finish(store, isError: true, resultText: d.Argument.Length > 0 ? d.Argument : "API Error: failed by [[fail]]", exitCode: 1);
                case "alloc":
                    Say(Allocate(int.Parse(d.Argument, CultureInfo.InvariantCulture)));
                    break;
                case "write":
                    Say(Write(d.Argument));
                    break;
                case "read":
                    Say(Read(d.Argument));
                    break;
                case "env":
                    var value = Environment.GetEnvironmentVariable(d.Argument);
                    Say(value is null ? $"env {d.Argument} is not set" : $"env {d.Argument} is set (length {value.Length})");
                    break;
                case "pwd":
                    Say($"pwd: {_cwd}");
                    break;
                case "system":
                    Say(_options.AppendSystemPrompt is { } system ? $"system: {system}" : "system: none");
                    break;
                case "budget":
                    Say(_options.MaxBudgetUsd is { } budget ? $"budget: {budget.ToString(CultureInfo.InvariantCulture)}" : "budget: none");
                    break;
                case "session":
                    Say($"session {_sessionId} prior_turns={priorTurns}");
                    break;
                case "after":
                    var (turns, text) = Directives.SplitFirst(d.Argument);
                    if (priorTurns >= int.Parse(turns, CultureInfo.InvariantCulture))
                    {
                        Say(text);
                    }
                    break;
                case "mcp":
                    Say(await CallToolAsync(loop, mcpStatus, d.Argument, cancellationToken));
                    break;
                case "sh":
                    Say(await ShellAsync(d.Argument, cancellationToken));
                    break;
                case "tool":
                    UseTool(d.Argument);
                    break;
            }
        }

        if (_replyParts.Count == 0)
        {
            Say("echo: " + Directives.StripFrom(prompt));
        }
        var exitCode = Finish(store, isError: false, resultText: string.Join("\n", _replyParts), exitCode: 0);
        if (_linger > TimeSpan.Zero)
        {
            // The result is out; the process is not done (what a crash test needs between the two).
            Console.Out.Flush();
            await Task.Delay(_linger, cancellationToken);
        }
        return exitCode;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 1;
    }

    /// <summary>An assistant text message: streamed at once, and part of the final result.</summary>
    private void Say(string text)
    {
        _replyParts.Add(text);
        EmitAssistant(new JsonArray(new JsonObject { ["type"] = "text", ["text"] = text }));
    }

    private async Task<string> CallToolAsync(McpToolCaller? loop, Dictionary<string, string> status, string argument, CancellationToken cancellationToken)
    {
        var (tool, json) = Directives.SplitFirst(argument);
        JsonElement args;
        try
        {
            args = JsonDocument.Parse(json.Length == 0 ? "{}" : json).RootElement.Clone();
        }
        catch (JsonException e)
        {
            return $"mcp error: arguments are not JSON: {e.Message}";
        }

        var toolUseId = "toolu_" + Guid.NewGuid().ToString("N")[..24];
        var qualified = $"mcp__{LoopServer}__{tool}";
        EmitAssistant(new JsonArray(new JsonObject
        {
            ["type"] = "tool_use",
            ["id"] = toolUseId,
            ["name"] = qualified,
            ["input"] = JsonNode.Parse(args.GetRawText()),
        }));
        _turns++;

        var outcome = loop is null || status.GetValueOrDefault(LoopServer) != "connected"
            ? new ToolOutcome($"Error: No such tool available: {qualified}", true)
            : await loop.CallAsync(tool, args, cancellationToken);

        EmitToolResult(toolUseId, outcome);
        return outcome.IsError ? "mcp error: " + outcome.Text : outcome.Text;
    }

    /// <summary>Announces a call of a built-in tool and its result, as the CLI streams them, without doing
    /// anything: <c>NAME key=value</c> (the value is the rest of the text) or <c>NAME {json input}</c>.
    /// Relative paths are made absolute against the working dir, as the real CLI's tools take them.</summary>
    private void UseTool(string argument)
    {
        var (tool, rest) = Directives.SplitFirst(argument);
        var input = new JsonObject();
        if (rest.StartsWith('{'))
        {
            input = JsonNode.Parse(rest)!.AsObject();
        }
        else if (rest.Split('=', 2) is [var key, var value])
        {
            input[key.Trim()] = value.Trim();
        }
        foreach (var (key, value) in input.ToList())
        {
            if ((key.EndsWith("_path", StringComparison.Ordinal) || key == "path") && value is JsonValue v && v.TryGetValue<string>(out var path) && !Path.IsPathRooted(path))
            {
                input[key] = Path.Combine(_cwd, path);
            }
        }
        var toolUseId = "toolu_" + Guid.NewGuid().ToString("N")[..24];
        EmitAssistant(new JsonArray(new JsonObject
        {
            ["type"] = "tool_use",
            ["id"] = toolUseId,
            ["name"] = tool,
            ["input"] = input,
        }));
        _turns++;
        EmitToolResult(toolUseId, new ToolOutcome($"{tool} done (test double)", false));
    }

    /// <summary>Runs a shell command as an agent's Bash tool would: what an attacker inside the
    /// container can do. Replies <c>sh exit N: output</c> (stdout and stderr, trimmed).</summary>
    private async Task<string> ShellAsync(string command, CancellationToken cancellationToken)
    {
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh")
        {
            WorkingDirectory = _cwd,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = System.Diagnostics.Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return $"sh exit {process.ExitCode}: {((await stdout) + (await stderr)).Trim()}";
    }

    private static string Allocate(int megabytes)
    {
        const int chunk = 1024 * 1024;
        for (var i = 0; i < megabytes; i++)
        {
            nint block;
            unsafe
            {
                // Native memory: the GC's heap limit (a fraction of the cgroup limit) must not turn
                // this into a managed OutOfMemoryException; the test wants the kernel's OOM killer.
                var p = (byte*)NativeMemory.Alloc(chunk);
                for (var offset = 0; offset < chunk; offset += 4096)
                {
                    p[offset] = 1;
                }
                block = (nint)p;
            }
            Allocations.Add(block);
        }
        return $"allocated {megabytes} MB";
    }

    private string Write(string argument)
    {
        var (path, text) = Directives.SplitFirst(argument);
        try
        {
            var full = Path.GetFullPath(path, _cwd);
            File.WriteAllText(full, text);
            return $"wrote {text.Length} chars to {path}";
        }
        catch (Exception e)
        {
            return $"write {path} failed: {e.Message}";
        }
    }

    private string Read(string path)
    {
        try
        {
            return $"read {path}: {File.ReadAllText(Path.GetFullPath(path, _cwd))}";
        }
        catch (Exception e)
        {
            return $"read {path} failed: {e.Message}";
        }
    }

    private void EmitInit(Dictionary<string, string> mcpStatus, List<string> mcpTools)
    {
        if (!Streaming)
        {
            return;
        }
        var apiKeySource = Environment.GetEnvironmentVariable("ANTHROPIC_API_KEY") is { Length: > 0 } ? "ANTHROPIC_API_KEY" : "none";
        Emit(new JsonObject
        {
            ["type"] = "system",
            ["subtype"] = "init",
            ["cwd"] = _cwd,
            ["session_id"] = _sessionId,
            ["tools"] = new JsonArray([.. BuiltInTools.Concat(mcpTools).Select(t => (JsonNode)t)]),
            ["mcp_servers"] = new JsonArray([.. mcpStatus.Select(kv => (JsonNode)new JsonObject { ["name"] = kv.Key, ["status"] = kv.Value })]),
            ["model"] = _model,
            ["permissionMode"] = _options.DangerouslySkipPermissions ? "bypassPermissions" : "default",
            ["slash_commands"] = new JsonArray("compact", "context", "cost", "init", "review"),
            ["apiKeySource"] = apiKeySource,
            ["claude_code_version"] = Version,
            ["output_style"] = "default",
            ["agents"] = new JsonArray("general-purpose"),
            ["skills"] = new JsonArray(),
            ["plugins"] = new JsonArray(),
            ["uuid"] = NewUuid(),
        });
    }

    private void EmitAssistant(JsonArray content)
    {
        if (!Streaming)
        {
            return;
        }
        Emit(new JsonObject
        {
            ["type"] = "assistant",
            ["message"] = new JsonObject
            {
                ["id"] = "msg_" + Guid.NewGuid().ToString("N")[..24],
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = _model,
                ["content"] = content,
                ["stop_reason"] = null,
                ["stop_sequence"] = null,
                ["usage"] = UsageJson(_usage),
            },
            ["parent_tool_use_id"] = null,
            ["session_id"] = _sessionId,
            ["uuid"] = NewUuid(),
        });
    }

    private void EmitToolResult(string toolUseId, ToolOutcome outcome)
    {
        if (!Streaming)
        {
            return;
        }
        Emit(new JsonObject
        {
            ["type"] = "user",
            ["message"] = new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(new JsonObject
                {
                    ["tool_use_id"] = toolUseId,
                    ["type"] = "tool_result",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = outcome.Text }),
                    ["is_error"] = outcome.IsError,
                }),
            },
            ["parent_tool_use_id"] = null,
            ["session_id"] = _sessionId,
            ["uuid"] = NewUuid(),
        });
    }

    /// <summary>Stores the answer in the session and writes the result. A failure keeps the shape the
    /// real CLI gives an API error: subtype "success" with is_error true and the message as result.</summary>
    private int Finish(SessionStore store, bool isError, string resultText, int exitCode)
    {
        store.Append(_sessionId, Entry("assistant", NewUuid(), new JsonObject
        {
            ["role"] = "assistant",
            ["model"] = _model,
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = resultText }),
        }));

        var elapsed = Math.Max(1, (long)_clock.Elapsed.TotalMilliseconds);
        // The real CLI stops once what the run cost reaches --max-budget-usd, with no result text.
        var overBudget = _options.MaxBudgetUsd is { } max && _usage.CostUsd >= max;
        var result = new JsonObject
        {
            ["type"] = "result",
            ["subtype"] = overBudget ? "error_max_budget_usd" : "success",
            ["is_error"] = isError || overBudget,
            ["duration_ms"] = elapsed,
            ["duration_api_ms"] = Math.Max(1, elapsed - 1),
            ["num_turns"] = _turns,
            ["result"] = resultText,
            ["session_id"] = _sessionId,
            ["total_cost_usd"] = _usage.CostUsd,
            ["usage"] = UsageJson(_usage),
            ["modelUsage"] = new JsonObject
            {
                [_model] = new JsonObject
                {
                    ["inputTokens"] = _usage.InputTokens,
                    ["outputTokens"] = _usage.OutputTokens,
                    ["cacheReadInputTokens"] = _usage.CacheReadTokens,
                    ["cacheCreationInputTokens"] = _usage.CacheWriteTokens,
                    ["webSearchRequests"] = 0,
                    ["costUSD"] = _usage.CostUsd,
                    ["contextWindow"] = 200000,
                },
            },
            ["permission_denials"] = new JsonArray(),
            ["uuid"] = NewUuid(),
        };
        if (overBudget)
        {
            result.Remove("result");
            exitCode = 1;
        }

        switch (_options.OutputFormat)
        {
            case "stream-json":
            case "json":
                Emit(result);
                break;
            default:
                Console.Out.WriteLine(resultText);
                break;
        }
        return exitCode;
    }

    private static JsonObject UsageJson(Usage u) => new()
    {
        ["input_tokens"] = u.InputTokens,
        ["cache_creation_input_tokens"] = u.CacheWriteTokens,
        ["cache_read_input_tokens"] = u.CacheReadTokens,
        ["output_tokens"] = u.OutputTokens,
        ["server_tool_use"] = new JsonObject { ["web_search_requests"] = 0, ["web_fetch_requests"] = 0 },
        ["service_tier"] = "standard",
    };

    private JsonObject Entry(string type, string uuid, JsonObject message) => new()
    {
        ["parentUuid"] = _lastUuid,
        ["isSidechain"] = false,
        ["userType"] = "external",
        ["cwd"] = _cwd,
        ["sessionId"] = _sessionId,
        ["version"] = Version,
        ["type"] = type,
        ["message"] = message,
        ["uuid"] = uuid,
        ["timestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
    };

    private static void Emit(JsonObject line) => Console.Out.WriteLine(line.ToJsonString(Json.Options));

    private static string NewUuid() => Guid.NewGuid().ToString();
}
