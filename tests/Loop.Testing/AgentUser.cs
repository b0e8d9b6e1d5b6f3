namespace Loop.Testing;

using System.Diagnostics;

/// <summary>
/// Who agents run as in tests, and the directories tests hand them. Loop never runs an agent as root:
/// when the tests run as root (CI does), every daemon they start gets <c>container_user</c>
/// <see cref="ContainerUser"/> unless the test sets it, and the directories a test gives agents to
/// read and write must belong to that user. Otherwise agents run as the tests' own user, which
/// owns its temp dirs already.
/// </summary>
public static class AgentUser
{
    /// <summary>The <c>container_user</c> of daemons started by tests that run as root.</summary>
    public const string ContainerUser = "1000:1000";

    public static bool TestsRunAsRoot { get; } = Id("-u") == "0";

    /// <summary>The numeric "uid:gid" agents of a default test daemon run as.</summary>
    public static string Effective { get; } = TestsRunAsRoot ? ContainerUser : $"{Id("-u")}:{Id("-g")}";

    /// <summary>A fresh temp directory (a project, a mounted folder) that agents may read and write.</summary>
    public static string CreateDir(string prefix = "loop-proj-")
    {
        var path = Directory.CreateTempSubdirectory(prefix).FullName;
        GiveToAgents(path);
        return path;
    }

    /// <summary>Gives <paramref name="path"/> and everything in it to <see cref="Effective"/>, so a test
    /// can prepare files as itself and then let the agent at them.</summary>
    public static void GiveToAgents(string path)
    {
        if (TestsRunAsRoot)
        {
            Run("chown", "-R", ContainerUser, path);
        }
    }

    /// <summary>Changes the owner of <paramref name="path"/> (not its content), e.g. to root.</summary>
    public static void Chown(string path, string owner) => Run("chown", owner, path);

    /// <summary>Numeric "uid:gid" of a file, as <c>stat</c> shows it.</summary>
    public static string OwnerOf(string path) => Run("stat", "-c", "%u:%g", path);

    private static string Id(string flag) => Run("id", flag);

    private static string Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot run {file}");
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0
            ? output.Trim()
            : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {error.Trim()}");
    }
}
