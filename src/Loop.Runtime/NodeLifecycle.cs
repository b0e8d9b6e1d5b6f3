namespace Loop.Runtime;

using Loop.Config;
using Loop.Docker;
using Loop.Domain;
using Loop.Grains;
using Microsoft.Extensions.Logging;

/// <summary>
/// What a node does around its silo: before it starts, prepares the store, the directories and the
/// local token (<see cref="PrepareAsync"/>); once it runs, reports and requeues what a crash
/// interrupted, reaps orphan containers, arms the tasks and wakes channels with work
/// (<see cref="StartAsync"/>); when it stops, stops taking work in (<see cref="StopAsync"/>).
/// </summary>
public sealed class NodeLifecycle(
    LoopNodeOptions options,
    ILoopStore store,
    StoreProbe storeProbe,
    AuthService auth,
    NodeIdentity identity,
    NodeSandbox sandbox,
    NodeWarnings warnings,
    ILoopEvents events,
    TaskClaimer claimer,
    ChannelService channels,
    ChatConnections chats,
    IGrainFactory grains,
    TimeProvider time,
    ILoggerFactory loggers)
{
    private readonly ILogger _logger = loggers.CreateLogger<NodeLifecycle>();
    private Task _enginePrepared = Task.CompletedTask;
    private readonly CancellationTokenSource _stopping = new();
    private Task _keepingChats = Task.CompletedTask;
    private int _stopped;

    /// <summary>Before the silo starts: prepares the store and the directories, and issues the local token.</summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        var paths = options.Paths;
        channels.Registered += TellChatsAsync;
        await store.MigrateAsync(cancellationToken);
        await chats.SyncConfigConnectorsAsync(cancellationToken);
        // Mounted into every container (the API socket lives here), so it must exist even
        // before the API has started listening.
        Directory.CreateDirectory(paths.SocketDir);
        // What earlier runs were handed; none of those runs is alive any more.
        if (Directory.Exists(paths.RunFilesRoot))
        {
            Directory.Delete(paths.RunFilesRoot, recursive: true);
        }
        identity.Serve(await store.GetInstanceIdAsync(cancellationToken));
        // The global mounts apply to every run: their mistakes are said now, not at the first run.
        var globalMounts = MountResolver.Resolve(options.Config.Mounts.Select(m => new ConfiguredMount(m, MountOrigin.Global)), null,
            options.Config.AllowedMountRoots, paths.UserHome, paths.Home);
        foreach (var warning in globalMounts.Warnings)
        {
            warnings.Add(warning + " (from config.json's mounts)");
        }
        if (options.Config.SystemPromptFile is { } systemPrompt && !File.Exists(systemPrompt))
        {
            warnings.Add($"system_prompt_file {systemPrompt} does not exist: every run fails until it does (or until system_prompt_file is removed from config.json)");
        }
        if (sandbox.Kind == "docker" && string.IsNullOrEmpty(options.Config.AnthropicApiKey) && string.IsNullOrEmpty(options.Config.ClaudeCodeOauthToken))
        {
            warnings.Add("neither anthropic_api_key nor claude_code_oauth_token is set (nor ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN): "
                + "agents in containers cannot reach Claude; set one in config.json (claude setup-token makes an OAuth token)");
        }
        if (options.Cluster is not null && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(SecretBox.KeyVariable)))
        {
            warnings.Add($"{SecretBox.KeyVariable} is not set: the credentials of connectors added through this node can be opened by this node only; give every node of the cluster the same key");
        }
        await storeProbe.CheckAsync(cancellationToken);
        // The secrets dir is never mounted into containers: this token stays on the daemon's machine.
        await auth.IssueLocalTokenAsync(paths.LocalTokenFile, options.NodeName, cancellationToken);
        // Until an account exists, whoever reached the API first could claim the daemon: setting it
        // up takes a code that only a user of this machine can read.
        if (await auth.IssueSetupCodeAsync(paths.SetupCodeFile, cancellationToken) is { } setupCode)
        {
            _logger.LogWarning("First-run setup code: {SetupCode} (also in {SetupCodeFile}); the dashboard's setup page asks for it",
                setupCode, paths.SetupCodeFile);
        }
        // Beside the silo's start, which keeps one core busy; StartAsync waits for it before any run can start.
        _enginePrepared = PrepareEngineAsync(cancellationToken);
    }

    /// <summary>Checks the Docker engine, removes the containers an earlier daemon of this home left, and
    /// starts the image check.</summary>
    private async Task PrepareEngineAsync(CancellationToken cancellationToken)
    {
        if (sandbox is { Engine: { } engine, Docker: { } docker } && await engine.CheckAsync(cancellationToken))
        {
            // Nodes of a cluster share the instance id, and may share an engine: each reaps its own.
            var owned = new Dictionary<string, string> { ["loop.instance"] = identity.InstanceId };
            if (options.Cluster is not null)
            {
                owned["loop.node"] = identity.NodeName;
            }
            var reaped = await new ContainerReaper(docker, loggers.CreateLogger<ContainerReaper>()).ReapAsync(owned, cancellationToken);
            if (reaped > 0)
            {
                _logger.LogWarning("Removed {Count} orphaned agent container(s) left by an earlier daemon", reaped);
            }
            engine.EnsureImage();
        }
    }

    /// <summary>Once the silo runs: reports and requeues work a crash interrupted, waits for the
    /// orphan containers to be gone, arms the tasks and wakes channels with pending work.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The adapters follow this node's events before any recovery below is reported through them.
        await chats.FollowStoreAsync(cancellationToken);
        const string Reason = "interrupted: the daemon stopped during this run; its messages were queued again";
        if (options.Cluster is null)
        {
            await RecoverAsync(null, Reason, cancellationToken);
            await RecoverRepliesAsync(node => node != identity.Incarnation, cancellationToken);
        }
        else
        {
            // This node's earlier lives, whoever has not recovered them yet: the other nodes' runs are still going.
            foreach (var earlier in (await store.ListRunNodesAsync(cancellationToken)).Select(n => n.Node).Where(identity.IsEarlierLifeOf))
            {
                await RecoverAsync(earlier, Reason, cancellationToken);
            }
            await RecoverRepliesAsync(node => node is not null && identity.IsEarlierLifeOf(node), cancellationToken);
        }

        await _enginePrepared;
        if (sandbox.Kind == "docker" && sandbox.Agent.LoopBinaryMount is null)
        {
            warnings.Add("no linux-x64 loop binary found to mount into containers: the loop MCP tools will be missing inside agents (run `make build`)");
        }
        foreach (var warning in warnings.All)
        {
            _logger.LogWarning("{Warning}", warning);
        }

        await ResumeWorkAsync(cancellationToken);
        _keepingChats = chats.KeepAsync(_stopping.Token);
        var config = options.Config;
        _logger.LogInformation("Loop {Version} node {Node} started: store {Store}, runner {Runner}, up to {Max} concurrent runs{Cluster}",
            LoopVersion.Current, options.NodeName, storeProbe.Health.Location, sandbox.Kind, config.MaxConcurrentContainers,
            options.Cluster is { Settings: var cluster } ? $", cluster silo port {cluster.SiloPort}" : "");
    }

    /// <summary>Another node of the cluster died (Orleans declared <paramref name="incarnations"/>
    /// dead): its runs are reported and their messages run again here or elsewhere, its tasks fire
    /// on the nodes left, and the channels it hosted wake where Orleans places them now. Every node
    /// left does this; each step is safe to repeat.</summary>
    public async Task TakeOverAsync(IReadOnlyCollection<string> incarnations, CancellationToken cancellationToken)
    {
        foreach (var incarnation in incarnations)
        {
            var node = NodeIdentity.NameOf(incarnation);
            _logger.LogWarning("Node {Node} ({Incarnation}) is dead; taking over its work", node, incarnation);
            events.Publish(new LoopEvent("node.dead", time.GetUtcNow(), null, null, $"node {node} stopped; its work moves to the nodes left"));
            await RecoverAsync(incarnation, $"interrupted: node {node} stopped during this run; its messages were queued again", cancellationToken);
        }
        await RecoverRepliesAsync(node => node is not null && incarnations.Contains(node), cancellationToken);
        await ResumeWorkAsync(cancellationToken);
    }

    /// <summary>Fails the runs a stopped node (<paramref name="incarnation"/>; null: every node, on a
    /// store only this node uses) had taken and queues their messages again.</summary>
    private async Task RecoverAsync(string? incarnation, string reason, CancellationToken cancellationToken)
    {
        foreach (var run in await store.FailInterruptedRunsAsync(reason, time.GetUtcNow(), incarnation, cancellationToken))
        {
            _logger.LogWarning("Run {RunId} for channel {ChannelId} was {Reason}", run.Id, run.ChannelId, reason);
            events.Publish(new LoopEvent("run.error", time.GetUtcNow(), run.ChannelId, run.Id, reason));
        }
    }

    /// <summary>Posts the replies that stopped nodes (those <paramref name="stopped"/> says) left
    /// unposted when they died after a run ended: each is adopted by one node, whose connectors post
    /// it. Replies older than <see cref="ReplyRecoveryWindow"/> are left: the conversation has moved on.</summary>
    private async Task RecoverRepliesAsync(Func<string?, bool> stopped, CancellationToken cancellationToken)
    {
        foreach (var unposted in await store.ListUnpostedRepliesAsync(time.GetUtcNow() - ReplyRecoveryWindow, cancellationToken))
        {
            if (stopped(unposted.Node) && await store.AdoptUnpostedReplyAsync(unposted.RunId, unposted.Node, cancellationToken) is { } run)
            {
                var node = unposted.Node is { } incarnation && incarnation.Contains('@', StringComparison.Ordinal) ? NodeIdentity.NameOf(incarnation) : "an earlier daemon";
                _logger.LogWarning("Run {RunId} for channel {ChannelId} ended on {Node}, which stopped before posting its reply; posting it from here",
                    run.Id, run.ChannelId, node);
                events.Publish(new LoopEvent(ChatRunEvent.ReplyRecovered, time.GetUtcNow(), run.ChannelId, run.Id,
                    $"the reply of this run is posted late: {node} stopped before posting it", run));
            }
        }
    }

    public static readonly TimeSpan ReplyRecoveryWindow = TimeSpan.FromDays(1);

    /// <summary>Arms every enabled task as stored (a slot missed while no node ran follows the task's
    /// misfire policy), resumes loop tasks whose iteration a stop interrupted, and wakes the channels
    /// with work: pending messages now, task runs claimed ahead at their instant. Reads the store once
    /// for all: the grains stay asleep until something changes their task.</summary>
    private async Task ResumeWorkAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var slots = await store.ListTaskSlotsAsync(cancellationToken);
        foreach (var slot in slots)
        {
            claimer.Arm(slot.TaskId, slot.DueAt, slot.Revision);
        }
        foreach (var loopTask in await store.ListRunningLoopTasksAsync(cancellationToken))
        {
            await grains.GetGrain<ITaskGrain>(loopTask).ResumeLoop();
        }
        _logger.LogInformation("Armed {Armed} task(s); {Missed} had missed slots while no node ran them", slots.Count, slots.Count(s => s.DueAt <= now));

        var queuedTaskRuns = await store.ListQueuedTaskRunsAsync(cancellationToken);
        foreach (var ahead in queuedTaskRuns.Where(q => q.DueAt > now))
        {
            claimer.WakeAt(ahead.ChannelId, ahead.DueAt);
        }
        var waiting = (await store.ListChannelsWithPendingMessagesAsync(cancellationToken))
            .Concat(queuedTaskRuns.Where(q => q.DueAt <= now).Select(q => q.ChannelId));
        foreach (var channelId in waiting.Distinct())
        {
            await grains.GetGrain<IChannelGrain>(channelId).Wake();
        }
    }

    /// <summary>A channel was registered for a directory: each chat platform may open a chat for it.</summary>
    private async Task TellChatsAsync(Domain.Channels.Channel channel, CancellationToken cancellationToken)
    {
        foreach (var chat in chats.Adapters)
        {
            try
            {
                await chat.ChannelRegisteredAsync(channel, cancellationToken);
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                // The channel is registered all the same; the chat side is reported.
                _logger.LogError(error, "Connector {Connector} could not set up a chat channel for {ChannelId}", chat.Connector.Id, channel.Id);
                events.Publish(new LoopEvent("chat.error", time.GetUtcNow(), channel.Id, null, $"{chat.Connector.Name}: {error.Message}"));
            }
        }
    }

    /// <summary>Stops taking work in (chat platforms, the claimer); the silo then stops the channels.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }
        // No longer asking for chat connections, and closing the ones held here, lets another node take them at once.
        await _stopping.CancelAsync();
        await _keepingChats;
        await chats.DisposeAsync();
        await claimer.DisposeAsync();
    }
}
