namespace Loop.Runtime;

using System.Collections.Concurrent;
using Loop.Grains;
using Microsoft.Extensions.Logging;

/// <summary>
/// The connections of this node's chat adapters (a Discord gateway, ...). Each is held by one node of
/// the cluster at a time, the one its <see cref="IChatConnectionGrain"/> lives on, which opens it here
/// (<see cref="OpenAsync"/>) and closes it when the grain goes (<see cref="CloseAsync"/>). <see cref="KeepAsync"/>
/// asks for every connection each second, so the grain is placed again as soon as Orleans has declared
/// its node dead, and so this node knows who holds what.
/// </summary>
public sealed class ChatConnections(IEnumerable<IChatAdapter> chats, IGrainFactory grains, TimeProvider time, ILogger<ChatConnections> logger)
{
    public static readonly TimeSpan AskEvery = TimeSpan.FromSeconds(1);

    // A holder that is frozen or cut off does not answer; the next ask goes out regardless.
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, byte> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Holder> _holders = new(StringComparer.Ordinal);

    /// <summary>Opens the connection on this node (its grain was activated here).</summary>
    public async Task OpenAsync(string connection, CancellationToken cancellationToken)
    {
        var chat = Find(connection) ?? throw new InvalidOperationException($"this node has no {connection} connection to open");
        await chat.ConnectAsync(cancellationToken);
        _held[connection] = 0;
        logger.LogInformation("This node holds the {Connection} connection", connection);
    }

    /// <summary>Closes the connection here (its grain is going away from this node).</summary>
    public async Task CloseAsync(string connection, CancellationToken cancellationToken)
    {
        if (_held.TryRemove(connection, out _) && Find(connection) is { } chat)
        {
            await chat.DisconnectAsync(cancellationToken);
            logger.LogInformation("This node no longer holds the {Connection} connection", connection);
        }
    }

    /// <summary>Each adapter's state for /api/health: its own where this node holds its connection;
    /// "standby" where another node does; "waiting" while no node is known to hold it.</summary>
    public IReadOnlyList<ChatHealth> Health() => chats.Select(chat => new ChatHealth(chat.Platform, StatusOf(chat))).ToList();

    /// <summary>The chat connections <paramref name="incarnation"/> holds, as last heard.</summary>
    public IReadOnlyList<string> HeldBy(string incarnation) =>
        _holders.Where(h => h.Value.Incarnation == incarnation).Select(h => h.Key).Order(StringComparer.Ordinal).ToList();

    private string StatusOf(IChatAdapter chat) =>
        _held.ContainsKey(chat.Connection) ? chat.Status
        : !_holders.TryGetValue(chat.Connection, out var holder) ? "waiting: no node holds the connection yet"
        : holder.Incarnation is { } incarnation ? $"standby: {NodeIdentity.NameOf(incarnation)} holds the connection"
        : $"waiting: no node holds the connection ({holder.Problem})";

    /// <summary>Asks for every connection each <see cref="AskEvery"/> until cancelled.</summary>
    public async Task KeepAsync(CancellationToken cancellationToken)
    {
        if (!chats.Any())
        {
            return;
        }
        try
        {
            while (true)
            {
                foreach (var chat in chats)
                {
                    await AskAsync(chat.Connection, cancellationToken);
                }
                await Task.Delay(AskEvery, time, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task AskAsync(string connection, CancellationToken cancellationToken)
    {
        Holder now;
        try
        {
            now = new Holder(await grains.GetGrain<IChatConnectionGrain>(connection).Hold().WaitAsync(AnswerWithin, time, cancellationToken), null);
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            now = new Holder(null, error is TimeoutException ? $"its node has not answered for {AnswerWithin.TotalSeconds:0} s" : error.Message);
        }
        var before = _holders.GetValueOrDefault(connection);
        _holders[connection] = now;
        if (now.Incarnation is { } holder && holder != before?.Incarnation)
        {
            logger.LogInformation("The {Connection} connection is held by {Holder}", connection, holder);
        }
        else if (now.Problem is { } problem && before?.Problem is null)
        {
            logger.LogWarning("No node could be asked to hold the {Connection} connection: {Problem}; asking again every {Interval} s",
                connection, problem, AskEvery.TotalSeconds);
        }
    }

    private IChatAdapter? Find(string connection) => chats.FirstOrDefault(c => c.Connection == connection);

    private sealed record Holder(string? Incarnation, string? Problem);
}
