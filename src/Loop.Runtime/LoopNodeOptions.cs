namespace Loop.Runtime;

using Loop.Config;
using Loop.Domain.Agents;

/// <summary>How to build a node: its settings and, for tests and benchmarks, replacement parts.</summary>
public sealed record LoopNodeOptions(LoopConfig Config, LoopPaths Paths, string NodeName)
{
    public IReadOnlyList<string> ConfigWarnings { get; init; } = [];

    /// <summary>Replaces the Docker or process sandbox (benchmarks measure Loop without Docker work).</summary>
    public ISandbox? Sandbox { get; init; }

    /// <summary>Build arguments for the agent image when the daemon builds it.</summary>
    public IReadOnlyDictionary<string, string> ImageBuildArgs { get; init; } = new Dictionary<string, string>();
}
