namespace Loop.Runtime;

/// <summary>Who is asking. An agent (through its channel token) may only touch its own channel;
/// the user may touch everything.</summary>
public sealed record Caller(string? ChannelId)
{
    public static readonly Caller User = new((string?)null);

    public bool IsChannel => ChannelId is not null;

    /// <summary>Throws when this caller may not act on <paramref name="channelId"/>.</summary>
    public void EnsureCanAccess(string channelId)
    {
        if (ChannelId is not null && ChannelId != channelId)
        {
            throw new LoopForbiddenException($"this token belongs to channel {ChannelId} and may not act on channel {channelId}");
        }
    }

    public void EnsureUser(string what)
    {
        if (ChannelId is not null)
        {
            throw new LoopForbiddenException($"a channel token may not {what}");
        }
    }
}
