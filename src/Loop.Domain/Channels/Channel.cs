namespace Loop.Domain.Channels;

/// <summary>A conversation bound to a project directory. <see cref="DirPath"/> is null for a
/// channel that works in its own folder under the Loop home. <see cref="Platform"/> and
/// <see cref="ExternalId"/> name the chat channel it is bound to (e.g. "discord" and a channel
/// snowflake), if any.</summary>
public sealed record Channel(
    string Id,
    string Name,
    string? DirPath,
    string? SessionId,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string? Platform = null,
    string? ExternalId = null)
{
    /// <summary>The channel of tasks created without one (<c>loop tasks add</c> with no channel).</summary>
    public const string TasksChannelId = "ch_tasks";
}
