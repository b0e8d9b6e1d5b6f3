namespace Loop.Bench;

using System.Diagnostics;
using System.Globalization;
using Npgsql;

/// <summary>
/// A private PostgreSQL server for the cluster benchmarks (j), from Debian's packages: a fresh
/// cluster in a temp directory of its own, on a free port of 127.0.0.1, trusting local connections,
/// without fsync (what is measured is Loop, not the disk). As in tests/Loop.Testing's PostgresServer,
/// which the bench does not reference: that project pulls in xunit and builds the CLI. When the bench
/// runs as root the server runs as the user postgres (it refuses root), so its directory is not
/// under the bench's state (mktemp's 0700 directory, which postgres cannot enter). The postmaster's pid
/// goes into LOOP_BENCH_PIDS for run.sh's trap.
/// </summary>
public sealed class PgServer : IAsyncDisposable
{
    private const string ServerUser = "postgres";

    private readonly string _root;
    private readonly Process _postmaster;

    private PgServer(string root, int port, Process postmaster)
    {
        _root = root;
        Port = port;
        _postmaster = postmaster;
    }

    public int Port { get; }

    public string LogPath => Path.Combine(_root, "postgres.log");

    /// <summary>initdb, then the server; returns once it accepts connections.</summary>
    public static async Task<PgServer> StartAsync(CancellationToken cancellationToken)
    {
        var bin = BinDirectory();
        var root = Directory.CreateTempSubdirectory("loop-bench-pg-").FullName;
        var asRoot = Loop.Runtime.UnixOwnership.Current().IsRoot;
        if (asRoot)
        {
            await RunAsync("chown", ["-R", $"{ServerUser}:{ServerUser}", root], cancellationToken);
        }
        using (var initdb = StartServerProcess(root, asRoot, Path.Combine(bin, "initdb"),
            "-D", Path.Combine(root, "data"), "-U", ServerUser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"))
        {
            await initdb.WaitForExitAsync(cancellationToken);
            if (initdb.ExitCode != 0)
            {
                throw new BenchFailure($"initdb exited {initdb.ExitCode}: see {Path.Combine(root, "postgres.log")}");
            }
        }
        var port = DaemonProcess.FreePort();
        var postmaster = StartServerProcess(root, asRoot, Path.Combine(bin, "postgres"),
            "-D", Path.Combine(root, "data"),
            "-c", "listen_addresses=127.0.0.1",
            "-c", $"port={port}",
            "-c", $"unix_socket_directories={root}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "max_connections=300");
        if (Environment.GetEnvironmentVariable("LOOP_BENCH_PIDS") is { Length: > 0 } pids)
        {
            await File.AppendAllTextAsync(pids, postmaster.Id + "\n", cancellationToken);
        }
        var server = new PgServer(root, port, postmaster);
        try
        {
            await server.WaitAcceptingAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>Creates an empty database and returns a pooled connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return ConnectionString(name, pooling: true);
    }

    public string ConnectionString(string database, bool pooling) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = ServerUser,
        Database = database,
        Pooling = pooling,
    }.ConnectionString;

    private async Task WaitAcceptingAsync(CancellationToken cancellationToken)
    {
        var probe = new NpgsqlConnectionStringBuilder(ConnectionString("postgres", pooling: false)) { Timeout = 2 }.ConnectionString;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_postmaster.HasExited)
            {
                throw new BenchFailure($"postgres exited {_postmaster.ExitCode}: see {LogPath}");
            }
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync(cancellationToken);
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                // not listening yet
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>A fast shutdown (SIGINT, what <c>pg_ctl stop -m fast</c> sends), SIGKILL after 30 s;
    /// then the directory goes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_postmaster.HasExited)
        {
            Signal(_postmaster.Id, "INT");
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _postmaster.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                _postmaster.Kill();
                await _postmaster.WaitForExitAsync(CancellationToken.None);
            }
        }
        _postmaster.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // a backend still exiting; the temp directory is left
        }
    }

    /// <summary>A PostgreSQL program with its output appended to the log, as postgres when root.
    /// sh and setpriv exec in place: the process returned is the program itself.</summary>
    private static Process StartServerProcess(string root, bool asRoot, string program, params string[] args)
    {
        var start = new ProcessStartInfo("sh") { UseShellExecute = false, WorkingDirectory = root };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("""exec "$@" </dev/null >>"$0" 2>&1""");
        start.ArgumentList.Add(Path.Combine(root, "postgres.log"));
        if (asRoot)
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
        return Process.Start(start) ?? throw new BenchFailure($"cannot start {program}");
    }

    private static string BinDirectory()
    {
        const string installs = "/usr/lib/postgresql";
        var newest = (Directory.Exists(installs) ? Directory.GetDirectories(installs) : [])
            .Where(dir => File.Exists(Path.Combine(dir, "bin", "postgres")))
            .MaxBy(dir => double.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var version) ? version : 0);
        return newest is not null
            ? Path.Combine(newest, "bin")
            : throw new BenchFailure($"PostgreSQL's server is not installed (no {installs}/<version>/bin/postgres): run `bash scripts/provision-test-env.sh`");
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-s", signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill?.WaitForExit();
    }

    private static async Task RunAsync(string file, string[] args, CancellationToken cancellationToken)
    {
        using var process = Process.Start(file, args) ?? throw new BenchFailure($"cannot run {file}");
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new BenchFailure($"{file} {string.Join(' ', args)} exited {process.ExitCode}");
        }
    }
}
