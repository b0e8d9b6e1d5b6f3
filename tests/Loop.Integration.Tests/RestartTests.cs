namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

/// <summary>`make restart` (scripts/restart-daemon.sh) on a daemon a user started by hand.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Restart_stops_a_daemon_started_by_hand_cleanly_and_starts_the_installed_binary_in_its_place()
    {
        Assert.True(File.Exists(LoopDaemon.ContainerBinary), $"{LoopDaemon.ContainerBinary} is missing: run `make build` (make test does)");
        await using var loop = await LoopDaemon.StartAsync();
        var before = await loop.GetObjectAsync("/api/health");

        var (exit, output) = await RunScriptAsync(loop.Home, LoopDaemon.ContainerBinary);
        int? restartedPid = null;
        try
        {
            Assert.True(exit == 0, output);
            Assert.Contains($"stopping the daemon started by hand (pid {before["pid"]})", output);
            // SIGTERM: the old daemon shut down by itself, with exit code 0.
            await Eventually.WaitAsync(() => loop.ExitCode is not null, "the old daemon's exit to be seen");
            Assert.Equal(0, loop.ExitCode);

            // The same home and port now answer from the installed binary, logging to daemon.log.
            var after = await HealthAsync(loop);
            restartedPid = (int)after["pid"]!;
            Assert.NotEqual((int)before["pid"]!, restartedPid);
            Assert.Equal("ok", (string)after["status"]!);
            Assert.Contains($"pid:      {restartedPid}", output);
            Assert.Contains("Listening on", await File.ReadAllTextAsync(Path.Combine(loop.Home, "daemon.log")));
        }
        finally
        {
            restartedPid ??= await PidAsync(loop);
            if (restartedPid is { } pid)
            {
                using var restarted = Process.GetProcessById(pid);
                restarted.Kill();
                await restarted.WaitForExitAsync();
            }
        }
    }

    private static async Task<JsonObject> HealthAsync(LoopDaemon loop)
    {
        using var http = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        // The new daemon wrote a new local token.
        var token = (await File.ReadAllTextAsync(Path.Combine(loop.Home, "secrets", "local-token"))).Trim();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.GetAsync("/api/health");
        return await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.OK);
    }

    private static async Task<int?> PidAsync(LoopDaemon loop)
    {
        try
        {
            return (int?)(await HealthAsync(loop))["pid"];
        }
        catch (Exception error) when (error is HttpRequestException or IOException)
        {
            return null;
        }
    }

    private static async Task<(int ExitCode, string Output)> RunScriptAsync(string home, string binary)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(LoopDaemon.RepositoryRoot, "scripts", "restart-daemon.sh"));
        start.ArgumentList.Add(binary);
        start.Environment["LOOP_HOME"] = home;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
