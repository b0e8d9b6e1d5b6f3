namespace Loop.Runtime;

using System.Threading.Channels;

/// <summary>Something that happened in Loop, as the live feed and chat adapters see it.
/// The hub numbers the events of one daemon process in order (<see cref="Seq"/>); <see cref="Id"/>
/// is that number with the process's epoch, unique across restarts.</summary>
public sealed record LoopEvent(string Kind, DateTimeOffset At, string? ChannelId, string? RunId, string Text, object? Data = null)
{
    public long Seq { get; init; }
    public string Id { get; init; } = "";

    /// <summary>The node of the cluster it happened on, when another node relayed it; null when it
    /// happened on this one. Relayed events reach the live feed, not the parts of this node.</summary>
    public string? Node { get; init; }
}

/// <summary>
/// The live events of Loop: what the dashboard's feed, the chat platforms and the Runtime page
/// follow. Every part publishes and subscribes through this seam only, so a cluster can deliver
/// the events of every node to each one without changing them.
/// </summary>
public interface ILoopEvents
{
    /// <summary>Tells this process's event numbers from those of an earlier run of the daemon.</summary>
    string Epoch { get; }

    IReadOnlyList<LoopEvent> RecentProblems { get; }

    /// <summary>How many live-feed subscribers (API streams, chat adapters) are listening.</summary>
    int SubscriberCount { get; }

    /// <summary>The last <paramref name="limit"/> events other than output lines, newest first.</summary>
    IReadOnlyList<LoopEvent> Recent(int limit);

    void Publish(LoopEvent loopEvent);

    /// <summary>Every event of this node from now on, for its parts (chat adapters, the cluster's
    /// relay): never cut off. Events relayed from other nodes are theirs to act on, not this one's.</summary>
    IAsyncEnumerable<LoopEvent> SubscribeAsync(CancellationToken cancellationToken);

    /// <summary>For a client over the network, from after <paramref name="afterSeq"/>: the sequence
    /// ends early when it falls too far behind, and it resumes from the last event it got.</summary>
    IAsyncEnumerable<LoopEvent> FollowAsync(long? afterSeq, CancellationToken cancellationToken);
}

/// <summary>
/// In-process fan-out of <see cref="LoopEvent"/>s (one node's <see cref="ILoopEvents"/>). Each subscriber gets its own queue. A slow
/// subscriber loses streamed output lines past a backlog rather than slowing the actors down,
/// but never a state change (a run's start or end, a task firing): chat adapters post replies from those.
/// A follower of the live feed over the network (<see cref="FollowAsync"/>) that falls further
/// behind than <see cref="FollowerBacklogLimit"/> events or <see cref="FollowerTextLimit"/>
/// characters is cut off instead of growing the daemon's memory: its stream ends, and it resumes
/// from the last event it received. Keeps the most recent events (without output lines), so a feed
/// that reconnects can catch up and a page that opens can show what just happened, and the most
/// recent problems for the API.
/// </summary>
public sealed class LoopEventHub : ILoopEvents
{
    public const int RecentLimit = 500;
    public const int FollowerBacklogLimit = 1000;
    public const int FollowerTextLimit = 4 * 1024 * 1024;
    private const int RecentProblemLimit = 50;
    private const int OutputBacklogLimit = 1024;
    private readonly object _gate = new();
    private readonly List<Subscriber> _subscribers = [];
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
            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                var subscriber = _subscribers[i];
                if (loopEvent.Node is not null && !subscriber.IsFollower)
                {
                    continue;
                }
                if (droppable && subscriber.Backlog >= subscriber.OutputLimit)
                {
                    continue;
                }
                if (subscriber.IsFollower && (subscriber.Backlog >= FollowerBacklogLimit || subscriber.QueuedText + loopEvent.Text.Length > FollowerTextLimit))
                {
                    _subscribers.RemoveAt(i);
                    subscriber.CutOff();
                    continue;
                }
                subscriber.Add(loopEvent);
            }
        }
    }

    /// <summary>Every event from now on. For parts of the daemon (chat adapters): however far
    /// behind, it is never cut off.</summary>
    public IAsyncEnumerable<LoopEvent> SubscribeAsync(CancellationToken cancellationToken) =>
        ReadAsync(new Subscriber(follower: false), null, cancellationToken);

    /// <summary>Every event from now on; with <paramref name="afterSeq"/>, first the kept events after
    /// that one (output lines are not kept), so a feed that reconnects misses nothing in between.
    /// For a client over the network: when it falls too far behind, the sequence ends early (without an error) and its
    /// queue is freed; it resumes with the <see cref="LoopEvent.Seq"/> of the last event it got.</summary>
    public IAsyncEnumerable<LoopEvent> FollowAsync(long? afterSeq, CancellationToken cancellationToken) =>
        ReadAsync(new Subscriber(follower: true), afterSeq, cancellationToken);

    private async IAsyncEnumerable<LoopEvent> ReadAsync(Subscriber subscriber, long? afterSeq, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (afterSeq is { } after)
            {
                foreach (var missed in _recent.Where(e => e.Seq > after))
                {
                    subscriber.Add(missed);
                }
            }
            _subscribers.Add(subscriber);
        }
        try
        {
            while (await subscriber.Queue.Reader.WaitToReadAsync(cancellationToken))
            {
                while (subscriber.TryTake(out var item))
                {
                    yield return item;
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _subscribers.Remove(subscriber);
            }
        }
    }

    /// <summary>One subscriber's queue and how much it holds.</summary>
    private sealed class Subscriber(bool follower)
    {
        private long _queuedText;

        // Not SingleReader: that variant cannot count its backlog, which Publish needs.
        public Channel<LoopEvent> Queue { get; } = Channel.CreateUnbounded<LoopEvent>();

        public bool IsFollower { get; } = follower;

        public int OutputLimit { get; } = follower ? FollowerBacklogLimit / 2 : OutputBacklogLimit;

        public int Backlog => Queue.Reader.Count;

        public long QueuedText => Interlocked.Read(ref _queuedText);

        public void Add(LoopEvent loopEvent)
        {
            if (Queue.Writer.TryWrite(loopEvent))
            {
                Interlocked.Add(ref _queuedText, loopEvent.Text.Length);
            }
        }

        public bool TryTake(out LoopEvent loopEvent)
        {
            if (!Queue.Reader.TryRead(out loopEvent!))
            {
                return false;
            }
            Interlocked.Add(ref _queuedText, -loopEvent.Text.Length);
            return true;
        }

        /// <summary>Ends the subscriber's sequence and lets go of what it had not read.</summary>
        public void CutOff()
        {
            Queue.Writer.TryComplete();
            while (TryTake(out _))
            {
            }
        }
    }
}
