namespace Loop.Hosting;

using Loop.Api;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Grains;
using Loop.Runtime;
using Loop.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Serialization.Configuration;

/// <summary>
/// One <c>loop serve</c> process: a single Orleans silo (the channel grains and the container
/// worker), the node's parts beside it, and the REST API, all in one host whose DI is the
/// composition root.
/// </summary>
public sealed class LoopHost : IAsyncDisposable
{
    private LoopHost(WebApplication app)
    {
        App = app;
        Node = app.Services.GetRequiredService<LoopNode>();
    }

    public WebApplication App { get; }

    public LoopNode Node { get; }

    public static LoopHost Build(LoopNodeOptions options, TimeProvider time, Action<ILoggingBuilder> configureLogging)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        configureLogging(builder.Logging);

        var services = builder.Services;
        services.AddSingleton(sp => new LoopNode(options, sp.GetRequiredService<ILoggerFactory>(), time, sp.GetRequiredService<IGrainFactory>()));
        services.AddSingleton(sp => sp.GetRequiredService<LoopNode>().Store);
        services.AddSingleton<IRunSlots>(sp => sp.GetRequiredService<LoopNode>().Slots);
        services.AddSingleton(sp => sp.GetRequiredService<LoopNode>().AgentRunner);
        services.AddSingleton(sp => sp.GetRequiredService<LoopNode>().ChannelObserver);
        services.AddSingleton(sp => sp.GetRequiredService<LoopNode>().LiveChannels);
        services.AddSingleton<ContainerRuns>();
        services.AddSingleton(sp =>
        {
            var node = sp.GetRequiredService<LoopNode>();
            return new TaskGrainParts(node.Store, node.TaskEdits, node.Claimer, node.Events, time);
        });
        services.AddSingleton<IReminderTable>(sp => new SqliteReminderTable(sp.GetRequiredService<LoopNode>().Store as SqliteLoopStore
            ?? throw new InvalidOperationException("one node keeps Orleans' reminders in its SQLite store")));
        services.AddSingleton(sp => new ChannelRunsFactory(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<ContainerRuns>(),
            sp.GetRequiredService<IRunSlots>(), sp.GetRequiredService<IChannelObserver>(), time, options.Paths));

        // Hosted services start in this order: the store is ready before the silo, and the node
        // recovers and wakes its channels once the silo runs, before the API listens.
        services.AddHostedService<NodePreparation>();
        builder.UseOrleans(silo => ConfigureSilo(silo));
        services.AddHostedService<NodeStart>();

        LoopServer.Configure(builder, options.Config, options.Paths);
        var app = builder.Build();
        LoopServer.Map(app, app.Services.GetRequiredService<LoopNode>());
        // Behind Loop's login like the API (ApiCallers); it has no authentication of its own.
        app.MapOrleansDashboard(routePrefix: ApiCallers.OrleansDashboardPath);
        return new LoopHost(app);
    }

    private static void ConfigureSilo(ISiloBuilder silo)
    {
        // One node: the silo talks to no other, on a loopback port of its own (several daemons
        // may run on one machine), and opens no gateway for outside clients.
        silo.UseLocalhostClustering(siloPort: FreePorts.Loopback(), gatewayPort: 0, serviceId: "loop", clusterId: "loop");
        silo.Services.Configure<TypeManifestOptions>(o => o.EnableConfigurationAnalysis = true);
        silo.AddReminders();
        silo.AddDashboard();
        silo.Services.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromMinutes(5));
    }


    public Task StartAsync(CancellationToken cancellationToken) => App.StartAsync(cancellationToken);

    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => App.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync(CancellationToken.None);
        }
        finally
        {
            await App.DisposeAsync();
        }
    }

    private sealed class NodePreparation(LoopNode node) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => node.PrepareAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class NodeStart(LoopNode node) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => node.StartAsync(cancellationToken);

        // Chat adapters and the scheduler stop before the silo deactivates the channels.
        public Task StopAsync(CancellationToken cancellationToken) => node.StopAsync();
    }
}
