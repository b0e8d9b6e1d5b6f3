namespace Loop.Mcp.Tests;

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loop.Client;

/// <summary>A real <c>loop serve</c> process on loopback with its own LOOP_HOME, as a user would run it
/// (adapted from the integration tests' helper). <see cref="Api"/> talks to it as the user does.</summary>
public sealed class LoopDaemon : IAsyncDisposable
{
    public const string TestImage = "loop-agent-test:latest";
    private readonly StringBuilder _output = new();
    private Process? _process;

    private LoopDaemon(string home, int port)
    {
        Home = home;
        Port = port;
        Api = new LoopApiClient(ApiUrl, token: null);
    }

    public string Home { get; }
    public int Port { get; }
    public string ApiUrl => $"http://127.0.0.1:{Port}";

    /// <summary>The daemon's unix socket, as <c>--api-url</c>.</summary>
    public string SocketUrl => $"unix://{Path.Combine(Home, "run", "loop.sock")}";

    /// <summary>The user's client (TCP, no token).</summary>
    public LoopApiClient Api { get; }

    public string Output
    {
        get { lock (_output) { return _output.ToString(); } }
    }

    public static async Task<LoopDaemon> StartAsync()
    {
        var home = Directory.CreateTempSubdirectory("loop-mcp-").FullName;
        var port = FreePort();
        var config = new JsonObject
        {
            ["api_addr"] = $"127.0.0.1:{port}",
            ["container_image"] = TestImage,
            ["log_level"] = "debug",
        };
        await File.WriteAllTextAsync(Path.Combine(home, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var daemon = new LoopDaemon(home, port);
        await daemon.StartProcessAsync();
        return daemon;
    }

    private async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(LoopCli.LoopDll);
        start.ArgumentList.Add("serve");
        start.Environment["LOOP_HOME"] = Home;
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start loop serve");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"loop serve exited with {process.ExitCode}:\n{Output}");
            }
            try
            {
                if ((await Api.GetHealthAsync()).Status is { Length: > 0 })
                {
                    return;
                }
            }
            catch (LoopApiException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"loop serve did not answer /api/health within 30 s:\n{Output}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } process)
        {
            Process.Start("kill", ["-TERM", process.Id.ToString()])?.WaitForExit();
            if (!process.WaitForExit(10_000))
            {
                process.Kill();
            }
            await process.WaitForExitAsync();
        }
        _process?.Dispose();
        Api.Dispose();
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>One daemon for all tests of the collection; each test makes its own channels.</summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    public LoopDaemon Daemon { get; private set; } = null!;

    public async Task InitializeAsync() => Daemon = await LoopDaemon.StartAsync();

    public async Task DisposeAsync() => await Daemon.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class DaemonCollection : ICollectionFixture<DaemonFixture>
{
    public const string Name = "daemon";
}
