namespace Loop.Domain.Agents;

using System.Globalization;

/// <summary>A numeric user and group of the host, as "uid:gid".</summary>
public sealed record UnixUser(uint Uid, uint Gid)
{
    public bool IsRoot => Uid == 0;

    public override string ToString() => $"{Uid.ToString(CultureInfo.InvariantCulture)}:{Gid.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Reads "uid:gid", both whole numbers (names would be looked up in the container's
    /// own user database, not the host's).</summary>
    public static bool TryParse(string? text, out UnixUser user)
    {
        user = new UnixUser(0, 0);
        var parts = text?.Split(':');
        if (parts is not [var uid, var gid]
            || !uint.TryParse(uid, NumberStyles.None, CultureInfo.InvariantCulture, out var u)
            || !uint.TryParse(gid, NumberStyles.None, CultureInfo.InvariantCulture, out var g))
        {
            return false;
        }
        user = new UnixUser(u, g);
        return true;
    }
}

/// <summary>Who an agent runs as, or why it may not run at all.</summary>
public sealed record RunUserChoice(UnixUser? User, string? Refusal);

/// <summary>
/// Decides the user of each run, so that no agent runs as root: a root agent can leave a setuid-root
/// program in the project, and any user of the host becomes root by running it.
/// <list type="number">
/// <item>The configured <c>container_user</c>, when there is one.</item>
/// <item>Else the daemon's own user, when that is not root (files the agent writes belong to whoever runs Loop).</item>
/// <item>Else (Loop runs as root) the owner of the run's work directory, when that is not root.</item>
/// <item>Else the run is refused, saying what to set.</item>
/// </list>
/// </summary>
/// <param name="daemon">The user <c>loop serve</c> runs as.</param>
/// <param name="configured">The <c>container_user</c> setting; never root (the config refuses it).</param>
/// <param name="configFile">Where <c>container_user</c> is set, for the refusal's advice.</param>
public sealed class RunUserPolicy(UnixUser daemon, UnixUser? configured, string configFile)
{
    public bool DaemonIsRoot => daemon.IsRoot;

    /// <summary>The user for a run in <paramref name="workDir"/>, which <paramref name="workDirOwner"/>
    /// owns (null when its owner cannot be told).</summary>
    public RunUserChoice For(string workDir, UnixUser? workDirOwner)
    {
        if (configured is not null)
        {
            return new RunUserChoice(configured, null);
        }
        if (!daemon.IsRoot)
        {
            return new RunUserChoice(daemon, null);
        }
        if (workDirOwner is { IsRoot: false })
        {
            return new RunUserChoice(workDirOwner, null);
        }
        return new RunUserChoice(null,
            $"Loop runs as root and {workDir} belongs to {(workDirOwner is null ? "an owner Loop cannot tell" : "root")}: agents never run as root; " +
            $"set container_user in {configFile} (like \"1000:1000\") and give that user the directory");
    }

    /// <summary>What <c>loop serve</c> says at start when it runs as root; null when it does not.</summary>
    public string? RootWarning() => !daemon.IsRoot
        ? null
        : configured is not null
            ? $"loop serve runs as root: agent containers run as container_user {configured}"
            : "loop serve runs as root: each agent container runs as the owner of its project directory, and runs in a directory " +
              $"that root owns fail; set container_user in {configFile} (like \"1000:1000\") to choose the user";
}
