namespace Loop.Runtime;

using System.Diagnostics;
using System.Reflection;
using Loop.Config;
using Loop.Docker;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Grains;
using Loop.Store;
using Microsoft.Extensions.Logging;

/// <summary>How to build a node: its settings and, for tests and benchmarks, replacement parts.</summary>
public sealed record LoopNodeOptions(LoopConfig Config, LoopPaths Paths, string NodeName)
{
    public IReadOnlyList<string> ConfigWarnings { get; init; } = [];

    /// <summary>Replaces the Docker or process sandbox (benchmarks measure Loop without Docker work).</summary>
    public ISandbox? Sandbox { get; init; }

    /// <summary>Build arguments for the agent image when the daemon builds it.</summary>
    public IReadOnlyDictionary<string, string> ImageBuildArgs { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// The parts of one Loop daemon beside its grains: the store, the slots and the sandbox, and the
/// services front ends call (<see cref="Channels"/>, <see cref="Tasks"/>, <see cref="Events"/>,
/// <see cref="GetHealth"/>). The host makes one and gives its parts to the grains.
/// </summary>
public sealed class LoopNode : IAsyncDisposable
{
    private readonly LoopNodeOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly DockerEngine? _docker;
    private readonly DockerEngineState? _engine;
    private readonly IGrainFactory _grains;
    private readonly CancellationTokenSource _stopping = new();
    private readonly long _startedAt;
    private readonly List<string> _warnings = [];
    private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);
    private readonly List<IChatAdapter> _chats = [];
    private readonly AgentEnvironment _agent;
    private readonly StoreProbe _storeProbe;
    private string _instanceId = "";

    public LoopNode(LoopNodeOptions options, ILoggerFactory loggers, TimeProvider time, IGrainFactory grains)
    {
        _grains = grains;
        _options = options;
        _loggers = loggers;
        _time = time;
        _logger = loggers.CreateLogger<LoopNode>();
        _startedAt = time.GetTimestamp();
        if (options.Paths.CreatePrivateHome() is { } looser)
        {
            _logger.LogWarning("The Loop home {Home} was open to other users (mode {Mode}); it is now 0700, as it holds the store and secrets",
                options.Paths.Home, Convert.ToString((int)looser, 8));
        }
        _warnings.AddRange(options.ConfigWarnings);
        var config = options.Config;

        Store = new SqliteLoopStore(config.DbPath, time);
        _storeProbe = new StoreProbe(Store, "sqlite", config.DbPath, time, loggers.CreateLogger<StoreProbe>());
        Events = new LoopEventHub();
        Slots = new ContainerWorkerPool(config.MaxConcurrentContainers);

        ISandbox sandbox;
        if (options.Sandbox is { } replacement)
        {
            sandbox = replacement;
        }
        else if (config.Runner == RunnerKind.Process)
        {
            sandbox = new ProcessSandbox(time, loggers.CreateLogger<ProcessSandbox>());
            _warnings.Add("runner is 'process': agents run directly on this machine with no isolation");
        }
        else
        {
            _docker = DockerEngine.FromEnvironment();
            _engine = new DockerEngineState(_docker, config.ContainerImage, AgentImageFiles.All, options.ImageBuildArgs,
                time, loggers.CreateLogger<DockerEngineState>());
            var container = new ContainerSandbox(_docker, new ContainerSandboxOptions(
                config.ContainerImage, config.ContainerMemoryMb, config.ContainerCpus, config.ContainerPidsLimit,
                options.Paths.UserHome, User: null), time, loggers.CreateLogger<ContainerSandbox>());
            sandbox = new ImageGatedSandbox(container, _engine);
        }
        Runner = sandbox.Kind;
        _labels["loop.managed"] = "true";
        _labels["loop.node"] = options.NodeName;

        _agent = AgentEnvironmentFor(sandbox.Kind);
        Tokens = new ChannelTokens();
        Auth = new AuthService(Store, time);
        RunUsers = new RunUserPolicy(UnixOwnership.Current(),
            UnixUser.TryParse(config.ContainerUser, out var containerUser) ? containerUser : null, options.Paths.ConfigFile);
        if (sandbox.Kind == "docker" && RunUsers.RootWarning() is { } asRoot)
        {
            _warnings.Add(asRoot);
        }
        else if (RunUsers.DaemonIsRoot)
        {
            _warnings.Add($"loop serve runs as root and runner is '{sandbox.Kind}': agents run as root on this machine");
        }
        var projectDirs = new ProjectDirs(config, options.Paths, DockerEndpoint.SocketPathFromEnvironment());
        AgentRunner = new AgentRunner(config, options.Paths, projectDirs, sandbox, _agent, Tokens, RunUsers, loggers.CreateLogger<AgentRunner>());
        ChannelObserver = new ChannelEventLog(Events, time, loggers.CreateLogger<ChannelEventLog>(), TellTask);
        Channels = new ChannelService(Store, grains, Tokens, Auth, projectDirs, time, Events);
        var minimumInterval = Domain.Tasks.TaskIntervalMinimum.FromSeconds(config.MinTaskIntervalSec);
        Claimer = new TaskClaimer(Store, WakeAsync, Events, minimumInterval, time, loggers.CreateLogger<TaskClaimer>());
        TaskEdits = new TaskEdits(minimumInterval);
        Tasks = new TaskService(Store, grains, Channels, config.TaskTemplates, TaskEdits, time);
        Usage = new UsageService(Store, new Domain.Runs.PriceTable(config.ModelPrices), time);
        Runtime = new RuntimeService(Store, LiveChannels, Claimer, Events, GetHealth, time);
        Channels.Registered += async (channel, ct) =>
        {
            foreach (var chat in _chats)
            {
                try
                {
                    await chat.ChannelRegisteredAsync(channel, ct);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    // The channel is registered all the same; the chat side is reported.
                    _logger.LogError(error, "{Platform} could not set up a chat channel for {ChannelId}", chat.Platform, channel.Id);
                    Events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), channel.Id, null, $"{chat.Platform}: {error.Message}"));
                }
            }
        };
    }

    /// <summary>Adds a chat platform (before <see cref="StartAsync"/>); it is started and stopped with the node.</summary>
    public void AddChatAdapter(IChatAdapter adapter) => _chats.Add(adapter);

    public TimeProvider Time => _time;
    public ILoggerFactory Loggers => _loggers;
    public LoopConfig Config => _options.Config;

    public static string Version { get; } =
        typeof(LoopNode).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public ILoopStore Store { get; }
    public ChannelService Channels { get; }
    public TaskService Tasks { get; }
    public UsageService Usage { get; }

    /// <summary>Claims the due slots of this node's tasks, many at once.</summary>
    public TaskClaimer Claimer { get; }

    /// <summary>The rules for what a task may say.</summary>
    public TaskEdits TaskEdits { get; }

    public ChannelTokens Tokens { get; }
    public AuthService Auth { get; }
    public RuntimeService Runtime { get; }
    public LoopEventHub Events { get; }

    /// <summary>The node's bound on agent runs, shared by its channels.</summary>
    public ContainerWorkerPool Slots { get; }

    /// <summary>Runs agents in this node's sandbox.</summary>
    public IAgentRunner AgentRunner { get; }

    /// <summary>Turns what channels report into logs and live events.</summary>
    public IChannelObserver ChannelObserver { get; }

    /// <summary>The channels active on this node.</summary>
    public LiveChannels LiveChannels { get; } = new();

    public string Runner { get; }
    public LoopPaths Paths => _options.Paths;

    /// <summary>The unix socket agents reach the API on, once the API listens there.</summary>
    public string? ContainerEndpoint { get; set; }

    /// <summary>Who agents run as (never root).</summary>
    public RunUserPolicy RunUsers { get; }

    /// <summary>Before the silo starts: prepares the store and the directories, and issues the local token.</summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        await Store.MigrateAsync(cancellationToken);
        // Mounted into every container (the API socket lives here), so it must exist even
        // before the API has started listening.
        Directory.CreateDirectory(_options.Paths.SocketDir);
        // What earlier runs were handed; none of those runs is alive any more.
        if (Directory.Exists(_options.Paths.RunFilesRoot))
        {
            Directory.Delete(_options.Paths.RunFilesRoot, recursive: true);
        }
        _instanceId = await Store.GetInstanceIdAsync(cancellationToken);
        await _storeProbe.CheckAsync(cancellationToken);
        // The secrets dir is never mounted into containers: this token stays on the daemon's machine.
        await Auth.IssueLocalTokenAsync(_options.Paths.LocalTokenFile, _options.NodeName, cancellationToken);
        // Until an account exists, whoever reached the API first could claim the daemon: setting it
        // up takes a code that only a user of this machine can read.
        if (await Auth.IssueSetupCodeAsync(_options.Paths.SetupCodeFile, cancellationToken) is { } setupCode)
        {
            _logger.LogWarning("First-run setup code: {SetupCode} (also in {SetupCodeFile}); the dashboard's setup page asks for it",
                setupCode, _options.Paths.SetupCodeFile);
        }
        // Filled before any channel wakes, so every container carries the instance it belongs to.
        _labels["loop.instance"] = _instanceId;
    }

    /// <summary>Once the silo runs: reports and requeues work a crash interrupted, reaps orphan
    /// containers, starts the image check, and wakes channels with pending messages.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = _options.Config;

        var interrupted = await Store.FailInterruptedRunsAsync(
            "interrupted: the daemon stopped during this run; its messages were queued again", _time.GetUtcNow(), cancellationToken);
        foreach (var run in interrupted)
        {
            _logger.LogWarning("Run {RunId} for channel {ChannelId} was interrupted by a daemon stop; marked failed and its messages queued again", run.Id, run.ChannelId);
            Events.Publish(new LoopEvent("run.error", _time.GetUtcNow(), run.ChannelId, run.Id, "interrupted by a daemon stop; its messages were queued again"));
        }

        if (_engine is not null && _docker is not null)
        {
            if (await _engine.CheckAsync(cancellationToken))
            {
                var reaped = await new ContainerReaper(_docker, _loggers.CreateLogger<ContainerReaper>()).ReapAsync(new Dictionary<string, string> { ["loop.instance"] = _instanceId }, cancellationToken);
                if (reaped > 0)
                {
                    _logger.LogWarning("Removed {Count} orphaned agent container(s) left by an earlier daemon", reaped);
                }
                _engine.EnsureImage();
            }
        }
        if (Runner == "docker" && _agent.LoopBinaryMount is null)
        {
            _warnings.Add("no linux-x64 loop binary found to mount into containers: the loop MCP tools will be missing inside agents (run `make build`)");
        }
        foreach (var warning in _warnings)
        {
            _logger.LogWarning("{Warning}", warning);
        }

        await ArmTasksAsync(cancellationToken);
        var waiting = (await Store.ListChannelsWithPendingMessagesAsync(cancellationToken))
            .Concat(await Store.ListChannelsWithQueuedTaskRunsAsync(cancellationToken));
        foreach (var channelId in waiting.Distinct())
        {
            await WakeAsync(channelId);
        }
        foreach (var chat in _chats)
        {
            await chat.StartAsync(cancellationToken);
        }
        _logger.LogInformation("Loop {Version} node {Node} started: store {DbPath}, runner {Runner}, up to {Max} concurrent runs",
            Version, _options.NodeName, config.DbPath, Runner, config.MaxConcurrentContainers);
    }

    private Task WakeAsync(string channelId) => _grains.GetGrain<IChannelGrain>(channelId).Wake();

    /// <summary>Arms every enabled task's grain (a slot missed while the daemon was down then
    /// follows the task's misfire policy) and resumes loop tasks whose iteration a stop interrupted.</summary>
    private async Task ArmTasksAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var tasks = await Store.ListTasksAsync(null, cancellationToken);
        var missed = tasks.Count(t => t.Enabled && t.Type != Domain.Tasks.TaskType.Loop && t.NextRunAt <= now);
        await Parallel.ForEachAsync(tasks.Where(t => t.Enabled), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cancellationToken },
            async (task, _) =>
            {
                var grain = _grains.GetGrain<ITaskGrain>(task.Id);
                await (task.Type == Domain.Tasks.TaskType.Loop ? grain.ResumeLoop() : grain.Arm());
            });
        _logger.LogInformation("Armed {Armed} task(s); {Missed} had missed slots while the daemon was down", Claimer.ArmedCount, missed);
    }

    /// <summary>A task's run ended: its grain decides what comes next (a loop task's next iteration).</summary>
    private void TellTask(Domain.Runs.Run run)
    {
        if (run.TaskId is not { } taskId)
        {
            return;
        }
        _grains.GetGrain<ITaskGrain>(taskId).RunFinished(run.Id).ContinueWith(told =>
        {
            _logger.LogError(told.Exception, "Task {TaskId} could not continue after run {RunId}", taskId, run.Id);
            Events.Publish(new LoopEvent("task.error", _time.GetUtcNow(), run.ChannelId, run.Id, $"task {taskId} could not continue: {told.Exception!.GetBaseException().Message}"));
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    public HealthReport GetHealth()
    {
        var engine = _engine?.Health ?? new EngineHealth(false, "none", null, $"not used (runner: {Runner})", _options.Config.ContainerImage, "not used");
        var store = _storeProbe.Health;
        var degraded = !store.Ok || (_engine is not null && (!engine.Reachable || engine.ImageStatus != "present"));
        var warnings = new List<string>(_warnings);
        if (ContainerEndpoint is { } socket && !File.Exists(socket))
        {
            degraded = true;
            warnings.Add($"the daemon's unix socket {socket} is gone: agents cannot reach their loop tools until loop serve restarts");
        }
        if (_engine is not null && !engine.Reachable)
        {
            warnings.Add($"Docker engine not reachable at {engine.Endpoint}: agent runs will fail until it is (or set runner to process)");
        }
        return new HealthReport(
            degraded ? "degraded" : "ok",
            Version,
            _options.NodeName,
            Environment.ProcessId,
            _time.GetElapsedTime(_startedAt).TotalSeconds,
            Runner,
            store,
            engine,
            new QueueHealth(Slots.Capacity, Slots.InUse, Slots.Waiting),
            LiveChannels.Count,
            _chats.Select(c => new ChatHealth(c.Platform, c.Status)).ToList(),
            warnings,
            Events.RecentProblems);
    }


    private AgentEnvironment AgentEnvironmentFor(string kind)
    {
        var paths = _options.Paths;
        var apiUrl = "unix://" + paths.DaemonSocket;
        if (kind != "docker")
        {
            var self = Environment.ProcessPath;
            var loop = self is not null && Path.GetFileNameWithoutExtension(self) == "loop" ? self : "loop";
            return new AgentEnvironment(_options.Config.ClaudeBinPath, loop, null, apiUrl, null, _labels);
        }
        const string inContainer = "/opt/loop/bin/loop";
        var binary = LinuxLoopBinary();
        return new AgentEnvironment("claude", inContainer,
            binary is null ? null : new BindMount(binary, inContainer, ReadOnly: true),
            apiUrl, paths.SocketDir, _labels);
    }

    /// <summary>The self-contained linux-x64 <c>loop</c> that containers run for <c>loop mcp</c>:
    /// this process when it is one, else the published one beside it.</summary>
    private static string? LinuxLoopBinary()
    {
        var candidates = new[]
        {
            Environment.GetEnvironmentVariable("LOOP_CONTAINER_BINARY"),
            OperatingSystem.IsLinux() && Environment.ProcessPath is { } self && Path.GetFileName(self) == "loop" && IsSingleFile(self) ? self : null,
            Path.Combine(AppContext.BaseDirectory, "linux-x64", "loop"),
        };
        return candidates.FirstOrDefault(c => c is not null && File.Exists(c));
    }

    private static bool IsSingleFile(string path) => !File.Exists(Path.Combine(Path.GetDirectoryName(path)!, "loop.dll"));

    /// <summary>Stops taking work in (chat platforms, the scheduler); the silo then stops the channels.</summary>
    public async Task StopAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        await _stopping.CancelAsync();
        foreach (var chat in _chats)
        {
            await chat.DisposeAsync();
        }
        await Claimer.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _docker?.Dispose();
        if (Store is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
        _stopping.Dispose();
    }

    /// <summary>Holds runs back while the agent image is still being checked or built.</summary>
    private sealed class ImageGatedSandbox(ISandbox inner, DockerEngineState engine) : ISandbox
    {
        public string Kind => inner.Kind;

        public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
        {
            if (!await engine.WaitForImageAsync(cancellationToken))
            {
                throw new SandboxUnavailableException($"the agent image {engine.Image} is not available: {engine.Health.ImageStatus}");
            }
            return await inner.RunAsync(spec, onStdoutLine, onStarted, cancellationToken);
        }
    }
}
