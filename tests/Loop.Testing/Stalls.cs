namespace Loop.Testing;

/// <summary>
/// Calls a platform double is told to hold unanswered, as a network that stopped delivering would,
/// until their caller gives up: nothing they asked for happens. A test uses it to kill a node while
/// its call is on the way.
/// </summary>
public sealed class Stalls
{
    private readonly object _gate = new();
    private readonly List<(Func<string, bool> Matches, TaskCompletionSource Arrived)> _asked = [];

    /// <summary>The next call <paramref name="matches"/> accepts is held; the task completes when it has arrived.</summary>
    public Task Next(Func<string, bool> matches)
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _asked.Add((matches, arrived));
        }
        return arrived.Task;
    }

    /// <summary>Holds <paramref name="call"/> until <paramref name="aborted"/> when a stall was asked for it:
    /// true then (the caller is gone, nothing is to be answered); false at once otherwise.</summary>
    public async Task<bool> HoldAsync(string call, CancellationToken aborted)
    {
        TaskCompletionSource? arrived = null;
        lock (_gate)
        {
            var index = _asked.FindIndex(s => s.Matches(call));
            if (index >= 0)
            {
                arrived = _asked[index].Arrived;
                _asked.RemoveAt(index);
            }
        }
        if (arrived is null)
        {
            return false;
        }
        arrived.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, aborted);
        }
        catch (OperationCanceledException)
        {
        }
        return true;
    }
}
