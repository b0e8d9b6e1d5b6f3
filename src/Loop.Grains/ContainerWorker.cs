namespace Loop.Grains;

using System.Collections.Concurrent;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Orleans.Concurrency;

/// <summary>Runs agents in the node's sandbox. Stateless and local: every node runs its own
/// containers on its own engine. Reentrant, because its callers already hold a slot each.</summary>
[StatelessWorker, Reentrant]
public sealed class ContainerWorker(IAgentRunner runner, IChannelObserver observer, ContainerRuns runs) : Grain, IContainerWorker
{
    public async Task<AgentRunResult> Run(AgentRunRequest request)
    {
        var cancellation = runs.Started(request.RunId);
        try
        {
            return await runner.RunAsync(request, new LiveOutput(observer, request), cancellation.Token);
        }
        finally
        {
            runs.Ended(request.RunId);
        }
    }

    /// <summary>The run's output, line by line, reaches the live feed from the node that runs it.</summary>
    private sealed class LiveOutput(IChannelObserver observer, AgentRunRequest request) : IAgentRunObserver
    {
        public void ContainerStarted(string containerId) { }
        public void OutputLine(string line) => observer.RunOutput(request.ChannelId, request.RunId, line);
    }
}

/// <summary>The runs in this node's containers, so a cancel finds its run whichever of the worker's
/// activations runs it. A stateless worker is always on its caller's node: the caller cancels here
/// directly, with no grain call that a stopping silo could refuse.</summary>
public sealed class ContainerRuns
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    // A cancel can overtake its run's start (the run's call may not have reached the worker yet).
    private readonly ConcurrentDictionary<string, bool> _cancelledBeforeStart = new(StringComparer.Ordinal);

    public CancellationTokenSource Started(string runId)
    {
        var cancellation = new CancellationTokenSource();
        _running[runId] = cancellation;
        if (_cancelledBeforeStart.TryRemove(runId, out _))
        {
            cancellation.Cancel();
        }
        return cancellation;
    }

    public void Ended(string runId)
    {
        _cancelledBeforeStart.TryRemove(runId, out _);
        if (_running.TryRemove(runId, out var cancellation))
        {
            cancellation.Dispose();
        }
    }

    public void Cancel(string runId)
    {
        if (_running.TryGetValue(runId, out var cancellation))
        {
            try
            {
                cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // it ended meanwhile
            }
            return;
        }
        _cancelledBeforeStart[runId] = true;
    }
}

/// <summary>How a channel's runs reach the node's <see cref="ContainerWorker"/>. The run's own
/// token is not handed to the call (Orleans would stop waiting at once): the run is cancelled on
/// the node, and the answer comes when its container has stopped.</summary>
public sealed class ContainerWorkerClient(IGrainFactory grains, ContainerRuns runs) : IAgentRunner
{
    public async Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await using (cancellationToken.Register(() => runs.Cancel(request.RunId)))
        {
            return await grains.GetGrain<IContainerWorker>(0).Run(request);
        }
    }
}
