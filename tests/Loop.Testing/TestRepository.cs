namespace Loop.Testing;

using System.Diagnostics;

/// <summary>Git repositories for tests, made and read with the real git command line.</summary>
public static class TestRepository
{
    /// <summary>A repository with one commit (README.md) on main, in a directory agents may use (not given to
    /// them yet: a test may add to it first, then call <see cref="AgentUser.GiveToAgents"/>).</summary>
    public static string Create()
    {
        var project = AgentUser.CreateDir("loop-repo-");
        Git(project, "init", "-q", "-b", "main");
        File.WriteAllText(Path.Combine(project, "README.md"), "a project\n");
        Git(project, "add", "README.md");
        Commit(project, "first");
        return project;
    }

    /// <summary>Commits what is staged, as a test user.</summary>
    public static void Commit(string dir, string message) =>
        Git(dir, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", message);

    /// <summary>Runs git in <paramref name="dir"/> and returns what it printed, trimmed; throws when it fails.</summary>
    public static string Git(string dir, params string[] args)
    {
        var start = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // The tests may run as another user than the repository's owner (root; agents are 1000).
        foreach (var arg in new[] { "-c", "safe.directory=*", "-C", dir }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot run git");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0
            ? output.Result.Trim()
            : throw new InvalidOperationException($"git {string.Join(' ', args)} failed: {error}");
    }
}
