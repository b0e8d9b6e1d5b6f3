using System.Collections;

namespace Loop.Config;

/// <summary>Where Loop keeps its files. Everything lives under one home directory
/// (LOOP_HOME, else ~/.loop), so a test or a second instance relocates all of it at once.</summary>
public sealed class LoopPaths
{
    public LoopPaths(string home, string userHome)
    {
        UserHome = Path.GetFullPath(userHome);
        Home = Path.GetFullPath(ExpandHome(home));
    }

    /// <summary>The Loop home: config.json, loop.db, container files, channel work dirs.</summary>
    public string Home { get; }

    /// <summary>The host user's home directory, which <c>~</c> stands for.</summary>
    public string UserHome { get; }

    public string ConfigFile => Path.Combine(Home, "config.json");

    /// <summary>Node settings (store, API address) for <see cref="NodeSettings.Load"/>.</summary>
    public string SiloFile => Path.Combine(Home, "silo.json");

    /// <summary>The default of <c>db_path</c>.</summary>
    public string DefaultDatabaseFile => Path.Combine(Home, "loop.db");

    /// <summary>Agent image build context (Dockerfile, entrypoint) written by onboarding.</summary>
    public string ContainerDir => Path.Combine(Home, "container");

    /// <summary>Runtime files of the daemon: its unix socket and what it hands each run.</summary>
    public string RunDir => Path.Combine(Home, "run");

    /// <summary>Holds the daemon's unix socket and nothing else, so containers can have it mounted
    /// read-only: an agent can connect to the socket but never replace it.</summary>
    public string SocketDir => Path.Combine(RunDir, "agent");

    public string DaemonSocket => Path.Combine(SocketDir, "loop.sock");

    /// <summary>Parent of <see cref="RunFilesDir"/>.</summary>
    public string RunFilesRoot => Path.Combine(RunDir, "runs");

    /// <summary>Files only the daemon's user may read; never mounted into containers.</summary>
    public string SecretsDir => Path.Combine(Home, "secrets");

    /// <summary>The machine token the daemon writes at each start, for the CLI on this machine.</summary>
    public string LocalTokenFile => Path.Combine(SecretsDir, "local-token");

    /// <summary>The one-time code for the first-run setup, while no account exists.</summary>
    public string SetupCodeFile => Path.Combine(SecretsDir, "setup-code");

    /// <summary>The key connector credentials are sealed with, unless LOOP_SECRET_KEY gives one.</summary>
    public string SecretKeyFile => Path.Combine(SecretsDir, "secret-key");

    /// <summary>The work dir of a channel that has no project dir of its own.</summary>
    public string ChannelWorkDir(string channelId) => Path.Combine(Home, CheckedSegment(channelId), "work");

    /// <summary>Where a channel's agent works: its project directory, else (a fork) its own git worktree once
    /// made, else the directory its parent had when it was forked, else its own folder.</summary>
    public string WorkDirOf(Loop.Domain.Channels.Channel channel) =>
        channel.DirPath ?? channel.Fork?.Worktree?.WorkDir ?? channel.Fork?.DirPath ?? ChannelWorkDir(channel.Id);

    /// <summary>Where a channel's Claude sessions are kept between its containers.</summary>
    public string ClaudeStateDir(string channelId) => Path.Combine(Home, "claude-state", CheckedSegment(channelId));

    /// <summary>What the daemon writes for one run (its MCP config): fresh for each run, mounted
    /// read-only into its container, removed when the run ends.</summary>
    public string RunFilesDir(string runId) => Path.Combine(RunFilesRoot, CheckedSegment(runId));

    /// <summary>Creates the home readable only by its owner (0700), or tightens an existing one that
    /// others may enter: it holds the store, secrets and config. Returns the looser mode it had, if any.</summary>
    public UnixFileMode? CreatePrivateHome()
    {
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Home);
            return null;
        }

        if (!Directory.Exists(Home))
        {
            Directory.CreateDirectory(Home, Private);
            return null;
        }

        var mode = File.GetUnixFileMode(Home);
        if ((mode & ~Private) == 0)
        {
            return null;
        }

        File.SetUnixFileMode(Home, mode & Private);
        return mode;
    }

    /// <summary>Expands <c>~</c> and <c>~/x</c> to the host user's home; other paths are returned unchanged.</summary>
    public string ExpandHome(string path) => ExpandHome(path, UserHome);

    /// <summary>Reads LOOP_HOME and HOME from <paramref name="environment"/> (the process
    /// environment when null).</summary>
    public static LoopPaths FromEnvironment(IDictionary? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariables();
        var userHome = NonEmpty(environment["HOME"] as string) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var loopHome = NonEmpty(environment["LOOP_HOME"] as string) ?? Path.Combine(userHome, ".loop");
        return new LoopPaths(loopHome, userHome);
    }

    internal static string ExpandHome(string path, string userHome)
    {
        if (path == "~")
        {
            return userHome;
        }

        return path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(userHome, path[2..]) : path;
    }

    internal static string DefaultUserHome() =>
        NonEmpty(Environment.GetEnvironmentVariable("HOME")) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    // An id becomes a directory name: it must not climb out of the home.
    private static string CheckedSegment(string id)
    {
        if (string.IsNullOrWhiteSpace(id) || id is "." or ".." || id.IndexOfAny(['/', '\\', '\0']) >= 0)
        {
            throw new ArgumentException($"id '{id}' cannot be used as a directory name", nameof(id));
        }

        return id;
    }
}
