namespace Loop.Domain.Channels;

using Loop.Domain.Agents;
using Loop.Domain.Budgets;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;

/// <summary>Everything a channel's runs need from the world. <see cref="Runner"/> runs the agent in
/// a container, <see cref="DirectRunner"/> for a channel in direct mode. <see cref="ReadPromptFile"/> reads a
/// task's prompt file (work dir, path relative to it), throwing <see cref="PromptFileException"/>.
/// <see cref="Budgets"/> holds each run to the budgets of its channel, task and connector; <see cref="Worktrees"/>
/// makes the git worktree of a fork that works in one of its own.</summary>
public sealed record ChannelRunsContext(
    ILoopStore Store,
    IAgentRunner Runner,
    IRunSlots Slots,
    IChannelObserver Observer,
    TimeProvider Time,
    Func<Channel, string> WorkDirOf,
    Func<string, string, string> ReadPromptFile,
    IAgentRunner DirectRunner,
    BudgetGuard Budgets,
    IForkWorktrees Worktrees);

/// <summary>
/// What one channel does with its work, one run at a time: each run takes every pending message
/// of the channel (or its oldest queued task run), resumes the channel's session, and stores the
/// reply. Messages are stored before anyone asks for a run; those that arrive during a run stay
/// pending and form the next run together. Whoever hosts it (the channel's grain) makes sure
/// <see cref="DrainAsync"/> runs once at a time.
/// </summary>
public sealed class ChannelRuns
{
    private readonly ChannelRunsContext _context;
    private readonly object _gate = new();
    private ActiveRun? _active;

    public ChannelRuns(string channelId, ChannelRunsContext context)
    {
        ChannelId = channelId;
        _context = context;
    }

    public string ChannelId { get; }

    /// <summary>The run in progress (queued for a slot or running), if any.</summary>
    public string? ActiveRunId
    {
        get { lock (_gate) { return _active?.RunId; } }
    }

    /// <summary>Stops the given run if it is the current one.</summary>
    public bool TryCancel(string runId)
    {
        lock (_gate)
        {
            if (_active is null || _active.RunId != runId)
            {
                return false;
            }
            _active.Cancellation.Cancel();
            return true;
        }
    }

    /// <summary>The run that holds the channel's session now, if any: the running one, else the oldest queued.</summary>
    public async Task<Run?> BusyRunAsync(CancellationToken cancellationToken)
    {
        var active = await _context.Store.ListActiveRunsAsync(ChannelId, cancellationToken);
        return active.FirstOrDefault(r => r.Status == RunStatus.Running) ?? active.FirstOrDefault();
    }

    /// <summary>Removes the git worktree this fork works in (see <see cref="IForkWorktrees.RemoveAsync"/>): null when
    /// it is gone (or there was none), else why it was kept. Its next run makes it again, on the same branch.</summary>
    public async Task<string?> RemoveWorktreeAsync(bool force, CancellationToken cancellationToken)
    {
        if ((await _context.Store.GetChannelAsync(ChannelId, cancellationToken))?.Fork?.Worktree is not { } worktree)
        {
            return null;
        }
        if (await _context.Worktrees.RemoveAsync(worktree, force, cancellationToken) is { } kept)
        {
            return kept;
        }
        await _context.Store.SetChannelWorktreeAsync(ChannelId, null, cancellationToken);
        return null;
    }

    /// <summary>Forgets the channel's Claude session, so its next run starts a fresh conversation.</summary>
    public Task ResetSessionAsync(CancellationToken cancellationToken) =>
        _context.Store.SetChannelSessionAsync(ChannelId, null, cancellationToken);

    /// <summary>Ends a run of this channel that still waits in the store as cancelled; false when it is not queued any more.</summary>
    public Task<bool> CancelQueuedAsync(string runId, CancellationToken cancellationToken) =>
        _context.Store.CancelQueuedRunAsync(runId, _context.Time.GetUtcNow(), cancellationToken);

    /// <summary>Runs the agent until the channel has no pending message left.</summary>
    public async Task DrainAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (!await RunNextAsync(stopping))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // The daemon is stopping: the run stays as it is in the store and start-up
                // recovery reports it and queues its messages again.
                return;
            }
            catch (Exception error)
            {
                _context.Observer.Fault(ChannelId, ActiveRunId, error);
                return;
            }
            finally
            {
                lock (_gate)
                {
                    _active?.Cancellation.Dispose();
                    _active = null;
                }
            }
        }
    }

    private async Task<bool> RunNextAsync(CancellationToken stopping)
    {
        var store = _context.Store;
        var work = await store.GetChannelWorkAsync(ChannelId, _context.Time.GetUtcNow(), stopping)
            ?? throw new InvalidOperationException($"channel {ChannelId} does not exist");
        if (work.Channel is not { } channel)
        {
            return false;
        }
        var (taskRun, pending) = (work.QueuedTaskRun, work.Pending);

        // Oldest work first: a task run queued before the first pending message goes before it.
        Run run;
        ScheduledTask? task = null;
        if (taskRun is not null && (pending.Count == 0 || taskRun.CreatedAt <= pending[0].CreatedAt))
        {
            run = taskRun;
            task = await store.GetTaskAsync(taskRun.TaskId!, stopping);
            if (task is null)
            {
                await store.CancelQueuedRunAsync(run.Id, _context.Time.GetUtcNow(), stopping);
                return true; // its task was deleted while the run waited
            }
        }
        else
        {
            run = new Run(Ids.New("run", _context.Time), ChannelId, TaskId: null, RunStatus.Queued,
                PromptBuilder.Build(pending), _context.Time.GetUtcNow(), StartedAt: null, FinishedAt: null, ExitCode: null,
                Reply: null, Error: null, SessionId: null, Model: null, ContainerId: null, RunUsage.None);
            run = await store.CreateRunAsync(run, pending.Select(m => m.Id).ToList(), stopping);
        }
        var session = new SessionOwner(store, channel, task);

        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        lock (_gate)
        {
            _active = new ActiveRun(run.Id, cancellation);
        }
        _context.Observer.RunQueued(run);

        // Checked before waiting for a slot: a run its budgets cannot pay for does not hold one.
        var allowance = await _context.Budgets.BeforeRunAsync(channel, task, stopping);
        AgentRunResult? result;
        if (allowance.Refusal is { } refusal)
        {
            result = new AgentRunResult(AgentOutcome.Cancelled, null, null, null, refusal, RunUsage.None);
        }
        else
        {
            (run, result) = await StartAsync(run, channel, task, session, allowance, cancellation, stopping);
            if (result is null)
            {
                return true; // cancelled while it waited in the store
            }
        }
        stopping.ThrowIfCancellationRequested();

        run = Finish(run, result);
        // Only a run its budgets limited can bring a notice: the rest skip the store.
        var notices = allowance is { Refusal: null, MaxUsd: not null }
            ? await _context.Budgets.AfterRunAsync(channel, task, _context.Budgets.CostOf(run.Model, run.Usage), stopping)
            : [];
        ChatMessage reply;
        try
        {
            reply = await store.FinishRunAsync(run, ReplyTo(run, allowance.Refusal, notices), session.ChangeTo(result.SessionId), stopping);
        }
        catch (RunEndedElsewhereException superseded)
        {
            // This node was taken for dead while the run went on: another reported it and ran its messages again.
            _context.Observer.Fault(ChannelId, run.Id, superseded);
            return true;
        }
        foreach (var notice in notices)
        {
            _context.Observer.BudgetNotice(run, notice);
        }
        _context.Observer.RunFinished(run, reply);
        return true;
    }

    /// <summary>What the channel is told: the refusal of a run its budgets could not pay for; else the
    /// run's answer, with the budget notices it brought beneath it, so every chat shows them.</summary>
    private static NewMessage ReplyTo(Run run, string? refusal, IReadOnlyList<BudgetNotice> notices)
    {
        if (refusal is not null)
        {
            return new NewMessage(run.ChannelId, MessageRole.System, "loop", refusal, run.Id);
        }
        var reply = RunReplies.For(run);
        return notices.Count == 0 ? reply : reply with { Content = reply.Content + "\n\n" + string.Join("\n", notices.Select(n => "Loop: " + n.Text)) };
    }

    /// <summary>Waits for a slot (a container run), starts the run in the store and runs the agent. A null
    /// result: the run was cancelled in the store while it waited, and nothing is left to do.</summary>
    private async Task<(Run Run, AgentRunResult? Result)> StartAsync(Run run, Channel channel, ScheduledTask? task, SessionOwner session, BudgetAllowance allowance,
        CancellationTokenSource cancellation, CancellationToken stopping)
    {
        var store = _context.Store;
        try
        {
            // A direct run is an API call from the daemon, not a container: it takes no slot of the
            // pool, and does not wait behind other channels' containers.
            using (channel.Mode == ChannelMode.Direct ? null : await _context.Slots.AcquireAsync(ChannelId, cancellation.Token))
            {
                var startedAt = _context.Time.GetUtcNow();
                if (!await store.TryStartRunAsync(run.Id, startedAt, stopping))
                {
                    return (run, null);
                }
                run = run with { Status = RunStatus.Running, StartedAt = startedAt };
                string? unreadable = null;
                if (task?.PromptFile is { } promptFile)
                {
                    // Read now, not when the run was queued: a person may edit the plan while a loop runs.
                    try
                    {
                        run = run with { Prompt = PromptFromFile(task, ReadPromptFile(channel, promptFile)) };
                    }
                    catch (PromptFileException problem)
                    {
                        unreadable = problem.Message;
                    }
                }
                _context.Observer.RunStarted(run);
                return (run, unreadable is null
                    ? await RunAgentAsync(run, session, allowance.MaxUsd, cancellation.Token)
                    : new AgentRunResult(AgentOutcome.Failed, null, null, null, unreadable + "; the agent was not started", RunUsage.None));
            }
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            // Cancelled while waiting for a slot.
            return (run, new AgentRunResult(AgentOutcome.Cancelled, null, null, null, "cancelled before it started", RunUsage.None));
        }
    }

    private string ReadPromptFile(Channel channel, string promptFile) =>
        _context.ReadPromptFile(_context.WorkDirOf(channel), promptFile);

    /// <summary>The prompt of a task run from its file's text: a loop task's iteration wraps it as its prompt would be.</summary>
    private static string PromptFromFile(ScheduledTask task, string text) =>
        task.Type == TaskType.Loop ? LoopTaskPolicy.PromptFor(task with { Prompt = text }) : text;

    private async Task<AgentRunResult> RunAgentAsync(Run run, SessionOwner session, decimal? maxBudgetUsd, CancellationToken cancellationToken)
    {
        var observer = new RunOutputForwarder(_context.Observer, run);
        var channel = session.Channel;
        var direct = channel.Mode == ChannelMode.Direct;
        var runner = direct ? _context.DirectRunner : _context.Runner;
        // Claude Code cannot resume where a direct conversation began (the channel ran in direct mode
        // before): it starts a new session.
        var sessionId = !direct && DirectSession.IsDirect(session.Current) ? null : session.Current;
        string? forkOf = null;
        if (sessionId is null && !direct && !session.IsTaskOwn && channel.Fork is { SessionId: { } parentSession } fork && !DirectSession.IsDirect(parentSession))
        {
            // A forked channel's first conversation starts from its parent's, as it was at the fork.
            (sessionId, forkOf) = (parentSession, fork.ParentId);
        }
        string? forkWorkDir = null, gitDir = null;
        if (!direct && channel.Fork is { WantsWorktree: true } wants)
        {
            // Made before the container starts, on the fork's first run (and again if it was removed since).
            ForkWorktree worktree;
            try
            {
                worktree = await _context.Worktrees.EnsureAsync(channel, cancellationToken);
            }
            catch (ForkWorktreeException problem)
            {
                return new AgentRunResult(AgentOutcome.Failed, null, null, null,
                    $"this fork's git worktree could not be made: {problem.Message}; the agent was not started", RunUsage.None);
            }
            if (worktree != wants.Worktree)
            {
                await _context.Store.SetChannelWorktreeAsync(ChannelId, worktree, cancellationToken);
            }
            channel = channel with { Fork = wants with { Worktree = worktree } };
            (forkWorkDir, gitDir) = (wants.DirPath, worktree.GitDir);
        }
        var request = new AgentRunRequest(run.Id, ChannelId, _context.WorkDirOf(channel), run.Prompt, sessionId,
            channel.Model, Standalone: session.IsTaskOwn, MaxBudgetUsd: maxBudgetUsd, ForkOf: forkOf, ForkWorkDir: forkOf is null ? null : forkWorkDir, GitDir: gitDir);
        var result = await runner.RunAsync(request, observer, cancellationToken);
        if (result.SessionNotFound && request.SessionId is not null)
        {
            // The agent no longer knows the session (its state was wiped): start afresh once.
            await session.SaveAsync(null, cancellationToken);
            result = await runner.RunAsync(request with { SessionId = null, ForkOf = null }, observer, cancellationToken);
        }
        return result;
    }

    private Run Finish(Run run, AgentRunResult result) => run with
    {
        Status = result.Outcome switch
        {
            AgentOutcome.Succeeded => RunStatus.Succeeded,
            AgentOutcome.TimedOut => RunStatus.TimedOut,
            AgentOutcome.Cancelled => RunStatus.Cancelled,
            _ => RunStatus.Failed,
        },
        FinishedAt = _context.Time.GetUtcNow(),
        ExitCode = result.ExitCode,
        Reply = result.Reply,
        Error = result.Error,
        SessionId = result.SessionId,
        Model = result.Model,
        ContainerId = result.ContainerId,
        Usage = result.Usage,
    };

    private sealed record ActiveRun(string RunId, CancellationTokenSource Cancellation);

    /// <summary>Whose Claude session a run continues: the channel's chat, or a task's own.</summary>
    private sealed class SessionOwner(ILoopStore store, Channel channel, ScheduledTask? task)
    {
        private readonly bool _isTask = task is { Context: TaskContext.Isolated };

        public Channel Channel => channel;

        /// <summary>Whether the run is a task's with a session of its own, apart from the chat.</summary>
        public bool IsTaskOwn => _isTask;

        public string? Current { get; private set; } = task is { Context: TaskContext.Isolated } ? task.SessionId : channel.SessionId;

        /// <summary>What the run leaves the holder with: null when the agent named no session or the one it had.</summary>
        public SessionChange? ChangeTo(string? sessionId) =>
            sessionId is null || sessionId == Current
                ? null
                : new SessionChange(_isTask ? SessionHolder.Task : SessionHolder.Channel, _isTask ? task!.Id : channel.Id, sessionId);

        public async Task SaveAsync(string? sessionId, CancellationToken cancellationToken)
        {
            Current = sessionId;
            if (_isTask)
            {
                await store.SetTaskSessionAsync(task!.Id, sessionId, cancellationToken);
            }
            else
            {
                await store.SetChannelSessionAsync(channel.Id, sessionId, cancellationToken);
            }
        }
    }

    private sealed class RunOutputForwarder(IChannelObserver observer, Run run) : IAgentRunObserver
    {
        public void ContainerStarted(string containerId) { }
        public void OutputLine(string line) => observer.RunOutput(run.ChannelId, run.Id, line);
    }
}
