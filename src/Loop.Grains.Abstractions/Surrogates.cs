namespace Loop.Grains;

using Loop.Domain.Agents;
using Loop.Domain.Runs;

// The domain knows nothing of Orleans: its records cross grain calls through these surrogates.

[GenerateSerializer, Alias("Loop.AgentRunRequest")]
public struct AgentRunRequestSurrogate
{
    [Id(0)] public string RunId;
    [Id(1)] public string ChannelId;
    [Id(2)] public string WorkDir;
    [Id(3)] public string Prompt;
    [Id(4)] public string? SessionId;
    [Id(5)] public string? Model;
    [Id(6)] public bool Standalone;
    [Id(7)] public decimal? MaxBudgetUsd;
    [Id(8)] public string? ForkOf;
    [Id(9)] public string? ForkWorkDir;
    [Id(10)] public string? GitDir;
}

[RegisterConverter]
public sealed class AgentRunRequestConverter : IConverter<AgentRunRequest, AgentRunRequestSurrogate>
{
    public AgentRunRequest ConvertFromSurrogate(in AgentRunRequestSurrogate s) => new(s.RunId, s.ChannelId, s.WorkDir, s.Prompt, s.SessionId, s.Model, s.Standalone, s.MaxBudgetUsd, s.ForkOf, s.ForkWorkDir, s.GitDir);

    public AgentRunRequestSurrogate ConvertToSurrogate(in AgentRunRequest value) => new()
    {
        RunId = value.RunId,
        ChannelId = value.ChannelId,
        WorkDir = value.WorkDir,
        Prompt = value.Prompt,
        SessionId = value.SessionId,
        Model = value.Model,
        Standalone = value.Standalone,
        MaxBudgetUsd = value.MaxBudgetUsd,
        ForkOf = value.ForkOf,
        ForkWorkDir = value.ForkWorkDir,
        GitDir = value.GitDir,
    };
}

[GenerateSerializer, Alias("Loop.AgentRunResult")]
public struct AgentRunResultSurrogate
{
    [Id(0)] public AgentOutcome Outcome;
    [Id(1)] public int? ExitCode;
    [Id(2)] public string? Reply;
    [Id(3)] public string? SessionId;
    [Id(4)] public string? Error;
    [Id(5)] public RunUsage Usage;
    [Id(6)] public bool SessionNotFound;
    [Id(7)] public string? Model;
    [Id(8)] public string? ContainerId;
}

[RegisterConverter]
public sealed class AgentRunResultConverter : IConverter<AgentRunResult, AgentRunResultSurrogate>
{
    public AgentRunResult ConvertFromSurrogate(in AgentRunResultSurrogate s) =>
        new(s.Outcome, s.ExitCode, s.Reply, s.SessionId, s.Error, s.Usage, s.SessionNotFound, s.Model, s.ContainerId);

    public AgentRunResultSurrogate ConvertToSurrogate(in AgentRunResult value) => new()
    {
        Outcome = value.Outcome,
        ExitCode = value.ExitCode,
        Reply = value.Reply,
        SessionId = value.SessionId,
        Error = value.Error,
        Usage = value.Usage,
        SessionNotFound = value.SessionNotFound,
        Model = value.Model,
        ContainerId = value.ContainerId,
    };
}

[GenerateSerializer, Alias("Loop.RunUsage")]
public struct RunUsageSurrogate
{
    [Id(0)] public long InputTokens;
    [Id(1)] public long OutputTokens;
    [Id(2)] public long CacheCreationInputTokens;
    [Id(3)] public long CacheReadInputTokens;
    [Id(4)] public decimal CostUsd;
    [Id(5)] public int NumTurns;
    [Id(6)] public long DurationMs;
}

[RegisterConverter]
public sealed class RunUsageConverter : IConverter<RunUsage, RunUsageSurrogate>
{
    public RunUsage ConvertFromSurrogate(in RunUsageSurrogate s) =>
        new(s.InputTokens, s.OutputTokens, s.CacheCreationInputTokens, s.CacheReadInputTokens, s.CostUsd, s.NumTurns, s.DurationMs);

    public RunUsageSurrogate ConvertToSurrogate(in RunUsage value) => new()
    {
        InputTokens = value.InputTokens,
        OutputTokens = value.OutputTokens,
        CacheCreationInputTokens = value.CacheCreationInputTokens,
        CacheReadInputTokens = value.CacheReadInputTokens,
        CostUsd = value.CostUsd,
        NumTurns = value.NumTurns,
        DurationMs = value.DurationMs,
    };
}
