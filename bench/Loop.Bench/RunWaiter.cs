namespace Loop.Bench;

using System.Collections.Concurrent;
using Loop.Runtime;

/// <summary>Hands out the event that ends the next run of a channel (run.finished, run.error or
/// channel.error), read from the node's live feed.</summary>
public sealed class RunWaiter : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<LoopEvent>> _waiting = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop;
    private readonly Task _reader;

    public RunWaiter(ILoopEvents hub, CancellationToken cancellationToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // An async iterator subscribes on its first MoveNextAsync: done here, before any post.
        var events = hub.SubscribeAsync(_stop.Token).GetAsyncEnumerator(_stop.Token);
        _reader = ReadAsync(events, events.MoveNextAsync());
    }

    /// <summary>Call before posting the message whose run it waits for.</summary>
    public Task<LoopEvent> Expect(string channelId, TimeSpan within)
    {
        var done = new TaskCompletionSource<LoopEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[channelId] = done;
        return done.Task.WaitAsync(within);
    }

    private async Task ReadAsync(IAsyncEnumerator<LoopEvent> events, ValueTask<bool> first)
    {
        await using (events)
        {
            var more = await first;
            while (more)
            {
                var item = events.Current;
                if (item.Kind is "run.finished" or "run.error" or "channel.error" && item.ChannelId is { } channel && _waiting.TryRemove(channel, out var done))
                {
                    done.TrySetResult(item);
                }
                more = await events.MoveNextAsync();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _reader;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
