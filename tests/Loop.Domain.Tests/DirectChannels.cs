namespace Loop.Domain.Tests;

using Loop.Domain.Channels;

/// <summary>Drains each channel's <see cref="ChannelRuns"/> directly, one drain at a time per
/// channel, as its grain does on a silo: for tests of the scheduler without a silo.</summary>
public sealed class DirectChannels(ChannelRunsContext context) : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Drain> _drains = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    public Task WakeAsync(string channelId)
    {
        lock (_gate)
        {
            if (!_drains.TryGetValue(channelId, out var drain))
            {
                drain = _drains[channelId] = new Drain(new ChannelRuns(channelId, context));
            }
            if (!drain.Task.IsCompleted)
            {
                drain.Again = true;
                return Task.CompletedTask;
            }
            drain.Task = Task.Run(() => DrainAsync(drain));
        }
        return Task.CompletedTask;
    }

    private async Task DrainAsync(Drain drain)
    {
        while (true)
        {
            await drain.Runs.DrainAsync(_stopping.Token);
            lock (_gate)
            {
                if (!drain.Again || _stopping.IsCancellationRequested)
                {
                    return;
                }
                drain.Again = false;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        Task[] drains;
        lock (_gate)
        {
            drains = _drains.Values.Select(d => d.Task).ToArray();
        }
        await Task.WhenAll(drains);
    }

    private sealed class Drain(ChannelRuns runs)
    {
        public ChannelRuns Runs { get; } = runs;
        public Task Task { get; set; } = Task.CompletedTask;
        public bool Again { get; set; }
    }
}
