namespace Loop.Domain.Tasks;

/// <summary>The names task enums have in the API, the store and on the command line. The daemon reads
/// them here for every front end, so REST and the MCP tools accept the same words.</summary>
public static class TaskWire
{
    public static string ToWire(TaskType type) => type switch
    {
        TaskType.Cron => "cron",
        TaskType.Interval => "interval",
        TaskType.Once => "once",
        TaskType.Loop => "loop",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Reads a type name in any case: cron, interval, once or loop.</summary>
    public static bool TryType(string? value, out TaskType type)
    {
        (var ok, type) = Word(value) switch
        {
            "cron" => (true, TaskType.Cron),
            "interval" => (true, TaskType.Interval),
            "once" => (true, TaskType.Once),
            "loop" => (true, TaskType.Loop),
            _ => (false, default),
        };
        return ok;
    }

    public static TaskType TypeFrom(string value) =>
        TryType(value, out var type) ? type : throw new ArgumentOutOfRangeException(nameof(value), value, "unknown task type");

    public static string ToWire(TaskContext context) => context == TaskContext.Channel ? "channel" : "isolated";

    /// <summary>Reads a context name in any case: isolated or channel.</summary>
    public static bool TryContext(string? value, out TaskContext context)
    {
        (var ok, context) = Word(value) switch
        {
            "isolated" => (true, TaskContext.Isolated),
            "channel" => (true, TaskContext.Channel),
            _ => (false, default),
        };
        return ok;
    }

    public static TaskContext ContextFrom(string value) =>
        TryContext(value, out var context) ? context : throw new ArgumentOutOfRangeException(nameof(value), value, "unknown task context");

    public static string ToWire(MisfirePolicy misfire) => misfire == MisfirePolicy.Skip ? "skip" : "run_once";

    /// <summary>Reads a misfire policy in any case: run_once or skip.</summary>
    public static bool TryMisfire(string? value, out MisfirePolicy misfire)
    {
        (var ok, misfire) = Word(value) switch
        {
            "run_once" => (true, MisfirePolicy.RunOnce),
            "skip" => (true, MisfirePolicy.Skip),
            _ => (false, default),
        };
        return ok;
    }

    public static MisfirePolicy MisfireFrom(string value) =>
        TryMisfire(value, out var misfire) ? misfire : throw new ArgumentOutOfRangeException(nameof(value), value, "unknown misfire policy");

    public static string ToWire(LoopState state) => state switch
    {
        LoopState.Idle => "idle",
        LoopState.Running => "running",
        LoopState.Completed => "completed",
        LoopState.Stopped => "stopped",
        LoopState.Failed => "failed",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static LoopState LoopStateFrom(string value) => value switch
    {
        "idle" => LoopState.Idle,
        "running" => LoopState.Running,
        "completed" => LoopState.Completed,
        "stopped" => LoopState.Stopped,
        "failed" => LoopState.Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "unknown loop state"),
    };

    // People write "Cron" or " channel"; the names themselves are lower case.
    private static string? Word(string? value) => value?.Trim().ToLowerInvariant();
}
