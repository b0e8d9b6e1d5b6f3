namespace Loop.Runtime;

using Loop.Domain.Channels;
using Loop.Domain.Connectors;

/// <summary>
/// A connector at work on this node (a Discord bot, a Telegram bot, a mailbox, ...). It turns the
/// platform's messages into <see cref="ChannelService.PostChatMessageAsync"/> calls (with the
/// connector's id as platform) and follows <see cref="ILoopEvents"/> to show typing and post replies.
/// The core never sees a platform's types. Every node of a cluster posts the replies of the runs it
/// executes; only one node at a time listens on the account's connection (<see cref="ChatConnections"/>),
/// so each message is taken in once.
/// </summary>
public interface IChatAdapter : IAsyncDisposable
{
    /// <summary>The connector it works for, as it was when the adapter was made (an edit makes a new adapter).</summary>
    Connector Connector { get; }

    /// <summary>One line while this node holds the connection: connected, reconnecting, failed: why.</summary>
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

/// <summary>Makes the adapters of one kind of connector (each platform's project registers one).</summary>
public interface IChatAdapterFactory
{
    ConnectorKind Kind { get; }

    /// <param name="secrets">The connector's credentials, opened.</param>
    IChatAdapter Create(Connector connector, IReadOnlyDictionary<string, string> secrets);
}

/// <summary>An adapter the platform calls over HTTP (WhatsApp's webhook), at <c>/hooks/{connector id}</c>
/// of any node: it answers only once what the call brought is stored.</summary>
public interface IChatWebhook
{
    Task<WebhookAnswer> ReceiveAsync(WebhookCall call, CancellationToken cancellationToken);
}

/// <param name="Headers">Header names in lower case.</param>
public sealed record WebhookCall(string Method, IReadOnlyDictionary<string, string> Query, IReadOnlyDictionary<string, string> Headers, byte[] Body);

public sealed record WebhookAnswer(int Status, string Text);

/// <summary>A message that arrived on a chat platform.</summary>
/// <param name="Platform">The id of the connector it came through (bound channels carry it).</param>
/// <param name="ExternalChannelId">The platform's id of the chat channel (a Loop channel is bound to it).</param>
/// <param name="ExternalMessageId">The platform's id of the message, so the reply can reference it.</param>
/// <param name="Kind">The kind of connector it came through (metrics count messages by it).</param>
/// <param name="Sender">The platform's id of whoever wrote it, kept with the message: a member may stop the runs of their own messages.</param>
public sealed record ChatInbound(string Platform, string ExternalChannelId, string ChannelName, string Author, string Content, string? ExternalMessageId,
    ConnectorKind Kind, string? Sender = null);

/// <summary>A run's answer as a chat shows it.</summary>
/// <param name="Trigger">The platform's id of the last message the run answered, if it came from the platform.</param>
public sealed record RunAnswer(string Reply, string? Trigger);
