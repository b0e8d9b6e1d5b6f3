namespace Loop.Runtime;

using Loop.Domain.Channels;

/// <summary>
/// The global bound on agent runs (<c>max_concurrent_containers</c>). Waiters queue in arrival
/// order; since a channel has at most one run at a time, first-come-first-served is also fair
/// between channels: none can starve another.
/// </summary>
public sealed class ContainerWorkerPool : IRunSlots
{
    private readonly object _gate = new();
    private readonly LinkedList<Waiter> _waiting = new();
    private int _inUse;

    public ContainerWorkerPool(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    public int Capacity { get; }

    public int InUse
    {
        get { lock (_gate) { return _inUse; } }
    }

    public int Waiting
    {
        get { lock (_gate) { return _waiting.Count; } }
    }

    public async ValueTask<IDisposable> AcquireAsync(string channelId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Waiter waiter;
        lock (_gate)
        {
            if (_inUse < Capacity && _waiting.Count == 0)
            {
                _inUse++;
                return new Lease(this);
            }
            waiter = new Waiter();
            waiter.Node = _waiting.AddLast(waiter);
        }
        await using (cancellationToken.Register(() => Abandon(waiter, cancellationToken)))
        {
            return await waiter.Granted.Task.ConfigureAwait(false);
        }
    }

    private void Abandon(Waiter waiter, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (waiter.Node?.List is null)
            {
                return; // already granted: the lease is the caller's to release
            }
            _waiting.Remove(waiter.Node);
        }
        waiter.Granted.TrySetCanceled(cancellationToken);
    }

    private void Release()
    {
        Waiter? next = null;
        lock (_gate)
        {
            if (_waiting.First is { } first)
            {
                // The slot passes straight to the longest waiter: _inUse stays the same.
                _waiting.RemoveFirst();
                next = first.Value;
            }
            else
            {
                _inUse--;
            }
        }
        next?.Granted.TrySetResult(new Lease(this));
    }

    private sealed class Waiter
    {
        public LinkedListNode<Waiter>? Node { get; set; }
        public TaskCompletionSource<IDisposable> Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Lease(ContainerWorkerPool pool) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                pool.Release();
            }
        }
    }
}
