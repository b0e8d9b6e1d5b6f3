using Loop.Domain.Agents;

namespace Loop.Config;

/// <summary>A directory no project may be, lie in or hold, and what to call it in a refusal.</summary>
public sealed record ProtectedDir(string Path, string What);

/// <summary>
/// Which directories may be a channel's project (its <c>dir_path</c>, mounted read-write into its
/// containers). Pure: every path given is absolute and real (symlinks followed), so what is judged
/// is what Docker would mount. <see cref="ProjectDirs"/> supplies the real paths.
/// </summary>
/// <param name="LoopHome">The Loop home: its store, secrets and other channels' state.</param>
/// <param name="Protected">System directories and the Docker socket's directory.</param>
/// <param name="Allowed">The config's <c>allowed_project_dirs</c>: these and what lies under them
/// pass every rule but the first.</param>
public sealed record ProjectDirRules(string LoopHome, IReadOnlyList<ProtectedDir> Protected, IReadOnlyList<string> Allowed)
{
    private const string Advice = "use the project's own directory, or list it in allowed_project_dirs in config.json if you mean it";

    /// <summary>Why <paramref name="dir"/> may not be a project, as the end of a sentence about it; null when it may.</summary>
    public string? Refusal(string dir)
    {
        // Never, allowed or not: a mount there would hand the agent the daemon's secrets, and masking
        // the home (what makes a project that holds it safe) cannot hide a mount from inside it.
        if (dir == LoopHome)
        {
            return "is the Loop home, where Loop keeps its store and secrets; no project may be there";
        }
        if (IsUnder(dir, LoopHome))
        {
            return $"lies inside the Loop home {LoopHome}, where Loop keeps its store and secrets; no project may be there";
        }
        if (Allowed.Any(allowed => IsUnder(dir, allowed)))
        {
            return null;
        }
        if (dir == "/")
        {
            return $"is the root of the file system; {Advice}";
        }
        if (IsUnder(LoopHome, dir))
        {
            return $"holds the Loop home {LoopHome} (its store and secrets); {Advice} (agents then see the home as an empty directory)";
        }
        if (Protected.FirstOrDefault(p => IsUnder(dir, p.Path)) is { } inside)
        {
            return $"{(dir == inside.Path ? "is" : "lies inside")} {inside.What} {inside.Path}; {Advice}";
        }
        return Protected.FirstOrDefault(p => IsUnder(p.Path, dir)) is { } held ? $"holds {held.What} {held.Path}; {Advice}" : null;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="root"/> or lies under it.</summary>
    public static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root == "/" ? "/" : root + "/", StringComparison.Ordinal);
}

/// <summary>
/// Project directories on this host: resolves a <c>dir_path</c> to its real path (every symlink
/// followed, as Docker follows them when it mounts) and judges that with <see cref="ProjectDirRules"/>,
/// when a channel is registered and again before each of its runs (a directory may have been
/// swapped for a symlink since). Also says where the Loop home must be hidden inside a container.
/// </summary>
/// <param name="dockerSocket">The unix socket of the Docker engine the daemon uses (what
/// <c>DockerEndpoint</c> found in DOCKER_HOST or the Docker context); null for the default socket.</param>
/// <param name="clusterNode">This node's name when it is one of a cluster: project dirs are then on a
/// volume every node shares, so one missing here is not created (the run would work in an empty
/// directory of this node alone).</param>
public sealed class ProjectDirs(LoopConfig config, LoopPaths paths, string? dockerSocket, string? clusterNode = null)
{
    /// <summary>The host's own directories: an agent that may write there owns the machine.</summary>
    public static readonly IReadOnlyList<string> SystemDirectories =
        ["/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/var", "/run"];

    private const string DefaultDockerSocket = "/var/run/docker.sock";

    /// <summary>The rules as the file system stands now (the home, the system directories and the
    /// allowed ones resolved to their real paths).</summary>
    public ProjectDirRules Rules()
    {
        var guarded = new List<ProtectedDir>();
        void Guard(string path, string what)
        {
            foreach (var form in new[] { path, RealPath(path) }.Distinct())
            {
                guarded.Add(new ProtectedDir(form, what));
            }
        }
        Guard(DockerSocketDir(dockerSocket), "the Docker socket's directory");
        foreach (var system in SystemDirectories)
        {
            Guard(system, "the system directory");
        }
        return new ProjectDirRules(RealPath(paths.Home), guarded, config.AllowedProjectDirs.Select(dir => RealPath(dir)).ToList());
    }

    /// <summary>Judges a <c>dir_path</c> given at registration: its real path, and why it is refused
    /// (a sentence naming dir_path) or null.</summary>
    public (string RealPath, string? Refusal) Check(string dirPath)
    {
        var real = RealPath(dirPath);
        var reason = Rules().Refusal(real);
        var shown = real == Path.TrimEndingDirectorySeparator(dirPath) ? dirPath : $"{dirPath} (which leads to {real})";
        return (real, reason is null ? null : $"dir_path {shown} {reason}");
    }

    /// <summary>The directory a run works in, checked again (a project dir may have been replaced by a
    /// symlink since it was registered) and created when missing; its real path is what gets mounted.
    /// A channel without a project dir works in its own directory under the home, which is fine.</summary>
    /// <exception cref="ConfigException">The project dir is refused now; the message says why.</exception>
    public string ForRun(string channelId, string workDir)
    {
        if (workDir == paths.ChannelWorkDir(channelId))
        {
            Directory.CreateDirectory(workDir);
            return workDir;
        }
        var (real, refusal) = Check(workDir);
        if (refusal is not null)
        {
            throw new ConfigException($"the channel's project dir is refused: {refusal}; the agent was not started");
        }
        if (clusterNode is not null && !Directory.Exists(real))
        {
            throw new ConfigException($"the channel's project dir {workDir} does not exist on node {clusterNode}: " +
                "every node of a cluster must reach project dirs at the same path (a shared volume); the agent was not started");
        }
        try
        {
            Directory.CreateDirectory(real);
        }
        catch (IOException error)
        {
            throw new ConfigException($"the channel's project dir {workDir} cannot be created ({error.Message}); the agent was not started");
        }
        return real;
    }

    /// <summary>Where the Loop home shows inside the container through a mount that holds it (a project
    /// at ~, say, or a mount of ~): each such place gets covered. Mounts inside the home (the channel's
    /// own pieces) are not: they are what shows through the cover.</summary>
    public IReadOnlyList<string> MaskedPaths(IEnumerable<BindMount> mounts)
    {
        var home = RealPath(paths.Home);
        return mounts
            .Select(mount => (Mount: mount, Host: RealPath(mount.HostPath)))
            .Where(m => m.Host != home && ProjectDirRules.IsUnder(home, m.Host))
            .Select(m => Path.Join(m.Mount.ContainerPath, Path.GetRelativePath(m.Host, home)))
            .Distinct()
            .ToList();
    }

    /// <summary>The directory of the Docker socket the daemon uses, or of the default socket.</summary>
    public static string DockerSocketDir(string? dockerSocket) =>
        Path.GetDirectoryName(Path.GetFullPath(dockerSocket ?? DefaultDockerSocket)) ?? "/";

    /// <summary>The real path of <paramref name="path"/> (absolute): every symlink followed the way the
    /// kernel would. Of a path that does not exist (yet), its longest existing part is resolved and the
    /// rest appended, which is where creating it would put it; a dangling symlink is followed too.</summary>
    public static string RealPath(string path) => RealPath(path, 0);

    private static string RealPath(string path, int links)
    {
        var trimmed = Path.TrimEndingDirectorySeparator(path);
        if (MountResolver.RealPath(trimmed) is { } real)
        {
            return real;
        }
        var parent = Path.GetDirectoryName(trimmed);
        if (parent is null || parent == trimmed)
        {
            return trimmed;
        }
        var parentReal = RealPath(parent, links);
        var joined = Path.GetFullPath(Path.Join(parentReal, Path.GetFileName(trimmed)));
        // The kernel gives up after 40 links (ELOOP); so does this, and creating the path then fails.
        return new FileInfo(joined).LinkTarget is { } target && links < 40
            ? RealPath(Path.GetFullPath(target, parentReal), links + 1)
            : joined;
    }
}
