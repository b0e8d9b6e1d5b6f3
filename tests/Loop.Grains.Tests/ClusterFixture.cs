namespace Loop.Grains.Tests;

using System.Collections.Concurrent;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Budgets;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Domain.Tests;
using Loop.Runtime;
using Loop.Store;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.TestingHost;

/// <summary>
/// One silo on Orleans.TestingHost with Loop's grains and a real SQLite store, shared by the tests
/// of a collection. Each test works on channels of its own, and its agent is a
/// <see cref="ScriptedRunner"/> registered for those channels.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private readonly ConcurrentDictionary<string, IAgentRunner> _runners = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IAgentRunner> _directRunners = new(StringComparer.Ordinal);
    private readonly string _dir = Directory.CreateTempSubdirectory("loop-grains-").FullName;

    public ManualTimeProvider Time { get; } = new();
    public SqliteLoopStore Store { get; private set; } = null!;
    public ContainerWorkerPool Slots { get; } = new(2);
    public LoopEventHub Events { get; } = new();
    public LiveChannels Live { get; } = new();
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public IGrainFactory Grains => Cluster.Client;
    public TaskEdits Edits { get; } = new(TaskIntervalMinimum.None);
    public TaskClaimer Claimer { get; private set; } = null!;
    public TaskService Tasks { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = new SqliteLoopStore(Path.Combine(_dir, "loop.db"), Time);
        await Store.MigrateAsync(CancellationToken.None);
        var paths = new LoopPaths(_dir, _dir);
        // As the node does: a task's run that ends tells the task's grain.
        var observer = new ChannelEventLog(Events, Time, NullLogger<ChannelEventLog>.Instance,
            run => _ = run.TaskId is { } taskId ? Grains.GetGrain<ITaskGrain>(taskId).RunFinished(run.Id) : Task.CompletedTask);
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddSingleton<ILoopStore>(Store);
            silo.Services.AddSingleton<IAgentRunner>(new RunnerPerChannel(_runners));
            silo.Services.AddSingleton<IChannelObserver>(observer);
            silo.Services.AddSingleton(Live);
            silo.Services.AddSingleton<ContainerRuns>();
            silo.Services.AddSingleton(sp => new ChannelRunsFactory(Store, sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<ContainerRuns>(), Slots, observer, Time, paths,
                new RunnerPerChannel(_directRunners), new BudgetGuard(Store, PriceTable.Empty, Time),
                new GitWorktrees(new ProjectDirs(LoopConfig.Defaults(paths), paths, null), NullLogger<GitWorktrees>.Instance, Time)));
            silo.Services.AddSingleton(sp => new TaskGrainParts(Store, Edits, Claimer, Events, Time));
            silo.Services.AddSingleton<IReminderTable>(new StoreReminderTable(Store));
            silo.AddReminders();
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        Claimer = new TaskClaimer(Store, id => Grains.GetGrain<IChannelGrain>(id).Wake(), Events, TaskIntervalMinimum.None, MisfireGrace.FromSeconds(60), Time, NullLogger<TaskClaimer>.Instance);
        var channels = new ChannelService(Store, Grains, new ChannelTokens(), new AuthService(Store, Time), new ProjectDirs(LoopConfig.Defaults(paths), paths, null), paths, Time,
            new GitWorktrees(new ProjectDirs(LoopConfig.Defaults(paths), paths, null), NullLogger<GitWorktrees>.Instance, Time), Events);
        Tasks = new TaskService(Store, Grains, channels, [], Edits, Time);
    }

    /// <summary>Makes <paramref name="runner"/> the agent of the given channels.</summary>
    public void UseRunner(IAgentRunner runner, params string[] channelIds)
    {
        foreach (var id in channelIds)
        {
            _runners[id] = runner;
        }
    }

    /// <summary>Makes <paramref name="runner"/> the agent of the given channels in direct mode (what
    /// the node's DirectAgentRunner is).</summary>
    public void UseDirectRunner(IAgentRunner runner, params string[] channelIds)
    {
        foreach (var id in channelIds)
        {
            _directRunners[id] = runner;
        }
    }

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        await Claimer.DisposeAsync();
        await Store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private sealed class RunnerPerChannel(ConcurrentDictionary<string, IAgentRunner> runners) : IAgentRunner
    {
        public Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken) =>
            runners[request.ChannelId].RunAsync(request, observer, cancellationToken);
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
