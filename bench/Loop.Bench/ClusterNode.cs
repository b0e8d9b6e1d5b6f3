namespace Loop.Bench;

using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

/// <summary>
/// One published <c>loop serve</c> of a cluster on this machine, as a user runs it (README, "Run a
/// cluster") and as tests/Loop.Testing's LoopCluster starts them: its own LOOP_HOME holding a
/// silo.json (node_name, a postgres store, its own silo port, no gateway, advertised on 127.0.0.1),
/// the connection string in LOOP_POSTGRES, its API on a free port of 127.0.0.1. Without
/// <c>connectionString</c> it is a single node on SQLite (no silo.json). Started through
/// <see cref="DaemonProcess"/>, so run.sh's trap knows its pid; a restart reuses home and ports.
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    private readonly DaemonCommand _command;
    private readonly string _log;

    private ClusterNode(string name, string home, DaemonCommand command, string log)
    {
        Name = name;
        Home = home;
        _command = command;
        _log = log;
    }

    public string Name { get; }

    public string Home { get; }

    public DaemonProcess? Process { get; private set; }

    /// <summary>Authenticated with the node's local token (re-read at each start: a start issues a new one).</summary>
    public HttpClient Http { get; private set; } = new();

    /// <summary>Makes the node's home (and silo.json); does not start it.</summary>
    public static ClusterNode Create(string state, string name, string loopBinary, string? connectionString, IReadOnlyDictionary<string, string> settings)
    {
        var home = Directory.CreateDirectory(Path.Combine(state, name + "-home")).FullName;
        var environment = new Dictionary<string, string>(settings)
        {
            // The benchmark posts far faster than a person; the per-IP limit would measure itself.
            ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "0",
        };
        if (connectionString is not null)
        {
            var silo = new JsonObject
            {
                ["node_name"] = name,
                ["store"] = new JsonObject { ["kind"] = "postgres" },
                ["cluster"] = new JsonObject
                {
                    ["silo_port"] = DaemonProcess.FreePort(),
                    ["gateway_port"] = 0,
                    ["advertised_address"] = "127.0.0.1",
                },
            };
            File.WriteAllText(Path.Combine(home, "silo.json"), silo.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            // Kept out of silo.json, as the README tells users to.
            environment["LOOP_POSTGRES"] = connectionString;
        }
        var command = DaemonCommand.LoopServe(loopBinary, home, environment);
        return new ClusterNode(name, home, command with { Name = $"loop serve ({name})" }, Path.Combine(state, name + ".log"));
    }

    /// <summary>Starts the process (again, after a kill: same home, same silo port, a new API port);
    /// returns the milliseconds from process start to its first 200 of /api/health.</summary>
    public async Task<double> StartAsync(CancellationToken cancellationToken)
    {
        if (Process is not null)
        {
            await Process.DisposeAsync();
        }
        Process = _command.Start(_log);
        var ready = await Process.WaitHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
        var token = (await File.ReadAllTextAsync(Path.Combine(Home, "secrets", "local-token"), cancellationToken)).Trim();
        Http.Dispose();
        Http = new HttpClient { BaseAddress = Process.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        Http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return ready;
    }

    /// <summary>SIGKILL, as a crash: no shutdown code runs.</summary>
    public Task KillAsync() => Process?.KillAsync() ?? Task.CompletedTask;

    public async Task<string> CreateChannelAsync(string name, string? dirPath, CancellationToken cancellationToken)
    {
        using var response = await Http.PostAsJsonAsync("/api/channels", new { name, dir_path = dirPath }, cancellationToken);
        return await IdOfAsync(response, "POST /api/channels", cancellationToken);
    }

    public async Task PostMessageAsync(string channelId, string content, CancellationToken cancellationToken)
    {
        using var response = await Http.PostAsJsonAsync($"/api/channels/{channelId}/messages", new { author = "bench", content }, cancellationToken);
        if (response.StatusCode != System.Net.HttpStatusCode.Accepted)
        {
            throw new BenchFailure($"{Name}: POST message: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
    }

    public static async Task<string> IdOfAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchFailure($"{what}: {(int)response.StatusCode} {text}");
        }
        using var body = JsonDocument.Parse(text);
        return body.RootElement.GetProperty("id").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        if (Process is not null)
        {
            await Process.DisposeAsync();
        }
        Http.Dispose();
    }
}
