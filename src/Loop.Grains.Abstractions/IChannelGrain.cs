namespace Loop.Grains;

/// <summary>
/// The single owner of one channel's work (key: the channel id). Front ends store a message, then
/// wake the grain; it runs the agent for every pending message at once, one run at a time, and
/// folds messages that arrive mid-run into the next run. No call waits for a run: a run starts on
/// the grain and finishes on the grain's own scheduler, so status and cancel answer at once.
/// </summary>
[Alias("Loop.IChannelGrain")]
public interface IChannelGrain : IGrainWithStringKey
{
    /// <summary>The channel may have new pending work (messages, queued task runs).</summary>
    [Alias("Wake")]
    Task Wake();

    /// <summary>Stops the run if it is this channel's current one; false when it is not.</summary>
    [Alias("CancelRun")]
    Task<bool> CancelRun(string runId);

    /// <summary>Forgets the channel's Claude session unless a run holds it.</summary>
    [Alias("ResetSession")]
    Task<SessionReset> ResetSession();

    /// <summary>Removes the git worktree the channel (a fork) works in, unless a run is queued or running, or
    /// (without <paramref name="force"/>) it has changes not committed.</summary>
    [Alias("RemoveWorktree")]
    Task<WorktreeRemoval> RemoveWorktree(bool force);

    /// <summary>What the channel is doing now.</summary>
    [Alias("GetStatus")]
    Task<ChannelStatus> GetStatus();
}

/// <summary>A session reset: done, or refused because run <see cref="BusyRunId"/> (queued or running) holds the session.</summary>
[GenerateSerializer, Immutable, Alias("Loop.SessionReset")]
public sealed record SessionReset([property: Id(0)] bool Done, [property: Id(1)] string? BusyRunId, [property: Id(2)] string? BusyStatus);

/// <summary>A worktree removal: done, refused because run <see cref="BusyRunId"/> (queued or running) works in it,
/// or kept because of what <see cref="Kept"/> says (changes not committed).</summary>
[GenerateSerializer, Immutable, Alias("Loop.WorktreeRemoval")]
public sealed record WorktreeRemoval([property: Id(0)] bool Done, [property: Id(1)] string? BusyRunId, [property: Id(2)] string? BusyStatus, [property: Id(3)] string? Kept);

/// <summary>The run a channel grain is busy with, if any.</summary>
[GenerateSerializer, Immutable, Alias("Loop.ChannelStatus")]
public sealed record ChannelStatus([property: Id(0)] string ChannelId, [property: Id(1)] string? ActiveRunId);
