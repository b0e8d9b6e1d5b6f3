namespace Loop.Cli.Tests;

using System.Diagnostics;
using System.Text;

/// <summary><c>loop daemon:*</c> on a machine without a systemd user session (this one, CI),
/// and <c>daemon:status</c> against a <c>loop serve</c> started by hand.</summary>
public sealed class DaemonCommandTests : IDisposable
{
    private readonly LoopSandbox _sandbox = new();

    [Theory]
    [InlineData("daemon:start")]
    [InlineData("d:start")]
    [InlineData("up")]
    public async Task Start_without_a_service_manager_says_so_and_how_to_run_loop_by_hand(string command)
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the sandbox takes away systemd's user bus; launchd has no such switch
        }

        var result = await _sandbox.RunAsync(command);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("loop: cannot install the daemon: ", result.Stderr);
        Assert.Contains("systemd", result.Stderr);
        Assert.Contains($"LOOP_HOME={_sandbox.LoopHome} loop serve", result.Stderr);
        Assert.DoesNotContain("   at ", result.Output);
        Assert.False(Directory.Exists(Path.Combine(_sandbox.UserHome, ".config")), "no unit file may be left behind");
    }

    [Theory]
    [InlineData("daemon:stop")]
    [InlineData("d:stop")]
    [InlineData("down")]
    public async Task Stop_without_a_service_manager_says_there_is_nothing_to_stop(string command)
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the sandbox takes away systemd's user bus; launchd has no such switch
        }

        var result = await _sandbox.RunAsync(command);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("loop: there is no Loop service to stop: ", result.Stderr);
        Assert.Contains("Ctrl-C", result.Stderr);
    }

    [Fact]
    public async Task Status_with_nothing_running_says_nothing_answers()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the sandbox takes away systemd's user bus; launchd has no such switch
        }
        var port = LoopSandbox.FreePort();
        Directory.CreateDirectory(_sandbox.LoopHome);
        await File.WriteAllTextAsync(Path.Combine(_sandbox.LoopHome, "config.json"), $"{{ \"api_addr\": \"127.0.0.1:{port}\" }}");

        var result = await _sandbox.RunAsync("d:status");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("manager:  none (", result.Stdout);
        Assert.Contains($"nothing answers at http://127.0.0.1:{port}", result.Stdout);
        Assert.Contains("loop serve", result.Stdout);
    }

    [Fact]
    public async Task Status_reports_the_health_pid_and_uptime_of_a_loop_serve_run_by_hand()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the sandbox takes away systemd's user bus; launchd has no such switch
        }
        var port = LoopSandbox.FreePort();
        Directory.CreateDirectory(_sandbox.LoopHome);
        // The process runner needs no Docker image, so the daemon is up in a second.
        await File.WriteAllTextAsync(Path.Combine(_sandbox.LoopHome, "config.json"),
            $"{{ \"api_addr\": \"127.0.0.1:{port}\", \"runner\": \"process\", \"claude_bin_path\": \"/bin/true\", \"log_level\": \"warn\" }}");
        var serve = await StartServeAsync(port);

        var result = await _sandbox.RunAsync("daemon:status");

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Stdout.Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.Contains($"Daemon at http://127.0.0.1:{port}", lines);
        Assert.Contains(lines, l => l.StartsWith("  manager:  none (", StringComparison.Ordinal));
        Assert.Contains("  status:   ok", lines);
        Assert.Contains("  version:  0.1.0", lines);
        Assert.Contains($"  pid:      {serve.Id}", lines);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^  uptime:   \d+(s|m \d+s)$"));
        Assert.Contains("  runner:   process", lines);
        Assert.Contains(lines, l => l.StartsWith("  store:    ok (sqlite, ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  warning:  ", StringComparison.Ordinal) && l.Contains("no isolation"));

        // Stopping knows it is not a service, and names the pid to stop by hand.
        var stop = await _sandbox.RunAsync("daemon:stop");
        Assert.Equal(1, stop.ExitCode);
        Assert.Contains($"kill {serve.Id}", stop.Stderr);
        Assert.False(serve.HasExited, "daemon:stop must not stop a daemon it did not start");

        // And starting fails without touching the running daemon.
        var start = await _sandbox.RunAsync("daemon:start");
        Assert.Equal(1, start.ExitCode);
        Assert.False(serve.HasExited);
    }

    private async Task<Process> StartServeAsync(int port)
    {
        var output = new StringBuilder();
        var process = Process.Start(_sandbox.StartInfo("serve"))!;
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"loop serve exited with {process.ExitCode}:\n{output}");
            }
            try
            {
                using var response = await http.GetAsync($"http://127.0.0.1:{port}/api/health");
                if (response.IsSuccessStatusCode)
                {
                    _started.Add(process);
                    return process;
                }
            }
            catch (Exception error) when (error is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        process.Kill();
        throw new TimeoutException($"loop serve did not answer within 30 s:\n{output}");
    }

    private readonly List<Process> _started = [];

    public void Dispose()
    {
        foreach (var process in _started)
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(10_000);
            }
            process.Dispose();
        }
        _sandbox.Dispose();
    }
}
