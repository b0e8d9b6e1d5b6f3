namespace Loop.Hosting;

using Orleans.Configuration;

/// <summary>How fast a cluster notices a node is gone. Orleans' defaults take about a minute
/// (measured here: 13 s to answer elsewhere); a chat waiting on a dead node's channel should wait
/// seconds. One missed probe more than the minimum, and probes of 1.5 s, keep a node that is only
/// slow for a moment (a busy machine, a garbage collection) in the cluster.</summary>
internal static class ClusterTuning
{
    public static void Apply(ClusterMembershipOptions options)
    {
        options.ProbeTimeout = TimeSpan.FromSeconds(1.5);
        options.NumMissedProbesLimit = 2;
        options.NumVotesForDeathDeclaration = 1;
        options.TableRefreshTimeout = TimeSpan.FromSeconds(2);
        options.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        // The rows of nodes dead for ten minutes are removed; a node that restarts writes a new one.
        options.DefunctSiloExpiration = TimeSpan.FromMinutes(10);
    }
}
