namespace Loop.Runtime;

using System.Diagnostics;
using System.Reflection;
using Loop.Config;
using Loop.Docker;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Store;
using Microsoft.Extensions.Logging;

/// <summary>How to build a node: its settings and, for tests and benchmarks, replacement parts.</summary>
public sealed record LoopNodeOptions(LoopConfig Config, LoopPaths Paths, string NodeName)
{
    public IReadOnlyList<string> ConfigWarnings { get; init; } = [];

    /// <summary>Replaces the Docker or process sandbox (benchmarks measure Loop without Docker work).</summary>
    public ISandbox? Sandbox { get; init; }

    /// <summary>How long a channel actor with nothing to do stays activated.</summary>
    public TimeSpan ActorIdleAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Build arguments for the agent image when the daemon builds it.</summary>
    public IReadOnlyDictionary<string, string> ImageBuildArgs { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// One Loop daemon: the store, the channel actors, the worker pool and the sandbox, wired
/// together. Front ends reach it through <see cref="Channels"/>, <see cref="Events"/> and
/// <see cref="GetHealth"/>.
/// </summary>
public sealed class LoopNode : IAsyncDisposable
{
    private readonly LoopNodeOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly DockerEngine? _docker;
    private readonly DockerEngineState? _engine;
    private readonly ContainerWorkerPool _pool;
    private readonly ChannelActorHost _actors;
    private readonly CancellationTokenSource _stopping = new();
    private readonly long _startedAt;
    private readonly List<string> _warnings = [];
    private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);
    private readonly List<IChatAdapter> _chats = [];
    private readonly AgentEnvironment _agent;
    private string _instanceId = "";

    public LoopNode(LoopNodeOptions options, ILoggerFactory loggers, TimeProvider time)
    {
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
        Events = new LoopEventHub();
        _pool = new ContainerWorkerPool(config.MaxConcurrentContainers);

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
        var runner = new AgentRunner(config, options.Paths, projectDirs, sandbox, _agent, Tokens, RunUsers, loggers.CreateLogger<AgentRunner>());
        var observer = new ChannelEventLog(Events, time, loggers.CreateLogger<ChannelEventLog>(), run => Scheduler!.RunFinished(run));
        var context = new ChannelActorContext(Store, runner, _pool, observer, time,
            channel => channel.DirPath ?? options.Paths.ChannelWorkDir(channel.Id));
        _actors = new ChannelActorHost(context, options.ActorIdleAfter, loggers.CreateLogger<ChannelActorHost>());
        Channels = new ChannelService(Store, _actors, Tokens, Auth, projectDirs, time, Events);
        var minimumInterval = Domain.Tasks.TaskIntervalMinimum.FromSeconds(config.MinTaskIntervalSec);
        Scheduler = new TaskScheduler(Store, _actors, Events, minimumInterval, time, loggers.CreateLogger<TaskScheduler>());
        Tasks = new TaskService(Store, Scheduler, Channels, config.TaskTemplates, minimumInterval, time);
        Usage = new UsageService(Store, new Domain.Runs.PriceTable(config.ModelPrices), time);
        Runtime = new RuntimeService(Store, _actors, Scheduler, Events, GetHealth, time);
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
    public TaskScheduler Scheduler { get; }
    public ChannelTokens Tokens { get; }
    public AuthService Auth { get; }
    public RuntimeService Runtime { get; }
    public LoopEventHub Events { get; }
    public string Runner { get; }
    public LoopPaths Paths => _options.Paths;

    /// <summary>The unix socket agents reach the API on, once the API listens there.</summary>
    public string? ContainerEndpoint { get; set; }

    /// <summary>Who agents run as (never root).</summary>
    public RunUserPolicy RunUsers { get; }

    /// <summary>Prepares the store, reports and requeues work a crash interrupted, reaps orphan
    /// containers, starts the image check, and wakes channels with pending messages.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = _options.Config;
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
        // The secrets dir is never mounted into containers: this token stays on the daemon's machine.
        await Auth.IssueLocalTokenAsync(_options.Paths.LocalTokenFile, _options.NodeName, cancellationToken);
        // Until an account exists, whoever reached the API first could claim the daemon: setting it
        // up takes a code that only a user of this machine can read.
        if (await Auth.IssueSetupCodeAsync(_options.Paths.SetupCodeFile, cancellationToken) is { } setupCode)
        {
            _logger.LogWarning("First-run setup code: {SetupCode} (also in {SetupCodeFile}); the dashboard's setup page asks for it",
                setupCode, _options.Paths.SetupCodeFile);
        }
        // Filled before any actor wakes, so every container carries the instance it belongs to.
        _labels["loop.instance"] = _instanceId;

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

        await Scheduler.StartAsync(cancellationToken);
        var waiting = (await Store.ListChannelsWithPendingMessagesAsync(cancellationToken))
            .Concat(await Store.ListChannelsWithQueuedTaskRunsAsync(cancellationToken));
        foreach (var channelId in waiting.Distinct())
        {
            _actors.Wake(channelId);
        }
        foreach (var chat in _chats)
        {
            await chat.StartAsync(cancellationToken);
        }
        _logger.LogInformation("Loop {Version} node {Node} started: store {DbPath}, runner {Runner}, up to {Max} concurrent runs",
            Version, _options.NodeName, config.DbPath, Runner, config.MaxConcurrentContainers);
    }

    public HealthReport GetHealth()
    {
        var engine = _engine?.Health ?? new EngineHealth(false, "none", null, $"not used (runner: {Runner})", _options.Config.ContainerImage, "not used");
        var storeOk = _instanceId.Length > 0;
        var degraded = !storeOk || (_engine is not null && (!engine.Reachable || engine.ImageStatus != "present"));
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
            new StoreHealth(storeOk, "sqlite", _options.Config.DbPath, storeOk ? null : "not started"),
            engine,
            new QueueHealth(_pool.Capacity, _pool.InUse, _pool.Waiting),
            _actors.ActiveCount,
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

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        foreach (var chat in _chats)
        {
            await chat.DisposeAsync();
        }
        await Scheduler.DisposeAsync();
        await _actors.DisposeAsync();
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
