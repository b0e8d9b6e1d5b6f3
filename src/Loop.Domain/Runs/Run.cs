namespace Loop.Domain.Runs;

public enum RunStatus
{
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

public static class RunStatusExtensions
{
    public static bool IsFinal(this RunStatus status) =>
        status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.TimedOut or RunStatus.Cancelled;

    /// <summary>The wire name: queued, running, succeeded, failed, timed_out, cancelled.</summary>
    public static string ToWire(this RunStatus status) => status switch
    {
        RunStatus.Queued => "queued",
        RunStatus.Running => "running",
        RunStatus.Succeeded => "succeeded",
        RunStatus.Failed => "failed",
        RunStatus.TimedOut => "timed_out",
        RunStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static RunStatus FromWire(string value) =>
        TryFromWire(value) ?? throw new ArgumentOutOfRangeException(nameof(value), value, "unknown run status");

    /// <summary>The status of a wire name; null for a name that is none.</summary>
    public static RunStatus? TryFromWire(string value) => value switch
    {
        "queued" => RunStatus.Queued,
        "running" => RunStatus.Running,
        "succeeded" => RunStatus.Succeeded,
        "failed" => RunStatus.Failed,
        "timed_out" => RunStatus.TimedOut,
        "cancelled" => RunStatus.Cancelled,
        _ => null,
    };
}

/// <summary>Token counts and cost as the agent reported them for one run.</summary>
public sealed record RunUsage(
    long InputTokens,
    long OutputTokens,
    long CacheCreationInputTokens,
    long CacheReadInputTokens,
    decimal CostUsd,
    int NumTurns,
    long DurationMs)
{
    public static readonly RunUsage None = new(0, 0, 0, 0, 0m, 0, 0);
}

/// <summary>One execution of the agent for a channel: the prompt it was given and what came of it.</summary>
public sealed record Run(
    string Id,
    string ChannelId,
    string? TaskId,
    RunStatus Status,
    string Prompt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    int? ExitCode,
    string? Reply,
    string? Error,
    string? SessionId,
    string? Model,
    string? ContainerId,
    RunUsage Usage);
