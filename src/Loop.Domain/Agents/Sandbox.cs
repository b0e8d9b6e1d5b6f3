namespace Loop.Domain.Agents;

/// <summary>A host path made visible inside the sandbox.</summary>
public sealed record BindMount(string HostPath, string ContainerPath, bool ReadOnly);

/// <summary>Everything a sandbox needs to run one agent command.</summary>
/// <param name="Command">argv, starting with the program (e.g. "claude").</param>
/// <param name="Secrets">Environment the command needs but that must never be visible from
/// outside: not in the container's config, command line, image, store or logs.</param>
/// <param name="Labels">Identify the owner so orphans can be reaped after a crash.</param>
/// <param name="SupplementaryGroups">Extra group ids for the process (e.g. the docker socket's group).</param>
/// <param name="MaskedPaths">Paths the command must not see even where a mount would show them: each
/// is covered by an empty, private directory (deeper mounts still show through).</param>
public sealed record SandboxSpec(
    string RunId,
    string ChannelId,
    IReadOnlyList<string> Command,
    string WorkDir,
    IReadOnlyList<BindMount> Mounts,
    IReadOnlyDictionary<string, string> Secrets,
    IReadOnlyDictionary<string, string> Labels,
    TimeSpan Timeout,
    IReadOnlyList<long> SupplementaryGroups,
    IReadOnlyList<string>? MaskedPaths = null)
{
    /// <summary>What the command reads on its standard input (the prompt), after the secrets. Never
    /// on the command line: argv is limited in size and visible to every user of the host.</summary>
    public string Input { get; init; } = "";

    /// <summary>The numeric "uid:gid" the command runs as; null leaves it to the sandbox. Never 0.</summary>
    public string? User { get; init; }
}

/// <summary>How the command ended. Exactly one of <see cref="TimedOut"/>, <see cref="Cancelled"/>
/// may be set; <see cref="OutOfMemory"/> says the memory limit killed it.</summary>
public sealed record SandboxExit(
    int? ExitCode,
    bool TimedOut,
    bool Cancelled,
    bool OutOfMemory,
    string StandardErrorTail,
    string? ContainerId);

/// <summary>Where an agent command runs: a Docker container, or (without isolation) a host process.</summary>
public interface ISandbox
{
    /// <summary>"docker" or "process".</summary>
    string Kind { get; }

    /// <summary>Runs the command to completion, calling <paramref name="onStdoutLine"/> for each
    /// line of standard output as it arrives. Timeout and cancellation kill the command and are
    /// reported in the result rather than thrown. Throws <see cref="SandboxUnavailableException"/>
    /// when the sandbox cannot run anything (engine unreachable, image missing).</summary>
    Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken);
}

public sealed class SandboxUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
