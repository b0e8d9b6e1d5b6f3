namespace Loop.Claude.Tests;

using System.Diagnostics;
using System.Text.Json;
using Xunit;

/// <summary>The double, run as a local process with the command line Loop builds, must behave like
/// the real CLI as far as Loop can tell: same events, sessions, failures.</summary>
public sealed class ClaudeDoubleTests : IDisposable
{
    private readonly DoubleProcess _double = new();

    public void Dispose() => _double.Dispose();

    private string McpConfig(Dictionary<string, McpServer>? servers = null)
    {
        var path = Path.Combine(_double.Root, "mcp.json");
        McpConfigFile.Write(path, servers ?? new Dictionary<string, McpServer>
        {
            ["loop"] = McpConfigFile.LoopServer("loop", "ch_test", "http://127.0.0.1:1"),
        });
        return path;
    }

    /// <summary>Runs the double with the command line Loop builds and the prompt on stdin, as Loop gives it.</summary>
    private Task<ProcessOutcome> Run(
        string prompt, string? resume = null, string? model = null, IReadOnlyDictionary<string, string>? env = null,
        Action<string>? onLine = null, string? workDir = null) =>
        _double.RunAsync(ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", McpConfig(), model, resume)), env, onLine, workDir, stdin: prompt);

    private static JsonElement Event(ProcessOutcome run, string type) =>
        run.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement).First(e => e.GetProperty("type").GetString() == type);

    [Fact]
    public async Task A_run_streams_init_assistant_text_and_a_result_with_usage()
    {
        var run = await Run("hello world", model: "claude-opus-4-1");

        Assert.Equal(0, run.ExitCode);
        Assert.All(run.StdoutLines, l => JsonDocument.Parse(l));
        var init = Event(run, "system");
        Assert.Equal("init", init.GetProperty("subtype").GetString());
        Assert.Equal(_double.WorkDir, init.GetProperty("cwd").GetString());
        Assert.Equal("claude-opus-4-1", init.GetProperty("model").GetString());
        Assert.Equal("bypassPermissions", init.GetProperty("permissionMode").GetString());
        Assert.Equal("loop", init.GetProperty("mcp_servers")[0].GetProperty("name").GetString());
        Assert.Equal("result", JsonDocument.Parse(run.StdoutLines[^1]).RootElement.GetProperty("type").GetString());

        var s = run.Read();
        Assert.True(Guid.TryParse(s.SessionId, out _));
        Assert.Equal(init.GetProperty("session_id").GetString(), s.SessionId);
        Assert.Equal("echo: hello world", s.ResultText);
        Assert.False(s.IsError);
        Assert.Equal("success", s.Subtype);
        Assert.True(s.Usage.InputTokens > 0 && s.Usage.OutputTokens > 0 && s.Usage.CacheReadInputTokens > 0
            && s.Usage.CacheCreationInputTokens > 0 && s.Usage.CostUsd > 0 && s.Usage.NumTurns == 1 && s.Usage.DurationMs > 0);
    }

    [Fact]
    public async Task Resume_continues_the_same_session_and_remembers_its_turns()
    {
        var first = (await Run("first [[session]]")).Read();
        Assert.Equal($"session {first.SessionId} prior_turns=0", first.ResultText);
        var sessionFile = Path.Combine(_double.Home, ".claude", "projects", _double.WorkDir.Replace('/', '-'), first.SessionId + ".jsonl");
        Assert.True(File.Exists(sessionFile), sessionFile);

        var second = (await Run("second [[session]]", resume: first.SessionId)).Read();
        var third = (await Run("third [[session]]", resume: first.SessionId)).Read();

        Assert.Equal(first.SessionId, second.SessionId);
        Assert.Equal($"session {first.SessionId} prior_turns=1", second.ResultText);
        Assert.Equal($"session {first.SessionId} prior_turns=2", third.ResultText);
    }

    [Fact]
    public async Task Resume_of_an_unknown_session_fails_like_the_real_cli()
    {
        var unknown = Guid.NewGuid().ToString();
        var run = await Run("hello", resume: unknown);

        Assert.Equal(1, run.ExitCode);
        Assert.Empty(run.StdoutLines);
        Assert.Equal($"No conversation found with session ID: {unknown}\n", run.Stderr);
        Assert.True(ClaudeErrors.IsSessionNotFound(run.Stderr, run.Read().ResultText));
        Assert.False(run.Read().HasResult);
    }

    [Fact]
    public async Task A_session_is_only_found_from_the_directory_it_was_made_in()
    {
        var first = (await Run("hi")).Read();
        var elsewhere = Directory.CreateDirectory(Path.Combine(_double.Root, "elsewhere")).FullName;

        var run = await Run("hi", resume: first.SessionId, workDir: elsewhere);

        Assert.True(ClaudeErrors.IsSessionNotFound(run.Stderr, null));
    }

    [Fact]
    public async Task Stream_json_without_verbose_and_unknown_flags_are_rejected_like_the_real_cli()
    {
        var noVerbose = await _double.RunAsync(["claude", "--print", "--output-format", "stream-json", "hi"]);
        var unknown = await _double.RunAsync(["claude", "--print", "--verbose", "--frobnicate", "hi"]);
        var promptEatenByMcpConfig = await _double.RunAsync(["claude", "--print", "--mcp-config", McpConfig(), "hi"]);

        Assert.Equal((1, "Error: When using --print, --output-format=stream-json requires --verbose\n"), (noVerbose.ExitCode, noVerbose.Stderr));
        Assert.Equal((1, "error: unknown option '--frobnicate'\n"), (unknown.ExitCode, unknown.Stderr));
        Assert.Equal(1, promptEatenByMcpConfig.ExitCode);
        Assert.Contains("MCP config file not found", promptEatenByMcpConfig.Stderr);
    }

    [Fact]
    public async Task A_prompt_starting_with_a_dash_reaches_the_agent()
    {
        var s = (await Run("- item one\n- item two")).Read();

        Assert.Equal("echo: - item one\n- item two", s.ResultText);
    }

    [Fact]
    public async Task A_prompt_on_stdin_of_any_size_and_script_arrives_intact()
    {
        // Far beyond what one argument may hold (128 KiB), in several scripts, with a leading U+FEFF
        // that must not be taken for a byte order mark.
        var text = "\uFEFFstart " + string.Concat(Enumerable.Repeat("naïve café 🦀 שלום عربي e\u0301 漢字 \u200D👩‍💻 ", 4_000)) + " end";

        var run = await Run(text);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("echo: " + text.Trim(), run.Read().ResultText);
    }

    [Fact]
    public async Task A_prompt_argument_still_works_without_stdin()
    {
        var run = await _double.RunAsync(["claude", "--print", "hello from argv"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(["echo: hello from argv"], run.StdoutLines);
    }

    [Fact]
    public async Task Sh_runs_a_shell_command_in_the_working_dir()
    {
        var run = await Run("[[sh pwd; echo to-stderr >&2; exit 3]]");

        Assert.Equal($"sh exit 3: {_double.WorkDir}\nto-stderr", run.Read().ResultText);
    }

    [Fact]
    public async Task Directives_script_reply_usage_files_and_environment()
    {
        File.WriteAllText(Path.Combine(_double.WorkDir, "notes.txt"), "from the host");
        var prompt = "[[reply hello]] [[usage in=11 out=22 cache_read=33 cache_write=44 cost=0.25]] [[read notes.txt]] "
            + "[[write out/../made.txt written by agent]] [[env LOOP_TOKEN]] [[env NOT_THERE]] [[pwd]]";

        var run = await Run(prompt, env: new Dictionary<string, string> { ["LOOP_TOKEN"] = "s3cret-value" });
        var s = run.Read();

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(
            $"hello\nread notes.txt: from the host\nwrote 16 chars to out/../made.txt\nenv LOOP_TOKEN is set (length 12)\nenv NOT_THERE is not set\npwd: {_double.WorkDir}",
            s.ResultText);
        Assert.DoesNotContain("s3cret-value", string.Join("\n", run.StdoutLines));
        Assert.Equal("written by agent", File.ReadAllText(Path.Combine(_double.WorkDir, "made.txt")));
        Assert.Equal(new Loop.Domain.Runs.RunUsage(11, 22, 44, 33, 0.25m, 1, s.Usage.DurationMs), s.Usage);
    }

    [Fact]
    public async Task Fail_gives_an_error_result_and_exit_gives_no_result()
    {
        var failed = await Run("[[reply partial]] [[fail API Error: 529 Overloaded]]");
        var crashed = await Run("[[reply partial]] [[exit 3]]");

        Assert.Equal(1, failed.ExitCode);
        Assert.True(failed.Read().IsError);
        Assert.Equal("API Error: 529 Overloaded", failed.Read().ResultText);
        Assert.Equal(3, crashed.ExitCode);
        Assert.False(crashed.Read().HasResult);
        Assert.Equal("partial", crashed.Read().ResultText);
    }

    [Fact]
    public async Task Text_is_streamed_before_the_run_ends()
    {
        var reader = new StreamJsonReader();
        var clock = Stopwatch.StartNew();
        TimeSpan? firstTextAt = null, resultAt = null;
        reader.AssistantText += t => firstTextAt ??= clock.Elapsed;

        await Run("[[reply first]] [[sleep 1.5]] [[reply second]]", onLine: l =>
        {
            reader.Feed(l);
            if (reader.HasResult) { resultAt ??= clock.Elapsed; }
        });

        Assert.True(resultAt - firstTextAt >= TimeSpan.FromSeconds(1), $"first text at {firstTextAt}, result at {resultAt}");
        Assert.Equal("first\nsecond", reader.Summary.ResultText);
    }

    [Fact]
    public async Task Mcp_directive_calls_a_tool_of_the_injected_loop_server()
    {
        // The double's own `claude mcp serve` stands in for `loop mcp` here.
        var config = McpConfig(new Dictionary<string, McpServer>
        {
            ["loop"] = new(DoubleProcess.Binary, ["mcp", "serve"], new Dictionary<string, string>()),
        });
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", config));
        var tools = new List<ClaudeToolUse>();
        var reader = new StreamJsonReader();
        reader.ToolUse += tools.Add;

        var run = await _double.RunAsync(argv, onLine: l => reader.Feed(l), stdin: """[[mcp echo {"text":"from the agent"}]]""");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("connected", Event(run, "system").GetProperty("mcp_servers")[0].GetProperty("status").GetString());
        Assert.Equal("echo: from the agent", reader.Summary.ResultText);
        Assert.Equal(2, reader.Summary.Usage.NumTurns);
        var call = Assert.Single(tools);
        Assert.Equal("mcp__loop__echo", call.Name);
        Assert.Equal("""{"text":"from the agent"}""", call.InputJson);
    }

    [Fact]
    public async Task Mcp_directive_reports_a_server_that_cannot_start()
    {
        var config = McpConfig(new Dictionary<string, McpServer>
        {
            ["loop"] = new("/nonexistent/loop", ["mcp"], new Dictionary<string, string>()),
        });
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", config));

        var run = await _double.RunAsync(argv, stdin: "[[mcp list_tasks {}]]");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("failed", Event(run, "system").GetProperty("mcp_servers")[0].GetProperty("status").GetString());
        Assert.Equal("mcp error: Error: No such tool available: mcp__loop__list_tasks", run.Read().ResultText);
    }
}
