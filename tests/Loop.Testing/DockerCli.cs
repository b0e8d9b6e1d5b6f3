namespace Loop.Testing;

using System.Diagnostics;

/// <summary>The docker command line, as a user checks what Loop left on the engine.</summary>
public static class DockerCli
{
    public static async Task<string> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return await stdout + await stderr;
    }

    /// <summary>Ids of all containers (running or not) carrying the label.</summary>
    public static async Task<string[]> ContainersAsync(string label) =>
        (await RunAsync("ps", "-aq", "--filter", $"label={label}"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
