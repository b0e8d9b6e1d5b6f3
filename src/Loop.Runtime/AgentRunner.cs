namespace Loop.Runtime;

using System.Globalization;
using Loop.Claude;
using Loop.Config;
using Loop.Domain.Agents;
using Loop.Domain.Budgets;
using Loop.Domain.Runs;
using Microsoft.Extensions.Logging;

/// <summary>Where the agent's pieces live, as seen from inside the sandbox.</summary>
/// <param name="LoopCommand">How the sandbox starts <c>loop mcp</c>.</param>
/// <param name="LoopBinaryMount">The host's linux <c>loop</c> binary mounted read-only, when there is one.</param>
/// <param name="ApiUrl">The daemon's API as the sandbox reaches it.</param>
public sealed record AgentEnvironment(
    string ClaudeCommand,
    string LoopCommand,
    BindMount? LoopBinaryMount,
    string ApiUrl,
    string? ApiSocketDir,
    IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// Runs the <c>claude</c> CLI for one request: merges the global and project settings, resolves
/// mounts, injects the <c>loop</c> MCP server, starts the sandbox, and reads the stream-json output.
/// </summary>
public sealed class AgentRunner(
    LoopConfig config,
    LoopPaths paths,
    ProjectDirs projectDirs,
    ISandbox sandbox,
    AgentEnvironment environment,
    ChannelTokens tokens,
    RunUserPolicy users,
    ILogger<AgentRunner> logger) : IAgentRunner
{
    public async Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // The run's credential lives exactly as long as the run; what the daemon hands the
        // container is written for this run alone and removed with it.
        var token = tokens.MintForRun(request.ChannelId, request.RunId);
        var runFiles = paths.RunFilesDir(request.RunId);
        try
        {
            var spec = Prepare(request, token, runFiles);
            var reader = new StreamJsonReader();
            var exit = await sandbox.RunAsync(
                spec,
                line =>
                {
                    reader.Feed(line);
                    observer.OutputLine(line);
                    return ValueTask.CompletedTask;
                },
                id => observer.ContainerStarted(id),
                cancellationToken);
            return Interpret(exit, reader.Summary, request);
        }
        catch (SandboxUnavailableException unavailable)
        {
            return new AgentRunResult(AgentOutcome.Failed, null, null, null, unavailable.Message, RunUsage.None);
        }
        catch (ConfigException invalid)
        {
            return new AgentRunResult(AgentOutcome.Failed, null, null, null, invalid.Message, RunUsage.None);
        }
        finally
        {
            tokens.EndRun(request.RunId);
            RemoveRunFiles(request.RunId, runFiles);
        }
    }

    private SandboxSpec Prepare(AgentRunRequest request, string token, string runFiles)
    {
        var workDir = projectDirs.ForRun(request.ChannelId, request.WorkDir);
        if (request.GitDir is { } repoGitDir && (workDir != Path.TrimEndingDirectorySeparator(request.WorkDir) || !ProjectDirRules.IsUnder(workDir, Path.GetDirectoryName(repoGitDir)!)))
        {
            // An agent of the repository could have put a link in place of the worktree, to send this fork elsewhere.
            throw new ConfigException($"the fork's worktree {request.WorkDir} is reached through a link or lies outside its repository; the agent was not started");
        }
        request = request with { WorkDir = workDir };
        // A host process runs as the daemon whatever we say; a container runs as the run's user.
        var user = sandbox.Kind == "docker" ? UserFor(request) : null;
        var settings = EffectiveSettings.For(config, request.WorkDir);
        var plan = MountResolver.Resolve(settings, config, paths);
        foreach (var warning in settings.Warnings.Concat(plan.Warnings))
        {
            logger.LogWarning("Run {RunId}: {Warning}", request.RunId, warning);
        }

        var mcpConfigPath = Path.Combine(runFiles, "mcp-config.json");
        var servers = new Dictionary<string, McpServer>(StringComparer.Ordinal)
        {
            ["loop"] = McpConfigFile.LoopServer(environment.LoopCommand, request.ChannelId, environment.ApiUrl),
        };
        foreach (var (name, server) in settings.McpServers)
        {
            servers[name] = new McpServer(server.Command, server.Args, server.Env);
        }
        McpConfigFile.Write(mcpConfigPath, servers);

        var mounts = new List<BindMount>
        {
            new(request.WorkDir, request.WorkDir, ReadOnly: false),
            new(runFiles, runFiles, ReadOnly: true),
        };
        if (request.GitDir is { } gitDir)
        {
            // The work dir is a fork's git worktree: its .git file names a folder of the repository's .git by
            // absolute path, so that is mounted too, at its own path (and not the repository's checkout).
            mounts.Add(new BindMount(GitDirForRun(gitDir), gitDir, ReadOnly: false));
        }
        if (sandbox.Kind == "docker")
        {
            if (environment.LoopBinaryMount is { } loopBinary)
            {
                mounts.Add(loopBinary);
            }
            if (environment.ApiSocketDir is { } socketDir)
            {
                // Read-only: connecting to a socket needs no write access to its directory, replacing it does.
                mounts.Add(new BindMount(socketDir, socketDir, ReadOnly: true));
            }
            if (!plan.Mounts.Any(m => m.ContainerPath == ClaudeStateTarget))
            {
                // Keep the channel's Claude sessions across containers, so --resume finds them.
                var state = paths.ClaudeStateDir(request.ChannelId);
                Directory.CreateDirectory(state);
                mounts.Add(new BindMount(state, ClaudeStateTarget, ReadOnly: false));
                if (request is { ForkOf: { } parent, SessionId: { } forked })
                {
                    CopyForkedSession(request, parent, forked, state, user);
                }
            }
        }
        if (user is not null)
        {
            GiveLoopDirs(request, user, mounts.Where(m => m.ContainerPath == ClaudeStateTarget).Select(m => m.HostPath), [runFiles, mcpConfigPath]);
        }
        mounts.AddRange(plan.Mounts.Where(m => mounts.All(existing => existing.ContainerPath != m.ContainerPath)));
        // A mount that holds the Loop home (a project at ~, say) would show the agent the store,
        // other channels' state and the daemon's secrets: the home is masked, and the deeper
        // mounts above (this channel's own dirs) still show through.
        // Each is covered by an empty directory of this run's own, not a tmpfs: Docker gives a tmpfs
        // the mode of the directory it covers (the home is 0700), which would lock a non-root agent
        // out of the channel's pieces beneath.
        var masks = runFiles + ".masks";
        foreach (var (path, index) in projectDirs.MaskedPaths(mounts).Select((p, i) => (p, i)))
        {
            var cover = Directory.CreateDirectory(Path.Combine(masks, index.ToString(CultureInfo.InvariantCulture))).FullName;
            mounts.Insert(0, new BindMount(cover, path, ReadOnly: false));
        }

        // The channel's own model first, then the project's claude_model, then the global one.
        var command = ClaudeCommandLine.Build(new ClaudeCommandOptions(
            environment.ClaudeCommand, mcpConfigPath, request.Model ?? settings.ClaudeModel, request.SessionId, settings.SystemPrompt, request.MaxBudgetUsd,
            ForkSession: request.ForkOf is not null));

        var labels = new Dictionary<string, string>(environment.Labels, StringComparer.Ordinal)
        {
            ["loop.channel"] = request.ChannelId,
            ["loop.run"] = request.RunId,
        };
        return new SandboxSpec(request.RunId, request.ChannelId, command, request.WorkDir, mounts, Secrets(token), labels,
            TimeSpan.FromSeconds(config.ContainerTimeoutSec), plan.SupplementaryGroups)
        {
            // On stdin, not argv: any size, any text, and invisible to other users of the host.
            Input = request.Prompt,
            User = user?.ToString(),
        };
    }

    /// <summary>The repository's git dir, judged again before each run like a project dir: agents can write in the
    /// repository, and a link in place of it could send the mount anywhere.</summary>
    private string GitDirForRun(string gitDir)
    {
        var (real, refusal) = projectDirs.Check(gitDir);
        if (refusal is not null || real != Path.TrimEndingDirectorySeparator(gitDir) || !Directory.Exists(gitDir))
        {
            throw new ConfigException($"the git directory {gitDir} of the fork's worktree is refused ({refusal ?? "it is missing, or reached through a link"}); the agent was not started");
        }
        return real;
    }

    private UnixUser UserFor(AgentRunRequest request)
    {
        var choice = users.For(request.WorkDir, UnixOwnership.OwnerOf(request.WorkDir));
        return choice.User ?? throw new SandboxUnavailableException(choice.Refusal!);
    }

    /// <summary>What Loop makes for a run belongs to the run's user, who must be able to use it (and
    /// it is no one else's business): the default work dir of a channel without a project and its
    /// Claude state (kept across runs: given whole when they belong to someone else), and the files
    /// written for this run alone. A project directory is never touched.</summary>
    private void GiveLoopDirs(AgentRunRequest request, UnixUser user, IEnumerable<string> stateDirs, IReadOnlyList<string> runFiles)
    {
        var kept = stateDirs.ToList();
        if (request.WorkDir == paths.ChannelWorkDir(request.ChannelId))
        {
            kept.Add(request.WorkDir);
        }
        try
        {
            foreach (var dir in kept)
            {
                UnixOwnership.EnsureOwnedBy(dir, user);
            }
            foreach (var path in runFiles.Where(p => UnixOwnership.OwnerOf(p) != user))
            {
                UnixOwnership.Change(path, user);
            }
        }
        catch (IOException error)
        {
            throw new SandboxUnavailableException($"{error.Message}; run {request.RunId} needs it as {user}", error);
        }
    }

    private string ClaudeStateTarget => Path.Combine(paths.UserHome, ".claude");

    /// <summary>The largest parent session a fork copies; a bigger one is not copied and the fork starts afresh.</summary>
    private const long MaxForkedSessionBytes = 64L << 20;

    /// <summary>Copies the parent channel's session file into the forked channel's Claude state, where
    /// <c>--resume --fork-session</c> finds it. Each channel's state is its own (its agent cannot see
    /// another's), so the fork gets a copy; when there is nothing to copy the agent says the session is
    /// unknown, and the fork starts a conversation of its own.</summary>
    private void CopyForkedSession(AgentRunRequest request, string parentId, string sessionId, string state, UnixUser? user)
    {
        if (!Guid.TryParse(sessionId, out _))
        {
            return;
        }
        var parentState = paths.ClaudeStateDir(parentId);
        // The parent ran where the fork runs (unless neither has a project: then in its own folder), or, when the
        // fork works in a git worktree of its own, in the directory it was forked from.
        var parentCwd = request.ForkWorkDir is { } forkedFrom ? ProjectDirs.RealPath(forkedFrom)
            : request.WorkDir == paths.ChannelWorkDir(request.ChannelId) ? paths.ChannelWorkDir(parentId) : request.WorkDir;
        var source = ClaudeSessionFiles.PathOf(parentState, parentCwd, sessionId);
        var target = ClaudeSessionFiles.PathOf(state, request.WorkDir, sessionId);
        // Both state dirs are written by agents: a link anywhere on either path could make the daemon read
        // or write what it points at, so only plain files and folders are followed.
        if (!File.Exists(source) || LinkOnPath(parentState, source) || new FileInfo(source).Length > MaxForkedSessionBytes || LinkOnPath(state, target))
        {
            logger.LogWarning("Run {RunId}: session {SessionId} of channel {ParentId} was not copied for the fork (missing, too large, or behind a link); the fork starts afresh",
                request.RunId, sessionId, parentId);
            return;
        }
        try
        {
            var folder = Path.GetDirectoryName(target)!;
            var created = new List<string>();
            for (var dir = folder; !Directory.Exists(dir); dir = Path.GetDirectoryName(dir)!)
            {
                created.Insert(0, dir);
            }
            Directory.CreateDirectory(folder);
            File.Delete(target);
            File.Copy(source, target);
            if (user is not null)
            {
                foreach (var path in created.Append(target))
                {
                    UnixOwnership.Change(path, user);
                }
            }
        }
        catch (IOException error)
        {
            logger.LogWarning("Run {RunId}: session {SessionId} of channel {ParentId} could not be copied for the fork ({Error}); the fork starts afresh",
                request.RunId, sessionId, parentId, error.Message);
        }
    }

    /// <summary>Whether <paramref name="path"/> or a folder between it and <paramref name="root"/> is a symbolic link.</summary>
    private static bool LinkOnPath(string root, string path)
    {
        for (var current = path; current.Length > root.Length; current = Path.GetDirectoryName(current)!)
        {
            if ((File.Exists(current) || Directory.Exists(current)) && new FileInfo(current).LinkTarget is not null)
            {
                return true;
            }
        }
        return false;
    }



    private void RemoveRunFiles(string runId, string runFiles)
    {
        try
        {
            foreach (var dir in new[] { runFiles, runFiles + ".masks" }.Where(Directory.Exists))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Harmless (nothing secret is in there, and the next start clears the directory), but visible.
            logger.LogWarning("Run {RunId}: could not remove {RunFiles}: {Reason}", runId, runFiles, e.Message);
        }
    }

    private Dictionary<string, string> Secrets(string token)
    {
        var secrets = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // Lets the agent's `loop mcp` act on this channel, and only this one, while this run lasts.
            ["LOOP_CHANNEL_TOKEN"] = token,
        };
        if (!string.IsNullOrEmpty(config.AnthropicApiKey))
        {
            secrets["ANTHROPIC_API_KEY"] = config.AnthropicApiKey;
        }
        if (!string.IsNullOrEmpty(config.ClaudeCodeOauthToken))
        {
            secrets["CLAUDE_CODE_OAUTH_TOKEN"] = config.ClaudeCodeOauthToken;
        }
        return secrets;
    }

    private AgentRunResult Interpret(SandboxExit exit, ClaudeRunSummary summary, AgentRunRequest request)
    {
        var usage = summary.Usage;
        AgentRunResult Result(AgentOutcome outcome, string? error, bool sessionNotFound = false) =>
            new(outcome, exit.ExitCode, summary.ResultText, summary.SessionId, error, usage, sessionNotFound, summary.Model, exit.ContainerId);

        if (exit.TimedOut)
        {
            return Result(AgentOutcome.TimedOut, $"stopped after {config.ContainerTimeoutSec} s (container_timeout_sec)");
        }
        if (exit.Cancelled)
        {
            return Result(AgentOutcome.Cancelled, "cancelled");
        }
        if (exit.OutOfMemory)
        {
            return Result(AgentOutcome.Failed, $"out of memory: the agent used more than container_memory_mb ({config.ContainerMemoryMb} MB) and was killed");
        }
        if (request.SessionId is not null && ClaudeErrors.IsSessionNotFound(exit.StandardErrorTail, summary.ResultText))
        {
            return Result(AgentOutcome.Failed, $"session {request.SessionId} is unknown to the agent", sessionNotFound: true);
        }
        if (exit.ExitCode == 0 && summary.HasResult && !summary.IsError)
        {
            return Result(AgentOutcome.Succeeded, null);
        }
        if (summary.Subtype == ClaudeErrors.MaxBudgetSubtype)
        {
            return Result(AgentOutcome.Failed,
                $"stopped at the budget left for it ({BudgetWire.Usd(request.MaxBudgetUsd ?? 0m)}): the agent spent {BudgetWire.Usd(usage.CostUsd)}");
        }
        var reason = summary.IsError && !string.IsNullOrWhiteSpace(summary.ResultText)
            ? summary.ResultText
            : LastLine(exit.StandardErrorTail) ?? (summary.HasResult ? "the agent reported an error" : "the agent ended without a result");
        return Result(AgentOutcome.Failed, $"exit code {exit.ExitCode?.ToString() ?? "unknown"}: {reason}");
    }

    private static string? LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
}
