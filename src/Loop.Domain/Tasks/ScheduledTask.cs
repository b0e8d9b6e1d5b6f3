namespace Loop.Domain.Tasks;

public enum TaskType
{
    /// <summary>5-field cron (optional 6th seconds field first), in the task's time zone.</summary>
    Cron,
    /// <summary>Every duration, like 90s, 5m, 1h30m.</summary>
    Interval,
    /// <summary>Once, a duration from now (10m) or at an ISO-8601 instant.</summary>
    Once,
    /// <summary>Autonomous: runs its prompt, feeds each output into the next iteration, until done.</summary>
    Loop,
}

/// <summary>Which Claude session a task's runs use.</summary>
public enum TaskContext
{
    /// <summary>A session of the task's own, so scheduled runs don't pollute the chat.</summary>
    Isolated,
    /// <summary>The channel's chat session.</summary>
    Channel,
}

/// <summary>What to do with slots missed while the daemon was down.</summary>
public enum MisfirePolicy
{
    /// <summary>Fire once at start-up, then continue from now.</summary>
    RunOnce,
    /// <summary>Skip them and continue from now.</summary>
    Skip,
}

/// <summary>Where a loop task stands.</summary>
public enum LoopState
{
    Idle,
    Running,
    Completed,
    Stopped,
    Failed,
}

/// <summary>A task that belongs to a channel and runs as that channel's work.</summary>
/// <param name="NextRunAt">The next due instant of a time-based task; null when there is none
/// (disabled, a once task that fired, a loop task).</param>
/// <param name="SessionId">The task's own Claude session (context isolated).</param>
/// <param name="Template">The template it was made from, if any (one per channel and template).</param>
/// <param name="Iteration">Loop tasks: iterations done so far in the current cycle.</param>
/// <param name="LastOutput">Loop tasks: the previous iteration's output, fed into the next.</param>
public sealed record ScheduledTask(
    string Id,
    string ChannelId,
    string Name,
    TaskType Type,
    string Schedule,
    string? TimeZone,
    string Prompt,
    bool Enabled,
    TaskContext Context,
    MisfirePolicy Misfire,
    DateTimeOffset? NextRunAt,
    DateTimeOffset? LastRunAt,
    string? SessionId,
    string? Template,
    int MaxIterations,
    string CompletionPromise,
    int Iteration,
    LoopState LoopState,
    string? StopReason,
    string? LastOutput,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public const int DefaultMaxIterations = 10;

    /// <summary>A file of the channel's project (a path relative to it) whose text is the prompt, read
    /// afresh when each run starts; <see cref="Prompt"/> is empty then.</summary>
    public string? PromptFile { get; init; }
    public const string DefaultCompletionPromise = "DONE";

    /// <summary>The slot the task waits for: its next run when it is enabled and time-based, none otherwise.</summary>
    public DateTimeOffset? NextDue => Enabled && Type != TaskType.Loop ? NextRunAt : null;

    /// <summary>A once task whose instant has come: it ran (even if disabled since), or its instant
    /// passed while no node ran and its misfire policy skipped it. Only a new schedule runs it again.</summary>
    public bool Done => Type == TaskType.Once && NextRunAt is null && (LastRunAt is not null || Enabled);

    /// <summary>How many times the stored task has been written: a write based on an older read is
    /// refused (<see cref="TaskWrite.Stale"/>), so an edit and a claim of the same task cannot undo each other.</summary>
    public long Revision { get; init; }
}

/// <summary>A task's next due slot, as stored at <paramref name="Revision"/>.</summary>
public sealed record TaskSlot(string TaskId, DateTimeOffset DueAt, long Revision);

/// <summary>How a write of a whole task went.</summary>
public enum TaskWrite
{
    Written,
    /// <summary>The task was written by someone else since it was read: read it again.</summary>
    Stale,
    Missing,
}

/// <summary>A due slot of a task, to be claimed atomically: the claim advances the task's
/// next_run_at from <see cref="DueAt"/> to <see cref="NextRunAt"/> and queues <see cref="Run"/>
/// (none when the slot is skipped), or does nothing when the task was written since it was read at
/// <see cref="Revision"/> (another claimer got there first, or an edit).</summary>
public sealed record TaskFiring(string TaskId, long Revision, DateTimeOffset DueAt, DateTimeOffset? NextRunAt, Runs.Run? Run);
