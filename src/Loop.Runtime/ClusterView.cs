namespace Loop.Runtime;

using Loop.Domain;
using Orleans.Runtime;

/// <summary>A node of the cluster as Orleans' membership and the store see it: its state (active,
/// joining, shutting down, dead), its address, when it started and was last heard from, and its
/// load (the runs it is running, its grain activations, its CPU).</summary>
public sealed record NodeState(
    string Name, string Address, string Status, DateTimeOffset StartedAt, DateTimeOffset LastSeenAt,
    int RunningRuns, int? Activations, double? CpuPercent, bool ThisNode, IReadOnlyList<string> Holds);

/// <summary>Lists the nodes: the newest life of each node name (a node that restarted once also has a
/// dead entry for its earlier life), active ones first. One node alone is a cluster of one.</summary>
public sealed class ClusterView(IGrainFactory grains, ILoopStore store, NodeIdentity identity, ChatConnections chats)
{
    private static readonly TimeSpan StatisticsTimeout = TimeSpan.FromSeconds(2);

    public async Task<IReadOnlyList<NodeState>> GetNodesAsync(CancellationToken cancellationToken)
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        var hosts = (await management.GetDetailedHosts(onlyActive: false))
            .GroupBy(h => h.SiloName, StringComparer.Ordinal)
            .Select(g => g.MaxBy(h => h.SiloAddress.Generation)!)
            .ToList();
        var active = hosts.Where(h => h.Status == SiloStatus.Active).Select(h => h.SiloAddress).ToList();
        var statistics = await Task.WhenAll(active.Select(silo => StatisticsAsync(management, silo)));
        var load = active.Zip(statistics).Where(p => p.Second is not null).ToDictionary(p => p.First, p => p.Second!);
        var running = (await store.ListRunNodesAsync(cancellationToken)).ToDictionary(n => n.Node, n => n.Running, StringComparer.Ordinal);
        return hosts
            .Select(h =>
            {
                var incarnation = NodeIdentity.IncarnationOf(h.SiloName, h.SiloAddress.Generation);
                var stats = load.GetValueOrDefault(h.SiloAddress);
                return new NodeState(h.SiloName, h.SiloAddress.Endpoint.ToString(), Wire(h.Status), Utc(h.StartTime),
                    Utc(h.IAmAliveTime > h.StartTime ? h.IAmAliveTime : h.StartTime), running.GetValueOrDefault(incarnation),
                    stats?.ActivationCount, stats is null ? null : Math.Round(stats.EnvironmentStatistics.FilteredCpuUsagePercentage, 1), incarnation == identity.Incarnation, chats.HeldBy(incarnation));
            })
            .OrderBy(n => n.Status == "active" ? 0 : 1)
            .ThenBy(n => n.Name, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>A node's load, or null when it does not answer soon: it may have died a moment ago,
    /// before the others declared it dead, and a list of nodes must not wait for that.</summary>
    private static async Task<SiloRuntimeStatistics?> StatisticsAsync(IManagementGrain management, SiloAddress silo)
    {
        var asked = management.GetRuntimeStatistics([silo]);
        if (await Task.WhenAny(asked, Task.Delay(StatisticsTimeout)) != asked)
        {
            _ = asked.ContinueWith(t => t.Exception, TaskScheduler.Default); // observed, whenever it ends
            return null;
        }
        try
        {
            return (await asked)[0];
        }
        catch (Exception error) when (error is SiloUnavailableException or TimeoutException or OrleansMessageRejectionException)
        {
            return null;
        }
    }

    private static string Wire(SiloStatus status) => status switch
    {
        SiloStatus.Active => "active",
        SiloStatus.Joining or SiloStatus.Created => "joining",
        SiloStatus.ShuttingDown or SiloStatus.Stopping => "stopping",
        SiloStatus.Dead => "dead",
        _ => "unknown",
    };

    private static DateTimeOffset Utc(DateTime time) => new(DateTime.SpecifyKind(time, DateTimeKind.Utc));
}
