namespace Loop.Runtime;

using Loop.Config;
using Loop.Domain.Connectors;

/// <summary>The node's <see cref="HealthReport"/>, put together from its parts (no I/O).</summary>
public sealed class NodeHealth(
    LoopConfig config,
    NodeIdentity identity,
    NodeSandbox sandbox,
    StoreProbe store,
    ContainerWorkerPool slots,
    LiveChannels channels,
    ChatConnections chats,
    NodeWarnings warnings,
    ILoopEvents events,
    TimeProvider time,
    ChatRoleBook roles)
{
    private readonly long _startedAt = time.GetTimestamp();

    /// <summary>The unix socket agents reach the API on, once the API listens there.</summary>
    public string? ContainerEndpoint { get; set; }

    public HealthReport Report()
    {
        var engine = sandbox.Engine?.Health ?? new EngineHealth(false, "none", null, $"not used (runner: {sandbox.Kind})", config.ContainerImage, "not used");
        var storeHealth = store.Health;
        var degraded = !storeHealth.Ok || (sandbox.Engine is not null && (!engine.Reachable || engine.ImageStatus != "present"));
        var notes = new List<string>(warnings.All);
        if (ContainerEndpoint is { } socket && !File.Exists(socket))
        {
            degraded = true;
            notes.Add($"the daemon's unix socket {socket} is gone: agents cannot reach their loop tools until loop serve restarts");
        }
        if (sandbox.Engine is not null && !engine.Reachable)
        {
            notes.Add($"Docker engine not reachable at {engine.Endpoint}: agent runs will fail until it is (or set runner to process)");
        }
        else if (sandbox.Engine is not null && engine.ImageStatus != "present")
        {
            notes.Add(engine.ImageStatus.StartsWith("failed", StringComparison.Ordinal)
                ? $"the agent image {engine.Image} could not be built ({engine.ImageStatus[(engine.ImageStatus.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()}): agent runs fail until it is; the log has the build's output"
                : $"the agent image {engine.Image} is {engine.ImageStatus}: agent runs wait for it");
        }
        var chatHealth = chats.Health();
        foreach (var chat in chatHealth.Where(c => c.Status.StartsWith("failed", StringComparison.Ordinal) || c.Status.StartsWith("reconnecting", StringComparison.Ordinal)))
        {
            degraded = true;
            notes.Add($"connector {chat.Platform} is not connected: {chat.Status}");
        }
        foreach (var adapter in chats.Adapters.Where(a => a.Connector.Kind is ConnectorKind.Discord or ConnectorKind.Telegram && roles.IsConfigured(a.Connector.Id) == false))
        {
            var who = adapter.Connector.Kind == ConnectorKind.Discord ? "everyone in the servers its bot is in" : "everyone it lets talk";
            notes.Add($"connector {adapter.Connector.Id} has no owners: {who} may run agents, schedule and cancel tasks and change budgets with your credentials; "
                + $"name its owners and members with PUT /api/connectors/{adapter.Connector.Id}/roles");
        }
        return new HealthReport(
            degraded ? "degraded" : "ok",
            LoopVersion.Current,
            identity.NodeName,
            Environment.ProcessId,
            time.GetElapsedTime(_startedAt).TotalSeconds,
            sandbox.Kind,
            storeHealth,
            engine,
            new QueueHealth(slots.Capacity, slots.InUse, slots.Waiting),
            channels.Count,
            chatHealth,
            notes,
            events.RecentProblems);
    }
}
