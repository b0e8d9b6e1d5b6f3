namespace Loop.Domain;

using Loop.Domain.Channels;
using Loop.Domain.Runs;

/// <summary>The durable state of Loop. SQLite implements it on one node, PostgreSQL in a cluster.
/// Every method is atomic on its own; callers never hold a transaction.</summary>
public interface ILoopStore
{
    /// <summary>Creates the schema or upgrades it. Safe to call on every start.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>A random id made when the store was created; containers carry it as a label so
    /// a daemon only ever reaps its own.</summary>
    Task<string> GetInstanceIdAsync(CancellationToken cancellationToken);

    /// <summary>Returns the channel for <paramref name="dirPath"/>, creating it if there is none
    /// (idempotent per directory). With a null dir, always creates a new channel.</summary>
    Task<(Channel Channel, bool Created)> EnsureChannelAsync(string? dirPath, string? name, CancellationToken cancellationToken);

    Task<Channel?> GetChannelAsync(string channelId, CancellationToken cancellationToken);

    Task<IReadOnlyList<Channel>> ListChannelsAsync(CancellationToken cancellationToken);

    /// <summary>Keeps the agent's session id for the channel (null to forget it).</summary>
    Task SetChannelSessionAsync(string channelId, string? sessionId, CancellationToken cancellationToken);

    /// <summary>Stores a message; when this returns it is durable.</summary>
    Task<ChatMessage> AppendMessageAsync(NewMessage message, CancellationToken cancellationToken);

    /// <summary>The conversation in id order. <paramref name="afterId"/> pages forward.</summary>
    Task<IReadOnlyList<ChatMessage>> ListMessagesAsync(string channelId, long afterId, int limit, CancellationToken cancellationToken);

    /// <summary>User messages of the channel not yet handed to a run, in arrival order.</summary>
    Task<IReadOnlyList<ChatMessage>> ListPendingMessagesAsync(string channelId, CancellationToken cancellationToken);

    /// <summary>Channels that have pending user messages (to resume work after a restart).</summary>
    Task<IReadOnlyList<string>> ListChannelsWithPendingMessagesAsync(CancellationToken cancellationToken);

    /// <summary>Creates a queued run and, in the same transaction, hands it the given pending
    /// messages. Messages that are no longer pending are not taken.</summary>
    Task<Run> CreateRunAsync(Run run, IReadOnlyList<long> messageIds, CancellationToken cancellationToken);

    /// <summary>Writes the run's status, timings and results.</summary>
    Task UpdateRunAsync(Run run, CancellationToken cancellationToken);

    Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken);

    /// <summary>Runs of a channel, newest first.</summary>
    Task<IReadOnlyList<Run>> ListRunsAsync(string channelId, int limit, string? beforeRunId, CancellationToken cancellationToken);

    /// <summary>After a crash: marks every queued or running run failed with <paramref name="reason"/>,
    /// returns its user messages to pending (so they run again), and returns the runs as they were.</summary>
    Task<IReadOnlyList<Run>> FailInterruptedRunsAsync(string reason, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Cheap liveness probe for health checks.</summary>
    Task<bool> PingAsync(CancellationToken cancellationToken);
}
