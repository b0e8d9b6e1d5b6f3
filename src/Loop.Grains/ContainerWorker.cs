namespace Loop.Grains;

using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Orleans.Concurrency;

/// <summary>Runs agents in the node's sandbox. Stateless and local: every node runs its own
/// containers on its own engine. Reentrant, because its callers already hold a slot each.</summary>
[StatelessWorker, Reentrant]
public sealed class ContainerWorker(IAgentRunner runner, IChannelObserver observer) : Grain, IContainerWorker
{
    public Task<AgentRunResult> Run(AgentRunRequest request, CancellationToken cancellationToken) =>
        runner.RunAsync(request, new LiveOutput(observer, request), cancellationToken);

    /// <summary>The run's output, line by line, reaches the live feed from the node that runs it.</summary>
    private sealed class LiveOutput(IChannelObserver observer, AgentRunRequest request) : IAgentRunObserver
    {
        public void ContainerStarted(string containerId) { }
        public void OutputLine(string line) => observer.RunOutput(request.ChannelId, request.RunId, line);
    }
}

/// <summary>How a channel's runs reach the node's <see cref="ContainerWorker"/>.</summary>
public sealed class ContainerWorkerClient(IGrainFactory grains) : IAgentRunner
{
    public Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken) =>
        grains.GetGrain<IContainerWorker>(0).Run(request, cancellationToken);
}
