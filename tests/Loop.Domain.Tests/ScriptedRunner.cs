namespace Loop.Domain.Tests;

using System.Collections.Concurrent;
using Loop.Domain.Agents;
using Loop.Domain.Runs;

/// <summary>
/// Stands in for the agent in actor-logic tests (the real runner is tested end to end against
/// Docker). Each call waits until the test releases it, so a test decides when a run ends.
/// </summary>
public sealed class ScriptedRunner : IAgentRunner
{
    private readonly ConcurrentQueue<Call> _calls = new();
    private readonly SemaphoreSlim _started = new(0);
    private readonly List<Call> _all = [];
    private int _concurrent;

    public List<AgentRunRequest> Requests { get; } = [];
    public int MaxConcurrent { get; private set; }

    /// <summary>What each call answers; by default a success that echoes the prompt.</summary>
    public Func<AgentRunRequest, AgentRunResult> Answer { get; set; } = request =>
        new AgentRunResult(AgentOutcome.Succeeded, 0, "echo: " + request.Prompt, request.SessionId ?? "session-1", null,
            new RunUsage(10, 20, 0, 0, 0.01m, 1, 5));

    /// <summary>When false, calls finish at once.</summary>
    public bool HoldCalls { get; set; } = true;

    public async Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken)
    {
        var call = new Call(request);
        lock (Requests)
        {
            Requests.Add(request);
            MaxConcurrent = Math.Max(MaxConcurrent, Interlocked.Increment(ref _concurrent));
        }
        _calls.Enqueue(call);
        lock (_all)
        {
            _all.Add(call);
        }
        _started.Release();
        try
        {
            if (HoldCalls)
            {
                await call.Release.Task.WaitAsync(cancellationToken);
            }
            return Answer(request);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new AgentRunResult(AgentOutcome.Cancelled, null, null, request.SessionId, "cancelled", RunUsage.None);
        }
        finally
        {
            Interlocked.Decrement(ref _concurrent);
        }
    }

    /// <summary>Waits for the next call to start and returns it (release it to let it finish).</summary>
    public async Task<Call> NextCallAsync()
    {
        if (!await _started.WaitAsync(TimeSpan.FromSeconds(10)))
        {
            throw new TimeoutException("the runner was not called");
        }
        _calls.TryDequeue(out var call);
        return call!;
    }

    /// <summary>Lets every call finish, now and from now on (a test that ends leaves no run behind).</summary>
    public void ReleaseAll()
    {
        HoldCalls = false;
        lock (_all)
        {
            foreach (var call in _all)
            {
                call.Release.TrySetResult();
            }
        }
    }

    public sealed class Call(AgentRunRequest request)
    {
        public AgentRunRequest Request { get; } = request;
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
