namespace Loop.Runtime;

using Loop.Domain.Channels;

/// <summary>
/// A chat platform Loop talks through (Discord now; Telegram, email, a web chat later). An adapter
/// turns the platform's messages into <see cref="ChannelService.PostChatMessageAsync"/> calls and
/// follows <see cref="ILoopEvents"/> to show typing and post replies. The core never sees its types.
/// Every node of a cluster posts the replies of the runs it executes; only one node at a time listens
/// on the account's connection (<see cref="ChatConnections"/>), so each message is taken in once.
/// </summary>
public interface IChatAdapter : IAsyncDisposable
{
    /// <summary>"discord", "telegram", ...: the platform name stored with bound channels.</summary>
    string Platform { get; }

    /// <summary>The account connection one node of a cluster holds at a time, e.g. "discord".</summary>
    string Connection { get; }

    /// <summary>One line for /api/health while this node holds the connection: connected, reconnecting, failed: why.</summary>
    string Status { get; }

    /// <summary>Starts what every node does: following run events to show typing and post replies.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Opens the connection that takes messages in: this node holds it now.</summary>
    Task ConnectAsync(CancellationToken cancellationToken);

    /// <summary>Closes it: another node holds it now, or this one is stopping. Harmless after disposal.</summary>
    Task DisconnectAsync(CancellationToken cancellationToken);

    /// <summary>A channel was registered for a directory (e.g. by <c>loop mcp --dir</c>): the adapter
    /// may create a chat channel for it and bind it with <see cref="ChannelService.BindChatChannelAsync"/>.</summary>
    Task ChannelRegisteredAsync(Channel channel, CancellationToken cancellationToken);
}

/// <summary>A message that arrived on a chat platform.</summary>
/// <param name="ExternalChannelId">The platform's id of the chat channel (a Loop channel is bound to it).</param>
/// <param name="ExternalMessageId">The platform's id of the message, so the reply can reference it.</param>
public sealed record ChatInbound(string Platform, string ExternalChannelId, string ChannelName, string Author, string Content, string? ExternalMessageId);
