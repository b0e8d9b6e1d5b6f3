namespace Loop.Grains;

using Loop.Domain.Agents;

/// <summary>
/// Runs one agent in its sandbox on the caller's own node (a stateless worker, local to each
/// silo, where that node's Docker engine is). The caller holds one of the node's
/// <c>max_concurrent_containers</c> slots while it waits; the run's timeout is the sandbox's. A
/// cancelled run is stopped on the node (ContainerRuns), and <see cref="Run"/> answers once its
/// container is gone, so a run reported cancelled has nothing left running.
/// </summary>
[Alias("Loop.IContainerWorker")]
public interface IContainerWorker : IGrainWithIntegerKey
{
    // A run may last as long as container_timeout_sec allows; the sandbox ends it, not the call.
    [Alias("Run"), ResponseTimeout("7.00:00:00")]
    Task<AgentRunResult> Run(AgentRunRequest request);
}
