namespace Loop.Runtime;

using System.Collections.Concurrent;
using Loop.Domain.Channels;

/// <summary>The channels active on this node and the run each is busy with, as their grains
/// report them (for health and the Runtime page).</summary>
public sealed class LiveChannels
{
    private readonly ConcurrentDictionary<string, ChannelRuns> _live = new(StringComparer.Ordinal);

    public int Count => _live.Count;

    public void Activated(ChannelRuns runs) => _live[runs.ChannelId] = runs;

    public void Deactivated(ChannelRuns runs) => _live.TryRemove(new KeyValuePair<string, ChannelRuns>(runs.ChannelId, runs));

    public IReadOnlyList<(string ChannelId, string? ActiveRunId)> Snapshot() =>
        _live.Values.Select(r => (r.ChannelId, r.ActiveRunId)).ToList();
}
