namespace Loop.Testing;

using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

/// <summary>
/// Starting, signalling and crashing the server processes a test fixture runs itself: as
/// <paramref name="RunAs"/> when the tests run as root (the servers refuse root, or should not have
/// it), with their output appended to a log file that outlives this process.
/// </summary>
internal sealed record ServerProcess(string RunAs, string LogPath)
{
    // Linux's numbers (x64 and arm64 alike).
    public const int SIGTERM = 15;
    private const int SIGKILL = 9;
    private const int SIGSTOP = 19;

    /// <summary>sh and setpriv exec in place, so the process returned is the program itself, which
    /// can be signalled.</summary>
    public Process Start(string workingDirectory, string program, params string[] args)
    {
        var start = new ProcessStartInfo("sh") { UseShellExecute = false, WorkingDirectory = workingDirectory };
        start.ArgumentList.Add("-c");
        // The log file, not a pipe to this process: the output stays even when this process dies.
        start.ArgumentList.Add("""exec "$@" </dev/null >>"$0" 2>&1""");
        start.ArgumentList.Add(LogPath);
        if (AgentUser.TestsRunAsRoot)
        {
            foreach (var arg in new[] { "setpriv", $"--reuid={RunAs}", $"--regid={RunAs}", "--init-groups", "--" })
            {
                start.ArgumentList.Add(arg);
            }
        }
        start.ArgumentList.Add(program);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
    }

    /// <summary>SIGKILL to <paramref name="server"/> and every process it started at once, as when the
    /// machine fails; returns once they are all gone, so that nothing holds the ports or files.</summary>
    public static async Task KillTreeAsync(Process server, CancellationToken ct)
    {
        if (server.HasExited)
        {
            // Its pid may belong to another process by now; and its children exit on their own.
            return;
        }
        // Stopped first, so that it starts no process after the list of its children is made.
        Signal(server.Id, SIGSTOP);
        var children = ChildrenOf(server.Id);
        server.Kill();
        foreach (var child in children)
        {
            Signal(child, SIGKILL);
        }
        await server.WaitForExitAsync(ct);
        // The children now belong to init, which may leave them zombies: those hold nothing.
        while (children.Any(IsRunning))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), ct);
        }
    }

    public static async Task<string> RunAsync(string file, string[] args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot run {file}");
        var error = process.StandardError.ReadToEndAsync(ct);
        var output = await process.StandardOutput.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }
        return process.ExitCode == 0
            ? output.Trim()
            : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {(await error).Trim()}");
    }

    // A process that is gone already is what the caller wants anyway.
    public static void Signal(int pid, int signal) => _ = Kill(pid, signal);

    private static List<int> ChildrenOf(int parent) =>
        Directory.EnumerateDirectories("/proc")
            .Select(dir => int.TryParse(Path.GetFileName(dir), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && Stat(pid) is { Parent: var ppid } && ppid == parent)
            .ToList();

    private static bool IsRunning(int pid) => Stat(pid) is { State: not 'Z' and not 'X' };

    /// <summary>State and parent from /proc/&lt;pid&gt;/stat; null once the process is gone.</summary>
    private static (char State, int Parent)? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // "pid (comm) state ppid ...", where comm may hold spaces and parentheses itself.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (fields[0][0], int.Parse(fields[1], CultureInfo.InvariantCulture));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
