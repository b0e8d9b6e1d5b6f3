namespace Loop.Runtime;

using System.Threading.Channels;

/// <summary>Something that happened in Loop, as the live feed and chat adapters see it.
/// The hub numbers the events of one daemon process in order (<see cref="Seq"/>); <see cref="Id"/>
/// is that number with the process's epoch, unique across restarts.</summary>
public sealed record LoopEvent(string Kind, DateTimeOffset At, string? ChannelId, string? RunId, string Text, object? Data = null)
{
    public long Seq { get; init; }
    public string Id { get; init; } = "";
}

/// <summary>
/// In-process fan-out of <see cref="LoopEvent"/>s. Each subscriber gets its own queue. A slow
/// subscriber loses streamed output lines past a backlog rather than slowing the actors down,
/// but never a state change (a run's start or end, a task firing): chat adapters post replies from those.
/// Keeps the most recent events (without output lines), so a feed that reconnects can catch up and
/// a page that opens can show what just happened, and the most recent problems for the API.
/// </summary>
public sealed class LoopEventHub
{
    public const int RecentLimit = 500;
    private const int RecentProblemLimit = 50;
    private const int OutputBacklogLimit = 1024;
    private readonly object _gate = new();
    private readonly List<Channel<LoopEvent>> _subscribers = [];
    private readonly LinkedList<LoopEvent> _recentProblems = new();
    private readonly Queue<LoopEvent> _recent = new();
    private long _seq;

    /// <summary>Tells this process's event numbers from those of an earlier run of the daemon.</summary>
    public string Epoch { get; } = Guid.NewGuid().ToString("N")[..8];

    public IReadOnlyList<LoopEvent> RecentProblems
    {
        get { lock (_gate) { return _recentProblems.ToList(); } }
    }

    /// <summary>How many live-feed subscribers (API streams, chat adapters) are listening.</summary>
    public int SubscriberCount
    {
        get { lock (_gate) { return _subscribers.Count; } }
    }

    /// <summary>The last <paramref name="limit"/> events other than output lines, newest first.</summary>
    public IReadOnlyList<LoopEvent> Recent(int limit)
    {
        lock (_gate)
        {
            return _recent.Reverse().Take(limit).ToList();
        }
    }

    public void Publish(LoopEvent loopEvent)
    {
        lock (_gate)
        {
            _seq++;
            loopEvent = loopEvent with { Seq = _seq, Id = $"{Epoch}.{_seq}" };
            var droppable = loopEvent.Kind == "run.output";
            if (!droppable)
            {
                _recent.Enqueue(loopEvent);
                if (_recent.Count > RecentLimit)
                {
                    _recent.Dequeue();
                }
            }
            if (loopEvent.Kind.EndsWith("error", StringComparison.Ordinal) || loopEvent.Kind.EndsWith("warning", StringComparison.Ordinal))
            {
                _recentProblems.AddFirst(loopEvent);
                if (_recentProblems.Count > RecentProblemLimit)
                {
                    _recentProblems.RemoveLast();
                }
            }
            foreach (var subscriber in _subscribers)
            {
                if (!droppable || subscriber.Reader.Count < OutputBacklogLimit)
                {
                    subscriber.Writer.TryWrite(loopEvent);
                }
            }
        }
    }

    public IAsyncEnumerable<LoopEvent> SubscribeAsync(CancellationToken cancellationToken) => SubscribeAsync(null, cancellationToken);

    /// <summary>Every event from now on; with <paramref name="afterSeq"/>, first the kept events after
    /// that one (output lines are not kept), so a feed that reconnects misses nothing in between.</summary>
    public async IAsyncEnumerable<LoopEvent> SubscribeAsync(long? afterSeq, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Not SingleReader: that variant cannot count its backlog, which Publish needs.
        var queue = Channel.CreateUnbounded<LoopEvent>();
        lock (_gate)
        {
            if (afterSeq is { } after)
            {
                foreach (var missed in _recent.Where(e => e.Seq > after))
                {
                    queue.Writer.TryWrite(missed);
                }
            }
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
