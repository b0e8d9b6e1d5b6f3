namespace Loop.Claude.Tests;

using System.Diagnostics;
using Xunit;

/// <summary>The agent image built from container/Dockerfile, with the double as `claude`
/// (loop-agent-test:latest, made by scripts/provision-test-env.sh), run the way the daemon runs it:
/// host uid, read-only root, tmpfs /tmp, no capabilities, secrets on stdin.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AgentImageTests : IDisposable
{
    private const string Image = "loop-agent-test:latest";
    private readonly string _root = Directory.CreateTempSubdirectory("loop-agent-image-").FullName;

    public AgentImageTests()
    {
        var inspect = Docker(["image", "inspect", Image], "").GetAwaiter().GetResult();
        Assert.True(inspect.ExitCode == 0, $"{Image} is missing: run scripts/provision-test-env.sh");
        Directory.CreateDirectory(Path.Combine(_root, "home"));
        Directory.CreateDirectory(Path.Combine(_root, "project"));
        // The container runs as another user than the tests (as the daemon runs it as the host user).
        foreach (var dir in new[] { _root, Path.Combine(_root, "home"), Path.Combine(_root, "project") })
        {
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static async Task<ProcessOutcome> Docker(IEnumerable<string> args, string stdin)
    {
        var psi = new ProcessStartInfo("docker")
        {
            RedirectStandardInput = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(timeout.Token);
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return new ProcessOutcome(p.ExitCode, lines, await stderr);
    }

    private Task<ProcessOutcome> RunAgent(IReadOnlyList<string> command, string stdin = "\n", params string[] extra)
    {
        var project = Path.Combine(_root, "project");
        string[] args =
        [
            "run", "--rm", "-i", "--user", "1000:1000",
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-e", "HOME=/home/agent", "-v", $"{Path.Combine(_root, "home")}:/home/agent",
            "-v", $"{project}:{project}", "-w", project, .. extra, Image, .. command,
        ];
        return Docker(args, stdin);
    }

    [Fact]
    public async Task Secrets_from_stdin_are_exported_and_the_rest_of_stdin_is_left_for_the_command()
    {
        var run = await RunAgent(
            ["bash", "-c", "echo \"token=${#LOOP_TOKEN} other=$OTHER\"; cat"],
            "LOOP_TOKEN=s3cr3t=with=equals\nOTHER=two words\n\nleft for the command\n");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(["token=18 other=two words", "left for the command"], run.StdoutLines);
        Assert.DoesNotContain("s3cr3t", run.Stderr);
    }

    [Fact]
    public async Task The_double_in_the_image_runs_resumes_and_rejects_an_unknown_session()
    {
        var mcp = Path.Combine(_root, "project", ".mcp-loop.json");
        McpConfigFile.Write(mcp, new Dictionary<string, McpServer> { ["loop"] = new("claude", ["mcp", "serve"], new Dictionary<string, string>()) });
        File.SetUnixFileMode(mcp, (UnixFileMode)0b110_100_100);
        IReadOnlyList<string> Argv(string? resume = null) =>
            ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", mcp, ResumeSessionId: resume));

        // Secrets, an empty line, then the prompt: all on stdin, as the daemon writes it.
        var first = await RunAgent(Argv(), "LOOP_TOKEN=abc\n\n" + """hi [[env LOOP_TOKEN]] [[mcp echo {"text":"inside"}]]""");
        var s1 = first.Read();
        var second = (await RunAgent(Argv(s1.SessionId), "X=1\n\n[[session]]")).Read();
        var unknown = await RunAgent(Argv(Guid.NewGuid().ToString()), "X=1\n\nhi");

        Assert.Equal(0, first.ExitCode);
        Assert.Equal("env LOOP_TOKEN is set (length 3)\necho: inside", s1.ResultText);
        Assert.Equal($"session {s1.SessionId} prior_turns=1", second.ResultText);
        Assert.Equal(1, unknown.ExitCode);
        Assert.True(ClaudeErrors.IsSessionNotFound(unknown.Stderr, null));
        Assert.False(unknown.Read().HasResult);
    }

    [Fact]
    public async Task A_large_unicode_prompt_after_the_secrets_reaches_claude_intact()
    {
        var mcp = Path.Combine(_root, "project", ".mcp-loop.json");
        McpConfigFile.Write(mcp, new Dictionary<string, McpServer>());
        File.SetUnixFileMode(mcp, (UnixFileMode)0b110_100_100);
        var prompt = string.Concat(Enumerable.Repeat("größer als argv 🦀 שלום e\u0301 漢字\n", 10_000)).Trim();

        var run = await RunAgent(ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", mcp)), "LOOP_TOKEN=abc\n\n" + prompt);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("echo: " + prompt, run.Read().ResultText);
    }

    [Fact]
    public async Task Alloc_beyond_the_memory_limit_gets_the_run_killed()
    {
        var run = await RunAgent(["claude", "-p", "[[alloc 256]]"], "\n", "--memory", "64m", "--memory-swap", "64m");

        Assert.Equal(137, run.ExitCode);
        Assert.Empty(run.StdoutLines);
    }
}
