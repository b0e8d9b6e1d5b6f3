namespace Loop.Domain.Channels;

public enum MessageRole
{
    /// <summary>Written by a person (or a front end on their behalf); becomes part of a prompt.</summary>
    User,
    /// <summary>The agent's reply to a run.</summary>
    Agent,
    /// <summary>Written by Loop itself, e.g. to say a run failed.</summary>
    System,
}

public static class MessageRoleExtensions
{
    /// <summary>The wire name, in the API and the store: user, agent, system.</summary>
    public static string ToWire(this MessageRole role) => role switch
    {
        MessageRole.User => "user",
        MessageRole.Agent => "agent",
        MessageRole.System => "system",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "unknown message role"),
    };

    public static MessageRole FromWire(string value) => value switch
    {
        "user" => MessageRole.User,
        "agent" => MessageRole.Agent,
        "system" => MessageRole.System,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "unknown message role"),
    };
}

/// <summary>One line of a channel's conversation. A user message with no <see cref="RunId"/>
/// is pending: accepted and stored, not yet handed to a run.</summary>
/// <param name="Sender">Who wrote it, as its chat platform knows them (a Discord user id); null for the API's,
/// the agent's and Loop's messages. <see cref="Author"/> is the name the agent reads.</param>
public sealed record ChatMessage(
    long Id,
    string ChannelId,
    MessageRole Role,
    string Author,
    string Content,
    DateTimeOffset CreatedAt,
    string? RunId,
    string? ExternalId = null,
    string? Sender = null);

/// <param name="ExternalId">The chat platform's id of the message (so a reply can reference it).</param>
/// <param name="Sender">Who wrote it, as its chat platform knows them (see <see cref="ChatMessage.Sender"/>).</param>
public sealed record NewMessage(string ChannelId, MessageRole Role, string Author, string Content, string? RunId = null, string? ExternalId = null,
    string? Sender = null);
