namespace Loop.Runtime;

using System.Threading.Channels;

/// <summary>Something that happened in Loop, as the live feed and chat adapters see it.</summary>
public sealed record LoopEvent(string Kind, DateTimeOffset At, string? ChannelId, string? RunId, string Text, object? Data = null);

/// <summary>
/// In-process fan-out of <see cref="LoopEvent"/>s. Each subscriber gets its own queue. A slow
/// subscriber loses streamed output lines past a backlog rather than slowing the actors down,
/// but never a state change (a run's start or end, a task firing): chat adapters post replies from those.
/// Also keeps the most recent problems so the API can show background failures.
/// </summary>
public sealed class LoopEventHub
{
    private const int RecentProblemLimit = 50;
    private const int OutputBacklogLimit = 1024;
    private readonly object _gate = new();
    private readonly List<Channel<LoopEvent>> _subscribers = [];
    private readonly LinkedList<LoopEvent> _recentProblems = new();

    public IReadOnlyList<LoopEvent> RecentProblems
    {
        get { lock (_gate) { return _recentProblems.ToList(); } }
    }

    /// <summary>How many live-feed subscribers (API streams, chat adapters) are listening.</summary>
    public int SubscriberCount
    {
        get { lock (_gate) { return _subscribers.Count; } }
    }

    public void Publish(LoopEvent loopEvent)
    {
        lock (_gate)
        {
            if (loopEvent.Kind.EndsWith("error", StringComparison.Ordinal) || loopEvent.Kind.EndsWith("warning", StringComparison.Ordinal))
            {
                _recentProblems.AddFirst(loopEvent);
                if (_recentProblems.Count > RecentProblemLimit)
                {
                    _recentProblems.RemoveLast();
                }
            }
            var droppable = loopEvent.Kind == "run.output";
            foreach (var subscriber in _subscribers)
            {
                if (!droppable || subscriber.Reader.Count < OutputBacklogLimit)
                {
                    subscriber.Writer.TryWrite(loopEvent);
                }
            }
        }
    }

    public async IAsyncEnumerable<LoopEvent> SubscribeAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Not SingleReader: that variant cannot count its backlog, which Publish needs.
        var queue = Channel.CreateUnbounded<LoopEvent>();
        lock (_gate)
        {
            _subscribers.Add(queue);
        }
        try
        {
            await foreach (var item in queue.Reader.ReadAllAsync(cancellationToken))
            {
                yield return item;
            }
        }
        finally
        {
            lock (_gate)
            {
                _subscribers.Remove(queue);
            }
        }
    }
}
