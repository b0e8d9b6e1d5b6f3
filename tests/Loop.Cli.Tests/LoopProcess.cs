namespace Loop.Cli.Tests;

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

/// <summary>What one run of the <c>loop</c> command printed and how it exited.</summary>
public sealed record LoopResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs the built <c>loop</c> as a user would (<c>dotnet loop.dll ...</c>), in a sandbox:
/// HOME and LOOP_HOME point at temp dirs so nothing lands in the real ~/.loop or ~/.config.</summary>
public sealed class LoopSandbox : IDisposable
{
    public LoopSandbox()
    {
        Root = Directory.CreateTempSubdirectory("loop-cli-test-").FullName;
        UserHome = Path.Combine(Root, "home");
        LoopHome = Path.Combine(Root, "loop-home");
        Directory.CreateDirectory(UserHome);
        Environment = new Dictionary<string, string?>
        {
            ["HOME"] = UserHome,
            ["LOOP_HOME"] = LoopHome,
            // No user bus, wherever the tests run: systemctl --user must fail, never touch a real session.
            ["XDG_RUNTIME_DIR"] = Path.Combine(Root, "no-runtime-dir"),
            ["DBUS_SESSION_BUS_ADDRESS"] = $"unix:path={Path.Combine(Root, "no-bus")}",
            ["XDG_CONFIG_HOME"] = null,
        };
    }

    public string Root { get; }
    public string UserHome { get; }
    public string LoopHome { get; }
    public Dictionary<string, string?> Environment { get; }

    public string NewProjectDir(string name = "project")
    {
        var dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        return dir;
    }

    public Task<LoopResult> RunAsync(params string[] args) => RunInAsync(null, args);

    public async Task<LoopResult> RunInAsync(string? workingDirectory, params string[] args)
    {
        var start = StartInfo(args);
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new LoopResult(process.ExitCode, await stdout, await stderr);
    }

    public ProcessStartInfo StartInfo(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "loop.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in Environment)
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }
        return start;
    }

    public static int FreePort() => Loop.Config.FreePorts.Loopback();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
