namespace Loop.Domain.Channels;

/// <summary>A conversation bound to a project directory. <see cref="DirPath"/> is null for a
/// channel that works in its own folder under the Loop home.</summary>
public sealed record Channel(
    string Id,
    string Name,
    string? DirPath,
    string? SessionId,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);
