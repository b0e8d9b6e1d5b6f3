namespace Loop.Docker;

/// <summary>How agent containers are made.</summary>
/// <param name="Image">The agent image; its ENTRYPOINT reads secrets from stdin, then execs the command.</param>
/// <param name="MemoryMb">Memory limit in MiB; swap is not allowed on top of it.</param>
/// <param name="Cpus">CPU limit, e.g. 1.5.</param>
/// <param name="PidsLimit">Most processes (and threads) the container may have.</param>
/// <param name="HomeDir">HOME inside the container: a writable tmpfs owned by the user.</param>
/// <param name="User">"uid:gid" (numeric) for the process; null runs as the daemon's own uid:gid.</param>
/// <param name="TmpfsSizeMb">Size of each tmpfs (/tmp and HOME) in MiB.</param>
public sealed record ContainerSandboxOptions(
    string Image,
    long MemoryMb,
    double Cpus,
    long PidsLimit,
    string HomeDir,
    string? User,
    long TmpfsSizeMb = 512);
