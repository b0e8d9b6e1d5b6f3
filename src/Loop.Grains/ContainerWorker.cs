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

    public Task Cancel(string runId)
    {
        runs.Cancel(runId);
        return Task.CompletedTask;
    }

    /// <summary>The run's output, line by line, reaches the live feed from the node that runs it.</summary>
    private sealed class LiveOutput(IChannelObserver observer, AgentRunRequest request) : IAgentRunObserver
    {
        public void ContainerStarted(string containerId) { }
        public void OutputLine(string line) => observer.RunOutput(request.ChannelId, request.RunId, line);
    }
}

/// <summary>The runs in this node's containers, for <see cref="ContainerWorker.Cancel"/> to find:
/// a worker has several activations, and the cancel may reach another than the run's.</summary>
public sealed class ContainerRuns
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    // A cancel can overtake its run's start (two calls, two activations).
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
/// token is not handed to the call (Orleans would give up waiting at once): a cancel is sent,
/// and the answer comes when the container has stopped.</summary>
public sealed class ContainerWorkerClient(IGrainFactory grains) : IAgentRunner
{
    public async Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var worker = grains.GetGrain<IContainerWorker>(0);
        await using (cancellationToken.Register(() => _ = worker.Cancel(request.RunId)))
        {
            return await worker.Run(request);
        }
    }
}
