namespace Loop.Domain.Agents;

using Loop.Domain.Runs;

/// <summary>What a channel asks of the agent for one run.</summary>
/// <param name="Model">The channel's model; null leaves it to the settings (<c>claude_model</c>).</param>
/// <param name="Standalone">The run continues no chat conversation: a task with a session of its own
/// (context isolated). A direct run then sends its prompt alone.</param>
/// <param name="MaxBudgetUsd">What the run may spend at most (the least its budgets have left); null: no limit.</param>
/// <param name="ForkOf">The channel whose session <see cref="SessionId"/> is: the run forks it (<c>--fork-session</c>)
/// into a session of its own channel, and the parent's stays as it was.</param>
/// <param name="ForkWorkDir">Where the parent worked when it is not <see cref="WorkDir"/> (the fork works in a
/// git worktree of its own): where the parent's session is found.</param>
/// <param name="GitDir">The repository's git directory when <see cref="WorkDir"/> is a git worktree of it: the
/// agent needs it too, at the same path, for git to work there.</param>
public sealed record AgentRunRequest(
    string RunId,
    string ChannelId,
    string WorkDir,
    string Prompt,
    string? SessionId,
    string? Model = null,
    bool Standalone = false,
    decimal? MaxBudgetUsd = null,
    string? ForkOf = null,
    string? ForkWorkDir = null,
    string? GitDir = null);

public enum AgentOutcome
{
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

/// <summary>What came of one attempt. <see cref="SessionNotFound"/> says the resume target was
/// unknown to the agent, so the caller may retry once with a fresh session.</summary>
public sealed record AgentRunResult(
    AgentOutcome Outcome,
    int? ExitCode,
    string? Reply,
    string? SessionId,
    string? Error,
    RunUsage Usage,
    bool SessionNotFound = false,
    string? Model = null,
    string? ContainerId = null);

/// <summary>Runs the agent once. Implementations never throw for agent failures: they report
/// them in the result. They throw only on <see cref="OperationCanceledException"/> when the
/// caller's token is cancelled before anything started.</summary>
public interface IAgentRunner
{
    Task<AgentRunResult> RunAsync(AgentRunRequest request, IAgentRunObserver observer, CancellationToken cancellationToken);
}

/// <summary>Live notifications from a run in progress (for streaming replies and the activity feed).</summary>
public interface IAgentRunObserver
{
    void ContainerStarted(string containerId);
    void OutputLine(string line);
}
