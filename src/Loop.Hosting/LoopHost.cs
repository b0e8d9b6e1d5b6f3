namespace Loop.Hosting;

using Loop.Api;
using Loop.Config;
using Loop.Domain;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Net;
using System.Net.Sockets;
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
    private bool _started;

    private LoopHost(WebApplication app) => App = app;

    public WebApplication App { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>A part of the node (tests, benchmarks and front ends in-process use its services).</summary>
    public T Get<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public ChannelService Channels => Get<ChannelService>();

    public TaskService Tasks => Get<TaskService>();

    public ILoopStore Store => Get<ILoopStore>();

    public ILoopEvents Events => Get<ILoopEvents>();

    public HealthReport Health() => Get<NodeHealth>().Report();

    /// <param name="addParts">Adds parts the node starts and stops with it, such as chat platforms
    /// (<see cref="IChatAdapter"/> singletons).</param>
    public static LoopHost Build(LoopNodeOptions options, TimeProvider time, Action<ILoggingBuilder> configureLogging,
        Action<IServiceCollection>? addParts = null)
    {
        // Before anything writes into the home (the store, the socket): it holds the store and secrets.
        var looser = options.Paths.CreatePrivateHome();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // Loop has settings of its own. The host's would come from the working directory and be
            // watched, recursively from there: a scan of every directory below it at each start.
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        configureLogging(builder.Logging);

        var services = builder.Services;
        services.AddLoopNode(options, time);
        addParts?.Invoke(services);

        // Hosted services start in this order: the store is ready before the silo, and the node
        // recovers and wakes its channels once the silo runs, before the API listens.
        services.AddHostedService<NodePreparation>();
        builder.UseOrleans(silo => ConfigureSilo(silo, options));
        services.AddHostedService<NodeStart>();
        if (options.Cluster is { } cluster)
        {
            services.AddHostedService<ClusterWatch>();
            services.AddHostedService(sp => ActivatorUtilities.CreateInstance<ClusterEventRelay>(sp, cluster.PostgresConnectionString));
        }

        LoopServer.Configure(builder, options.Config, options.Paths);
        services.AddLoopTelemetry(options.NodeName);
        var app = builder.Build();
        if (looser is { } mode)
        {
            app.Services.GetRequiredService<ILogger<LoopHost>>().LogWarning(
                "The Loop home {Home} was open to other users (mode {Mode}); it is now 0700, as it holds the store and secrets",
                options.Paths.Home, Convert.ToString((int)mode, 8));
        }
        LoopServer.Map(app);
        app.MapLoopTelemetry();
        // Behind Loop's login like the API (ApiCallers); it has no authentication of its own.
        app.Use(new OrleansDashboardOnDemand(app.Services).InvokeAsync);
        return new LoopHost(app);
    }

    private static void ConfigureSilo(ISiloBuilder silo, LoopNodeOptions options)
    {
        if (options.Cluster is { Settings: var cluster })
        {
            // Membership lives in the shared store (StoreMembershipTable, registered with the node's parts).
            silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = ("loop", "loop"));
            if (cluster.AdvertisedAddress is null)
            {
                silo.ConfigureEndpoints(cluster.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: true);
            }
            else if (IPAddress.TryParse(cluster.AdvertisedAddress, out var address))
            {
                silo.ConfigureEndpoints(address, cluster.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: true);
            }
            else
            {
                silo.ConfigureEndpoints(cluster.AdvertisedAddress, cluster.SiloPort, cluster.GatewayPort, AddressFamily.InterNetwork, listenOnAnyHostAddress: true);
            }
            silo.Configure<ClusterMembershipOptions>(ClusterTuning.Apply);
        }
        else
        {
            // One node: the silo talks to no other, on a loopback port of its own (several daemons
            // may run on one machine; not the API's, which is not bound yet), and opens no gateway.
            var apiPort = ApiAddress.Parse(options.Config.ApiAddr).Port;
            silo.UseLocalhostClustering(siloPort: FreePorts.Loopback(besides: apiPort), gatewayPort: 0, serviceId: "loop", clusterId: "loop");
        }
        // The node's name is its silo's: membership and the cluster's list of nodes show it.
        silo.Configure<SiloOptions>(o => o.SiloName = options.NodeName);
        silo.Services.Configure<TypeManifestOptions>(o => o.EnableConfigurationAnalysis = true);
        silo.AddReminders();
        silo.AddDashboard();
        silo.Services.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromMinutes(5));
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await App.StartAsync(cancellationToken);
        _started = true;
    }

    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => App.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync(CancellationToken.None);
        }
        catch (InvalidOperationException) when (!_started)
        {
            // A host whose start failed (the store unreachable, say) may have a silo that never ran:
            // Orleans refuses to stop it, and that must not hide why the start failed.
        }
        finally
        {
            await App.DisposeAsync();
        }
    }

    private sealed class NodePreparation(NodeLifecycle node) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => node.PrepareAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class NodeStart(NodeLifecycle node) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => node.StartAsync(cancellationToken);

        // Chat adapters and the claimer stop before the silo deactivates the channels.
        public Task StopAsync(CancellationToken cancellationToken) => node.StopAsync();
    }
}
