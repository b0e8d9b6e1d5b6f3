namespace Loop.Runtime;

using System.Collections.Concurrent;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Grains;
using Microsoft.Extensions.Logging;

/// <summary>
/// The connectors at work on this node. Each second <see cref="KeepAsync"/> makes an adapter for every
/// enabled connector of the store this node has a platform for (a new one when the connector was
/// edited, none once it is disabled or removed), and asks for each connector's connection. A connection
/// is held by one node of the cluster at a time, the one its <see cref="IChatConnectionGrain"/> lives
/// on, which opens it here (<see cref="OpenAsync"/>), closes it when the grain goes
/// (<see cref="CloseAsync"/>), and writes the connector's status to the store for every node to read.
/// </summary>
public sealed class ChatConnections(
    ILoopStore store,
    IEnumerable<IChatAdapterFactory> factories,
    LoopConfig config,
    Lazy<SecretBox> secrets,
    NodeIdentity identity,
    ILoopEvents events,
    IGrainFactory grains,
    TimeProvider time,
    ILogger<ChatConnections> logger,
    ChatRoleBook roleBook) : IAsyncDisposable
{
    public static readonly TimeSpan AskEvery = TimeSpan.FromSeconds(1);

    // A holder that is frozen or cut off does not answer; the next ask goes out regardless.
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, IChatAdapter> _adapters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _unusable = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Holder> _holders = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConnectorStatus> _reported = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _changing = new(1, 1);

    /// <summary>The adapters at work on this node.</summary>
    public IReadOnlyCollection<IChatAdapter> Adapters => _adapters.Values.ToList();

    public IChatAdapter? Adapter(string connectorId) => _adapters.GetValueOrDefault(connectorId);

    /// <summary>Writes the connectors of config.json to the store (every node does at start; they agree).</summary>
    public Task SyncConfigConnectorsAsync(CancellationToken cancellationToken) =>
        store.SyncConfigConnectorsAsync(config.Connectors.Select(c => new NewConnector(
            c.Id, c.Kind, c.Id, true, c.Values.Settings, c.Values.Allowed, c.Values.Secrets.Keys.ToList(), null, ConnectorSource.Config)).ToList(),
            cancellationToken);

    /// <summary>Opens the connection on this node (its grain lives here). False when this node has no
    /// adapter for it (a platform or credentials it lacks): the grain then leaves for another node.</summary>
    public async Task<bool> OpenAsync(string connectorId, CancellationToken cancellationToken)
    {
        await _changing.WaitAsync(cancellationToken);
        try
        {
            if (!_adapters.TryGetValue(connectorId, out var adapter))
            {
                return false;
            }
            if (_held.TryAdd(connectorId, 0))
            {
                await adapter.ConnectAsync(cancellationToken);
                logger.LogInformation("This node holds the connection of connector {Connector}", connectorId);
            }
            return true;
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>Closes the connection here (its grain is going away from this node).</summary>
    public async Task CloseAsync(string connectorId, CancellationToken cancellationToken)
    {
        await _changing.WaitAsync(cancellationToken);
        try
        {
            if (_held.TryRemove(connectorId, out _) && _adapters.TryGetValue(connectorId, out var adapter))
            {
                await adapter.DisconnectAsync(cancellationToken);
                logger.LogInformation("This node no longer holds the connection of connector {Connector}", connectorId);
            }
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>Each connector's state for /api/health: its adapter's where this node holds its
    /// connection; "standby" where another node does; "waiting" while no node is known to hold it;
    /// "failed" where this node cannot use it.</summary>
    public IReadOnlyList<ChatHealth> Health() =>
        _adapters.Values.Select(a => new ChatHealth(a.Connector.Id, StatusOf(a)))
            .Concat(_unusable.Select(u => new ChatHealth(u.Key, "failed: " + u.Value)))
            .OrderBy(h => h.Platform, StringComparer.Ordinal)
            .ToList();

    /// <summary>The connectors whose connection <paramref name="incarnation"/> holds, as last heard.</summary>
    public IReadOnlyList<string> HeldBy(string incarnation) =>
        _holders.Where(h => h.Value.Incarnation == incarnation).Select(h => h.Key).Order(StringComparer.Ordinal).ToList();

    private string StatusOf(IChatAdapter adapter) =>
        _held.ContainsKey(adapter.Connector.Id) ? adapter.Status
        : !_holders.TryGetValue(adapter.Connector.Id, out var holder) ? "waiting: no node holds the connection yet"
        : holder.Incarnation is { } incarnation ? $"standby: {NodeIdentity.NameOf(incarnation)} holds the connection"
        : $"waiting: no node holds the connection ({holder.Problem})";

    /// <summary>Follows the store's connectors and asks for their connections, each <see cref="AskEvery"/>, until cancelled.</summary>
    public async Task KeepAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                try
                {
                    await FollowStoreAsync(cancellationToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    // The store may be away for a moment: the adapters at work stay as they are.
                    logger.LogWarning("Could not read the connectors: {Error}", error.Message);
                }
                foreach (var adapter in _adapters.Values)
                {
                    await AskAsync(adapter.Connector.Id, cancellationToken);
                    await ReportAsync(adapter, cancellationToken);
                }
                await Task.Delay(AskEvery, time, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Makes the adapters match the store's connectors. The node does this once before it
    /// wakes the channels a restart left with work, so the replies of those runs have an adapter
    /// listening for them.</summary>
    public async Task FollowStoreAsync(CancellationToken cancellationToken)
    {
        var wanted = (await store.ListConnectorsAsync(cancellationToken))
            .Where(c => c.Enabled && factories.Any(f => f.Kind == c.Kind))
            .ToDictionary(c => c.Id, StringComparer.Ordinal);
        foreach (var (id, adapter) in _adapters)
        {
            if (!wanted.TryGetValue(id, out var now) || now.UpdatedAt != adapter.Connector.UpdatedAt)
            {
                await RetireAsync(id, cancellationToken);
            }
        }
        foreach (var id in _unusable.Keys.Where(id => !wanted.ContainsKey(id)))
        {
            _unusable.TryRemove(id, out _);
        }
        foreach (var connector in wanted.Values.Where(c => !_adapters.ContainsKey(c.Id)))
        {
            await StartAsync(connector, cancellationToken);
        }
    }

    private async Task StartAsync(Connector connector, CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, string> opened;
        try
        {
            opened = await SecretsOfAsync(connector, cancellationToken);
        }
        catch (InvalidOperationException problem)
        {
            if (_unusable.TryGetValue(connector.Id, out var known) && known == problem.Message)
            {
                return;
            }
            _unusable[connector.Id] = problem.Message;
            logger.LogError("Connector {Connector} ({Name}) cannot start on this node: {Problem}", connector.Id, connector.Name, problem.Message);
            events.Publish(new LoopEvent("chat.error", time.GetUtcNow(), null, null, $"{connector.Name}: {problem.Message}"));
            return;
        }
        _unusable.TryRemove(connector.Id, out _);
        await roleBook.GetAsync(connector.Id, cancellationToken); // known to health from the start
        var adapter = factories.First(f => f.Kind == connector.Kind).Create(connector, opened);
        await adapter.StartAsync(cancellationToken);
        _adapters[connector.Id] = adapter;
        logger.LogInformation("Connector {Connector} ({Kind} \"{Name}\") is at work on this node", connector.Id, ConnectorSpec.Wire(connector.Kind), connector.Name);
    }

    private async Task<IReadOnlyDictionary<string, string>> SecretsOfAsync(Connector connector, CancellationToken cancellationToken)
    {
        if (connector.Source == ConnectorSource.Config)
        {
            return config.Connectors.FirstOrDefault(c => c.Id == connector.Id)?.Values.Secrets
                ?? throw new InvalidOperationException("it is declared in the config.json of another node, not in this node's");
        }
        return await store.GetConnectorSecretsAsync(connector.Id, cancellationToken) is { } sealedSecrets
            ? secrets.Value.Open(sealedSecrets)
            : new Dictionary<string, string>();
    }

    /// <summary>Stops an adapter: its connector was edited, disabled or removed.</summary>
    private async Task RetireAsync(string connectorId, CancellationToken cancellationToken)
    {
        await _changing.WaitAsync(cancellationToken);
        try
        {
            if (_adapters.TryRemove(connectorId, out var adapter))
            {
                _held.TryRemove(connectorId, out _);
                await adapter.DisposeAsync();
            }
        }
        finally
        {
            _changing.Release();
        }
    }

    private async Task AskAsync(string connectorId, CancellationToken cancellationToken)
    {
        Holder now;
        try
        {
            now = new Holder(await grains.GetGrain<IChatConnectionGrain>(connectorId).Hold().WaitAsync(AnswerWithin, time, cancellationToken), null);
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            now = new Holder(null, error is TimeoutException ? $"its node has not answered for {AnswerWithin.TotalSeconds:0} s" : error.Message);
        }
        var before = _holders.GetValueOrDefault(connectorId);
        _holders[connectorId] = now;
        if (now.Incarnation is { } holder && holder != before?.Incarnation)
        {
            logger.LogInformation("The connection of connector {Connector} is held by {Holder}", connectorId, holder);
        }
        else if (now.Problem is { } problem && before?.Problem is null)
        {
            logger.LogWarning("No node could be asked to hold the connection of connector {Connector}: {Problem}; asking again every {Interval} s",
                connectorId, problem, AskEvery.TotalSeconds);
        }
    }

    /// <summary>Writes the status of a connection held here to the store when it changed.</summary>
    private async Task ReportAsync(IChatAdapter adapter, CancellationToken cancellationToken)
    {
        var id = adapter.Connector.Id;
        if (!_held.ContainsKey(id))
        {
            _reported.TryRemove(id, out _);
            return;
        }
        var status = adapter.Status;
        var (state, error) = status.StartsWith("connected", StringComparison.Ordinal) ? ("connected", null)
            : status.StartsWith("failed: ", StringComparison.Ordinal) ? ("failed", status["failed: ".Length..])
            : ("connecting", status.StartsWith("reconnecting: ", StringComparison.Ordinal) ? status["reconnecting: ".Length..] : null);
        if (_reported.TryGetValue(id, out var last) && last.State == state && last.Error == error)
        {
            return;
        }
        var report = new ConnectorStatus(state, error, time.GetUtcNow(), identity.NodeName);
        try
        {
            await store.SetConnectorStatusAsync(id, report, cancellationToken);
            _reported[id] = report;
        }
        catch (Exception problem) when (problem is not OperationCanceledException)
        {
            logger.LogWarning("Could not store the status of connector {Connector}: {Error}", id, problem.Message);
        }
    }

    /// <summary>Stops every adapter (the node is stopping; the grains may still close theirs after).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var id in _adapters.Keys)
        {
            if (_adapters.TryRemove(id, out var adapter))
            {
                _held.TryRemove(id, out _);
                await adapter.DisposeAsync();
            }
        }
    }

    private sealed record Holder(string? Incarnation, string? Problem);
}
