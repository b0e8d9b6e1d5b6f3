namespace Loop.Runtime;

using Loop.Domain.Channels;
using Microsoft.Extensions.Logging;

/// <summary>
/// Activates one <see cref="ChannelActor"/> per channel on demand and lets it go when it has
/// been idle for a while. The actor logic knows nothing of this hosting.
/// </summary>
public sealed class ChannelActorHost : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Activation> _actors = new(StringComparer.Ordinal);
    private readonly ChannelActorContext _context;
    private readonly TimeSpan _idleAfter;
    private readonly ILogger<ChannelActorHost> _logger;
    private readonly CancellationTokenSource _stopping = new();

    public ChannelActorHost(ChannelActorContext context, TimeSpan idleAfter, ILogger<ChannelActorHost> logger)
    {
        _context = context;
        _idleAfter = idleAfter;
        _logger = logger;
    }

    public int ActiveCount
    {
        get { lock (_gate) { return _actors.Count; } }
    }

    /// <summary>A snapshot of live actors and the run each is busy with.</summary>
    public IReadOnlyList<(string ChannelId, string? ActiveRunId)> Snapshot()
    {
        lock (_gate)
        {
            return _actors.Values.Select(a => (a.Actor.ChannelId, a.Actor.ActiveRunId)).ToList();
        }
    }

    /// <summary>Tells the channel's actor (activating it if needed) that it has pending messages.</summary>
    public void Wake(string channelId)
    {
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested)
            {
                return; // pending messages stay in the store and run after the next start
            }
            if (!_actors.TryGetValue(channelId, out var activation))
            {
                var actor = new ChannelActor(channelId, _context);
                activation = new Activation(actor);
                _actors.Add(channelId, activation);
                activation.Loop = Task.Run(() => LiveAsync(activation));
            }
            activation.Actor.Wake();
        }
    }

    public bool TryCancel(string channelId, string runId)
    {
        lock (_gate)
        {
            return _actors.TryGetValue(channelId, out var activation) && activation.Actor.TryCancel(runId);
        }
    }

    private async Task LiveAsync(Activation activation)
    {
        var actor = activation.Actor;
        while (true)
        {
            bool idle;
            try
            {
                idle = await actor.RunAsync(_idleAfter, _stopping.Token);
            }
            catch (Exception error)
            {
                _logger.LogError(error, "Channel actor {ChannelId} stopped unexpectedly", actor.ChannelId);
                idle = true;
            }
            lock (_gate)
            {
                // A wake-up may have slipped in between the idle time-out and this lock: the actor
                // then keeps living, so no message waits for an actor that has gone.
                if (!idle || _stopping.IsCancellationRequested || !actor.HasPendingWake)
                {
                    _actors.Remove(actor.ChannelId);
                    return;
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task[] loops;
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }
            _stopping.Cancel();
            loops = _actors.Values.Select(a => a.Loop).ToArray();
        }
        await Task.WhenAll(loops).ConfigureAwait(false);
    }

    private sealed class Activation(ChannelActor actor)
    {
        public ChannelActor Actor { get; } = actor;
        public Task Loop { get; set; } = Task.CompletedTask;
    }
}
