namespace Loop.Mcp;

using Loop.Client;

/// <summary>The one channel this server acts on. For <c>--dir</c> the channel is registered (or
/// found) on first use rather than at start-up, so the server starts even while the daemon is
/// down and says so on the first tool call instead of dying where the agent cannot see why.</summary>
public sealed class ChannelScope(LoopApiClient api, string? channelId, string? dirPath)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _channelId = channelId;

    public async Task<string> GetChannelIdAsync(CancellationToken cancellationToken)
    {
        if (_channelId is { } known)
        {
            return known;
        }
        await _gate.WaitAsync(cancellationToken);
        try
        {
            _channelId ??= (await api.EnsureChannelAsync(dirPath, cancellationToken: cancellationToken)).Id;
            return _channelId;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Reads the task and checks it is this channel's; a task of another channel is an error
    /// here even when the daemon would let this caller see it.</summary>
    public async Task<LoopTask> GetOwnTaskAsync(string taskId, CancellationToken cancellationToken)
    {
        var channel = await GetChannelIdAsync(cancellationToken);
        var task = await api.GetTaskAsync(taskId, cancellationToken);
        if (task.ChannelId != channel)
        {
            throw new LoopApiException($"task {taskId} belongs to channel {task.ChannelId}, not to this server's channel {channel}", 403);
        }
        return task;
    }
}
