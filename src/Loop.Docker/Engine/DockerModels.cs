namespace Loop.Docker.Engine;

/// <summary>Body of POST /containers/create. Property names are the Engine API's own; nulls are omitted.</summary>
public sealed record ContainerCreateRequest
{
    public required string Image { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
    public bool AttachStdin { get; init; }
    public bool AttachStdout { get; init; }
    public bool AttachStderr { get; init; }
    public bool OpenStdin { get; init; }
    public bool StdinOnce { get; init; }
    public bool Tty { get; init; }
    public ContainerHostConfig? HostConfig { get; init; }
}

/// <summary>The HostConfig part of a create request: limits, mounts and privileges.</summary>
public sealed record ContainerHostConfig
{
    public IReadOnlyList<ContainerMount>? Mounts { get; init; }
    /// <summary>Bytes.</summary>
    public long? Memory { get; init; }
    /// <summary>Memory plus swap, bytes; equal to <see cref="Memory"/> means no swap.</summary>
    public long? MemorySwap { get; init; }
    /// <summary>CPU quota in units of 1e-9 CPUs.</summary>
    public long? NanoCpus { get; init; }
    public long? PidsLimit { get; init; }
    public bool ReadonlyRootfs { get; init; }
    /// <summary>Container path → mount options (e.g. "rw,exec,size=512m,mode=1777").</summary>
    public IReadOnlyDictionary<string, string>? Tmpfs { get; init; }
    public IReadOnlyList<string>? CapDrop { get; init; }
    public IReadOnlyList<string>? SecurityOpt { get; init; }
    public IReadOnlyList<string>? GroupAdd { get; init; }
    public string? NetworkMode { get; init; }
}

/// <summary>A mount in HostConfig.Mounts; Type "bind" needs an existing Source.</summary>
public sealed record ContainerMount(string Type, string Source, string Target, bool ReadOnly);

/// <summary>The parts of GET /containers/{id}/json that Loop reads.</summary>
public sealed record ContainerInspect(
    string Id,
    string? Name,
    string? Path,
    IReadOnlyList<string> Args,
    ContainerInspectState State,
    ContainerInspectConfig Config,
    ContainerInspectHostConfig HostConfig);

public sealed record ContainerInspectState(string Status, bool Running, bool OOMKilled, int ExitCode, string? Error);

public sealed record ContainerInspectConfig(
    string? Image,
    string? User,
    string? WorkingDir,
    IReadOnlyList<string> Env,
    IReadOnlyList<string> Cmd,
    IReadOnlyList<string> Entrypoint,
    IReadOnlyDictionary<string, string> Labels);

public sealed record ContainerInspectHostConfig(
    long Memory,
    long MemorySwap,
    long NanoCpus,
    long? PidsLimit,
    bool ReadonlyRootfs,
    IReadOnlyList<string> CapDrop,
    IReadOnlyList<string> SecurityOpt);

/// <summary>One row of GET /containers/json.</summary>
public sealed record ContainerSummary(string Id, IReadOnlyList<string> Names, string Image, string State, IReadOnlyDictionary<string, string> Labels);
