namespace Loop.Store;

using Loop.Domain;
using Loop.Domain.Channels;

/// <summary>Channels registered with the default agent (a container, the configured model), as
/// most of the store's users make them.</summary>
public static class StoreChannels
{
    public static Task<(Channel Channel, bool Created)> EnsureChannelAsync(this ILoopStore store, string? dirPath, string? name, CancellationToken cancellationToken) =>
        store.EnsureChannelAsync(dirPath, name, ChannelAgent.Default, cancellationToken);

    public static Task<(Channel Channel, bool Created)> EnsureExternalChannelAsync(this ILoopStore store, string platform, string externalId, string name, CancellationToken cancellationToken) =>
        store.EnsureExternalChannelAsync(platform, externalId, name, ChannelAgent.Default, cancellationToken);
}
