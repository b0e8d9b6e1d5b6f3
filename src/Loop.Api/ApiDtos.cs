namespace Loop.Api;

using System.Text.Json;
using System.Text.Json.Serialization;
using Loop.Grains;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Runtime;

public sealed record CreateChannelRequest(string? DirPath, string? Name, string? Mode = null, string? Model = null);

/// <summary>A change to a channel: each field given is changed, the others stay.</summary>
public sealed record ChangeChannelRequest(string? Name, string? DirPath, string? Mode = null, string? Model = null, string? Progress = null);

/// <summary>A fork: its name (default: the parent's, with -fork), and whether it works in a git worktree of its own.</summary>
public sealed record ForkChannelRequest(string? Name, bool? Worktree = null);

/// <summary>The git worktree a fork works in: <c>path</c> and <c>branch</c> are null until its first run makes it;
/// <c>work_dir</c> is where in it the agent works.</summary>
public sealed record WorktreeDto(string? Path, string? Branch, string? WorkDir)
{
    public static WorktreeDto? From(ChannelFork? fork) => fork is { WantsWorktree: true }
        ? new(fork.Worktree?.Path, fork.Worktree?.Branch, fork.Worktree?.WorkDir)
        : null;
}

/// <summary>A connector's roles: <see cref="Configured"/> is false while it has no owners.</summary>
public sealed record RolesDto(IReadOnlyList<string>? Owners, IReadOnlyList<string>? Members, bool Configured = false)
{
    public static RolesDto From(Loop.Domain.Connectors.ChatRoles r) => new(r.Owners, r.Members, r.Configured);
}

public sealed record PostMessageRequest(string? Author, string? Content);

/// <summary>A channel and its work: <c>queued</c> counts user messages not yet in a run plus queued
/// runs, <c>active_run_id</c> is its running run, <c>last_run</c> its newest run;
/// <c>mode</c> is where its agent runs (container or direct), <c>model</c> the model it asks for (null: the configured one),
/// <c>progress</c> what its chat shows while a run works (off, tools or verbose); a fork has its <c>parent_id</c>, and
/// <c>worktree</c> when it works in a git worktree of its own (null otherwise).</summary>
public sealed record ChannelDto(string Id, string Name, string? DirPath, string? SessionId, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    string? Platform, string? ExternalId, int Queued, string? ActiveRunId, RunSummaryDto? LastRun, string Mode, string? Model, string Progress,
    string? ParentId, WorktreeDto? Worktree)
{
    public static ChannelDto From(ChannelOverview o)
    {
        var c = o.Channel;
        return new(c.Id, c.Name, c.DirPath, c.SessionId, c.CreatedAt, c.UpdatedAt, c.Platform, c.ExternalId,
            o.Queued, o.RunningRunId, o.LastRun is { } last ? RunSummaryDto.From(last) : null, c.Mode.ToWire(), c.Model, c.Progress.ToWire(),
            c.Fork?.ParentId, WorktreeDto.From(c.Fork));
    }
}

public sealed record RunSummaryDto(string Id, string Status, DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt)
{
    public static RunSummaryDto From(RunSummary r) => new(r.Id, r.Status.ToWire(), r.CreatedAt, r.FinishedAt);
}

public sealed record MessageDto(long Id, string ChannelId, string Role, string Author, string Content, DateTimeOffset CreatedAt, string? RunId)
{
    public static MessageDto From(ChatMessage m) =>
        new(m.Id, m.ChannelId, m.Role.ToWire(), m.Author, m.Content, m.CreatedAt, m.RunId);
}

public sealed record UsageDto(long InputTokens, long OutputTokens, long CacheCreationInputTokens, long CacheReadInputTokens, decimal CostUsd, int NumTurns, long DurationMs)
{
    public static UsageDto From(RunUsage u) =>
        new(u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens, u.CostUsd, u.NumTurns, u.DurationMs);
}

public sealed record RunDto(
    string Id, string ChannelId, string? TaskId, string Status, string Prompt,
    DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, long? ElapsedMs,
    int? ExitCode, string? Reply, string? Error, string? SessionId, string? Model, string? ContainerId, UsageDto Usage)
{
    public static RunDto From(Run r) => new(
        r.Id, r.ChannelId, r.TaskId, r.Status.ToWire(), r.Prompt, r.CreatedAt, r.StartedAt, r.FinishedAt,
        r.FinishedAt is { } end && r.StartedAt is { } start ? (long)(end - start).TotalMilliseconds : null,
        r.ExitCode, r.Reply, r.Error, r.SessionId, r.Model, r.ContainerId, UsageDto.From(r.Usage));
}

/// <summary>A live event; <see cref="Node"/> names the node of the cluster it happened on when that is not the one asked.
/// <see cref="Status"/> is the run's status on the run events that carry their run (run.error is every
/// end but success: failed, timed_out or cancelled), else null.</summary>
public sealed record EventDto(string Id, string Kind, DateTimeOffset At, string? ChannelId, string? RunId, string Text, string? Node, string? Status)
{
    public static EventDto From(LoopEvent e) => new(e.Id, e.Kind, e.At, e.ChannelId, e.RunId, e.Text, e.Node, (e.Data as Run)?.Status.ToWire());
}

/// <summary>Health as users see it: everything, <see cref="Components"/> as in <see cref="PublicHealthDto"/>.</summary>
public sealed record HealthDto(
    string Status, IReadOnlyDictionary<string, string> Components, string Version, string Node, int Pid, double UptimeSeconds, string Runner,
    StoreHealth Store, EngineHealth Docker, QueueHealth Queue, int ActiveChannels, IReadOnlyList<ChatHealth> Chats,
    IReadOnlyList<string> Warnings, IReadOnlyList<EventDto> RecentProblems)
{
    public static HealthDto From(HealthReport h) => new(
        h.Status, PublicHealthDto.ComponentsOf(h), h.Version, h.Node, h.Pid, Math.Round(h.UptimeSeconds, 3), h.Runner, h.Store, h.Engine, h.Queue,
        h.ActiveChannels, h.Chats, h.Warnings, h.RecentProblems.Select(EventDto.From).ToList());
}

/// <summary>Health as anyone may see it: up or degraded, per component (store, docker when the
/// runner is docker, each chat platform) and overall. No versions, paths, pids or error texts.</summary>
public sealed record PublicHealthDto(string Status, IReadOnlyDictionary<string, string> Components)
{
    public static PublicHealthDto From(HealthReport h) => new(h.Status, ComponentsOf(h));

    public static IReadOnlyDictionary<string, string> ComponentsOf(HealthReport h)
    {
        var components = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["store"] = UpIf(h.Store.Ok) };
        if (h.Runner == "docker")
        {
            components["docker"] = UpIf(h.Engine.Reachable && h.Engine.ImageStatus == "present");
        }
        foreach (var chat in h.Chats)
        {
            // A node on standby is fine: another node holds the connection.
            components[chat.Platform] = UpIf(chat.Status.StartsWith("connected", StringComparison.Ordinal) || chat.Status.StartsWith("standby", StringComparison.Ordinal));
        }
        return components;
    }

    private static string UpIf(bool up) => up ? "up" : "degraded";
}

public sealed record ChannelTokenDto(string ChannelId, string Token);

public sealed record RevokedTokensDto(string ChannelId, int Revoked);

public sealed record TaskDto(
    string Id, string ChannelId, string Name, string Type, string Schedule, string? Timezone, string Prompt, string? PromptFile, bool Enabled, bool Done,
    string Context, string Misfire, DateTimeOffset? NextRunAt, DateTimeOffset? LastRunAt, string? Template,
    int MaxIterations, string CompletionPromise, int Iteration, string LoopState, string? StopReason,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static TaskDto From(ScheduledTask t) => new(
        t.Id, t.ChannelId, t.Name, TaskWire.ToWire(t.Type), t.Schedule, t.TimeZone, t.Prompt, t.PromptFile, t.Enabled, t.Done,
        TaskWire.ToWire(t.Context), TaskWire.ToWire(t.Misfire), t.NextRunAt, t.LastRunAt, t.Template,
        t.MaxIterations, t.CompletionPromise, t.Iteration, TaskWire.ToWire(t.LoopState), t.StopReason, t.CreatedAt, t.UpdatedAt);
}

/// <summary>A task's latest output: <see cref="Runs"/> holds its newest run, or every iteration of a loop task's cycle, oldest first.</summary>
public sealed record TaskOutputDto(TaskDto Task, string? Output, IReadOnlyList<RunDto> Runs)
{
    public static TaskOutputDto From(TaskOutput o) => new(TaskDto.From(o.Task), o.Output, o.Runs.Select(RunDto.From).ToList());
}

public sealed record TemplateDto(string Name, string? Description, string Schedule, string Type, string Prompt)
{
    public static TemplateDto From(TaskTemplateConfig t) => new(t.Name, t.Description, t.Schedule, t.Type, t.Prompt);
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(CreateChannelRequest))]
[JsonSerializable(typeof(ChangeChannelRequest))]
[JsonSerializable(typeof(ForkChannelRequest))]
[JsonSerializable(typeof(RolesDto))]
[JsonSerializable(typeof(PostMessageRequest))]
[JsonSerializable(typeof(ChannelDto))]
[JsonSerializable(typeof(List<ChannelDto>))]
[JsonSerializable(typeof(MessageDto))]
[JsonSerializable(typeof(List<MessageDto>))]
[JsonSerializable(typeof(RunDto))]
[JsonSerializable(typeof(List<RunDto>))]
[JsonSerializable(typeof(EventDto))]
[JsonSerializable(typeof(List<EventDto>))]
[JsonSerializable(typeof(HealthDto))]
[JsonSerializable(typeof(PublicHealthDto))]
[JsonSerializable(typeof(ChannelTokenDto))]
[JsonSerializable(typeof(RevokedTokensDto))]
[JsonSerializable(typeof(NewTaskRequest))]
[JsonSerializable(typeof(TaskChangeRequest))]
[JsonSerializable(typeof(TaskDto))]
[JsonSerializable(typeof(List<TaskDto>))]
[JsonSerializable(typeof(List<TemplateDto>))]
[JsonSerializable(typeof(TaskOutputDto))]
[JsonSerializable(typeof(System.Text.Json.Nodes.JsonObject))]
[JsonSerializable(typeof(System.Text.Json.Nodes.JsonArray))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Http.HttpValidationProblemDetails))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
