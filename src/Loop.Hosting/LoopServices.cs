namespace Loop.Hosting;

using Loop.Config;
using Loop.Docker;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Budgets;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Grains;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>The composition root: every part of a node, registered once, each given what it needs.</summary>
public static class LoopServices
{
    public static IServiceCollection AddLoopNode(this IServiceCollection services, LoopNodeOptions options, TimeProvider time)
    {
        var config = options.Config;
        // The node's clock goes to Loop's parts only: Orleans keeps its own (a test's clock must not stop the silo).
        T Make<T>(IServiceProvider sp) => ActivatorUtilities.CreateInstance<T>(sp, time);
        services.AddSingleton(options);
        services.AddSingleton(config);
        services.AddSingleton(options.Paths);
        // The silo's generation tells this life of the node from its earlier ones.
        services.AddSingleton(sp => new NodeIdentity(options.NodeName, sp.GetRequiredService<Orleans.Runtime.ILocalSiloDetails>().SiloAddress.Generation));
        services.AddSingleton(new NodeWarnings(options.ConfigWarnings));

        // The store, and whether it answers: SQLite on one node, PostgreSQL shared by a cluster. Orleans
        // keeps its reminders there too, and a cluster its membership.
        if (options.Cluster is { } cluster)
        {
            services.AddSingleton<SqlLoopStore>(sp => new PostgresLoopStore(cluster.PostgresConnectionString, time)
            {
                Node = sp.GetRequiredService<NodeIdentity>().Incarnation,
            });
            services.AddSingleton<IMembershipTable, StoreMembershipTable>();
        }
        else
        {
            services.AddSingleton<SqlLoopStore>(sp => new SqliteLoopStore(config.DbPath, time) { Node = sp.GetRequiredService<NodeIdentity>().Incarnation });
        }
        services.AddSingleton(sp =>
        {
            var store = sp.GetRequiredService<SqlLoopStore>();
            return new StoreProbe(store, options.Cluster is null ? "sqlite" : "postgres", store.Location, time, sp.GetRequiredService<ILogger<StoreProbe>>());
        });
        services.AddSingleton<ILoopStore>(sp => sp.GetRequiredService<SqlLoopStore>());
        services.AddSingleton<IReminderTable, StoreReminderTable>();

        // Where agents run, as whom, and what they may mount.
        services.AddSingleton<ILoopEvents, LoopEventHub>();
        services.AddSingleton(_ => new ContainerWorkerPool(config.MaxConcurrentContainers));
        services.AddSingleton<IRunSlots>(sp => sp.GetRequiredService<ContainerWorkerPool>());
        services.AddSingleton<LoopMetrics>();
        services.AddSingleton(_ => new RunUserPolicy(UnixOwnership.Current(),
            UnixUser.TryParse(config.ContainerUser, out var containerUser) ? containerUser : null, options.Paths.ConfigFile));
        services.AddSingleton(Make<NodeSandbox>);
        services.AddSingleton(_ => new ProjectDirs(config, options.Paths, DockerEndpoint.SocketPathFromEnvironment(), clusterNode: options.Cluster is null ? null : options.NodeName));
        services.AddSingleton<ChannelTokens>();
        services.AddSingleton<IAgentRunner>(sp => new AgentRunner(config, options.Paths, sp.GetRequiredService<ProjectDirs>(),
            sp.GetRequiredService<NodeSandbox>().Sandbox, sp.GetRequiredService<NodeSandbox>().Agent, sp.GetRequiredService<ChannelTokens>(),
            sp.GetRequiredService<RunUserPolicy>(), sp.GetRequiredService<ILogger<AgentRunner>>()));

        // Channels and their grains.
        services.AddSingleton<LiveChannels>();
        services.AddSingleton(Make<TaskRunEnds>);
        services.AddSingleton<IChannelObserver>(sp => new ChannelEventLog(sp.GetRequiredService<ILoopEvents>(), time,
            sp.GetRequiredService<ILogger<ChannelEventLog>>(), sp.GetRequiredService<TaskRunEnds>().Tell, sp.GetRequiredService<LoopMetrics>()));
        services.AddSingleton<ContainerRuns>();
        // Direct mode: the Messages API called from the daemon, for channels that ask for it.
        services.AddSingleton(Make<DirectAgentRunner>);
        // Runs that report tokens but no cost are priced from the config's table, for usage and budgets.
        services.AddSingleton(new PriceTable(config.ModelPrices));
        services.AddSingleton(sp => new BudgetGuard(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<PriceTable>(), time));
        services.AddSingleton(sp => new GitWorktrees(sp.GetRequiredService<ProjectDirs>(), sp.GetRequiredService<ILogger<GitWorktrees>>(), time,
            sp.GetRequiredService<ILoopEvents>()));
        services.AddSingleton(sp => new ChannelRunsFactory(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<ContainerRuns>(), sp.GetRequiredService<IRunSlots>(), sp.GetRequiredService<IChannelObserver>(), time, options.Paths,
            sp.GetRequiredService<DirectAgentRunner>(), sp.GetRequiredService<BudgetGuard>(), sp.GetRequiredService<GitWorktrees>()));
        services.AddSingleton(sp => new AuthService(sp.GetRequiredService<ILoopStore>(), time));
        services.AddSingleton(sp => new UserDirectory(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<AuthService>(), time));
        services.AddSingleton(sp => new ChannelService(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<ChannelTokens>(), sp.GetRequiredService<AuthService>(), sp.GetRequiredService<ProjectDirs>(), options.Paths, time,
            sp.GetRequiredService<GitWorktrees>(), sp.GetRequiredService<ILoopEvents>(), sp.GetRequiredService<LoopMetrics>()));

        // Tasks and their grains.
        var minimumInterval = TaskIntervalMinimum.FromSeconds(config.MinTaskIntervalSec);
        services.AddSingleton(new TaskEdits(minimumInterval));
        services.AddSingleton(sp =>
        {
            var grains = sp.GetRequiredService<IGrainFactory>();
            return new TaskClaimer(sp.GetRequiredService<ILoopStore>(), id => grains.GetGrain<IChannelGrain>(id).Wake(),
                sp.GetRequiredService<ILoopEvents>(), minimumInterval, MisfireGrace.FromSeconds(config.MisfireGraceSec),
                // Slots fire on time however busy the thread pool is; a test's own clock stays its own.
                time == TimeProvider.System ? PunctualClock.Instance : time,
                sp.GetRequiredService<ILogger<TaskClaimer>>(), sp.GetRequiredService<LoopMetrics>());
        });
        services.AddSingleton(Make<TaskGrainParts>);
        services.AddSingleton(sp => new TaskService(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<ChannelService>(), config.TaskTemplates, sp.GetRequiredService<TaskEdits>(), time));

        // Chat platforms (adapters come from the caller): which node listens on each account.
        services.AddSingleton(_ => new Lazy<SecretBox>(() => SecretBox.Open(Environment.GetEnvironmentVariable(SecretBox.KeyVariable), options.Paths.SecretKeyFile)));
        services.AddSingleton<ChatRoleBook>();
        services.AddSingleton(Make<ChatConnections>);
        services.AddSingleton(Make<ConnectorService>);

        // What operators and the dashboard read.
        services.AddSingleton(sp => new UsageService(sp.GetRequiredService<ILoopStore>(), sp.GetRequiredService<PriceTable>(), time));
        services.AddSingleton(Make<BudgetService>);
        services.AddSingleton(Make<NodeHealth>);
        services.AddSingleton(Make<RuntimeService>);
        services.AddSingleton<ClusterView>();
        services.AddSingleton(Make<NodeLifecycle>);
        return services;
    }
}
