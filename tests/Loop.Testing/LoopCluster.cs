namespace Loop.Testing;

using System.Text.Json.Nodes;

/// <summary>Several real <c>loop serve</c> processes on this machine forming one cluster: each has
/// its own LOOP_HOME, API port and silo port, and all share one PostgreSQL database of the test
/// run's server, given to them in LOOP_POSTGRES as a user keeps the password out of silo.json.</summary>
public sealed class LoopCluster : IAsyncDisposable
{
    private LoopCluster(string connectionString, List<LoopDaemon> nodes)
    {
        ConnectionString = connectionString;
        Nodes = nodes;
    }

    public string ConnectionString { get; }

    public List<LoopDaemon> Nodes { get; }

    public LoopDaemon this[int index] => Nodes[index];

    /// <summary>The node named <paramref name="name"/> (node-1, node-2, ...).</summary>
    public LoopDaemon this[string name] => Nodes[_names.IndexOf(name)];

    private readonly List<string> _names = [];

    /// <summary>The name of one of the nodes.</summary>
    public string NameOf(LoopDaemon node) => _names[Nodes.IndexOf(node)];

    /// <summary>Starts <paramref name="count"/> nodes named node-1, node-2, ..., one after the other, on a
    /// new database of <paramref name="server"/> (the test run's shared server by default).</summary>
    public static async Task<LoopCluster> StartAsync(int count, JsonObject? config = null, PostgresServer? server = null)
    {
        var connectionString = await (server ?? await PostgresServer.SharedAsync()).CreateDatabaseAsync();
        var cluster = new LoopCluster(connectionString, []);
        try
        {
            for (var i = 1; i <= count; i++)
            {
                await cluster.AddNodeAsync($"node-{i}", config?.DeepClone().AsObject());
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Starts one more node of the cluster, its process given <paramref name="environment"/> too
    /// (a HOME of its own for the process runner, say).</summary>
    public async Task<LoopDaemon> AddNodeAsync(string name, JsonObject? config = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var silo = new JsonObject
        {
            ["node_name"] = name,
            ["store"] = new JsonObject { ["kind"] = "postgres" },
            ["cluster"] = new JsonObject
            {
                ["silo_port"] = LoopDaemon.FreePort(),
                ["gateway_port"] = 0,
                ["advertised_address"] = "127.0.0.1",
            },
        };
        var variables = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["LOOP_POSTGRES"] = ConnectionString };
        var node = await LoopDaemon.StartAsync(config, variables, silo: silo);
        Nodes.Add(node);
        _names.Add(name);
        return node;
    }

    /// <summary>The node running <paramref name="runId"/> (its container's <c>loop.node</c> label), once
    /// the run's agent has begun, which it shows by creating <paramref name="mark"/>: a node stopped
    /// sooner would leave the agent's first attempt to the node that runs it next.</summary>
    public async Task<LoopDaemon> NodeAtWorkAsync(string runId, string mark)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string? node = null;
        while (node is null || !File.Exists(mark))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the agent of run {runId} did not begin within 60 s (its node: {node ?? "none yet"}):\n{Outputs()}");
            }
            if (node is null && (await DockerCli.ContainersAsync($"loop.run={runId}")).FirstOrDefault() is { } container)
            {
                node = (await DockerCli.RunAsync("inspect", "-f", "{{index .Config.Labels \"loop.node\"}}", container)).Trim();
            }
            await Task.Delay(100);
        }
        return this[node];
    }

    /// <summary>What each node printed, for a failed test's message.</summary>
    public string Outputs() => string.Join("\n", _names.Select((name, i) => $"===== {name} =====\n{Nodes[i].Output}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }
    }
}
