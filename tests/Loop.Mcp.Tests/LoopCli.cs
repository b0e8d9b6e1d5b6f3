namespace Loop.Mcp.Tests;

using System.Diagnostics;
using Loop.Testing;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>Runs the built <c>loop</c> as a user would: a process, its exit code and output.</summary>
public static class LoopCli
{
    public static string LoopDll => LoopDaemon.LoopDll;

    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(LoopDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // A token in the test runner's environment must not leak into the commands.
        start.Environment.Remove("LOOP_CHANNEL_TOKEN");
        start.Environment.Remove("LOOP_API_TOKEN");
        start.Environment.Remove("LOOP_API_URL");
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start loop");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(null, args);
}
