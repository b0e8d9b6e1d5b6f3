namespace Loop.Hosting;

using Loop.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

/// <summary>Follows the cluster's membership as Orleans decides it: each node it declares dead has
/// its work taken over (<see cref="NodeLifecycle.TakeOverAsync"/>), once per life of that node.
/// Nodes already dead when this one joins are taken over too, in case no node was left to do it.</summary>
internal sealed class ClusterWatch(IClusterMembershipService membership, NodeLifecycle node, NodeIdentity identity, ILogger<ClusterWatch> logger)
    : BackgroundService
{
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(2);
    private readonly HashSet<SiloAddress> _takenOver = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await TakeOverDeadAsync(membership.CurrentSnapshot, stoppingToken);
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken))
            {
                await TakeOverDeadAsync(snapshot, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task TakeOverDeadAsync(ClusterMembershipSnapshot snapshot, CancellationToken stoppingToken)
    {
        while (true)
        {
            var dead = snapshot.Members.Values
                .Where(m => m.Status == SiloStatus.Dead && !_takenOver.Contains(m.SiloAddress))
                .ToList();
            var incarnations = dead.Select(m => NodeIdentity.IncarnationOf(m.Name, m.SiloAddress.Generation))
                .Where(i => i != identity.Incarnation)
                .ToList();
            if (incarnations.Count == 0)
            {
                return;
            }
            try
            {
                await node.TakeOverAsync(incarnations, stoppingToken);
                _takenOver.UnionWith(dead.Select(m => m.SiloAddress));
                return;
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                // The store may be away; the dead node's work waits until it is back.
                logger.LogError(error, "Could not take over the work of {Nodes}; retrying in {Delay}", string.Join(", ", incarnations), RetryAfter);
                await Task.Delay(RetryAfter, stoppingToken);
            }
        }
    }
}
