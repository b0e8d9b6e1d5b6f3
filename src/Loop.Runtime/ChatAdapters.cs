namespace Loop.Runtime;

using Loop.Domain.Channels;

/// <summary>
/// A chat platform Loop talks through (Discord now; Telegram, email, a web chat later). An adapter
/// turns the platform's messages into <see cref="ChannelService.PostChatMessageAsync"/> calls and
/// follows <see cref="ILoopEvents"/> to show typing and post replies. The core never sees its types.
/// </summary>
public interface IChatAdapter : IAsyncDisposable
{
    /// <summary>"discord", "telegram", ...: the platform name stored with bound channels.</summary>
    string Platform { get; }

    /// <summary>One line for /api/health: connected, reconnecting, failed: why.</summary>
    string Status { get; }

    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>A channel was registered for a directory (e.g. by <c>loop mcp --dir</c>): the adapter
    /// may create a chat channel for it and bind it with <see cref="ChannelService.BindChatChannelAsync"/>.</summary>
    Task ChannelRegisteredAsync(Channel channel, CancellationToken cancellationToken);
}

/// <summary>A message that arrived on a chat platform.</summary>
/// <param name="ExternalChannelId">The platform's id of the chat channel (a Loop channel is bound to it).</param>
/// <param name="ExternalMessageId">The platform's id of the message, so the reply can reference it.</param>
public sealed record ChatInbound(string Platform, string ExternalChannelId, string ChannelName, string Author, string Content, string? ExternalMessageId);
