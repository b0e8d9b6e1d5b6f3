namespace Loop.Testing;

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Npgsql;

/// <summary>
/// A private PostgreSQL server from Debian's packages (scripts/provision-test-env.sh installs them):
/// a fresh cluster in a temp directory, listening on a free port of 127.0.0.1 and a socket inside that
/// directory, trusting everyone who can reach it, without fsync. Tests share <see cref="SharedAsync"/>
/// and each make their own database with <see cref="CreateDatabaseAsync"/>; a test that stops,
/// restarts or crashes the server starts one of its own with <see cref="StartNewAsync"/>.
/// Start, stop and kill are for one caller at a time.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string ServerUser = "postgres";
    // Linux's numbers (x64 and arm64 alike).
    private const int SIGINT = 2;
    private const int SIGKILL = 9;
    private const int SIGSTOP = 19;
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(60);
    private static readonly Lazy<string> BinDirectory = new(FindBinDirectory);
    private static readonly Lazy<Task<PostgresServer>> Shared = new(() => Task.Run(StartSharedAsync));

    private readonly string _root;
    private readonly bool _shared;
    private Process? _watchdog;
    private Process? _postmaster;

    private PostgresServer(string root, int port, bool shared)
    {
        _root = root;
        _shared = shared;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The cluster's data directory, which <see cref="StartAsync"/> starts again.</summary>
    public string DataDirectory => Path.Combine(_root, "data");

    /// <summary>Everything initdb and postgres printed, across restarts.</summary>
    public string LogPath => Path.Combine(_root, "postgres.log");

    /// <summary>The superuser on the maintenance database <c>postgres</c>.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    private string SocketDirectory => Path.Combine(_root, "run");

    /// <summary>The server for the whole test run, started by the first caller and stopped when the
    /// process exits. Make a database of your own on it; to stop, restart or crash a server, start
    /// one with <see cref="StartNewAsync"/> instead, as the shared one serves other tests meanwhile.</summary>
    public static Task<PostgresServer> SharedAsync() => Shared.Value;

    /// <summary>Makes a new cluster and starts a server on it that only the caller uses.</summary>
    public static Task<PostgresServer> StartNewAsync(CancellationToken ct = default) => StartNewAsync(shared: false, ct);

    private static async Task<PostgresServer> StartSharedAsync()
    {
        var server = await StartNewAsync(shared: true, CancellationToken.None);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.ShutdownAsync().GetAwaiter().GetResult();
        return server;
    }

    private static async Task<PostgresServer> StartNewAsync(bool shared, CancellationToken ct)
    {
        var binDirectory = BinDirectory.Value;
        var server = new PostgresServer(Directory.CreateTempSubdirectory("loop-pg-").FullName, FreePort(), shared);
        try
        {
            Directory.CreateDirectory(server.SocketDirectory);
            if (AgentUser.TestsRunAsRoot)
            {
                await RunAsync("chown", ["-R", $"{ServerUser}:{ServerUser}", server._root], ct);
            }
            server._watchdog = StartWatchdog(server._root);
            // Trust lets in only this machine, as the server listens on loopback and on a socket in
            // the temp directory; --no-sync, as the cluster never outlives the test run.
            using var initdb = server.StartServerProcess(Path.Combine(binDirectory, "initdb"),
                "-D", server.DataDirectory, "-U", ServerUser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions");
            await WaitForExitOrKillAsync(initdb, ct);
            if (initdb.ExitCode != 0)
            {
                throw server.Failure($"initdb exited with {initdb.ExitCode}");
            }
            await server.StartAsync(ct);
            return server;
        }
        catch
        {
            await server.ShutdownAsync();
            throw;
        }
    }

    /// <summary>Starts the server on <see cref="DataDirectory"/> and <see cref="Port"/>, again after
    /// <see cref="StopAsync"/> or <see cref="KillAsync"/> (then PostgreSQL recovers the cluster first),
    /// and returns once it accepts connections.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        if (_postmaster is { HasExited: false })
        {
            throw new InvalidOperationException("the PostgreSQL server is running already");
        }
        _postmaster?.Dispose();
        _postmaster = StartServerProcess(Path.Combine(BinDirectory.Value, "postgres"),
            "-D", DataDirectory,
            "-c", "listen_addresses=127.0.0.1",
            "-c", $"port={Port}",
            "-c", $"unix_socket_directories={SocketDirectory}",
            "-c", "fsync=off",
            "-c", "max_connections=300");
        try
        {
            await WaitUntilAcceptingAsync(_postmaster, ct);
        }
        catch
        {
            // A server that never came up must not hold the data directory or the port for the next try.
            await KillProcessesAsync(_postmaster, CancellationToken.None);
            throw;
        }
    }

    private async Task WaitUntilAcceptingAsync(Process postmaster, CancellationToken ct)
    {
        var probe = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false, Timeout = 2 }.ConnectionString;
        var deadline = DateTime.UtcNow + StartDeadline;
        while (true)
        {
            if (postmaster.HasExited)
            {
                throw Failure($"postgres exited with {postmaster.ExitCode}");
            }
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync(ct);
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                // Not listening yet, or "the database system is starting up" while it recovers.
            }
            catch (NpgsqlException error)
            {
                throw Failure($"postgres did not accept connections within {StartDeadline.TotalSeconds:0} s ({error.Message})");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
        }
    }

    /// <summary>Stops the server with a fast shutdown (sessions are ended, a checkpoint is written);
    /// <see cref="StartAsync"/> starts it again.</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        ThrowIfShared();
        await StopPostmasterAsync(ct);
    }

    private async Task StopPostmasterAsync(CancellationToken ct)
    {
        if (_postmaster is not { HasExited: false } postmaster)
        {
            return;
        }
        // SIGINT is what `pg_ctl stop -m fast` sends; the postmaster exits after all its processes.
        SendSignal(postmaster.Id, SIGINT);
        await postmaster.WaitForExitAsync(ct).WaitAsync(StopDeadline, ct);
    }

    /// <summary>Crashes the server: SIGKILL to the postmaster and every process it started at once,
    /// so clients lose their sessions mid-query as when the machine fails. Returns once they are all
    /// gone, as <see cref="StartAsync"/> cannot start on shared memory that a process still holds.</summary>
    public async Task KillAsync(CancellationToken ct = default)
    {
        ThrowIfShared();
        if (_postmaster is { HasExited: false } postmaster)
        {
            await KillProcessesAsync(postmaster, ct);
        }
    }

    private static async Task KillProcessesAsync(Process postmaster, CancellationToken ct)
    {
        if (postmaster.HasExited)
        {
            // Its pid may belong to another process by now; and its children exit on their own.
            return;
        }
        // Stopped first, so that it starts no process after the list of its children is made.
        SendSignal(postmaster.Id, SIGSTOP);
        var children = ChildrenOf(postmaster.Id);
        postmaster.Kill();
        foreach (var child in children)
        {
            SendSignal(child, SIGKILL);
        }
        await postmaster.WaitForExitAsync(ct);
        // The children now belong to init, which may leave them zombies: those hold nothing.
        while (children.Any(IsRunning))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), ct);
        }
    }

    /// <summary>Creates an empty database (<paramref name="name"/>, else a unique name) and returns a
    /// pooled connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null, CancellationToken ct = default)
    {
        name ??= "test_" + Guid.NewGuid().ToString("N");
        // Unpooled: an admin session from before a restart would fail the command.
        var admin = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name.Replace("\"", "\"\"")}\"", connection);
        await command.ExecuteNonQueryAsync(ct);
        return ConnectionString(name);
    }

    /// <summary>Stops the server and deletes its directory. The shared server is left running: it is
    /// stopped when the process exits.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_shared)
        {
            await ShutdownAsync();
        }
    }

    private async Task ShutdownAsync()
    {
        try
        {
            await StopPostmasterAsync(CancellationToken.None);
        }
        catch (TimeoutException)
        {
            await KillProcessesAsync(_postmaster!, CancellationToken.None);
        }
        _postmaster?.Dispose();
        _postmaster = null;
        if (_watchdog is { } watchdog)
        {
            // Its stdin closing tells it to delete the directory, as it would after a crash of this process.
            watchdog.StandardInput.Close();
            await watchdog.WaitForExitAsync();
            watchdog.Dispose();
            _watchdog = null;
        }
        else if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private string ConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = ServerUser,
        Database = database,
        Pooling = true,
        // A failing test then shows the values behind a violated constraint.
        IncludeErrorDetail = true,
    }.ConnectionString;

    private void ThrowIfShared()
    {
        if (_shared)
        {
            throw new InvalidOperationException("the shared PostgreSQL server serves other tests: stop or crash one from PostgresServer.StartNewAsync");
        }
    }

    /// <summary>Runs a PostgreSQL program with its output appended to <see cref="LogPath"/>, as the
    /// postgres user when the tests run as root (PostgreSQL refuses to run as root). sh and setpriv
    /// exec in place, so the process returned is the program itself, which can be signalled.</summary>
    private Process StartServerProcess(string program, params string[] args)
    {
        var start = new ProcessStartInfo("sh") { UseShellExecute = false, WorkingDirectory = _root };
        start.ArgumentList.Add("-c");
        // The log file, not a pipe to this process: the output stays even when this process dies.
        start.ArgumentList.Add("""exec "$@" </dev/null >>"$0" 2>&1""");
        start.ArgumentList.Add(LogPath);
        if (AgentUser.TestsRunAsRoot)
        {
            foreach (var arg in new[] { "setpriv", $"--reuid={ServerUser}", $"--regid={ServerUser}", "--init-groups", "--" })
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

    /// <summary>A shell that waits for its stdin, which only this process holds, to close, then shuts
    /// the server down and deletes <paramref name="root"/>: a test run that is killed or crashes
    /// leaves no server behind either.</summary>
    private static Process StartWatchdog(string root)
    {
        var start = new ProcessStartInfo("sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("-c");
        // A stale postmaster.pid (after a kill) may name another process by now: the name guards it.
        // SIGQUIT is the immediate shutdown; the postmaster removes its pid file last.
        start.ArgumentList.Add("""
            read -r _
            pid=$(head -n 1 "$0/data/postmaster.pid" 2>/dev/null)
            if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
              kill -QUIT "$pid"
              for _ in $(seq 600); do [ -e "$0/data/postmaster.pid" ] || break; sleep 0.1; done
            fi
            rm -rf "$0"
            """);
        start.ArgumentList.Add(root);
        return Process.Start(start) ?? throw new InvalidOperationException("cannot start sh");
    }

    private Exception Failure(string message)
    {
        var tail = File.Exists(LogPath) ? string.Join('\n', File.ReadLines(LogPath).TakeLast(30)) : "(no log)";
        return new InvalidOperationException($"{message}. The end of its log ({LogPath}):\n{tail}");
    }

    private static string FindBinDirectory()
    {
        const string installs = "/usr/lib/postgresql";
        var newest = (Directory.Exists(installs) ? Directory.GetDirectories(installs) : [])
            .Where(dir => File.Exists(Path.Combine(dir, "bin", "postgres")))
            .MaxBy(dir => double.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var version) ? version : 0);
        return newest is not null
            ? Path.Combine(newest, "bin")
            : throw new InvalidOperationException($"PostgreSQL's server is not installed (no {installs}/<version>/bin/postgres): run `bash scripts/provision-test-env.sh`");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForExitOrKillAsync(Process process, CancellationToken ct)
    {
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }
    }

    private static async Task RunAsync(string file, string[] args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot run {file}");
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.StandardOutput.ReadToEndAsync(ct);
        await WaitForExitOrKillAsync(process, ct);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {(await error).Trim()}");
        }
    }

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

    // A process that is gone already is what the caller wants anyway.
    private static void SendSignal(int pid, int signal) => _ = Kill(pid, signal);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
