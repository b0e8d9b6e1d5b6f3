namespace Loop.Claude.Tests;

using System.Diagnostics;

/// <summary>What one run of the `claude` double printed.</summary>
public sealed record ProcessOutcome(int ExitCode, IReadOnlyList<string> StdoutLines, string Stderr)
{
    public ClaudeRunSummary Read()
    {
        var reader = new StreamJsonReader();
        foreach (var line in StdoutLines)
        {
            reader.Feed(line);
        }
        return reader.Summary;
    }
}

/// <summary>Runs the test double (built next to the tests as bin/claude) as a local process, in its
/// own working directory and HOME so sessions of different tests never meet.</summary>
public sealed class DoubleProcess : IDisposable
{
    public static readonly string Binary = Path.Combine(AppContext.BaseDirectory, "claude");

    public string Root { get; } = Directory.CreateTempSubdirectory("loop-claude-double-").FullName;
    public string Home => Path.Combine(Root, "home");
    public string WorkDir => Path.Combine(Root, "work");

    public DoubleProcess()
    {
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(WorkDir);
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);

    /// <summary>Runs <paramref name="argv"/> (argv[0] is replaced by the double's path) with
    /// <paramref name="stdin"/> as its standard input (the prompt, as Loop gives it) and calls
    /// <paramref name="onLine"/> for each stdout line as it arrives.</summary>
    public async Task<ProcessOutcome> RunAsync(
        IReadOnlyList<string> argv,
        IReadOnlyDictionary<string, string>? env = null,
        Action<string>? onLine = null,
        string? workDir = null,
        string stdin = "")
    {
        var psi = new ProcessStartInfo(Binary)
        {
            WorkingDirectory = workDir ?? WorkDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            UseShellExecute = false,
        };
        foreach (var arg in argv.Skip(1))
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment["HOME"] = Home;
        psi.Environment.Remove("CLAUDE_CONFIG_DIR");
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi)!;
        var feeding = Task.Run(async () =>
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        });
        var stderr = process.StandardError.ReadToEndAsync();
        var lines = new List<string>();
        // A dedicated thread, so a busy thread pool (tests run in parallel) cannot delay a line
        // and blur what the streaming tests measure.
        var reading = Task.Factory.StartNew(() =>
        {
            while (process.StandardOutput.ReadLine() is { } line)
            {
                lines.Add(line);
                onLine?.Invoke(line);
            }
        }, TaskCreationOptions.LongRunning);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await reading.WaitAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        await feeding.WaitAsync(timeout.Token);
        return new ProcessOutcome(process.ExitCode, lines, await stderr);
    }
}
