namespace Loop.Client;

using System.Text.Json;
using System.Text.Json.Serialization;

/// <summary>A scheduled or loop task, as the API returns it.</summary>
public sealed record LoopTask(
    string Id,
    string ChannelId,
    string Name,
    string Type,
    string Schedule,
    string? Timezone,
    string Prompt,
    string? PromptFile,
    bool Enabled,
    bool Done,
    string Context,
    string Misfire,
    DateTimeOffset? NextRunAt,
    DateTimeOffset? LastRunAt,
    string? Template,
    int MaxIterations,
    string CompletionPromise,
    int Iteration,
    string LoopState,
    string? StopReason,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);

/// <summary>Body of <c>POST /api/tasks</c>. Null members are left out, so the daemon applies its defaults.</summary>
public sealed record CreateTaskRequest(string? ChannelId, string Type, string Schedule, string? Prompt)
{
    public string? PromptFile { get; init; }
    public string? Name { get; init; }
    public string? Timezone { get; init; }
    public string? Context { get; init; }
    public string? Misfire { get; init; }
    public bool? Enabled { get; init; }
    public int? MaxIterations { get; init; }
    public string? CompletionPromise { get; init; }
}

/// <summary>Body of <c>PATCH /api/tasks/{id}</c>: only the non-null members change.</summary>
public sealed record UpdateTaskRequest
{
    public bool? Enabled { get; init; }
    public string? Schedule { get; init; }
    public string? Type { get; init; }
    public string? Prompt { get; init; }
    public string? PromptFile { get; init; }
    public string? Name { get; init; }
    public string? Timezone { get; init; }
    public string? Context { get; init; }
    public string? Misfire { get; init; }
    public int? MaxIterations { get; init; }
    public string? CompletionPromise { get; init; }
}

public sealed record LoopRunUsage(
    long InputTokens, long OutputTokens, long CacheCreationInputTokens, long CacheReadInputTokens,
    decimal CostUsd, int NumTurns, long DurationMs);

/// <summary>One agent run (of a task or of a chat message).</summary>
public sealed record LoopRun(
    string Id,
    string ChannelId,
    string? TaskId,
    string Status,
    string Prompt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    long? ElapsedMs,
    int? ExitCode,
    string? Reply,
    string? Error,
    string? SessionId,
    string? Model,
    string? ContainerId,
    LoopRunUsage? Usage);

public sealed record LoopChannel(string Id, string Name, string? DirPath, string? SessionId, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    string? ParentId = null, LoopWorktree? Worktree = null);

/// <summary>The git worktree a fork works in; <see cref="Path"/> and <see cref="Branch"/> are null until its first run makes it.</summary>
public sealed record LoopWorktree(string? Path, string? Branch, string? WorkDir);

public sealed record TaskTemplate(string Name, string? Description, string Schedule, string Type, string Prompt);

/// <summary>The daemon's health; only the members a client needs.</summary>
public sealed record LoopHealth(string Status, string Version, string? Node, double UptimeSeconds);

/// <summary>A node serving Loop, as <c>GET /api/cluster</c> lists it.</summary>
public sealed record LoopNode(string Name, string Address, string Status, DateTimeOffset StartedAt, DateTimeOffset LastSeenAt,
    int RunningRuns, int? Activations, double? CpuPercent, bool ThisNode, List<string>? Holds = null);

public sealed record LoopCluster(List<LoopNode> Nodes);

public sealed record CreateChannelRequest(string? DirPath, string? Name);

public sealed record ChannelToken(string Token);

/// <summary>RFC 9457 problem details, as the daemon answers errors.</summary>
public sealed record ProblemDetails(
    string? Type, string? Title, int? Status, string? Detail, string? Instance,
    Dictionary<string, string[]>? Errors, string? TraceId);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(LoopTask))]
[JsonSerializable(typeof(List<LoopTask>))]
[JsonSerializable(typeof(CreateTaskRequest))]
[JsonSerializable(typeof(UpdateTaskRequest))]
[JsonSerializable(typeof(LoopRun))]
[JsonSerializable(typeof(List<LoopRun>))]
[JsonSerializable(typeof(LoopChannel))]
[JsonSerializable(typeof(TaskTemplate))]
[JsonSerializable(typeof(List<TaskTemplate>))]
[JsonSerializable(typeof(LoopHealth))]
[JsonSerializable(typeof(LoopCluster))]
[JsonSerializable(typeof(CreateChannelRequest))]
[JsonSerializable(typeof(ChannelToken))]
[JsonSerializable(typeof(ProblemDetails))]
public sealed partial class LoopClientJson : JsonSerializerContext;
