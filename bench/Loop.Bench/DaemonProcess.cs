namespace Loop.Bench;

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

/// <summary>A server process the benchmark starts and stops itself (a <c>loop serve</c>, the
/// bench daemon or the Node baseline): output to a log file, pid recorded for run.sh's cleanup trap,
/// stopped with SIGTERM (SIGKILL after 10 s).</summary>
public sealed partial class DaemonProcess : IAsyncDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(1), UseProxy = false })
    {
        Timeout = TimeSpan.FromSeconds(2),
    };

    private readonly Process _process;
    private readonly long _startedAt;
    private readonly Task _logging;

    private DaemonProcess(Process process, long startedAt, Task logging, int port)
    {
        _process = process;
        _startedAt = startedAt;
        _logging = logging;
        Port = port;
    }

    public int Pid => _process.Id;
    public int Port { get; }
    public Uri BaseUri => new($"http://127.0.0.1:{Port}");

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on right now.</summary>
    public static int FreePort() => Loop.Config.FreePorts.Loopback();

    /// <param name="arguments">The command line; it may contain "{port}", replaced by a free port.</param>
    public static DaemonProcess Start(string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string logPath)
    {
        var port = FreePort();
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        }
        var startedAt = Stopwatch.GetTimestamp();
        var process = Process.Start(start) ?? throw new BenchFailure($"cannot start {file}");
        if (Environment.GetEnvironmentVariable("LOOP_BENCH_PIDS") is { Length: > 0 } pids)
        {
            File.AppendAllText(pids, process.Id + "\n");
        }
        var log = new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        var logging = Task.WhenAll(
            process.StandardOutput.BaseStream.CopyToAsync(log),
            process.StandardError.BaseStream.CopyToAsync(log)).ContinueWith(_ => log.Dispose(), TaskScheduler.Default);
        return new DaemonProcess(process, startedAt, logging, port);
    }

    /// <summary>Polls GET /api/health every 2 ms; returns the milliseconds from process start to the first 200.</summary>
    public async Task<double> WaitHealthyAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        var health = new Uri(BaseUri, "/api/health");
        var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new BenchFailure($"{_process.StartInfo.FileName} exited {_process.ExitCode} before it was healthy");
            }
            try
            {
                using var response = await Http.GetAsync(health, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return Stopwatch.GetElapsedTime(_startedAt).TotalMilliseconds;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // request timed out
            }
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new BenchFailure($"{health} did not answer 200 within {within.TotalSeconds} s");
            }
            await Task.Delay(2, cancellationToken);
        }
    }

    /// <summary>Resident set size from /proc, in MiB.</summary>
    public double RssMb()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                var kb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                return kb / 1024.0;
            }
        }
        throw new BenchFailure($"no VmRSS for pid {Pid}");
    }

    /// <summary>SIGKILL, as a crash: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync(CancellationToken.None);
        }
        await _logging;
    }

    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15); // SIGTERM: let it shut down as it would under a service manager
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
        await _logging;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
