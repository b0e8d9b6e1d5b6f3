namespace Loop.Grains.Tests;

using Loop.Config;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Tests;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.TestingHost;

/// <summary>Two silos whose nodes both can hold the same chat connection: one holds it, the other
/// stands by, and the connection moves when the holder stops.</summary>
public sealed class ChatConnectionGrainTests : IAsyncLifetime
{
    private const string ConnectorId = "cn_test";

    // Every node of the test cluster has this key; OtherKey is another cluster's.
    private static readonly SecretBox NodeKey = SecretBox.Open(Convert.ToBase64String(new byte[32]), "unused");
    private static readonly SecretBox OtherKey = SecretBox.Open(Convert.ToBase64String(Enumerable.Repeat((byte)7, 32).ToArray()), "unused");
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-connections-").FullName;
    private InProcessTestCluster _cluster = null!;
    private SqliteLoopStore _store = null!;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, Task> _keeping = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        // Both nodes read one store, as the nodes of a cluster do.
        _store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), TimeProvider.System);
        await _store.MigrateAsync(CancellationToken.None);
        await _store.InsertConnectorAsync(new NewConnector(ConnectorId, ConnectorKind.Telegram, "test bot", true,
            new Dictionary<string, string>(), [], [], null, ConnectorSource.Api), CancellationToken.None);
        var paths = new LoopPaths(_dir, _dir);
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((options, silo) =>
        {
            silo.Services.AddSingleton(new NodeIdentity(options.SiloName));
            silo.Services.AddSingleton<IChatAdapterFactory, RecordingChats>();
            silo.Services.AddSingleton(sp => new ChatConnections(_store, sp.GetServices<IChatAdapterFactory>(), LoopConfig.Defaults(paths),
                new Lazy<SecretBox>(() => NodeKey), sp.GetRequiredService<NodeIdentity>(),
                new LoopEventHub(), sp.GetRequiredService<IGrainFactory>(), TimeProvider.System, NullLogger<ChatConnections>.Instance, new ChatRoleBook(_store)));
        });
        _cluster = builder.Build();
        await _cluster.DeployAsync();
        foreach (var silo in _cluster.Silos)
        {
            _keeping[silo.Name] = Connections(silo).KeepAsync(_stop.Token);
        }
    }

    [Fact]
    public async Task One_node_holds_the_connection_the_other_stands_by_and_takes_it_when_the_holder_stops()
    {
        var holder = await SettledHolderAsync(_cluster.Silos);
        var other = _cluster.Silos.Single(s => s != holder);
        Assert.True(Chat(holder).Connected);
        Assert.False(Chat(other).Connected);
        Assert.Equal($"standby: {holder.Name} holds the connection", Connections(other).Health().Single().Status);
        Assert.Equal([ConnectorId], Connections(other).HeldBy(NodeIdentity.IncarnationOf(holder.Name, 0)));

        var stoppedChat = Chat(holder);
        await _cluster.StopSiloAsync(holder);

        Assert.Same(other, await SettledHolderAsync([other]));
        Assert.False(stoppedChat.Connected);
        Assert.Equal(1, stoppedChat.Connects);
        Assert.Equal(1, Chat(other).Connects);
    }

    [Fact]
    public async Task The_holder_reports_the_status_an_edit_reconnects_with_the_new_settings_and_a_disabled_connector_is_let_go_everywhere()
    {
        var holder = await SettledHolderAsync(_cluster.Silos);
        await Eventually.Until(async () => (await _store.GetConnectorAsync(ConnectorId, CancellationToken.None))!.Status is { State: "connected" } status
            && status.Node == holder.Name, "the holder's status in the store");
        var before = _cluster.Silos.Select(Chat).ToList();

        var connector = (await _store.GetConnectorAsync(ConnectorId, CancellationToken.None))!;
        var edited = Row(connector) with { Settings = new Dictionary<string, string> { ["api_url"] = "http://127.0.0.1:2" } };
        await _store.UpdateConnectorAsync(edited, CancellationToken.None);
        await Eventually.Until(() => _cluster.Silos.All(s => Connections(s).Adapter(ConnectorId)?.Connector.Settings.GetValueOrDefault("api_url") == "http://127.0.0.1:2"),
            "the edit on every node");
        await SettledHolderAsync(_cluster.Silos);
        Assert.All(before, old => Assert.True(old.Disposed && !old.Connected));

        await _store.UpdateConnectorAsync(edited with { Enabled = false }, CancellationToken.None);
        await Eventually.Until(() => _cluster.Silos.All(s => Connections(s).Adapter(ConnectorId) is null && Connections(s).Health().Count == 0), "no adapter left");
    }

    [Fact]
    public async Task Credentials_sealed_with_another_key_leave_the_connector_failed_on_every_node_saying_why()
    {
        await SettledHolderAsync(_cluster.Silos);
        var connector = (await _store.GetConnectorAsync(ConnectorId, CancellationToken.None))!;
        await _store.UpdateConnectorAsync(Row(connector) with { SealedSecrets = OtherKey.Seal(new Dictionary<string, string> { ["token"] = "1:x" }) }, CancellationToken.None);

        await Eventually.Until(() => _cluster.Silos.All(s => Connections(s).Adapter(ConnectorId) is null
            && Connections(s).Health().SingleOrDefault()?.Status is { } status && status.StartsWith("failed: the credentials were sealed with another secret key", StringComparison.Ordinal)),
            "the connector failed on every node");
    }

    private static NewConnector Row(Connector c) =>
        new(c.Id, c.Kind, c.Name, c.Enabled, c.Settings, c.Allowed, c.SecretNames, null, c.Source);

    /// <summary>The silo holding the connection, once each of <paramref name="silos"/> has heard who does.</summary>
    private static async Task<InProcessSiloHandle> SettledHolderAsync(IReadOnlyCollection<InProcessSiloHandle> silos)
    {
        await Eventually.Until(() => silos.All(s => Connections(s).Health().SingleOrDefault()?.Status is { } status
                && (status == "connected" || status.StartsWith("standby", StringComparison.Ordinal)))
            && silos.Count(s => Connections(s).Adapter(ConnectorId) is RecordingChat { Connected: true }) == 1, "one holder that every node knows");
        return silos.Single(s => Chat(s).Connected);
    }

    private static ChatConnections Connections(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ChatConnections>();

    private static RecordingChat Chat(InProcessSiloHandle silo) => (RecordingChat)Connections(silo).Adapter(ConnectorId)!;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_keeping.Values);
        await _cluster.DisposeAsync();
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private sealed class RecordingChats : IChatAdapterFactory
    {
        public ConnectorKind Kind => ConnectorKind.Telegram;

        public IChatAdapter Create(Connector connector, IReadOnlyDictionary<string, string> secrets) => new RecordingChat(connector);
    }

    /// <summary>A chat platform that only records whether its connection is open.</summary>
    private sealed class RecordingChat(Connector connector) : IChatAdapter
    {
        private int _connects;
        public Connector Connector => connector;
        public bool Connected { get; private set; }
        public bool Disposed { get; private set; }
        public int Connects => _connects;
        public string Status => Connected ? "connected" : "not connected";

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task ConnectAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _connects);
            Connected = true;
            return Task.CompletedTask;
        }

        public Task DisconnectAsync(CancellationToken cancellationToken)
        {
            Connected = false;
            return Task.CompletedTask;
        }

        public Task ChannelRegisteredAsync(Channel channel, CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync()
        {
            Connected = false;
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
