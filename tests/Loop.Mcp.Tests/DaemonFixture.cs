namespace Loop.Mcp.Tests;

using System.Runtime.CompilerServices;
using Loop.Client;
using Loop.Testing;

/// <summary>One daemon for all tests of the collection; each test makes its own channels.</summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    public LoopDaemon Daemon { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Daemon = await LoopDaemon.StartAsync();
        // The CLI, `loop mcp` and this process's own client run as on the daemon's machine: they
        // find the daemon's local token under LOOP_HOME with no other set-up.
        Environment.SetEnvironmentVariable("LOOP_HOME", Daemon.Home);
    }

    public async Task DisposeAsync() => await Daemon.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class DaemonCollection : ICollectionFixture<DaemonFixture>
{
    public const string Name = "daemon";
}

public static class LoopDaemonApi
{
    private static readonly ConditionalWeakTable<LoopDaemon, LoopApiClient> Clients = new();

    extension(LoopDaemon daemon)
    {
        /// <summary>The user's client of this daemon (TCP, no token given: it finds the local token).</summary>
        public LoopApiClient Api => Clients.GetValue(daemon, d => new LoopApiClient(d.ApiUrl, token: null));
    }
}
