namespace Loop.Grains.Tests;

using Loop.Domain.Channels;
using Loop.Domain.Tests;
using Loop.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.TestingHost;

/// <summary>Two silos whose nodes both can hold the same chat connection: one holds it, the other
/// stands by, and the connection moves when the holder stops.</summary>
public sealed class ChatConnectionGrainTests : IAsyncLifetime
{
    private InProcessTestCluster _cluster = null!;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, Task> _keeping = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((options, silo) =>
        {
            silo.Services.AddSingleton(new NodeIdentity(options.SiloName));
            silo.Services.AddSingleton<IChatAdapter>(new RecordingChat());
            silo.Services.AddSingleton(sp => new ChatConnections(sp.GetServices<IChatAdapter>(), sp.GetRequiredService<IGrainFactory>(),
                TimeProvider.System, NullLogger<ChatConnections>.Instance));
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
        Assert.Equal(["test"], Connections(other).HeldBy(NodeIdentity.IncarnationOf(holder.Name, 0)));

        var stoppedChat = Chat(holder);
        await _cluster.StopSiloAsync(holder);

        Assert.Same(other, await SettledHolderAsync([other]));
        Assert.False(stoppedChat.Connected);
        Assert.Equal(1, stoppedChat.Connects);
        Assert.Equal(1, Chat(other).Connects);
    }

    /// <summary>The silo holding the connection, once each of <paramref name="silos"/> has heard who does.</summary>
    private static async Task<InProcessSiloHandle> SettledHolderAsync(IReadOnlyCollection<InProcessSiloHandle> silos)
    {
        await Eventually.Until(() => silos.All(s => Connections(s).Health().Single().Status is var status
                && (status == "connected" || status.StartsWith("standby", StringComparison.Ordinal)))
            && silos.Count(s => Chat(s).Connected) == 1, "one holder that every node knows");
        return silos.Single(s => Chat(s).Connected);
    }

    private static ChatConnections Connections(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ChatConnections>();

    private static RecordingChat Chat(InProcessSiloHandle silo) => (RecordingChat)silo.ServiceProvider.GetRequiredService<IChatAdapter>();

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_keeping.Values);
        await _cluster.DisposeAsync();
    }

    /// <summary>A chat platform that only records whether its connection is open.</summary>
    private sealed class RecordingChat : IChatAdapter
    {
        private int _connects;
        public string Platform => "test";
        public string Connection => "test";
        public bool Connected { get; private set; }
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

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
