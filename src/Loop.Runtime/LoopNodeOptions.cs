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

    /// <summary>Set when the node is one of a cluster: its store is PostgreSQL, shared by every node.</summary>
    public ClusterNode? Cluster { get; init; }
}

/// <summary>How a node of a cluster reaches the others: the PostgreSQL database they share and its own ports.</summary>
public sealed record ClusterNode(string PostgresConnectionString, ClusterSettings Settings)
{
    // The connection string usually carries a password.
    public override string ToString() => $"ClusterNode {{ PostgresConnectionString = ***, Settings = {Settings} }}";
}
